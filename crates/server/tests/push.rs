//! Push delivery against real HTTP receivers on loopback: signatures, outcomes per status
//! class, retries, throttling, disabling, circuit breaking, dead letters and replay.

mod common;

use std::time::Duration;

use common::receiver::{Plan, Receiver, signature_valid};
use common::{ADMIN, TestHub, eventually};
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
    let sent = hub.admin().send(&SendMessage::text(format!("agent:{}", hook.agent.id), "ping")).await.unwrap();
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
    let sent = admin.send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    let sent = hub.admin().send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    let to = format!("agent:{}", hook.agent.id);
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
    let later = admin.send(&SendMessage::text(format!("agent:{}", witness.agent.id), "later")).await.unwrap();
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
    let sent = hub.admin().send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    let sent = hub.admin().send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    let sent = admin.send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    assert_ne!(admin.get_agent(&id).await.unwrap().status, AgentStatus::Error, "recovered");
    let metrics = reqwest::get(format!("{}/metrics", hub.url())).await.unwrap().text().await.unwrap();
    // Opened after the second failure; the first probe (third request) failed and reopened it.
    assert!(metrics.contains("switchboard_push_events_total{event=\"circuit.opened\"} 2"), "{metrics}");
    assert!(metrics.contains("switchboard_push_events_total{event=\"delivery.recovered\"} 1"), "{metrics}");
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
    let mut m = SendMessage::text(format!("agent:{}", hook.agent.id), "ping");
    m.conversation_id = Some("c-7".into());
    let sent = alice.send(&m).await.unwrap();
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    let reply = &inbox.messages[0].message;
    assert_eq!(reply.parts, vec![Part::text("pong")]);
    assert_eq!(reply.in_reply_to.as_deref(), Some(sent.id.as_str()));
    assert_eq!(reply.conversation_id.as_deref(), Some("c-7"));
    assert_eq!(reply.from, format!("agent:{}", hook.agent.id));
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
    hub.admin().send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    let sent = hub.admin().send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
    state_of(&hub.admin(), &sent.id, DeliveryState::Dead, 10).await;
    assert_eq!(hook_client.dead_letters(&DeliveryQuery::default()).await.unwrap().dead_letters.len(), 1);
    assert!(other.dead_letters(&DeliveryQuery::default()).await.unwrap().dead_letters.is_empty());
    let q = DeliveryQuery { recipient: Some(format!("agent:{}", hook.agent.id)), ..Default::default() };
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

    let sent = hub.admin().send(&SendMessage::text(format!("agent:{}", hook.agent.id), "hello python")).await.unwrap();
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
    admin.send(&SendMessage::text(format!("agent:{}", hook.agent.id), "signed twice")).await.unwrap();
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
    let sent = admin.send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    let sent = admin.send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
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
    let settings = switchboard_core::api::TenantPushSettings {
        events_to: Some(format!("agent:{}", ops.agent.id)),
        ..Default::default()
    };
    admin.put_tenant_push_settings(&settings).await.unwrap();
    let rx = Receiver::start(|_| Plan::Status(410)).await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let sent = admin.send(&SendMessage::text(format!("agent:{}", hook.agent.id), "x")).await.unwrap();
    // Events arrive as messages in the ops agent's inbox; wait for the one we caused.
    let subject = format!("agent:{}", hook.agent.id);
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
