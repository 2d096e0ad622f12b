//! `switchboard conversation …` against the real binary: the tables people read and the
//! `--json` scripts parse, from creating a conversation to marking it read.

use serde_json::json;

mod common;

use common::agent_addr;
use common::cli::{Backend, Hub};
use switchboard_core::api::RegisterAgent;

async fn agent(hub: &Hub, name: &str) -> (String, String) {
    let r = hub.admin.register_agent(&RegisterAgent { name: name.into(), ..Default::default() }).await.unwrap();
    (r.agent.id, r.api_key)
}

#[tokio::test]
async fn conversation_commands_create_send_read_and_change_participants() {
    let hub = Hub::start(Backend::Sqlite, "conversation commands", &[]).await;
    let (ann, ann_key) = agent(&hub, "ann").await;
    let (bob, bob_key) = agent(&hub, "bob").await;
    let (cat, _) = agent(&hub, "cat").await;
    let as_ann = hub.cli.with_token(&ann_key);

    let bob_addr = agent_addr(&bob);
    let made = as_ann.run(&["conversation", "create", "--title", "plan", "--with", &bob_addr, "--json"]).json();
    let id = made["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made["conversation"]["participants"].as_array().unwrap().len(), 2, "{made}");

    let list = hub.cli.with_token(&bob_key).run(&["conversation", "list"]).table();
    assert_eq!(list.headers, ["ID", "TITLE", "PARTICIPANTS", "MESSAGES", "UNREAD", "CREATED"]);
    assert_eq!(list.row("ID", &id)[1..5], ["plan", "2", "0", "0"]);

    let to = format!("conversation:{id}");
    as_ann.run(&["send", "--to", &to, "hello bob"]).ok();
    hub.cli.with_token(&bob_key).run(&["send", "--to", &to, "hello ann"]).ok();
    let history = as_ann.run(&["conversation", "history", &id]).table();
    assert_eq!(history.headers, ["SEQ", "AT", "FROM", "IN REPLY TO", "TEXT", "ID"]);
    assert_eq!(history.column("SEQ"), ["1", "2"]);
    assert_eq!(history.column("TEXT"), ["hello bob", "hello ann"]);
    let first = history.column("ID")[0].to_owned();
    let thread = as_ann.run(&["conversation", "history", &id, "--thread", &first, "--json"]).json();
    assert_eq!(thread["messages"].as_array().unwrap().len(), 1, "{thread}");

    let read = as_ann.run(&["conversation", "read", &id, "--up-to", "2", "--json"]).json();
    assert_eq!(read, json!({"conversation_id": id, "participant": agent_addr(&ann), "read_up_to": 2, "unread": 0}));
    let shown = as_ann.run(&["conversation", "show", &id]).ok();
    assert!(shown.contains("2 messages") && shown.contains("READ UP TO"), "{shown}");

    let cat_addr = agent_addr(&cat);
    let added = as_ann.run(&["conversation", "add", &id, &cat_addr]).ok();
    assert_eq!(added.trim(), format!("{cat_addr} takes part in conversation {id}"));
    let removed = as_ann.run(&["conversation", "rm", &id, &bob_addr, "--json"]).json();
    assert_eq!(removed, json!({"conversation_id": id, "removed": bob_addr}));
    let err = hub.cli.with_token(&bob_key).run(&["conversation", "show", &id]).fails();
    assert!(err.contains("(not_found)"), "{err}");
}
