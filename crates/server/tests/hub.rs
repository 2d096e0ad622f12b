//! User stories against the real server (HTTP, WebSocket, SSE) on a temporary store.

mod common;

use common::{ADMIN, TestHub, assert_problem, assert_unchanged, eventually, raw, within};
use serde_json::{Value, json};
use switchboard_client::InboxOptions;
use switchboard_core::api::{AgentStatus, BatchItem, DeliveryState, Part, SendMessage};

fn addr(id: &str) -> String {
    common::agent_addr(id)
}

#[tokio::test]
async fn register_discover_send_pull_ack_reaches_acked() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &["translate"]).await;

    let found = alice.list_agents(Some("translate"), None).await.unwrap();
    assert_eq!(found.agents.len(), 1);
    assert_eq!(found.agents[0].id, bob_reg.agent.id);

    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "bonjour?")).await.unwrap();
    assert_eq!(sent.status, "accepted");
    assert_eq!(sent.recipients, vec![addr(&bob_reg.agent.id)]);

    let inbox = bob.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 1);
    let m = &inbox.messages[0];
    assert_eq!(m.message.id, sent.id);
    assert_eq!(m.attempt, 1);
    assert_eq!(m.message.parts, vec![Part::text("bonjour?")]);
    assert!(m.message.from.starts_with("agent:"));

    let acked = bob.ack(vec![sent.id.clone()]).await.unwrap();
    assert_eq!(acked.ids, vec![sent.id.clone()]);

    let status = alice.get_message(&sent.id).await.unwrap();
    assert_eq!(status.deliveries.len(), 1);
    assert_eq!(status.deliveries[0].state, DeliveryState::Acked);
    assert!(status.deliveries[0].acked_at.is_some());
    hub.stop().await;
}

#[tokio::test]
async fn long_poll_wakes_when_a_message_is_committed() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let waiting =
        tokio::spawn(
            async move { bob.inbox(&InboxOptions { wait_ms: Some(20_000), ..Default::default() }).await.unwrap() },
        );
    // Whether the poll parks before or after this commit, it must answer long before 20 s.
    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "wake up")).await.unwrap();
    let inbox = within(10, "long poll answer", waiting).await.unwrap();
    assert_eq!(inbox.messages[0].message.id, sent.id);
    hub.stop().await;
}

#[tokio::test]
async fn websocket_stream_delivers_in_order_and_acks() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let mut stream = bob.stream().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        let mut m = SendMessage::text(addr(&bob_reg.agent.id), format!("n{i}"));
        m.conversation_id = Some("c1".into());
        ids.push(alice.send(&m).await.unwrap().id);
    }
    let mut got = Vec::new();
    while got.len() < ids.len() {
        let m = within(10, "stream message", stream.next_message()).await.unwrap().expect("stream open");
        stream.ack(&m.message.id).await.unwrap();
        got.push(m.message.id);
    }
    assert_eq!(got, ids, "per (conversation, recipient) order");
    let last = ids.last().unwrap().clone();
    eventually(10, "acks committed", || {
        let alice = alice.clone();
        let last = last.clone();
        async move {
            let s = alice.get_message(&last).await.unwrap();
            (s.deliveries[0].state == DeliveryState::Acked).then_some(())
        }
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn acks_sent_just_before_a_websocket_drops_are_kept() {
    // A consumer that acks its last messages and goes away without a close frame (a process
    // that exits, a dropped connection): the hub reads the acks and then the broken socket in
    // one batch, and must still commit the acks rather than redeliver after the lease.
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    for round in 0..5 {
        let id = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), format!("r{round}"))).await.unwrap().id;
        let mut stream = bob.stream().await.unwrap();
        let m = within(10, "stream message", stream.next_message()).await.unwrap().expect("stream open");
        assert_eq!(m.message.id, id);
        stream.ack(&id).await.unwrap();
        drop(stream);
        eventually(10, "the ack sent before the drop is committed", || {
            let alice = alice.clone();
            let id = id.clone();
            async move {
                let s = alice.get_message(&id).await.unwrap();
                (s.deliveries[0].state == DeliveryState::Acked).then_some(())
            }
        })
        .await;
    }
    hub.stop().await;
}

#[tokio::test]
async fn sse_stream_delivers_messages() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let mut events = bob.events().await.unwrap();
    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "over sse")).await.unwrap();
    let m = within(10, "sse message", events.next_message()).await.unwrap().expect("stream open");
    assert_eq!(m.message.id, sent.id);
    assert_eq!(m.message.parts, vec![Part::text("over sse")]);
    bob.ack(vec![m.message.id]).await.unwrap();
    let s = alice.get_message(&sent.id).await.unwrap();
    assert_eq!(s.deliveries[0].state, DeliveryState::Acked);
    hub.stop().await;
}

#[tokio::test]
async fn lease_expiry_redelivers_with_attempt_count() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "ack me")).await.unwrap();
    let first = bob.inbox(&InboxOptions { visibility_ms: Some(300), ..Default::default() }).await.unwrap();
    assert_eq!(first.messages[0].attempt, 1);
    // Not acked: while leased it is invisible...
    let during = bob.inbox(&InboxOptions::default()).await.unwrap();
    assert!(during.messages.is_empty());
    // ...and after the lease it comes back, same id, attempt 2. The long poll is woken by
    // the reaper, not by a commit.
    let again = bob.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    assert_eq!(again.messages.len(), 1);
    assert_eq!(again.messages[0].message.id, sent.id);
    assert_eq!(again.messages[0].attempt, 2);
    hub.stop().await;
}

#[tokio::test]
async fn nack_redelivers_at_once() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "retry me")).await.unwrap();
    bob.inbox(&InboxOptions::default()).await.unwrap();
    let n = bob.nack(vec![sent.id.clone(), "not-a-message".into()], None).await.unwrap();
    assert_eq!(n.ids, vec![sent.id.clone()]);
    assert_eq!(n.ignored, vec!["not-a-message".to_owned()]);
    let again = bob.inbox(&InboxOptions::default()).await.unwrap();
    assert_eq!(again.messages[0].attempt, 2);
    hub.stop().await;
}

#[tokio::test]
async fn exhausted_attempts_go_dead() {
    let hub = TestHub::start_with(|c| c.max_attempts = 1).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "once")).await.unwrap();
    bob.inbox(&InboxOptions::default()).await.unwrap();
    bob.nack(vec![sent.id.clone()], None).await.unwrap();
    assert!(bob.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty());
    let s = alice.get_message(&sent.id).await.unwrap();
    assert_eq!(s.deliveries[0].state, DeliveryState::Dead);
    assert!(s.deliveries[0].last_error.is_some());
    hub.stop().await;
}

#[tokio::test]
async fn idempotent_send_returns_the_first_answer() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let mut m = SendMessage::text(addr(&bob_reg.agent.id), "once only");
    m.idempotency_key = Some("order-42".into());
    let first = alice.send(&m).await.unwrap();
    let second = alice.send(&m).await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(first.created_at, second.created_at);
    assert!(second.duplicate);
    let inbox = bob.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 1, "one message, not two");

    let before = hub.snapshot().await;
    let mut other = m.clone();
    other.parts = vec![Part::text("something else")];
    let err = alice.send(&other).await.unwrap_err();
    assert_eq!(err.code(), Some("conflict"));
    assert_unchanged(&before, &hub.snapshot().await, "reusing an idempotency key for another body");
    hub.stop().await;
}

#[tokio::test]
async fn idempotency_keys_are_per_sender() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (_, carol) = hub.agent("carol", &[]).await;
    let (bob_reg, _) = hub.agent("bob", &[]).await;
    let mut m = SendMessage::text(addr(&bob_reg.agent.id), "hi");
    m.idempotency_key = Some("k".into());
    let a = alice.send(&m).await.unwrap();
    let c = carol.send(&m).await.unwrap();
    assert_ne!(a.id, c.id);
    hub.stop().await;
}

#[tokio::test]
async fn ttl_expires_an_undelivered_message() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let mut m = SendMessage::text(addr(&bob_reg.agent.id), "stale soon");
    m.ttl_seconds = Some(1);
    let sent = alice.send(&m).await.unwrap();
    let id = sent.id.clone();
    eventually(10, "expired state", || {
        let alice = alice.clone();
        let id = id.clone();
        async move {
            let s = alice.get_message(&id).await.unwrap();
            (s.deliveries[0].state == DeliveryState::Expired).then_some(())
        }
    })
    .await;
    assert!(bob.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn restart_keeps_agents_messages_and_tokens() {
    let mut hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, _) = hub.agent("bob", &[]).await;
    let bob_key = bob_reg.api_key.clone();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(alice.send(&SendMessage::text(addr(&bob_reg.agent.id), format!("m{i}"))).await.unwrap().id);
    }
    hub.restart().await;
    let bob = hub.admin().with_token(bob_key);
    assert_eq!(hub.admin().list_agents(None, None).await.unwrap().agents.len(), 2);
    let inbox = bob.inbox(&InboxOptions { limit: Some(100), ..Default::default() }).await.unwrap();
    let got: Vec<_> = inbox.messages.iter().map(|m| m.message.id.clone()).collect();
    assert_eq!(got, ids);
    hub.stop().await;
}

#[tokio::test]
async fn heartbeat_makes_an_agent_active() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    assert_eq!(bob_reg.agent.status, AgentStatus::Inactive);
    let a = bob.heartbeat(&bob_reg.agent.id).await.unwrap();
    assert_eq!(a.status, AgentStatus::Active);
    let active = hub.admin().list_agents(None, Some(AgentStatus::Active)).await.unwrap();
    assert_eq!(active.agents.len(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn an_agent_goes_inactive_after_the_heartbeat_window() {
    let hub = TestHub::start_with(|c| c.heartbeat_window_ms = 1000).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    bob.heartbeat(&bob_reg.agent.id).await.unwrap();
    let admin = hub.admin();
    let id = bob_reg.agent.id.clone();
    eventually(10, "inactive", || {
        let admin = admin.clone();
        let id = id.clone();
        async move { (admin.get_agent(&id).await.unwrap().status == AgentStatus::Inactive).then_some(()) }
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn capability_anycast_spreads_over_active_agents() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (b1, c1) = hub.agent("t1", &["translate"]).await;
    let (b2, c2) = hub.agent("t2", &["translate"]).await;
    let (_, _idle) = hub.agent("t3", &["translate"]).await; // never seen: not chosen
    c1.heartbeat(&b1.agent.id).await.unwrap();
    c2.heartbeat(&b2.agent.id).await.unwrap();
    let mut to = std::collections::HashMap::new();
    for _ in 0..4 {
        let r = alice.send(&SendMessage::text("capability:translate", "hola")).await.unwrap();
        *to.entry(r.recipients[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(to.get(&addr(&b1.agent.id)), Some(&2));
    assert_eq!(to.get(&addr(&b2.agent.id)), Some(&2));
    let all = alice.send(&SendMessage::text("capability:translate?all", "to all")).await.unwrap();
    assert_eq!(all.recipients.len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn batch_send_accepts_each_message_alone() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let r = alice
        .send_batch(vec![
            SendMessage::text(addr(&bob_reg.agent.id), "one"),
            SendMessage::text("agent:nobody", "lost"),
            SendMessage::text(addr(&bob_reg.agent.id), "two"),
        ])
        .await
        .unwrap();
    assert!(matches!(r.results[0], BatchItem::Accepted(_)));
    match &r.results[1] {
        BatchItem::Refused { error } => assert_eq!(error.code, "unknown_recipient"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(r.results[2], BatchItem::Accepted(_)));
    let inbox = bob.inbox(&InboxOptions::default()).await.unwrap();
    assert_eq!(inbox.messages.len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn wait_delivered_answers_after_the_recipient_takes_it() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let mut stream = bob.stream().await.unwrap();
    let reader = tokio::spawn(async move { stream.next_message().await.unwrap().unwrap() });
    let r = alice.send_and_wait(&SendMessage::text(addr(&bob_reg.agent.id), "sync"), 10_000).await.unwrap();
    let d = r.deliveries.expect("deliveries in the answer");
    assert_eq!(d[0].state, DeliveryState::Delivered);
    within(10, "stream read", reader).await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn deleting_an_agent_revokes_its_key() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    hub.admin().delete_agent(&bob_reg.agent.id).await.unwrap();
    let err = bob.inbox(&InboxOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), Some("unauthenticated"));
    let err = hub.admin().get_agent(&bob_reg.agent.id).await.unwrap_err();
    assert_eq!(err.code(), Some("not_found"));
    hub.stop().await;
}

#[tokio::test]
async fn messages_are_visible_only_to_sender_recipients_and_admin() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let (_, eve) = hub.agent("eve", &[]).await;
    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "private")).await.unwrap();
    assert!(bob.get_message(&sent.id).await.is_ok());
    assert!(hub.admin().get_message(&sent.id).await.is_ok());
    assert_eq!(eve.get_message(&sent.id).await.unwrap_err().code(), Some("not_found"));
    hub.stop().await;
}

// ---- errors: status, code, problem+json, and nothing written ----

#[tokio::test]
async fn malformed_json_is_invalid_json_and_writes_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    // Cut off after a complete recipient and part: a parser that acted on a prefix would
    // have all it needs to store a message for bob.
    let body = json!({"to": addr(&bob.agent.id), "parts": [{"kind": "text", "text": "x"}]}).to_string();
    let got = raw(&hub, "POST", "/v1/messages", Some(ADMIN), Some(body[..body.len() - 1].to_owned())).await;
    let p = assert_problem(got, 400, "invalid_json");
    assert!(p["detail"].as_str().unwrap().contains("not valid JSON"), "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "a truncated body");
    hub.stop().await;
}

#[tokio::test]
async fn a_misspelt_field_is_named() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let body = json!({"to": addr(&bob.agent.id), "parts": [{"kind": "text", "text": "x"}], "ttl_secs": 5});
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(ADMIN), Some(body.to_string())).await,
        422,
        "invalid_body",
    );
    assert_eq!(p["errors"][0]["path"], "ttl_secs");
    assert_unchanged(&before, &hub.snapshot().await, "a misspelt field");
    hub.stop().await;
}

#[tokio::test]
async fn invalid_fields_are_listed_with_paths() {
    let hub = TestHub::start().await;
    let body = json!({"to": "robot:x", "parts": [{"kind": "file", "file": {"bytes": "!!"}}], "ttl_seconds": 0});
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(ADMIN), Some(body.to_string())).await,
        422,
        "invalid_body",
    );
    let paths: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["to", "parts[0].file.bytes", "ttl_seconds"]);
    hub.stop().await;
}

#[tokio::test]
async fn unknown_recipient_is_refused() {
    let hub = TestHub::start().await;
    let body = json!({"to": "agent:0000", "parts": [{"kind": "text", "text": "x"}]});
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(ADMIN), Some(body.to_string())).await,
        422,
        "unknown_recipient",
    );
    assert!(p["detail"].as_str().unwrap().contains("switchboard agent list"));
    hub.stop().await;
}

#[tokio::test]
async fn an_oversized_message_is_413_and_writes_nothing() {
    let hub = TestHub::start_with(|c| c.max_message_bytes = 4096).await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let body = json!({"to": addr(&bob.agent.id), "parts": [{"kind": "text", "text": "x".repeat(5000)}]});
    let before = hub.snapshot().await;
    assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(ADMIN), Some(body.to_string())).await,
        413,
        "payload_too_large",
    );
    assert_unchanged(&before, &hub.snapshot().await, "an oversized message");
    hub.stop().await;
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401() {
    let hub = TestHub::start().await;
    assert_problem(raw(&hub, "GET", "/v1/agents", None, None).await, 401, "unauthenticated");
    assert_problem(raw(&hub, "GET", "/v1/agents", Some("sbk_wrong"), None).await, 401, "unauthenticated");
    hub.stop().await;
}

#[tokio::test]
async fn agents_cannot_do_admin_things_403() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let body = json!({"name": "mallory"}).to_string();
    assert_problem(raw(&hub, "POST", "/v1/agents", Some(&bob.api_key), Some(body)).await, 403, "forbidden");
    assert_problem(raw(&hub, "GET", "/v1/inbox", Some(ADMIN), None).await, 403, "forbidden");
    assert_unchanged(&before, &hub.snapshot().await, "an agent registering an agent");
    hub.stop().await;
}

#[tokio::test]
async fn unknown_ids_and_paths_are_404() {
    let hub = TestHub::start().await;
    assert_problem(raw(&hub, "GET", "/v1/messages/nope", Some(ADMIN), None).await, 404, "not_found");
    assert_problem(raw(&hub, "GET", "/v1/agents/nope", Some(ADMIN), None).await, 404, "not_found");
    assert_problem(raw(&hub, "GET", "/v1/nothing-here", Some(ADMIN), None).await, 404, "not_found");
    hub.stop().await;
}

#[tokio::test]
async fn a_taken_agent_name_is_409() {
    let hub = TestHub::start().await;
    hub.agent("bob", &[]).await;
    let body = json!({"name": "bob"}).to_string();
    assert_problem(raw(&hub, "POST", "/v1/agents", Some(ADMIN), Some(body)).await, 409, "conflict");
    hub.stop().await;
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    assert_problem(raw(&hub, "GET", "/v1/inbox?wait_ms=soon", Some(&bob.api_key), None).await, 400, "invalid_query");
    assert_problem(raw(&hub, "GET", "/v1/inbox?limit=0", Some(&bob.api_key), None).await, 400, "invalid_query");
    hub.stop().await;
}

#[tokio::test]
async fn health_ready_metrics_and_openapi_answer() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let sent = alice.send(&SendMessage::text(addr(&bob_reg.agent.id), "count me")).await.unwrap();
    bob.inbox(&InboxOptions::default()).await.unwrap();
    bob.ack(vec![sent.id]).await.unwrap();
    let http = reqwest::Client::new();
    for p in ["/health", "/ready"] {
        assert_eq!(http.get(format!("{}{p}", hub.url())).send().await.unwrap().status(), 200);
    }
    let metrics = http.get(format!("{}/metrics", hub.url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchboard_messages_accepted_total 1"), "{metrics}");
    assert!(metrics.contains("switchboard_deliveries_total{outcome=\"acked\"} 1"), "{metrics}");
    assert!(metrics.contains("switchboard_delivery_latency_seconds_count 1"), "{metrics}");
    assert!(metrics.contains("switchboard_inbox_depth"), "{metrics}");
    assert!(metrics.contains("switchboard_http_request_duration_seconds"), "{metrics}");
    let doc: Value = http.get(format!("{}/openapi.json", hub.url())).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in ["/v1/messages", "/v1/messages:batch", "/v1/inbox", "/v1/agents/{id}", "/v1/stream"] {
        assert!(doc["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    assert!(doc["components"]["schemas"].get("SendMessage").is_some());
    hub.stop().await;
}

// ---- topics ----

/// Reads the next message from a stream, acknowledges it, and returns its id.
async fn take_and_ack(stream: &mut switchboard_client::Stream, who: &str) -> String {
    let m = within(10, &format!("{who}'s stream message"), stream.next_message()).await.unwrap().expect("stream open");
    stream.ack(&m.message.id).await.unwrap();
    m.message.id
}

#[tokio::test]
async fn topic_subscribers_receive_a_publish_but_the_publisher_does_not() {
    let hub = TestHub::start().await;
    let (alice_reg, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let (carol_reg, carol) = hub.agent("carol", &[]).await;
    for (reg, c) in [(&alice_reg, &alice), (&bob_reg, &bob), (&carol_reg, &carol)] {
        let s = c.subscribe("standup", &reg.agent.id).await.unwrap();
        assert_eq!((s.topic.as_str(), s.agent_id.as_str()), ("standup", reg.agent.id.as_str()));
    }
    let (mut bob_stream, mut carol_stream) = (bob.stream().await.unwrap(), carol.stream().await.unwrap());

    let sent = alice.send(&SendMessage::text("topic:standup", "shipped topics")).await.unwrap();
    let mut recipients = sent.recipients.clone();
    recipients.sort();
    let mut expected = vec![addr(&bob_reg.agent.id), addr(&carol_reg.agent.id)];
    expected.sort();
    assert_eq!(recipients, expected, "every subscriber but the publisher");

    assert_eq!(take_and_ack(&mut bob_stream, "bob").await, sent.id);
    assert_eq!(take_and_ack(&mut carol_stream, "carol").await, sent.id);
    let id = sent.id.clone();
    let status = eventually(10, "both deliveries acked", || {
        let (alice, id) = (alice.clone(), id.clone());
        async move {
            let s = alice.get_message(&id).await.unwrap();
            s.deliveries.iter().all(|d| d.state == DeliveryState::Acked).then_some(s)
        }
    })
    .await;
    assert_eq!(status.deliveries.len(), 2);
    assert_eq!(status.message.to, "topic:standup");
    assert!(alice.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty(), "no echo to the publisher");

    let subscribers = bob.topic_subscribers("standup").await.unwrap();
    assert_eq!(subscribers.len(), 3);
    let topics = carol.topics().await.unwrap().topics;
    assert_eq!(topics.len(), 1);
    assert_eq!((topics[0].name.as_str(), topics[0].subscribers), ("standup", 3));
    hub.stop().await;
}

#[tokio::test]
async fn unsubscribing_stops_delivery() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let (carol_reg, carol) = hub.agent("carol", &[]).await;
    bob.subscribe("alerts", &bob_reg.agent.id).await.unwrap();
    carol.subscribe("alerts", &carol_reg.agent.id).await.unwrap();
    bob.unsubscribe("alerts", &bob_reg.agent.id).await.unwrap();
    let sent = hub.admin().send(&SendMessage::text("topic:alerts", "disk full")).await.unwrap();
    assert_eq!(sent.recipients, vec![addr(&carol_reg.agent.id)]);
    assert!(bob.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty());
    let again = bob.unsubscribe("alerts", &bob_reg.agent.id).await.unwrap_err();
    assert_eq!(again.code(), Some("not_found"));
    hub.stop().await;
}

#[tokio::test]
async fn a_topic_without_subscribers_accepts_and_stores_the_message() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let sent = alice.send(&SendMessage::text("topic:nobody-listens", "hello?")).await.unwrap();
    assert_eq!(sent.status, "accepted");
    assert!(sent.recipients.is_empty());
    let stored = alice.get_message(&sent.id).await.unwrap();
    assert_eq!(stored.message.to, "topic:nobody-listens");
    assert!(stored.deliveries.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn an_agent_subscribes_only_itself_and_the_admin_anyone() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let path = format!("/v1/topics/alerts/subscribers/{}", carol.agent.id);
    let p = assert_problem(raw(&hub, "PUT", &path, Some(&bob.api_key), None).await, 403, "forbidden");
    assert!(p["detail"].as_str().unwrap().contains("admin token"), "{p}");
    assert_problem(raw(&hub, "DELETE", &path, Some(&bob.api_key), None).await, 403, "forbidden");
    assert!(hub.admin().topics().await.unwrap().topics.is_empty(), "a refused subscribe writes nothing");

    let (status, _, created) = raw(&hub, "PUT", &path, Some(ADMIN), None).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["subscription"]["agent_id"], carol.agent.id.as_str());
    let (status, _, existing) = raw(&hub, "PUT", &path, Some(ADMIN), None).await;
    assert_eq!(status, 200, "subscribing again is idempotent: {existing}");
    assert_eq!(existing, created, "the same subscription, created_at unchanged");

    let unknown = "/v1/topics/alerts/subscribers/no-such-agent";
    assert_problem(raw(&hub, "PUT", unknown, Some(ADMIN), None).await, 404, "not_found");
    hub.stop().await;
}

#[tokio::test]
async fn a_bad_topic_name_is_named_and_changes_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let path = format!("/v1/topics/has%20space/subscribers/{}", bob.agent.id);
    let p = assert_problem(raw(&hub, "PUT", &path, Some(&bob.api_key), None).await, 400, "invalid_query");
    assert_eq!(p["errors"][0]["path"], "topic", "{p}");
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("has space"), "{p}");
    assert!(hub.admin().topics().await.unwrap().topics.is_empty());
    let err = hub.admin().topic_subscribers("has space").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_query"));
    let p = assert_problem(
        raw(&hub, "GET", "/v1/topics/ok/subscribers?limit=0", Some(ADMIN), None).await,
        400,
        "invalid_query",
    );
    assert_eq!(p["errors"][0]["path"], "limit");
    hub.stop().await;
}

#[tokio::test]
async fn a_topic_with_slashes_travels_percent_encoded() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let path = format!("/v1/topics/alerts%2Feu/subscribers/{}", bob_reg.agent.id);
    let (status, _, body) = raw(&hub, "PUT", &path, Some(&bob_reg.api_key), None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subscription"]["topic"], "alerts/eu", "axum decodes %2F in the path segment");
    let listed = hub.admin().topic_subscribers("alerts/eu").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].agent_id, bob_reg.agent.id);
    let sent = hub.admin().send(&SendMessage::text("topic:alerts/eu", "eu only")).await.unwrap();
    assert_eq!(sent.recipients, vec![addr(&bob_reg.agent.id)]);
    let inbox = bob.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages[0].message.id, sent.id);
    bob.unsubscribe("alerts/eu", &bob_reg.agent.id).await.unwrap();
    assert!(hub.admin().topics().await.unwrap().topics.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn a_push_subscriber_gets_the_publish_pushed() {
    let hub = TestHub::start().await;
    let rx = common::receiver::Receiver::start(|_| common::receiver::Plan::Status(204)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let (puller_reg, puller) = hub.agent("puller", &[]).await;
    hub.admin().subscribe("deploys", &hook.agent.id).await.unwrap();
    puller.subscribe("deploys", &puller_reg.agent.id).await.unwrap();
    let sent = hub.admin().send(&SendMessage::text("topic:deploys", "v2 is out")).await.unwrap();
    assert_eq!(sent.recipients.len(), 2);
    let got = rx.wait_for(1, 10).await;
    assert_eq!(got[0].id, sent.id);
    assert!(common::receiver::signature_valid(&hook.webhook_secret, &got[0]));
    let pulled = puller.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(pulled.messages[0].message.id, sent.id, "the other subscriber pulls it");
    let admin = hub.admin();
    let hook_addr = addr(&hook.agent.id);
    eventually(10, "the push acked", || {
        let (admin, id, hook_addr) = (admin.clone(), sent.id.clone(), hook_addr.clone());
        async move {
            let s = admin.get_message(&id).await.unwrap();
            s.deliveries.iter().any(|d| d.recipient == hook_addr && d.state == DeliveryState::Acked).then_some(())
        }
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn deleting_an_agent_ends_its_subscriptions() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    bob.subscribe("alerts", &bob_reg.agent.id).await.unwrap();
    hub.admin().delete_agent(&bob_reg.agent.id).await.unwrap();
    assert!(hub.admin().topics().await.unwrap().topics.is_empty());
    let sent = hub.admin().send(&SendMessage::text("topic:alerts", "anyone?")).await.unwrap();
    assert!(sent.recipients.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn a_publish_reaches_a_thousand_subscribers_in_one_message() {
    use futures_util::{StreamExt, TryStreamExt};
    const N: usize = 1000;
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let ids: Vec<String> = futures_util::stream::iter(0..N)
        .map(|i| {
            let admin = admin.clone();
            async move {
                let req = switchboard_core::api::RegisterAgent { name: format!("sub-{i:04}"), ..Default::default() };
                let id = admin.register_agent(&req).await?.agent.id;
                admin.subscribe("all-hands", &id).await?;
                Ok::<_, switchboard_client::ClientError>(id)
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(admin.topic_subscribers("all-hands").await.unwrap().len(), N, "every page followed");
    let sent = admin.send(&SendMessage::text("topic:all-hands", "one message")).await.unwrap();
    assert_eq!(sent.recipients.len(), N);
    let status = admin.get_message(&sent.id).await.unwrap();
    assert_eq!(status.deliveries.len(), N);
    assert!(ids.iter().all(|id| sent.recipients.contains(&addr(id))));
    hub.stop().await;
}

#[tokio::test]
async fn openapi_describes_topics() {
    let hub = TestHub::start().await;
    let doc: Value = reqwest::get(format!("{}/openapi.json", hub.url())).await.unwrap().json().await.unwrap();
    for p in ["/v1/topics", "/v1/topics/{topic}/subscribers", "/v1/topics/{topic}/subscribers/{agent_id}"] {
        assert!(doc["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    for s in ["Subscription", "Subscribed", "SubscriberList", "TopicList"] {
        assert!(doc["components"]["schemas"].get(s).is_some(), "openapi lacks schema {s}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn whoami_names_the_callers_agent() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let me = bob.whoami().await.unwrap();
    assert_eq!(me.agent_id.as_deref(), Some(bob_reg.agent.id.as_str()));
    assert_eq!(me.principal, addr(&bob_reg.agent.id));
    let admin = hub.admin().whoami().await.unwrap();
    assert_eq!((admin.principal.as_str(), admin.agent_id), ("admin", None));
    hub.stop().await;
}

/// An administrative change and its audit entry are one write: each change below leaves one
/// entry naming what was done to what, a refused one leaves none, and a replay that replays
/// nothing records nothing.
#[tokio::test]
async fn administrative_changes_leave_one_audit_entry_each() {
    use switchboard_core::api::{DeadLetterSelection, RegisterAgent, TenantPushSettings, UpdateAgent};

    let hub = TestHub::start().await;
    let admin = hub.admin();
    let entries = |snapshot: &common::Snapshot| snapshot.tables.get("audit_events").cloned().unwrap_or_default();
    let before = hub.snapshot().await;
    assert!(entries(&before).is_empty(), "{:?}", entries(&before));

    let a = admin.register_agent(&RegisterAgent { name: "audited".into(), ..Default::default() }).await.unwrap();
    let id = a.agent.id.clone();
    let update = UpdateAgent { name: "audited-2".into(), ..Default::default() };
    admin.update_agent(&id, &update).await.unwrap();
    admin.rotate_webhook_secret(&id).await.unwrap();
    admin.put_tenant_push_settings(&TenantPushSettings { sign_ed25519: true, ..Default::default() }).await.unwrap();
    let nothing_dead =
        DeadLetterSelection { message_ids: vec!["0190f1c2-0000-7000-8000-000000000000".into()], ..Default::default() };
    assert_eq!(admin.replay_dead_letters(&nothing_dead).await.unwrap().count, 0);
    let taken = RegisterAgent { name: "audited-2".into(), ..Default::default() };
    assert!(admin.register_agent(&taken).await.is_err(), "a second agent took a name in use");
    admin.delete_agent(&id).await.unwrap();

    let rows = entries(&hub.snapshot().await);
    let actions = ["agent.register", "agent.update", "webhook_secret.rotate", "push_settings.update", "agent.delete"];
    assert_eq!(rows.len(), actions.len(), "{rows:#?}");
    for action in actions {
        // A row's text is `a | b | …` from SQLite and `(a,b,…)` from PostgreSQL.
        let fields = |r: &String| r.split([',', '|', '"', '(', ')', ' ']).any(|f| f == action);
        let row = rows.iter().find(|r| fields(r));
        let row = row.unwrap_or_else(|| panic!("no {action} entry in {rows:#?}"));
        if action.starts_with("agent") || action.starts_with("webhook") {
            assert!(row.contains(&addr(&id)), "{action} does not name its agent: {row}");
        }
    }
    // No secret in the log of changes either.
    assert!(!rows.iter().any(|r| r.contains(&a.api_key) || r.contains(&a.webhook_secret)), "{rows:#?}");
}
