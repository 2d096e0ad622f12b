//! "Bad input gets a clear 4xx and changes nothing", for every refusal class. Each test
//! reads the whole store straight from the database before and after the refused requests
//! (`TestHub::snapshot`: every table, every row) and compares, so a write anywhere fails it,
//! not only one the refused caller could see. The snapshot writes pending presence first,
//! which makes "a refused request does not mark its agent as seen" part of every comparison
//! made with an agent's key.

mod common;

use common::{ADMIN, TestHub, assert_only_added, assert_problem, assert_unchanged, raw};
use serde_json::{Value, json};
use switchboard_client::InboxOptions;
use switchboard_core::api::{AgentStatus, SendMessage};

fn addr(id: &str) -> String {
    common::agent_addr(id)
}

fn text_to(to: &str, text: &str) -> Value {
    json!({"to": to, "parts": [{"kind": "text", "text": text}]})
}

/// Sends each body to `path` with `token` and checks the problem's status and code.
async fn refuse_each(hub: &TestHub, method: &str, path: &str, token: &str, cases: &[(&str, String)], status: u16) {
    for (code, body) in cases {
        let got = raw(hub, method, path, Some(token), Some(body.clone())).await;
        assert_eq!(got.0, status, "{method} {path} with {body}: {}", got.2);
        assert_problem(got, status, code);
    }
}

#[tokio::test]
async fn bad_message_bodies_are_400_or_422_and_change_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let to = addr(&carol.agent.id);
    let before = hub.snapshot().await;

    // Every body names a real recipient, so a handler that stored anything would store it
    // for carol.
    let good = text_to(&to, "hello").to_string();
    let mut wrong_type = text_to(&to, "x");
    wrong_type["parts"] = json!("hello");
    let mut unknown_field = text_to(&to, "x");
    unknown_field["ttl_secs"] = json!(5);
    let mut nul_metadata = text_to(&to, "x");
    nul_metadata["metadata"] = json!({"note": "a\u{0}b"});
    let mut no_parts = text_to(&to, "x");
    no_parts["parts"] = json!([]);
    let mut ttl_zero = text_to(&to, "x");
    ttl_zero["ttl_seconds"] = json!(0);
    let bad_file = json!({"to": to, "parts": [{"kind": "file", "file": {"name": "a.txt", "bytes": "!!"}}]});
    let bodies = [
        ("syntax", good[..good.len() - 1].to_owned()),
        ("not an object", "[]".to_owned()),
        ("empty", String::new()),
        ("a wrong type", wrong_type.to_string()),
        ("an unknown field", unknown_field.to_string()),
        ("NUL in a text part", text_to(&to, "a\u{0}b").to_string()),
        ("NUL in metadata", nul_metadata.to_string()),
        ("no parts", no_parts.to_string()),
        ("a zero TTL", ttl_zero.to_string()),
        ("bad base64", bad_file.to_string()),
    ];
    for (what, body) in bodies {
        // A body that is not JSON is 400; well-formed JSON that does not fit is 422.
        let (status, code) = match what {
            "syntax" | "empty" => (400, "invalid_json"),
            _ => (422, "invalid_body"),
        };
        let got = raw(&hub, "POST", "/v1/messages", Some(&bob.api_key), Some(body.clone())).await;
        assert_eq!(got.0, status, "{what}: {body} → {}", got.2);
        assert_problem(got, status, code);
    }
    assert_unchanged(&before, &hub.snapshot().await, "bad message bodies");
    hub.stop().await;
}

#[tokio::test]
async fn unknown_and_unsupported_recipients_and_bad_queries_change_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    // Offers the capability but was never seen: not active, so not a recipient of `?all` or
    // of a send that requires an active agent.
    let (carol, _) = hub.agent("carol", &["translate"]).await;
    let before = hub.snapshot().await;
    let mut require_active = text_to("capability:translate", "x");
    require_active["require_active"] = json!(true);
    let cases = [
        ("unknown_recipient", text_to("agent:0000-nobody", "x").to_string()),
        ("unknown_recipient", require_active.to_string()),
        ("unknown_recipient", text_to("capability:translate?all", "x").to_string()),
        ("no_capable_agent", text_to("capability:summarize", "x").to_string()),
        ("no_capable_agent", text_to("capability:summarize?all", "x").to_string()),
        ("unknown_recipient", text_to("user:ann", "x").to_string()),
        ("unknown_recipient", text_to("group:nobody", "x").to_string()),
        ("unknown_recipient", text_to("conversation:c1", "x").to_string()),
        // No triage group to hand an undecided `auto` message to.
        ("no_triage", text_to("auto", "x").to_string()),
    ];
    refuse_each(&hub, "POST", "/v1/messages", &bob.api_key, &cases, 422).await;
    // A good body with a bad query is refused whole.
    let good = text_to(&addr(&carol.agent.id), "x").to_string();
    let got = raw(&hub, "POST", "/v1/messages?wait=forever", Some(&bob.api_key), Some(good)).await;
    assert_problem(got, 400, "invalid_query");
    assert_unchanged(&before, &hub.snapshot().await, "sends to recipients that cannot be served");
    hub.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_and_change_nothing() {
    let hub = TestHub::start().await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let before = hub.snapshot().await;
    let send = text_to(&addr(&carol.agent.id), "x").to_string();
    let register = json!({"name": "mallory"}).to_string();
    for token in [None, Some("sbk_wrong"), Some("")] {
        assert_problem(raw(&hub, "POST", "/v1/messages", token, Some(send.clone())).await, 401, "unauthenticated");
        assert_problem(raw(&hub, "POST", "/v1/agents", token, Some(register.clone())).await, 401, "unauthenticated");
        let path = format!("/v1/topics/alerts/subscribers/{}", carol.agent.id);
        assert_problem(raw(&hub, "PUT", &path, token, None).await, 401, "unauthenticated");
    }
    assert_unchanged(&before, &hub.snapshot().await, "requests without valid credentials");
    hub.stop().await;
}

#[tokio::test]
async fn forbidden_requests_are_403_and_change_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let for_carol = hub.admin().send(&SendMessage::text(addr(&carol.agent.id), "carol's")).await.unwrap();
    let before = hub.snapshot().await;
    let c = &carol.agent.id;
    let as_bob: Vec<(&str, String, Option<String>)> = vec![
        ("POST", "/v1/agents".into(), Some(json!({"name": "mallory"}).to_string())),
        ("PUT", format!("/v1/agents/{c}"), Some(json!({"name": "carol-renamed"}).to_string())),
        ("DELETE", format!("/v1/agents/{c}"), None),
        ("POST", format!("/v1/agents/{c}/heartbeat"), None),
        ("POST", format!("/v1/agents/{c}/webhook-secret:rotate"), None),
        ("PUT", format!("/v1/topics/alerts/subscribers/{c}"), None),
        ("PUT", "/v1/tenant/push-settings".into(), Some(json!({"sign_ed25519": true}).to_string())),
        ("POST", "/v1/dead-letters:replay".into(), Some(json!({"recipient": addr(c)}).to_string())),
        ("POST", "/v1/dead-letters:purge".into(), Some(json!({"recipient": addr(c)}).to_string())),
    ];
    for (method, path, body) in as_bob {
        assert_problem(raw(&hub, method, &path, Some(&bob.api_key), body).await, 403, "forbidden");
    }
    // The admin has no inbox: neither leasing nor acking carol's message is its to do.
    assert_problem(raw(&hub, "GET", "/v1/inbox", Some(ADMIN), None).await, 403, "forbidden");
    let ack = json!({"ids": [for_carol.id]}).to_string();
    assert_problem(raw(&hub, "POST", "/v1/inbox/ack", Some(ADMIN), Some(ack)).await, 403, "forbidden");
    assert_unchanged(&before, &hub.snapshot().await, "forbidden requests");
    hub.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_paths_are_404_and_change_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let card = json!({"name": "ghost"}).to_string();
    let cases: Vec<(&str, String, Option<String>)> = vec![
        ("PUT", "/v1/agents/nope".into(), Some(card.clone())),
        ("DELETE", "/v1/agents/nope".into(), None),
        ("POST", "/v1/agents/nope/webhook-secret:rotate".into(), None),
        ("PUT", "/v1/topics/alerts/subscribers/nope".into(), None),
        ("DELETE", format!("/v1/topics/alerts/subscribers/{}", bob.agent.id), None),
        ("POST", "/v1/nothing-here".into(), Some(card)),
    ];
    for (method, path, body) in cases {
        assert_problem(raw(&hub, method, &path, Some(ADMIN), body).await, 404, "not_found");
    }
    assert_problem(raw(&hub, "GET", "/v1/messages/nope", Some(&bob.api_key), None).await, 404, "not_found");
    assert_unchanged(&before, &hub.snapshot().await, "requests for unknown ids");
    hub.stop().await;
}

#[tokio::test]
async fn an_idempotency_conflict_is_409_and_changes_nothing() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let mut m = SendMessage::text(addr(&bob.agent.id), "order 42, once");
    m.idempotency_key = Some("order-42".into());
    let first = alice.send(&m).await.unwrap();
    let before = hub.snapshot().await;
    let mut other = m.clone();
    other.parts = vec![switchboard_core::api::Part::text("order 42, changed")];
    let err = alice.send(&other).await.unwrap_err();
    assert_eq!(err.code(), Some("conflict"));
    assert!(err.to_string().contains(&first.id), "the conflict names the first message: {err}");
    assert_unchanged(&before, &hub.snapshot().await, "reusing an idempotency key for another body");
    hub.stop().await;
}

#[tokio::test]
async fn a_taken_agent_name_is_409_and_changes_nothing() {
    let hub = TestHub::start().await;
    hub.agent("bob", &[]).await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let before = hub.snapshot().await;
    let bob = json!({"name": "bob"}).to_string();
    assert_problem(raw(&hub, "POST", "/v1/agents", Some(ADMIN), Some(bob.clone())).await, 409, "conflict");
    let path = format!("/v1/agents/{}", carol.agent.id);
    assert_problem(raw(&hub, "PUT", &path, Some(ADMIN), Some(bob.clone())).await, 409, "conflict");
    assert_problem(raw(&hub, "PUT", &path, Some(&carol.api_key), Some(bob)).await, 409, "conflict");
    assert_unchanged(&before, &hub.snapshot().await, "taking a name that is taken");
    hub.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_and_change_nothing() {
    let hub = TestHub::start_with(|c| c.max_message_bytes = 4096).await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let to = addr(&carol.agent.id);
    let before = hub.snapshot().await;
    let big = text_to(&to, &"x".repeat(5000)).to_string();
    assert_problem(raw(&hub, "POST", "/v1/messages", Some(&bob.api_key), Some(big)).await, 413, "payload_too_large");
    // A batch may hold 16 times the limit in all.
    let many: Vec<Value> = (0..20).map(|_| text_to(&to, &"x".repeat(4000))).collect();
    let batch = json!({"messages": many}).to_string();
    let got = raw(&hub, "POST", "/v1/messages:batch", Some(&bob.api_key), Some(batch)).await;
    assert_problem(got, 413, "payload_too_large");
    let card = json!({"name": "huge", "description": "x".repeat(300 * 1024)}).to_string();
    assert_problem(raw(&hub, "POST", "/v1/agents", Some(ADMIN), Some(card)).await, 413, "payload_too_large");
    assert_unchanged(&before, &hub.snapshot().await, "oversized bodies");
    hub.stop().await;
}

#[tokio::test]
async fn a_batch_stores_exactly_its_accepted_items() {
    let hub = TestHub::start_with(|c| c.max_message_bytes = 4096).await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let to = addr(&carol.agent.id);
    let mut keyed = SendMessage::text(&to, "keyed, first body");
    keyed.idempotency_key = Some("k-1".into());
    hub.admin().send(&keyed).await.unwrap();
    let before = hub.snapshot().await;

    let mut reused = text_to(&to, "refused: keyed, second body");
    reused["idempotency_key"] = json!("k-1");
    let items = json!({"messages": [
        text_to(&to, "accepted one"),
        text_to("agent:0000-nobody", "refused: unknown recipient"),
        text_to(&to, &format!("refused: too large {}", "x".repeat(5000))),
        text_to(&to, "refused: NUL \u{0}"),
        text_to("auto", "refused: no triage group"),
        reused,
        text_to(&to, "accepted two"),
    ]});
    let (status, _, body) = raw(&hub, "POST", "/v1/messages:batch", Some(ADMIN), Some(items.to_string())).await;
    assert_eq!(status, 202, "{body}");
    let codes: Vec<Value> = body["results"].as_array().unwrap().iter().map(|r| r["error"]["code"].clone()).collect();
    assert_eq!(
        codes,
        [
            Value::Null,
            json!("unknown_recipient"),
            json!("payload_too_large"),
            json!("invalid_body"),
            json!("no_triage"),
            json!("conflict"),
            Value::Null
        ]
    );
    let after = hub.snapshot().await;
    assert_only_added(&before, &after, &["messages", "deliveries"], "a batch with refused items");
    assert_eq!(after.rows("messages"), before.rows("messages") + 2, "only the two accepted items are stored");
    assert_eq!(after.rows("deliveries"), before.rows("deliveries") + 2);
    let refused: Vec<&String> = after.tables["messages"].iter().filter(|row| row.contains("refused")).collect();
    assert!(refused.is_empty(), "refused items were stored: {refused:?}");

    // Refused whole: no items, an unknown field beside good items, every item refused.
    let cases = [
        ("invalid_body", json!({"messages": []}).to_string()),
        ("invalid_body", json!({"messages": [text_to(&to, "good")], "atomic": true}).to_string()),
    ];
    refuse_each(&hub, "POST", "/v1/messages:batch", ADMIN, &cases, 422).await;
    let all_refused = json!({"messages": [text_to("agent:0000-nobody", "no"), text_to("auto", "no")]});
    let (status, _, body) = raw(&hub, "POST", "/v1/messages:batch", Some(ADMIN), Some(all_refused.to_string())).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["results"].as_array().unwrap().iter().all(|r| r["error"]["code"].is_string()), "{body}");
    assert_unchanged(&after, &hub.snapshot().await, "batches refused whole or item by item");
    hub.stop().await;
}

#[tokio::test]
async fn bad_registrations_and_card_updates_change_nothing() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let cap = |v: Value| json!({"name": "ok", "capabilities": [v]});
    let cards = [
        json!({"name": "has space"}),
        json!({"name": ""}),
        json!({"name": "ok", "endpoint": "ftp://example.com/hook"}),
        json!({"name": "ok", "endpoint": "http://127.0.0.1:9/hook"}),
        json!({"name": "ok", "capabilities": [{"name": "a"}, {"name": "a"}]}),
        cap(json!({"name": "bad name!"})),
        cap(json!({"name": "a", "input_schema": 5})),
        json!({"name": "ok", "retry_schedule_ms": vec![1; 51]}),
        json!({"name": "ok", "metadata": "not an object"}),
        json!({"name": "ok", "colour": "red"}),
        json!({"name": 7}),
    ];
    for card in &cards {
        let got = raw(&hub, "POST", "/v1/agents", Some(ADMIN), Some(card.to_string())).await;
        assert_eq!(got.0, 422, "register {card}: {}", got.2);
        assert_problem(got, 422, "invalid_body");
        let path = format!("/v1/agents/{}", bob.agent.id);
        let got = raw(&hub, "PUT", &path, Some(ADMIN), Some(card.to_string())).await;
        assert_eq!(got.0, 422, "update with {card}: {}", got.2);
        assert_problem(got, 422, "invalid_body");
    }
    assert_unchanged(&before, &hub.snapshot().await, "bad agent cards");
    hub.stop().await;
}

#[tokio::test]
async fn bad_acks_nacks_leases_and_replays_change_nothing() {
    let hub = TestHub::start_with(|c| c.max_attempts = 1).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let admin = hub.admin();
    let to = addr(&bob_reg.agent.id);
    // One of bob's messages leased to him, one dead (out of attempts), one pending.
    let leased = admin.send(&SendMessage::text(&to, "leased")).await.unwrap().id;
    let dead = admin.send(&SendMessage::text(&to, "dead")).await.unwrap().id;
    let got = bob.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(got.messages.len(), 2);
    bob.nack(vec![dead.clone()], None).await.unwrap();
    assert!(bob.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty(), "the nacked one died");
    admin.send(&SendMessage::text(&to, "pending")).await.unwrap();
    let before = hub.snapshot().await;

    let key = &bob_reg.api_key;
    let acks = [
        ("invalid_body", json!({"ids": []}).to_string()),
        ("invalid_body", json!({"ids": [leased], "all": true}).to_string()),
        ("invalid_body", json!({"ids": leased}).to_string()),
    ];
    refuse_each(&hub, "POST", "/v1/inbox/ack", key, &acks, 422).await;
    let nacks = [
        ("invalid_body", json!({"ids": [leased], "retry_in_ms": -5}).to_string()),
        ("invalid_body", json!({"ids": [leased], "retry_in": 0}).to_string()),
        ("invalid_body", json!({"ids": []}).to_string()),
    ];
    refuse_each(&hub, "POST", "/v1/inbox/nack", key, &nacks, 422).await;
    let selections = [
        ("invalid_body", json!({"message_ids": [dead], "everything": true}).to_string()),
        ("invalid_body", json!({"message_ids": [dead], "since": "yesterday"}).to_string()),
    ];
    refuse_each(&hub, "POST", "/v1/dead-letters:replay", key, &selections, 422).await;
    refuse_each(&hub, "POST", "/v1/dead-letters:purge", key, &selections, 422).await;
    for query in ["limit=0", "wait_ms=soon", "visibility_ms=5", "lease=1"] {
        let got = raw(&hub, "GET", &format!("/v1/inbox?{query}"), Some(key), None).await;
        assert_problem(got, 400, "invalid_query");
    }
    assert_unchanged(&before, &hub.snapshot().await, "bad acks, nacks, leases and replays");
    hub.stop().await;
}

#[tokio::test]
async fn bad_topic_names_and_push_settings_change_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    // `orders.*` and `>` are wildcard patterns now; a wildcard inside a token, or `>` not
    // last, is not.
    for topic in ["has%20space", "ord%2A", "orders.%3E.eu", "%3E%3E"] {
        let path = format!("/v1/topics/{topic}/subscribers/{}", bob.agent.id);
        assert_problem(raw(&hub, "PUT", &path, Some(&bob.api_key), None).await, 400, "invalid_query");
    }
    let settings = [
        ("invalid_body", json!({"retry_schedule_ms": vec![1; 51]}).to_string()),
        ("invalid_body", json!({"events_to": "agent:nope"}).to_string()),
        ("invalid_body", json!({"events_to": format!("topic:{}", bob.agent.id)}).to_string()),
        ("invalid_body", json!({"sign": true}).to_string()),
    ];
    refuse_each(&hub, "PUT", "/v1/tenant/push-settings", ADMIN, &settings, 422).await;
    assert_unchanged(&before, &hub.snapshot().await, "bad topic names and push settings");
    hub.stop().await;
}

#[tokio::test]
async fn an_agent_whose_only_requests_were_refused_stays_inactive() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &["translate"]).await;
    let (carol, carol_client) = hub.agent("carol", &[]).await;
    let bad = json!({"to": addr(&carol.agent.id), "parts": "not a list"}).to_string();
    assert_problem(raw(&hub, "POST", "/v1/messages", Some(&bob.api_key), Some(bad)).await, 422, "invalid_body");
    let heartbeat = format!("/v1/agents/{}/heartbeat", carol.agent.id);
    assert_problem(raw(&hub, "POST", &heartbeat, Some(&bob.api_key), None).await, 403, "forbidden");
    assert_problem(raw(&hub, "GET", "/v1/messages/nope", Some(&bob.api_key), None).await, 404, "not_found");
    // The control: carol's one request succeeds, and that does make her active.
    carol_client.whoami().await.unwrap();
    hub.snapshot().await; // writes what was seen

    let admin = hub.admin();
    let bob_now = admin.get_agent(&bob.agent.id).await.unwrap();
    assert_eq!((bob_now.status, bob_now.last_seen_at.as_deref()), (AgentStatus::Inactive, None), "{bob_now:?}");
    assert_eq!(admin.get_agent(&carol.agent.id).await.unwrap().status, AgentStatus::Active);
    // So anycast that requires an active agent does not pick bob, who has shown no sign of
    // working.
    let m = SendMessage { require_active: Some(true), ..SendMessage::text("capability:translate", "hola") };
    let err = admin.send(&m).await.unwrap_err();
    assert_eq!(err.code(), Some("unknown_recipient"));
    hub.stop().await;
}
