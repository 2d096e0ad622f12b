//! Capability schemas: a capability's `input_schema` is checked at registration and update,
//! and `data` parts sent to the capability (or to an agent with `metadata.capability`) are
//! validated against it, every failing location named, nothing written when one fails.

mod common;

use common::{ADMIN, TestHub, agent_addr, assert_problem, assert_unchanged, raw};
use serde_json::{Value, json};
use switchboard_client::InboxOptions;
use switchboard_core::api::{BatchItem, Capability, Part, RegisterAgent, SendMessage};

fn payment_schema() -> Value {
    json!({
        "type": "object",
        "required": ["amount", "currency"],
        "properties": {
            "amount": {"type": "number", "minimum": 0},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}}
        }
    })
}

fn card(name: &str, caps: Vec<(&str, Option<Value>)>) -> RegisterAgent {
    RegisterAgent {
        name: name.into(),
        capabilities: caps
            .into_iter()
            .map(|(n, s)| Capability {
                name: n.into(),
                description: None,
                tags: vec![],
                examples: vec![],
                input_schema: s,
                output_schema: None,
                output_schema_mode: None,
                reassign_on_timeout: None,
            })
            .collect(),
        ..Default::default()
    }
}

/// Registers an agent offering `pay` with the payment schema and makes it active.
async fn payer(hub: &TestHub, name: &str) -> (String, switchboard_client::Client) {
    let r = hub.admin().register_agent(&card(name, vec![("pay", Some(payment_schema()))])).await.unwrap();
    let c = hub.admin().with_token(r.api_key.clone());
    c.heartbeat(&r.agent.id).await.unwrap();
    (r.agent.id, c)
}

fn data_to(to: &str, parts: Vec<Value>) -> Value {
    let parts: Vec<Value> = parts.into_iter().map(|d| json!({"kind": "data", "data": d})).collect();
    json!({"to": to, "parts": parts})
}

async fn send(hub: &TestHub, body: &Value) -> (u16, String, Value) {
    raw(hub, "POST", "/v1/messages", Some(ADMIN), Some(body.to_string())).await
}

fn paths(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_conforming_data_part_is_accepted_and_text_parts_are_not_checked() {
    let hub = TestHub::start().await;
    let (id, payer) = payer(&hub, "payer").await;
    let mut body = data_to("capability:pay", vec![json!({"amount": 12.5, "currency": "EUR", "lines": [{"sku": "a"}]})]);
    body["parts"].as_array_mut().unwrap().push(json!({"kind": "text", "text": "any text at all"}));
    let (status, _, got) = send(&hub, &body).await;
    assert_eq!(status, 202, "{got}");
    assert_eq!(got["recipients"], json!([agent_addr(&id)]));
    // A message with text alone is not checked, whatever the schema says of data.
    let (status, _, got) =
        send(&hub, &json!({"to": "capability:pay", "parts": [{"kind": "text", "text": "hi"}]})).await;
    assert_eq!(status, 202, "{got}");
    assert_eq!(payer.inbox(&InboxOptions::default()).await.unwrap().messages.len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn a_non_conforming_data_part_is_refused_naming_every_failing_path_and_nothing_is_written() {
    let hub = TestHub::start().await;
    let (id, _) = payer(&hub, "payer").await;
    let before = hub.snapshot().await;
    let bad = vec![
        json!({"amount": 1, "currency": "EUR"}),
        json!({"amount": -3, "currency": "euro", "lines": [{"sku": "a"}, {"qty": 2}]}),
    ];
    for to in ["capability:pay", "capability:pay?all"] {
        let p = assert_problem(send(&hub, &data_to(to, bad.clone())).await, 422, "schema_violation");
        assert_eq!(
            paths(&p),
            ["parts[1].data.amount", "parts[1].data.currency", "parts[1].data.lines[1]"],
            "{to}: {p}"
        );
        assert!(p["detail"].as_str().unwrap().contains("`pay`"), "{p}");
    }
    // A missing property is named at the object that lacks it.
    let p = assert_problem(send(&hub, &data_to("capability:pay", vec![json!({})])).await, 422, "schema_violation");
    assert_eq!(paths(&p), ["parts[0].data", "parts[0].data"], "{p}");
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("amount"), "{p}");
    // Direct to the agent with `metadata.capability` naming its capability: checked too.
    let mut direct = data_to(&agent_addr(&id), vec![json!({"amount": "ten", "currency": "EUR"})]);
    direct["metadata"] = json!({"capability": "pay"});
    let p = assert_problem(send(&hub, &direct).await, 422, "schema_violation");
    assert_eq!(paths(&p), ["parts[0].data.amount"], "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "sends that break the capability's input schema");
    // Without `metadata.capability`, or naming a capability the agent does not offer, a direct
    // send is not checked.
    direct["metadata"] = json!({"capability": "other"});
    assert_eq!(send(&hub, &direct).await.0, 202);
    direct.as_object_mut().unwrap().remove("metadata");
    assert_eq!(send(&hub, &direct).await.0, 202);
    hub.stop().await;
}

#[tokio::test]
async fn a_batch_refuses_only_the_bad_item() {
    let hub = TestHub::start().await;
    let (_, payer) = payer(&hub, "payer").await;
    let msg = |d: Value| SendMessage {
        to: "capability:pay".into(),
        parts: vec![Part::Data { data: d }],
        ..Default::default()
    };
    let r = hub
        .admin()
        .send_batch(vec![
            msg(json!({"amount": 1, "currency": "EUR"})),
            msg(json!({"amount": "x", "currency": 1})),
            msg(json!({"amount": 2, "currency": "USD"})),
        ])
        .await
        .unwrap();
    assert!(matches!(r.results[0], BatchItem::Accepted(_)), "{:?}", r.results[0]);
    match &r.results[1] {
        BatchItem::Refused { error } => {
            assert_eq!(error.code, "schema_violation");
            let p: Vec<_> = error.errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(p, ["messages[1].parts[0].data.amount", "messages[1].parts[0].data.currency"]);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(r.results[2], BatchItem::Accepted(_)), "{:?}", r.results[2]);
    assert_eq!(payer.inbox(&InboxOptions::default()).await.unwrap().messages.len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn invalid_schemas_and_remote_references_are_refused_at_registration_and_update() {
    let hub = TestHub::start().await;
    let before = hub.snapshot().await;
    let register = |c: RegisterAgent| {
        let body = serde_json::to_string(&c).unwrap();
        let hub = &hub;
        async move { raw(hub, "POST", "/v1/agents", Some(ADMIN), Some(body)).await }
    };
    let bad = card(
        "a",
        vec![
            ("one", None),
            ("two", Some(json!({"type": "object"}))),
            ("three", Some(json!({"type": "integer", "minimum": "zero"}))),
            ("four", Some(json!({"$ref": "https://schemas.example.com/pay.json"}))),
        ],
    );
    let p = assert_problem(register(bad).await, 422, "invalid_body");
    assert_eq!(paths(&p), ["capabilities[2].input_schema", "capabilities[3].input_schema"], "{p}");
    assert!(p["errors"][1]["message"].as_str().unwrap().contains("does not fetch"), "{p}");
    let mut out = card("a", vec![("one", None)]);
    out.capabilities[0].output_schema = Some(json!({"type": 7}));
    let p = assert_problem(register(out).await, 422, "invalid_body");
    assert_eq!(paths(&p), ["capabilities[0].output_schema"], "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "registrations with invalid schemas");
    // An update is held to the same rule; a local `$ref` is fine.
    let local = json!({"$defs": {"amt": {"type": "number"}}, "properties": {"amount": {"$ref": "#/$defs/amt"}}});
    let r = hub.admin().register_agent(&card("a", vec![("pay", Some(local))])).await.unwrap();
    let before = hub.snapshot().await;
    let body = serde_json::to_string(&card("a", vec![("pay", Some(json!({"$ref": "file:///etc/passwd"})))])).unwrap();
    let p = assert_problem(
        raw(&hub, "PUT", &format!("/v1/agents/{}", r.agent.id), Some(ADMIN), Some(body)).await,
        422,
        "invalid_body",
    );
    assert_eq!(paths(&p), ["capabilities[0].input_schema"], "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "an update with a remote reference");
    hub.stop().await;
}

#[tokio::test]
async fn an_update_of_the_schema_takes_effect_at_once() {
    let hub = TestHub::start().await;
    let (id, _) = payer(&hub, "payer").await;
    let amount_only = data_to("capability:pay", vec![json!({"amount": 1})]);
    assert_problem(send(&hub, &amount_only).await, 422, "schema_violation");
    let loose = json!({"type": "object", "required": ["amount"]});
    hub.admin().update_agent(&id, &card("payer", vec![("pay", Some(loose))])).await.unwrap();
    let (status, _, got) = send(&hub, &amount_only).await;
    assert_eq!(status, 202, "{got}");
    hub.stop().await;
}
