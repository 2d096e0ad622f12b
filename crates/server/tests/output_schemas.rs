//! Output schemas (issue 12 item 6, second half): a reply to a capability's request is held
//! to the capability's `output_schema` when its `output_schema_mode` asks: `enforce` refuses
//! it (422 `schema_violation`, every failing path), `warn` accepts it with the failures in
//! `metadata.schema_warnings`. The schema is checked at registration. With
//! `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these run on PostgreSQL.

mod common;

use common::{ADMIN, TestHub, agent_addr, assert_problem, assert_unchanged, raw};
use serde_json::{Value, json};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{Capability, OutputSchemaMode, Part, RegisterAgent, SendMessage};

fn quote_schema() -> Value {
    json!({
        "type": "object",
        "required": ["price", "currency"],
        "properties": {"price": {"type": "number", "minimum": 0}, "currency": {"type": "string"}}
    })
}

/// An active agent offering `quote` with the quote output schema in `mode`.
async fn quoter(hub: &TestHub, mode: Option<OutputSchemaMode>) -> (String, String, Client) {
    let cap =
        Capability { output_schema: Some(quote_schema()), output_schema_mode: mode, ..Capability::named("quote") };
    let req = RegisterAgent { name: "quoter".into(), capabilities: vec![cap], ..Default::default() };
    let r = hub.admin().register_agent(&req).await.unwrap();
    let c = hub.admin().with_token(r.api_key.clone());
    c.heartbeat(&r.agent.id).await.unwrap();
    (r.agent.id, r.api_key, c)
}

/// Alice asks `capability:quote`; the quoter leases the request. Returns alice's address and
/// client and the request's id.
async fn asked(hub: &TestHub, quoter: &Client) -> (String, Client, String) {
    let (alice_reg, alice) = hub.agent("alice", &[]).await;
    let id = alice.send(&SendMessage::text("capability:quote", "how much?")).await.unwrap().id;
    let got = quoter.inbox(&InboxOptions::default()).await.unwrap();
    assert_eq!(got.messages[0].message.id, id);
    (agent_addr(&alice_reg.agent.id), alice, id)
}

fn reply(to: &str, id: &str, data: Value) -> Value {
    json!({"to": to, "in_reply_to": id, "parts": [{"kind": "data", "data": data}]})
}

#[tokio::test]
async fn enforce_refuses_a_reply_that_breaks_the_output_schema() {
    let hub = TestHub::start().await;
    let (_, key, quoter_c) = quoter(&hub, Some(OutputSchemaMode::Enforce)).await;
    let (alice, _, id) = asked(&hub, &quoter_c).await;
    let before = hub.snapshot().await;
    let bad = reply(&alice, &id, json!({"price": -1}));
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(&key), Some(bad.to_string())).await,
        422,
        "schema_violation",
    );
    let mut paths: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(paths, ["parts[0].data", "parts[0].data.price"], "{p}");
    assert!(p["detail"].as_str().unwrap().contains("output schema"), "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "a reply that breaks the output schema");
    let good = reply(&alice, &id, json!({"price": 3.5, "currency": "EUR"}));
    let (status, _, body) = raw(&hub, "POST", "/v1/messages", Some(&key), Some(good.to_string())).await;
    assert_eq!(status, 202, "{body}");
    hub.stop().await;
}

#[tokio::test]
async fn warn_accepts_the_reply_and_records_the_failures() {
    let hub = TestHub::start().await;
    let (_, _, quoter_c) = quoter(&hub, Some(OutputSchemaMode::Warn)).await;
    let (alice_addr, alice, id) = asked(&hub, &quoter_c).await;
    let m = SendMessage {
        in_reply_to: Some(id.clone()),
        parts: vec![Part::Data { data: json!({"price": "cheap"}) }],
        ..SendMessage::text(&alice_addr, "")
    };
    quoter_c.send(&m).await.expect("warn accepts");
    let got = alice.inbox(&InboxOptions::default()).await.unwrap();
    let warnings = &got.messages[0].message.metadata.as_ref().expect("metadata")["schema_warnings"];
    let paths: Vec<&str> = warnings.as_array().unwrap().iter().map(|w| w["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"parts[0].data.price") && paths.contains(&"parts[0].data"), "{warnings}");
    hub.stop().await;
}

#[tokio::test]
async fn without_a_mode_replies_are_not_checked_and_the_schema_is_checked_at_registration() {
    let hub = TestHub::start().await;
    let (_, _, quoter_c) = quoter(&hub, None).await;
    let (alice_addr, _, id) = asked(&hub, &quoter_c).await;
    let m = SendMessage {
        in_reply_to: Some(id),
        parts: vec![Part::Data { data: json!({"anything": true}) }],
        ..SendMessage::text(&alice_addr, "")
    };
    let sent = quoter_c.send(&m).await.expect("not checked");
    let status = quoter_c.get_message(&sent.id).await.unwrap();
    assert!(status.message.metadata.is_none(), "no warnings: {:?}", status.message.metadata);
    // An output schema that is not a JSON Schema is refused when the card is registered.
    let bad = json!({"name": "broken", "capabilities": [{"name": "quote", "output_schema": {"type": "nope"},
        "output_schema_mode": "enforce"}]});
    let p =
        assert_problem(raw(&hub, "POST", "/v1/agents", Some(ADMIN), Some(bad.to_string())).await, 422, "invalid_body");
    assert_eq!(p["errors"][0]["path"], "capabilities[0].output_schema", "{p}");
    hub.stop().await;
}
