//! `switchboard reply` and `switchboard triage` as a person runs them in a terminal, against
//! the real binary and a real hub: the reply reaches whoever asked, in reply to the question;
//! the triage list shows what `auto` could not place, and `triage route` places it.

use serde_json::json;

mod common;

use common::cli::{Backend, Cli, Hub};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{Capability, Part, PutGroup, RegisterAgent, SendMessage};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;

const PASSWORD: &str = "correct horse battery";

/// A member with a password, and the CLI acting as them with a personal access token.
async fn person(hub: &Hub, email: &str) -> (String, Cli) {
    let req =
        CreateUser { email: email.into(), name: email.into(), role: Role::Member, password: Some(PASSWORD.into()) };
    let id = hub.admin.create_user(&req).await.unwrap().user.id;
    let anon = Client::new(hub.url(), None);
    let session = anon.login(&Login { email: email.into(), password: PASSWORD.into(), tenant: None }).await.unwrap();
    let token = anon
        .create_token_in_session(&session, &CreateToken { name: "cli".into(), expires_in_days: None })
        .await
        .unwrap()
        .token;
    (id, Cli::new(hub.url(), Some(token)))
}

async fn agent(hub: &Hub, name: &str, capabilities: Vec<Capability>) -> (String, Client) {
    let r = hub
        .admin
        .register_agent(&RegisterAgent { name: name.into(), capabilities, ..Default::default() })
        .await
        .unwrap();
    (r.agent.id, hub.admin.with_token(r.api_key))
}

/// The one message in `c`'s inbox, acknowledged.
async fn take_one(c: &Client) -> switchboard_core::api::InboxMessage {
    let got = c.inbox(&InboxOptions { wait_ms: Some(10_000), limit: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(got.messages.len(), 1, "{got:?}");
    c.ack(vec![got.messages[0].message.id.clone()]).await.unwrap();
    got.messages.into_iter().next().unwrap()
}

async fn a_person_replies_to_an_agent_and_in_a_conversation(backend: Backend) {
    let hub = Hub::start(backend, "reply cli", &[]).await;
    let (ann, as_ann) = person(&hub, "ann@example.com").await;
    let (bot, bot_client) = agent(&hub, "bot", vec![]).await;

    // A plain question: the reply goes to its sender, in reply to it, with text and data.
    let asked = bot_client.send(&SendMessage::text(format!("user:{ann}"), "deploy now?")).await.unwrap();
    let out = as_ann.run(&["reply", &asked.id, "yes, go", "--data", r#"{"ok":true}"#]).ok();
    assert!(out.starts_with("replied ") && out.contains(&format!("→ agent:{bot}")), "{out}");
    let reply = take_one(&bot_client).await;
    assert_eq!(reply.message.in_reply_to.as_deref(), Some(asked.id.as_str()));
    assert_eq!(reply.message.from, format!("user:{ann}"));
    assert_eq!(reply.message.parts, [Part::text("yes, go"), Part::Data { data: json!({"ok": true}) }]);

    // In a conversation, the reply goes to the conversation (every participant but Ann).
    let conv = bot_client
        .create_conversation(&switchboard_core::api::CreateConversation {
            title: None,
            participants: vec![format!("user:{ann}")],
        })
        .await
        .unwrap()
        .conversation
        .id;
    let asked = bot_client.send(&SendMessage::text(format!("conversation:{conv}"), "which region?")).await.unwrap();
    let sent = as_ann.run(&["reply", &asked.id, "eu-west", "--json"]).json();
    assert_eq!(sent["recipients"], json!([format!("agent:{bot}")]));
    let reply = take_one(&bot_client).await;
    assert_eq!(reply.message.to, format!("conversation:{conv}"));
    assert_eq!(reply.message.conversation_id.as_deref(), Some(conv.as_str()));
    assert_eq!(reply.message.in_reply_to.as_deref(), Some(asked.id.as_str()));

    // Nothing to say, bad JSON, or a message Ann cannot see: refused before anything is sent.
    assert!(as_ann.run(&["reply", &asked.id]).fails().contains("nothing to reply"));
    assert!(as_ann.run(&["reply", &asked.id, "--data", "{"]).fails().contains("--data must be JSON"));
    let err = as_ann.run(&["reply", "0192f000-0000-7000-8000-000000000000", "hi"]).fails();
    assert!(err.contains("(not_found)"), "{err}");
}

#[tokio::test]
async fn a_person_replies_to_an_agent_and_in_a_conversation_sqlite() {
    a_person_replies_to_an_agent_and_in_a_conversation(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn a_person_replies_to_an_agent_and_in_a_conversation_postgres() {
    a_person_replies_to_an_agent_and_in_a_conversation(Backend::Postgres).await;
}

async fn triage_lists_what_auto_could_not_place_and_routes_it(backend: Backend) {
    let hub = Hub::start(backend, "triage cli", &[]).await;
    let (ann, as_ann) = person(&hub, "ann@example.com").await;
    hub.admin.put_group("triage", &PutGroup { members: vec![ann.clone()], description: None }).await.unwrap();
    let billing = Capability {
        name: "billing".into(),
        description: Some("invoices, refunds and payment questions".into()),
        tags: vec![],
        examples: vec![],
        input_schema: None,
        output_schema: None,
        output_schema_mode: None,
        reassign_on_timeout: None,
    };
    let (biller, biller_client) = agent(&hub, "biller", vec![billing]).await;

    // Empty at first: a table with only its headers, and an empty list for scripts.
    let t = as_ann.run(&["triage"]).table();
    assert_eq!(t.headers, ["ID", "FROM", "CREATED", "TEXT", "CANDIDATES"]);
    assert!(t.rows.is_empty(), "{:?}", t.rows);

    // Nothing in the text speaks of billing, so `auto` sends it to the triage group.
    let sent = hub.admin.send(&SendMessage::text("auto", "the printer on floor 3 is jammed")).await.unwrap();
    assert_eq!(sent.recipients, [format!("user:{ann}")]);
    let t = as_ann.run(&["triage"]).table();
    assert_eq!(t.column("ID"), [sent.id.as_str()]);
    assert_eq!(t.cell("ID", &sent.id, "TEXT"), "the printer on floor 3 is jammed");
    let listed = as_ann.run(&["triage", "--json"]).json();
    assert_eq!(listed["messages"][0]["message"]["id"], json!(sent.id));
    assert_eq!(listed["messages"][0]["routing"]["triage"], "triage");
    // The admin sees every person's triage too.
    assert_eq!(hub.cli.run(&["triage"]).table().column("ID"), [sent.id.as_str()]);

    // Only a capability is a place to route to.
    let err = as_ann.run(&["triage", "route", &sent.id, "--to", &format!("agent:{biller}")]).fails();
    assert!(err.contains("use capability:<name>"), "{err}");

    // Ann routes it; the agent gets it, the decision names her, and the list is empty again.
    let out = as_ann.run(&["triage", "route", &sent.id, "--to", "capability:billing"]).ok();
    assert_eq!(out.trim(), format!("routed {} to capability:billing → agent:{biller}", sent.id));
    let got = take_one(&biller_client).await;
    assert_eq!(got.message.id, sent.id);
    let shown = hub.cli.run(&["message", &sent.id, "--json"]).json();
    assert_eq!(shown["routing"]["decided_by"], json!(format!("user:{ann}")));
    assert!(as_ann.run(&["triage"]).table().rows.is_empty());
    let again = as_ann.run(&["triage", "route", &sent.id, "--to", "billing", "--json"]).fails();
    assert!(again.contains("(conflict)"), "{again}");
}

#[tokio::test]
async fn triage_lists_what_auto_could_not_place_and_routes_it_sqlite() {
    triage_lists_what_auto_could_not_place_and_routes_it(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn triage_lists_what_auto_could_not_place_and_routes_it_postgres() {
    triage_lists_what_auto_could_not_place_and_routes_it(Backend::Postgres).await;
}
