//! `switchboard group` and an `auto` message in `switchboard message`, run as the real binary
//! against a real hub: the table people read and the `--json` scripts parse.

use serde_json::json;

mod common;

use common::cli::{Backend, Hub};
use switchboard_core::api::SendMessage;
use switchboard_core::people::CreateUser;
use switchboard_core::principal::Role;

#[tokio::test]
async fn group_commands_manage_the_triage_group_and_message_shows_the_routing() {
    let hub = Hub::start(Backend::Sqlite, "group commands", &[]).await;
    let ann = CreateUser { email: "ann@example.com".into(), name: "Ann".into(), role: Role::Member, password: None };
    let ann = hub.admin.create_user(&ann).await.unwrap().user.id;

    let set = hub.cli.run(&["group", "set", "triage", "--member", &ann, "--description", "on call", "--json"]).json();
    assert_eq!(
        (&set["name"], &set["members"], &set["description"]),
        (&json!("triage"), &json!([ann]), &json!("on call"))
    );
    let t = hub.cli.run(&["group", "list"]).table();
    assert_eq!(t.headers, ["NAME", "MEMBERS", "DESCRIPTION", "UPDATED"]);
    assert_eq!(t.column("NAME"), ["triage"]);
    assert_eq!(t.column("MEMBERS"), ["1"]);

    // No agent offers anything, so `auto` goes to the triage group; `message` says why.
    let sent = hub.admin.send(&SendMessage::text("auto", "the printer is jammed")).await.unwrap();
    assert_eq!(sent.recipients, [format!("user:{ann}")]);
    let out = hub.cli.run(&["message", &sent.id]).ok();
    assert!(out.contains("routed by bm25 to (triage): no agent of this tenant offers a capability"), "{out}");
    let shown = hub.cli.run(&["message", &sent.id, "--json"]).json();
    assert_eq!(shown["routing"]["triage"], "triage");

    let out = hub.cli.run(&["group", "remove", "triage", &ann]).ok();
    assert_eq!(out.trim(), format!("took {ann} out of group triage"));
    assert_eq!(hub.cli.run(&["group", "show", "triage", "--json"]).json()["members"], json!([]));
    hub.cli.run(&["group", "add", "triage", &ann]).ok();
    assert_eq!(hub.cli.run(&["group", "show", "triage", "--json"]).json()["members"], json!([ann]));
    hub.cli.run(&["group", "rm", "triage"]).ok();
    let err = hub.cli.run(&["group", "show", "triage"]).fails();
    assert!(err.contains("(not_found)"), "{err}");
}
