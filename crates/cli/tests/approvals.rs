//! `switchboard approvals` and `switchboard approve`, run as the real binary against a real
//! hub: a person lists what waits for them and answers it; the table and `--json`.

mod common;

use common::cli::{Backend, Hub};
use serde_json::json;
use switchboard_core::api::CreateApproval;
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;
use switchboard_core::time::{now_ms, rfc3339};

#[tokio::test]
async fn a_person_lists_and_answers_approvals() {
    let hub = Hub::start(Backend::Sqlite, "approval commands", &[]).await;
    let password = "correct horse battery";
    let ann = CreateUser {
        email: "ann@example.com".into(),
        name: "Ann".into(),
        role: Role::Member,
        password: Some(password.into()),
    };
    let ann = hub.admin.create_user(&ann).await.unwrap().user.id;
    let anon = hub.admin.with_token("");
    let login = Login { email: "ann@example.com".into(), password: password.into(), tenant: None };
    let s = anon.login(&login).await.unwrap();
    let t = anon.create_token_in_session(&s, &CreateToken { name: "cli".into(), expires_in_days: None }).await.unwrap();
    let ann_cli = hub.cli.with_token(&t.token);
    let ask = |q: &str| -> CreateApproval {
        serde_json::from_value(json!({
            "question": q, "options": [{"id": "approve", "label": "Approve"}, {"id": "reject", "label": "Reject"}],
            "deciders": [format!("user:{ann}")], "deadline": rfc3339(now_ms() + 600_000), "default_outcome": "reject",
        }))
        .unwrap()
    };
    let first = hub.admin.create_approval(&ask("Ship 42?")).await.unwrap().approval.id;
    let second = hub.admin.create_approval(&ask("Ship 43?")).await.unwrap().approval.id;

    let t = ann_cli.run(&["approvals", "--state", "pending"]).table();
    assert_eq!(t.headers, ["ID", "STATE", "QUESTION", "OPTIONS", "DEADLINE", "OUTCOME"]);
    assert_eq!(t.column("ID"), [second.as_str(), first.as_str()], "newest first");
    assert_eq!(t.cell("ID", &first, "OPTIONS"), "approve|reject");

    let out = ann_cli.run(&["approve", &first, "--comment", "go"]).ok();
    assert!(out.contains("approved") && out.contains(&format!("approve by user:{ann}: go")), "{out}");
    let got = ann_cli.run(&["approve", &second, "--reject", "--json"]).json();
    assert_eq!(got["approval"]["state"], "rejected");
    let err = ann_cli.run(&["approve", &second]).fails();
    assert!(err.contains("(conflict)"), "{err}");
    let listed = ann_cli.run(&["approvals", "--json"]).json();
    assert_eq!(listed["approvals"].as_array().map(Vec::len), Some(2));
    assert!(ann_cli.run(&["approvals", "--state", "pending"]).table().column("ID").is_empty());
}
