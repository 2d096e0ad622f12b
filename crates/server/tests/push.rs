//! Push delivery against real HTTP receivers on loopback: signatures, outcomes per status
//! class, retries, throttling, disabling, circuit breaking, dead letters and replay.

mod common;

use std::time::Duration;

use common::receiver::{Plan, Receiver, signature_valid};
use common::{ADMIN, TestHub, agent_addr, eventually};
use serde_json::Value;
use switchboard_client::{Client, DeliveryQuery, InboxOptions};
use switchboard_core::api::{AgentStatus, DeadLetterSelection, DeliveryState, Part, SendMessage};

async fn state_of(c: &Client, id: &str, want: DeliveryState, secs: u64) -> switchboard_core::api::MessageStatus {
    eventually(secs, &format!("delivery {}", want.as_str()), || async {
        let s = c.get_message(id).await.unwrap();
        (s.deliveries[0].state == want).then_some(s)
    })
    .await
}

#[tokio::test]
async fn a_push_is_signed_and_a_2xx_acknowledges_it() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|_| Plan::Status(204)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    assert!(hook.webhook_secret.starts_with("whsec_"));
    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "ping")).await.unwrap();
    let got = rx.wait_for(1, 10).await;
    assert_eq!(got[0].id, sent.id, "webhook-id is the message id");
    assert!(signature_valid(&hook.webhook_secret, &got[0]), "signature verifies: {:?}", got[0]);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["id"], sent.id.as_str());
    assert_eq!(body["parts"][0]["text"], "ping");
    assert_eq!(body["attempt"], 1);
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Acked, 10).await;
    assert_eq!(s.push_attempts.len(), 1);
    assert_eq!(s.push_attempts[0].status_code, Some(204));
    assert_eq!(s.push_attempts[0].error_kind.as_deref(), Some("ok"));
    hub.stop().await;
}

#[tokio::test]
async fn failures_retry_on_the_schedule_then_go_dead_and_replay_delivers() {
    let hub = TestHub::start().await; // schedule: two retries, 50 ms each
    let rx = Receiver::start(|_| Plan::Status(500)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let admin = hub.admin();
    let sent = admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let s = state_of(&admin, &sent.id, DeliveryState::Dead, 15).await;
    assert_eq!(s.deliveries[0].attempts, 3, "one try and two retries");
    assert_eq!(s.push_attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), vec![Some(500); 3]);
    let got = rx.requests();
    assert!(got.iter().all(|r| r.id == sent.id), "every retry carries the same webhook-id");

    let dead = admin.dead_letters(&DeliveryQuery::default()).await.unwrap();
    assert_eq!(dead.dead_letters.len(), 1);
    assert!(dead.dead_letters[0].last_error.as_deref().unwrap().contains("500"));

    rx.set(|_| Plan::Status(200));
    let r = admin
        .replay_dead_letters(&DeadLetterSelection { message_ids: vec![sent.id.clone()], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(r.count, 1);
    state_of(&admin, &sent.id, DeliveryState::Acked, 10).await;
    assert!(admin.dead_letters(&DeliveryQuery::default()).await.unwrap().dead_letters.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn redirects_are_failures_and_not_followed() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|_| Plan::StatusWith {
        status: 307,
        headers: vec![("location".into(), "http://127.0.0.1:1/elsewhere".into())],
        body: String::new(),
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Dead, 15).await;
    assert!(s.push_attempts.iter().all(|a| a.error_kind.as_deref() == Some("redirect")));
    assert_eq!(rx.requests().len(), 3);
    hub.stop().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_until_it_changes() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|_| Plan::Status(410)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let admin = hub.admin();
    let to = agent_addr(&hook.agent.id);
    let first = admin.send(&SendMessage::text(&to, "one")).await.unwrap();
    let s = state_of(&admin, &first.id, DeliveryState::Dead, 10).await;
    assert_eq!(s.deliveries[0].attempts, 1, "410 is not retried");
    assert_eq!(admin.get_agent(&hook.agent.id).await.unwrap().status, AgentStatus::Error);

    // While disabled nothing is pushed; the message waits. To know the dispatcher has had
    // its chance, a healthy agent's message sent after it must be pushed and acked first:
    // claims go in due order, so the dispatcher has passed "two" over by then.
    let second = admin.send(&SendMessage::text(&to, "two")).await.unwrap();
    let witness_rx = Receiver::start(|_| Plan::Status(204)).await;
    let (witness, _) = hub.agent_at("witness", &[], Some(&witness_rx.url)).await;
    let later = admin.send(&SendMessage::text(agent_addr(&witness.agent.id), "later")).await.unwrap();
    state_of(&admin, &later.id, DeliveryState::Acked, 10).await;
    assert_eq!(rx.requests().len(), 1, "nothing pushed to the disabled endpoint");
    let waiting = admin.get_message(&second.id).await.unwrap();
    assert_eq!(waiting.deliveries[0].state, DeliveryState::Pending, "not even claimed");
    assert!(waiting.push_attempts.is_empty(), "{:?}", waiting.push_attempts);
    let rx2 = Receiver::start(|_| Plan::Status(200)).await;

    // A new endpoint re-enables push, and the waiting message goes out.
    let mut card = switchboard_core::api::RegisterAgent { name: "hook".into(), ..Default::default() };
    card.endpoint = Some(rx2.url.clone());
    admin.update_agent(&hook.agent.id, &card).await.unwrap();
    state_of(&admin, &second.id, DeliveryState::Acked, 10).await;
    assert_eq!(rx2.requests()[0].id, second.id);
    hub.stop().await;
}

#[tokio::test]
async fn throttling_honours_retry_after() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|n| {
        if n == 0 {
            Plan::StatusWith { status: 429, headers: vec![("retry-after".into(), "1".into())], body: String::new() }
        } else {
            Plan::Status(200)
        }
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let got = rx.wait_for(2, 10).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}, before Retry-After: 1");
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Acked, 10).await;
    assert_eq!(s.push_attempts[0].error_kind.as_deref(), Some("throttled"));
    hub.stop().await;
}

#[tokio::test]
async fn timeouts_and_closed_connections_are_retried() {
    let hub = TestHub::start_with(|c| c.push_timeout_ms = 300).await;
    let rx = Receiver::start(|n| match n {
        0 => Plan::Slow { ms: 2000, status: 200 },
        1 => Plan::Close,
        _ => Plan::Slow { ms: 50, status: 200 },
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Acked, 15).await;
    let kinds: Vec<_> = s.push_attempts.iter().map(|a| a.error_kind.clone().unwrap_or_default()).collect();
    assert_eq!(kinds, ["timeout", "closed", "ok"]);
    hub.stop().await;
}

#[tokio::test]
async fn the_circuit_opens_on_failures_and_recovers() {
    let hub = TestHub::start_with(|c| {
        c.circuit_failures = 2;
        c.circuit_cooldown_ms = 300;
        c.push_retry_schedule_ms = vec![20; 10];
    })
    .await;
    let rx = Receiver::start(|n| if n < 3 { Plan::Status(503) } else { Plan::Status(200) }).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let admin = hub.admin();
    let sent = admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let id = hook.agent.id.clone();
    eventually(10, "agent status error", || async {
        (admin.get_agent(&id).await.unwrap().status == AgentStatus::Error).then_some(())
    })
    .await;
    state_of(&admin, &sent.id, DeliveryState::Acked, 15).await;
    let got = rx.requests();
    // While open the circuit holds retries back for the cooldown, far longer than the 20 ms schedule.
    let waited = got[2].at - got[1].at;
    assert!(waited >= Duration::from_millis(250), "probe came after {waited:?}");
    // The agent's health and the events follow the recorded outcome: wait for them.
    eventually(10, "agent recovered", || async {
        (admin.get_agent(&id).await.unwrap().status != AgentStatus::Error).then_some(())
    })
    .await;
    let metrics = eventually(10, "the recovered event", || async {
        let m = reqwest::get(format!("{}/metrics", hub.url())).await.unwrap().text().await.unwrap();
        m.contains("switchboard_push_events_total{event=\"delivery.recovered\"} 1").then_some(m)
    })
    .await;
    // Opened after the second failure; the first probe (third request) failed and reopened it.
    assert!(metrics.contains("switchboard_push_events_total{event=\"circuit.opened\"} 2"), "{metrics}");
    hub.stop().await;
}

#[tokio::test]
async fn a_reply_in_the_response_reaches_the_sender() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|_| Plan::StatusWith {
        status: 200,
        headers: vec![],
        body: r#"{"parts":[{"kind":"text","text":"pong"}]}"#.into(),
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let mut m = SendMessage::text(agent_addr(&hook.agent.id), "ping");
    m.conversation_id = Some("c-7".into());
    let sent = alice.send(&m).await.unwrap();
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    let reply = &inbox.messages[0].message;
    assert_eq!(reply.parts, vec![Part::text("pong")]);
    assert_eq!(reply.in_reply_to.as_deref(), Some(sent.id.as_str()));
    assert_eq!(reply.conversation_id.as_deref(), Some("c-7"));
    assert_eq!(reply.from, agent_addr(&hook.agent.id));
    hub.stop().await;
}

/// A webhook reply is held to the rules of a send: one that breaks them (here a NUL in its
/// text) is not stored; the delivery is still acked, and its attempt says `reply_refused`.
#[tokio::test]
async fn a_reply_that_breaks_a_send_rule_is_not_stored() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|_| Plan::StatusWith {
        status: 200,
        headers: vec![],
        body: r#"{"parts":[{"kind":"text","text":"po\u0000ng"}]}"#.into(),
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let sent = alice.send(&SendMessage::text(agent_addr(&hook.agent.id), "ping")).await.unwrap();
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Acked, 10).await;
    assert_eq!(s.push_attempts.len(), 1);
    assert_eq!(s.push_attempts[0].status_code, Some(200));
    assert_eq!(s.push_attempts[0].error_kind.as_deref(), Some("reply_refused"));
    // The attempt is recorded after the reply would have been committed: nothing came.
    let inbox = alice.inbox(&InboxOptions::default()).await.unwrap();
    assert!(inbox.messages.is_empty(), "{:?}", inbox.messages);
    let metrics = reqwest::get(format!("{}/metrics", hub.url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchboard_push_events_total{event=\"reply.refused\"} 1"), "{metrics}");
    hub.stop().await;
}

#[tokio::test]
async fn rotation_signs_with_both_secrets() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|_| Plan::Status(200)).await;
    let (hook, hook_client) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let rotated = hook_client.rotate_webhook_secret(&hook.agent.id).await.unwrap();
    assert_eq!(rotated.previous.as_deref(), Some(hook.webhook_secret.as_str()));
    assert_ne!(rotated.secret, hook.webhook_secret);
    hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let got = rx.wait_for(1, 10).await;
    assert_eq!(got[0].signature.split(' ').count(), 2);
    assert!(signature_valid(&rotated.secret, &got[0]));
    assert!(signature_valid(&hook.webhook_secret, &got[0]));
    hub.stop().await;
}

#[tokio::test]
async fn private_endpoints_are_refused_unless_allowed() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    for endpoint in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://localhost/x", "http://[::1]/x"]
    {
        let req = switchboard_core::api::RegisterAgent {
            name: "sneaky".into(),
            endpoint: Some(endpoint.into()),
            ..Default::default()
        };
        let err = hub.admin().register_agent(&req).await.unwrap_err();
        match err {
            switchboard_client::ClientError::Api(p) => {
                assert_eq!(p.code, "invalid_body");
                assert_eq!(p.errors[0].path, "endpoint", "{endpoint}");
            }
            other => panic!("{endpoint}: {other}"),
        }
    }
    assert!(hub.admin().list_agents(None, None).await.unwrap().agents.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn agents_see_only_their_own_dead_letters() {
    let hub = TestHub::start().await;
    let rx = Receiver::start(|_| Plan::Status(410)).await;
    let (hook, hook_client) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let (_, other) = hub.agent("other", &[]).await;
    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    state_of(&hub.admin(), &sent.id, DeliveryState::Dead, 10).await;
    assert_eq!(hook_client.dead_letters(&DeliveryQuery::default()).await.unwrap().dead_letters.len(), 1);
    assert!(other.dead_letters(&DeliveryQuery::default()).await.unwrap().dead_letters.is_empty());
    let q = DeliveryQuery { recipient: Some(agent_addr(&hook.agent.id)), ..Default::default() };
    assert_eq!(other.dead_letters(&q).await.unwrap_err().code(), Some("forbidden"));
    let purged = hub.admin().purge_dead_letters(&DeadLetterSelection::default()).await.unwrap();
    assert_eq!(purged.count, 1);
    let _ = ADMIN;
    hub.stop().await;
}

/// The README's Python receiver, run as written: it verifies real pushes and refuses a forgery.
#[tokio::test]
async fn the_readme_python_receiver_verifies_pushes() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- webhook-receiver-example -->\n```python\n").expect("example in README")
        + "<!-- webhook-receiver-example -->\n```python\n".len();
    let code = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("receiver.py");
    std::fs::write(&script, code).unwrap();

    let hub = TestHub::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let (hook, _) = hub.agent_at("py", &[], Some(&url)).await;
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .env("PORT", port.to_string())
        .env("SWITCHBOARD_WEBHOOK_SECRET", &hook.webhook_secret)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    eventually(20, "python receiver up", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
    })
    .await;
    let http = reqwest::Client::new();
    let forged = http
        .post(&url)
        .header("webhook-id", "msg_x")
        .header(
            "webhook-timestamp",
            (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).to_string(),
        )
        .header("webhook-signature", "v1,AAAA")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "hello python")).await.unwrap();
    state_of(&hub.admin(), &sent.id, DeliveryState::Acked, 20).await;
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = common::within(10, "python output", lines.next_line()).await.unwrap().unwrap();
    assert_eq!(line, format!("verified {}", sent.id));
    let _ = child.kill().await;
    hub.stop().await;
}

#[tokio::test]
async fn a_tenant_can_add_an_ed25519_signature_verified_with_the_published_key() {
    use base64::Engine;
    use ed25519_dalek::Verifier;
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let on = switchboard_core::api::TenantPushSettings { sign_ed25519: true, ..Default::default() };
    assert_eq!(admin.put_tenant_push_settings(&on).await.unwrap(), on);
    assert!(admin.tenant_push_settings().await.unwrap().sign_ed25519);
    let rx = Receiver::start(|_| Plan::Status(200)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "signed twice")).await.unwrap();
    let got = rx.wait_for(1, 10).await;
    assert!(signature_valid(&hook.webhook_secret, &got[0]));

    // Verify v1a from the specification: Ed25519 over "{id}.{timestamp}.{body}", with the key
    // anyone can fetch, unauthenticated.
    let keys: Value =
        reqwest::get(format!("{}/.well-known/switchboard-keys.json", hub.url())).await.unwrap().json().await.unwrap();
    assert_eq!(keys["keys"][0]["crv"], "Ed25519");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(keys["keys"][0]["x"].as_str().unwrap()).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
    let v1a = got[0].signature.split(' ').find_map(|s| s.strip_prefix("v1a,")).expect("a v1a signature");
    let sig =
        ed25519_dalek::Signature::from_slice(&base64::engine::general_purpose::STANDARD.decode(v1a).unwrap()).unwrap();
    let mut signed = format!("{}.{}.", got[0].id, got[0].timestamp).into_bytes();
    signed.extend_from_slice(&got[0].body);
    assert!(key.verify(&signed, &sig).is_ok(), "v1a verifies with the published key");
    signed.push(b' ');
    assert!(key.verify(&signed, &sig).is_err(), "and not for another body");
    hub.stop().await;
}

#[tokio::test]
async fn a_tenant_schedule_applies_to_agents_without_their_own() {
    let hub = TestHub::start().await; // node schedule: two retries
    let admin = hub.admin();
    let one_retry =
        switchboard_core::api::TenantPushSettings { retry_schedule_ms: Some(vec![10]), ..Default::default() };
    admin.put_tenant_push_settings(&one_retry).await.unwrap();
    let rx = Receiver::start(|_| Plan::Status(500)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let s = state_of(&admin, &sent.id, DeliveryState::Dead, 10).await;
    assert_eq!(s.deliveries[0].attempts, 2, "one try and the tenant's one retry");
    hub.stop().await;
}

#[tokio::test]
async fn a_tenant_may_allow_private_endpoints_when_the_node_does_not() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let admin = hub.admin();
    let rx = Receiver::start(|_| Plan::Status(200)).await;
    let card = switchboard_core::api::RegisterAgent {
        name: "local".into(),
        endpoint: Some(rx.url.clone()),
        ..Default::default()
    };
    assert_eq!(admin.register_agent(&card).await.unwrap_err().code(), Some("invalid_body"));
    let allow = switchboard_core::api::TenantPushSettings { allow_private_endpoints: true, ..Default::default() };
    admin.put_tenant_push_settings(&allow).await.unwrap();
    let hook = admin.register_agent(&card).await.unwrap();
    let sent = admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    state_of(&admin, &sent.id, DeliveryState::Acked, 10).await;
    hub.stop().await;
}

#[tokio::test]
async fn push_health_events_reach_the_tenants_events_agent() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (ops, ops_client) = hub.agent("ops", &[]).await;
    let bad =
        switchboard_core::api::TenantPushSettings { events_to: Some("agent:nobody".into()), ..Default::default() };
    assert_eq!(admin.put_tenant_push_settings(&bad).await.unwrap_err().code(), Some("invalid_body"));
    let settings =
        switchboard_core::api::TenantPushSettings { events_to: Some(agent_addr(&ops.agent.id)), ..Default::default() };
    admin.put_tenant_push_settings(&settings).await.unwrap();
    let rx = Receiver::start(|_| Plan::Status(410)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    // Events arrive as messages in the ops agent's inbox; wait for the one we caused.
    let subject = agent_addr(&hook.agent.id);
    let mut types: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !types.iter().any(|t| t == "dev.switchboard.endpoint.disabled") {
        assert!(tokio::time::Instant::now() < deadline, "no endpoint.disabled event, got {types:?}");
        let inbox = ops_client
            .inbox(&InboxOptions { limit: Some(10), wait_ms: Some(1000), ..Default::default() })
            .await
            .unwrap();
        for m in inbox.messages {
            assert_eq!(m.message.from, "switchboard");
            let Part::Data { data } = &m.message.parts[0] else { panic!("a data part") };
            assert_eq!(data["specversion"], "1.0");
            assert_eq!(data["subject"], subject.as_str());
            types.push(data["type"].as_str().unwrap().to_owned());
        }
    }
    assert!(types.iter().all(|t| t.starts_with("dev.switchboard.")));
    let _ = sent;
    hub.stop().await;
}

// ---- The SSRF guard with private endpoints not allowed (issue 9 item 7, issue 17 item 2) ----

/// Registers an agent at `endpoint` on `hub` and returns the refusal's message for the
/// `endpoint` field (`None`: registered).
async fn refusal(hub: &TestHub, endpoint: &str) -> Option<String> {
    let req = switchboard_core::api::RegisterAgent {
        name: format!("a{}", switchboard_core::new_id().simple()),
        endpoint: Some(endpoint.into()),
        ..Default::default()
    };
    match hub.admin().register_agent(&req).await {
        Ok(_) => None,
        Err(switchboard_client::ClientError::Api(p)) => {
            assert_eq!(p.code, "invalid_body", "{endpoint}");
            assert_eq!(p.errors[0].path, "endpoint", "{endpoint}");
            Some(p.errors[0].message.clone())
        }
        Err(other) => panic!("{endpoint}: {other}"),
    }
}

#[tokio::test]
async fn registration_refuses_every_not_globally_reachable_address_in_every_spelling() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    for endpoint in [
        "http://[::127.0.0.1]/hook",      // IPv4-compatible
        "http://[64:ff9b::7f00:1]/hook",  // NAT64 of loopback
        "http://[64:ff9b::a9fe:a9fe]/x",  // NAT64 of the metadata address
        "http://[64:ff9b:1::1]/hook",     // NAT64 local-use
        "http://[::ffff:127.0.0.1]/hook", // IPv4-mapped
        "http://[2002:7f00:1::1]/hook",   // 6to4 of loopback
        "http://[2002:c0a8:101::1]/hook", // 6to4 of 192.168.1.1
        "http://[2001::1]/hook",          // Teredo
        "http://2130706433/hook",         // 127.0.0.1 in decimal
        "http://0x7f.0.0.1/hook",         // in hex
        "http://0177.0.0.1/hook",         // in octal
        "http://127.1/hook",
        "http://198.18.0.1/hook",
        "http://198.19.255.254/hook",
        "http://240.0.0.1/hook",
        "http://255.255.255.255/hook",
        "http://224.0.0.1/hook",
        "http://239.255.255.250/hook",
        "http://[ff02::1]/hook",
        "http://[ff0e::1]/hook",
        "http://192.0.0.1/hook",
        "http://192.0.0.170/hook",
        "http://[fec0::1]/hook",
        "http://[fc00::1]/hook",
        "http://[fe80::1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://0/hook",
        "http://[::]/hook",
        "http://192.0.2.1/hook",
        "http://198.51.100.1/hook",
        "http://203.0.113.1/hook",
        "http://[2001:db8::1]/hook",
        "http://[3fff::1]/hook",
        "http://[100::1]/hook",
        "http://192.88.99.1/hook",
        "http://localhost/hook",
    ] {
        let message = refusal(&hub, endpoint).await.unwrap_or_else(|| panic!("{endpoint} was accepted"));
        assert!(message.contains("not globally reachable"), "{endpoint}: {message}");
        assert!(message.contains("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS"), "says what to do: {message}");
    }
    let m = refusal(&hub, "http://[64:ff9b::7f00:1]/hook").await.unwrap();
    assert!(m.contains("carries 127.0.0.1") && m.contains("127.0.0.0/8 (loopback"), "names the embedded address: {m}");
    assert!(hub.admin().list_agents(None, None).await.unwrap().agents.is_empty(), "nothing was registered");

    // Addresses that are globally reachable, in the same spellings, still register (no
    // connection is made at registration for a literal address).
    for endpoint in [
        "http://8.8.8.8/hook",
        "http://134744072/hook", // 8.8.8.8 in decimal
        "http://[2606:4700:4700::1111]/hook",
        "http://[::ffff:8.8.8.8]/hook",
        "http://[64:ff9b::808:808]/hook",
        "http://[2002:808:808::1]/hook",
        "http://192.0.0.9/hook", // PCP anycast: the registry marks it globally reachable
    ] {
        assert_eq!(refusal(&hub, endpoint).await, None, "{endpoint} is globally reachable");
    }
    hub.stop().await;
}

/// Waits until the delivery is final, asserts that it is dead (not acknowledged: no attempt
/// reached the endpoint) and returns the error kinds of its attempts and its last error.
async fn dead_with_kinds(c: &Client, id: &str) -> (Vec<String>, Option<String>) {
    let s = eventually(20, "a final delivery state", || async {
        let s = c.get_message(id).await.unwrap();
        s.deliveries[0].state.is_final().then_some(s)
    })
    .await;
    let kinds: Vec<String> = s.push_attempts.iter().map(|a| a.error_kind.clone().unwrap_or_default()).collect();
    assert_eq!(s.deliveries[0].state, DeliveryState::Dead, "attempts: {kinds:?}");
    (kinds, s.deliveries[0].last_error.clone())
}

/// Registration cannot see the future: a name the node allowed when it was registered must
/// still be refused at connect time once the node stops allowing private endpoints.
#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_connect_time_once_private_endpoints_are_not_allowed() {
    let mut hub = TestHub::start().await; // allows private endpoints
    let rx = Receiver::start(|_| Plan::Status(200)).await;
    let endpoint = format!("http://localhost:{}/hook", rx.port);
    let (hook, _) = hub.agent_at("hook", &[], Some(&endpoint)).await;
    let to = agent_addr(&hook.agent.id);
    let first = hub.admin().send(&SendMessage::text(&to, "while allowed")).await.unwrap();
    state_of(&hub.admin(), &first.id, DeliveryState::Acked, 10).await; // the name does reach the receiver

    hub.config.allow_private_endpoints = false;
    hub.restart().await;
    let admin = hub.admin();
    let sent = admin.send(&SendMessage::text(&to, "after")).await.unwrap();
    let (kinds, last_error) = dead_with_kinds(&admin, &sent.id).await;
    assert_eq!(kinds, ["refused_address"; 3], "every attempt, retries included, is refused");
    let last_error = last_error.unwrap_or_default();
    assert!(last_error.contains("`localhost` resolves only to addresses push may not reach"), "{last_error}");
    assert!(last_error.contains("127.0.0.0/8 (loopback"), "{last_error}");
    // Dead means no attempt is left to come, so this count is final.
    assert_eq!(rx.requests().len(), 1, "only the message sent while allowed reached the receiver");
    hub.stop().await;
}

/// Literal addresses bypass the resolver, so the check before each attempt is what refuses
/// them; the tenant's setting is withdrawn after registration.
#[tokio::test]
async fn literal_private_addresses_are_refused_at_connect_time_in_every_spelling() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let admin = hub.admin();
    let allow = |on| switchboard_core::api::TenantPushSettings { allow_private_endpoints: on, ..Default::default() };
    admin.put_tenant_push_settings(&allow(true)).await.unwrap();
    let rx = Receiver::start(|_| Plan::Status(200)).await;
    let p = rx.port;
    // These reach the receiver while allowed ...
    let reachable = [
        format!("http://127.0.0.1:{p}/hook"),
        format!("http://[::ffff:127.0.0.1]:{p}/hook"),
        format!("http://2130706433:{p}/hook"),
    ];
    // ... and these are refused for what they carry, whether or not this machine routes them.
    let carried = [format!("http://[::127.0.0.1]:{p}/hook"), format!("http://[64:ff9b::7f00:1]:{p}/hook")];
    let mut agents = Vec::new();
    for (i, endpoint) in reachable.iter().chain(&carried).enumerate() {
        let (hook, _) = hub.agent_at(&format!("hook{i}"), &[], Some(endpoint)).await;
        agents.push((endpoint.clone(), agent_addr(&hook.agent.id)));
    }
    for (endpoint, to) in &agents[..reachable.len()] {
        let sent = admin.send(&SendMessage::text(to, "while allowed")).await.unwrap();
        let s = state_of(&admin, &sent.id, DeliveryState::Acked, 10).await;
        assert_eq!(s.push_attempts.len(), 1, "{endpoint}");
    }
    assert_eq!(rx.requests().len(), reachable.len());

    admin.put_tenant_push_settings(&allow(false)).await.unwrap();
    for (endpoint, to) in &agents {
        let sent = admin.send(&SendMessage::text(to, "after")).await.unwrap();
        let (kinds, last_error) = dead_with_kinds(&admin, &sent.id).await;
        assert_eq!(kinds, ["refused_address"; 3], "{endpoint}: {last_error:?}");
        assert!(last_error.unwrap_or_default().contains("not globally reachable"), "{endpoint}");
    }
    assert_eq!(rx.requests().len(), reachable.len(), "nothing more reached the receiver");
    hub.stop().await;
}

/// A retry is a new connection and is checked again: the endpoint answered the first attempt
/// (on a connection it keeps alive), private endpoints were withdrawn while it did, and the
/// retry to the same name is refused.
#[tokio::test]
async fn a_retry_after_private_endpoints_are_withdrawn_is_refused() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let admin = hub.admin();
    let allow = |on| switchboard_core::api::TenantPushSettings { allow_private_endpoints: on, ..Default::default() };
    admin.put_tenant_push_settings(&allow(true)).await.unwrap();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let rx = Receiver::start_keep_alive(move |n| {
        if n == 0 { Plan::Held { gate: held.clone(), status: 500 } } else { Plan::Status(200) }
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&format!("http://localhost:{}/hook", rx.port))).await;
    let sent = admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    rx.wait_for(1, 10).await; // the first attempt is in flight, held by the receiver
    admin.put_tenant_push_settings(&allow(false)).await.unwrap();
    gate.add_permits(1); // it fails with a 500: a retry is due
    let (kinds, _) = dead_with_kinds(&admin, &sent.id).await;
    assert_eq!(kinds, ["http_status", "refused_address", "refused_address"]);
    assert_eq!(rx.requests().len(), 1, "no retry reached the receiver");
    hub.stop().await;
}

// ---- Retry-After, and the README's defaults for concurrency and the circuit ----

#[tokio::test]
async fn throttling_honours_retry_after_as_an_http_date() {
    let hub = TestHub::start().await; // schedule: 50 ms steps, far shorter than the date asks
    let rx = Receiver::start(|n| {
        if n == 0 {
            let at = std::time::SystemTime::now() + Duration::from_secs(2);
            Plan::StatusWith {
                status: 503,
                headers: vec![("retry-after".into(), httpdate::fmt_http_date(at))],
                body: String::new(),
            }
        } else {
            Plan::Status(200)
        }
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let got = rx.wait_for(2, 10).await;
    // The date has whole seconds: two seconds ahead, truncated, is more than one from now.
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}, before the Retry-After date");
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Acked, 10).await;
    assert_eq!(s.push_attempts[0].error_kind.as_deref(), Some("throttled"));
    hub.stop().await;
}

/// README: "Per endpoint at most 4 requests are in flight". The node's default, not a value
/// set for the test.
#[tokio::test]
async fn at_most_four_requests_are_in_flight_per_endpoint_by_default() {
    let hub = TestHub::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let rx = Receiver::start(move |_| Plan::Held { gate: held.clone(), status: 200 }).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let admin = hub.admin();
    let to = agent_addr(&hook.agent.id);
    let total = 10;
    let mut ids = Vec::new();
    for i in 0..total {
        ids.push(admin.send(&SendMessage::text(&to, format!("m{i}"))).await.unwrap().id);
    }
    // Let one answer go each time four are waiting (or all that are left).
    for released in 0..total {
        let want = 4.min(total - released);
        eventually(10, &format!("{want} requests in flight"), || async { (rx.in_flight() >= want).then_some(()) })
            .await;
        gate.add_permits(1);
    }
    for id in &ids {
        state_of(&admin, id, DeliveryState::Acked, 10).await;
    }
    assert_eq!(rx.requests().len(), total);
    assert_eq!(rx.max_in_flight(), 4, "four at once, never more");
    hub.stop().await;
}

/// README: "5 failures in a row open its circuit (agent status `error`) for 30 s". The
/// defaults, not values set for the test; the 30 s are walked through without waiting in the
/// circuit's unit tests.
#[tokio::test]
async fn five_failures_in_a_row_open_the_circuit_by_default() {
    let hub = TestHub::start_with(|c| c.push_retry_schedule_ms = vec![20; 10]).await;
    let rx = Receiver::start(|_| Plan::Status(500)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let admin = hub.admin();
    let sent = admin.send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    let id = hook.agent.id.clone();
    eventually(15, "agent status error", || async {
        (admin.get_agent(&id).await.unwrap().status == AgentStatus::Error).then_some(())
    })
    .await;
    // The circuit opens before the fifth failure's retry comes due, and holds it for 30 s.
    assert_eq!(rx.requests().len(), 5, "the circuit opened at the fifth failure");
    let s = admin.get_message(&sent.id).await.unwrap();
    assert_eq!(s.push_attempts.len(), 5);
    assert!(!s.deliveries[0].state.is_final(), "held back, not dead: {:?}", s.deliveries[0].state);
    eventually(10, "one circuit.opened event", || async {
        let m = reqwest::get(format!("{}/metrics", hub.url())).await.unwrap().text().await.unwrap();
        m.contains("switchboard_push_events_total{event=\"circuit.opened\"} 1").then_some(())
    })
    .await;
    hub.stop().await;
}

/// Full jitter reaches the hub's retries: each waits a random part of its step, not the step.
#[tokio::test]
async fn retries_wait_a_random_part_of_their_step() {
    let hub = TestHub::start_with(|c| {
        c.push_retry_schedule_ms = vec![1_000; 6];
        c.circuit_failures = 100; // seven failures in a row: keep the circuit out of it
    })
    .await;
    let rx = Receiver::start(|_| Plan::Status(500)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = hub.admin().send(&SendMessage::text(agent_addr(&hook.agent.id), "x")).await.unwrap();
    state_of(&hub.admin(), &sent.id, DeliveryState::Dead, 30).await;
    let got = rx.requests();
    assert_eq!(got.len(), 7);
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    // Without jitter every gap would be at least the full second. With it, all six landing in
    // the last tenth of their step has a chance of one in a million.
    assert!(gaps.iter().any(|g| *g < Duration::from_millis(900)), "no retry came early: {gaps:?}");
    hub.stop().await;
}

/// A 410 disables the endpoint; it says nothing about the endpoint's health, so it is not a
/// failure: no `delivery.failing` for it, and it does not count toward the circuit's five.
/// The first failure after the endpoint is replaced is the first of its run. Found missing by
/// `cargo mutants` (docs/testing.md).
#[tokio::test]
async fn a_410_is_not_counted_as_a_failure() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (ops, ops_client) = hub.agent("ops", &[]).await;
    let settings =
        switchboard_core::api::TenantPushSettings { events_to: Some(agent_addr(&ops.agent.id)), ..Default::default() };
    admin.put_tenant_push_settings(&settings).await.unwrap();
    let gone = Receiver::start(|_| Plan::Status(410)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&gone.url)).await;
    let to = agent_addr(&hook.agent.id);
    let first = admin.send(&SendMessage::text(&to, "one")).await.unwrap();
    state_of(&admin, &first.id, DeliveryState::Dead, 10).await;
    let failing = Receiver::start(|_| Plan::Status(500)).await;
    let card = switchboard_core::api::RegisterAgent {
        name: "hook".into(),
        endpoint: Some(failing.url.clone()),
        ..Default::default()
    };
    admin.update_agent(&hook.agent.id, &card).await.unwrap();
    admin.send(&SendMessage::text(&to, "two")).await.unwrap();
    // The events agent hears of the 410 and then of the 500; a `delivery.failing` comes only
    // for the 500, as the first failure of its run.
    let mut events: Vec<(String, Value)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !events.iter().any(|(t, _)| t == "dev.switchboard.delivery.failing") {
        assert!(tokio::time::Instant::now() < deadline, "no delivery.failing event, got {events:?}");
        let inbox = ops_client
            .inbox(&InboxOptions { limit: Some(10), wait_ms: Some(1000), ..Default::default() })
            .await
            .unwrap();
        for m in inbox.messages {
            let Part::Data { data } = &m.message.parts[0] else { panic!("a data part") };
            events.push((data["type"].as_str().unwrap().to_owned(), data["data"].clone()));
        }
    }
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.contains(&"dev.switchboard.endpoint.disabled"), "{types:?}");
    let failing: Vec<&Value> =
        events.iter().filter(|(t, _)| t == "dev.switchboard.delivery.failing").map(|(_, d)| d).collect();
    assert_eq!(failing, [&serde_json::json!({"kind": "http_status"})], "the 410 was not a failure: {events:?}");
    hub.stop().await;
}
