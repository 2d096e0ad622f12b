//! Anycast that never strands work (issue 12 item 5): `capability:<name>` spreads over the
//! active agents, queues for an inactive one when none is active (unless the sender requires
//! an active one), refuses only when no agent has the capability, and moves a delivery whose
//! lease ran out to another capable agent. With `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these
//! run on PostgreSQL.

mod common;

use std::collections::HashMap;

use common::{TestHub, agent_addr, assert_problem, assert_unchanged, raw, within};
use serde_json::json;
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{AgentRegistered, Capability, DeliveryState, RegisterAgent, SendMessage};

/// Registers `name` with capability `work`, set up by `cap`.
async fn worker(hub: &TestHub, name: &str, cap: impl FnOnce(&mut Capability)) -> (AgentRegistered, Client) {
    let mut c = Capability::named("work");
    cap(&mut c);
    let req = RegisterAgent { name: name.into(), capabilities: vec![c], ..Default::default() };
    let r = hub.admin().register_agent(&req).await.expect("register agent");
    let client = hub.admin().with_token(r.api_key.clone());
    (r, client)
}

/// Makes the agent `active` (seen within the heartbeat window).
async fn beat(reg: &AgentRegistered, c: &Client) {
    c.heartbeat(&reg.agent.id).await.expect("heartbeat");
}

#[tokio::test]
async fn anycast_spreads_over_three_active_agents() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let mut ids = Vec::new();
    for n in ["w1", "w2", "w3"] {
        let (r, c) = worker(&hub, n, |_| {}).await;
        beat(&r, &c).await;
        ids.push(agent_addr(&r.agent.id));
    }
    // An inactive one is not picked while active ones exist.
    let (idle, _) = worker(&hub, "idle", |_| {}).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for i in 0..30 {
        let r = alice.send(&SendMessage::text("capability:work", format!("job {i}"))).await.unwrap();
        assert_eq!(r.recipients.len(), 1);
        *count.entry(r.recipients[0].clone()).or_default() += 1;
    }
    // Nobody acks, so least-outstanding keeps them level: ten each.
    for id in &ids {
        assert_eq!(count.get(id), Some(&10), "{count:?}");
    }
    assert!(!count.contains_key(&agent_addr(&idle.agent.id)), "{count:?}");
    hub.stop().await;
}

#[tokio::test]
async fn anycast_queues_for_an_inactive_agent_who_pulls_it_later() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (w, wc) = worker(&hub, "sleeper", |_| {}).await;
    // Registered, never seen: `inactive`. The send is accepted for it anyway.
    let sent = alice.send(&SendMessage::text("capability:work", "when you wake up")).await.unwrap();
    assert_eq!(sent.recipients, [agent_addr(&w.agent.id)]);
    let got = wc.inbox(&InboxOptions { wait_ms: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].message.id, sent.id);
    hub.stop().await;
}

#[tokio::test]
async fn require_active_refuses_and_no_capable_agent_is_its_own_code() {
    let hub = TestHub::start().await;
    let (alice, _) = hub.agent("alice", &[]).await;
    worker(&hub, "sleeper", |_| {}).await;
    let before = hub.snapshot().await;
    let send =
        |body: serde_json::Value| raw(&hub, "POST", "/v1/messages", Some(&alice.api_key), Some(body.to_string()));
    let text = json!([{"kind": "text", "text": "x"}]);
    let p = assert_problem(
        send(json!({"to": "capability:work", "parts": text, "require_active": true})).await,
        422,
        "unknown_recipient",
    );
    assert!(p["detail"].as_str().unwrap().contains("no active agent"), "{p}");
    let p = assert_problem(send(json!({"to": "capability:nobody", "parts": text})).await, 422, "no_capable_agent");
    assert!(p["detail"].as_str().unwrap().contains("`nobody`"), "{p}");
    assert_problem(
        send(json!({"to": "capability:work", "parts": text, "require_active": "yes"})).await,
        422,
        "invalid_body",
    );
    assert_unchanged(&before, &hub.snapshot().await, "refused anycast sends");
    hub.stop().await;
}

/// Sends one job while only `first` is active, so it goes to `first`.
async fn job_for(hub: &TestHub, first: (&AgentRegistered, &Client)) -> String {
    beat(first.0, first.1).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let sent = alice.send(&SendMessage::text("capability:work", "job")).await.unwrap();
    assert_eq!(sent.recipients, [agent_addr(&first.0.agent.id)]);
    sent.id
}

#[tokio::test]
async fn a_delivery_moves_off_an_agent_that_never_acks() {
    let hub = TestHub::start().await;
    let (slow, slow_c) = worker(&hub, "slow", |_| {}).await;
    let (spare, spare_c) = worker(&hub, "spare", |_| {}).await;
    let id = job_for(&hub, (&slow, &slow_c)).await;
    // `slow` takes it under a short lease and never acks.
    let got = slow_c.inbox(&InboxOptions { visibility_ms: Some(200), ..Default::default() }).await.unwrap();
    assert_eq!(got.messages[0].message.id, id);
    // When the lease runs out, the reaper gives it to `spare` (inactive: the only other one).
    let got = within(10, "spare gets the job", async {
        loop {
            let got = spare_c.inbox(&InboxOptions { wait_ms: Some(2000), ..Default::default() }).await.unwrap();
            if let Some(m) = got.messages.into_iter().next() {
                return m;
            }
        }
    })
    .await;
    assert_eq!((got.message.id.as_str(), got.attempt), (id.as_str(), 2));
    spare_c.ack(vec![id.clone()]).await.unwrap();
    let status = hub.admin().get_message(&id).await.unwrap();
    assert_eq!(status.deliveries.len(), 1);
    assert_eq!(status.deliveries[0].recipient, agent_addr(&spare.agent.id));
    assert_eq!(status.deliveries[0].state, DeliveryState::Acked);
    // The old holder's late ack changes nothing.
    assert_eq!(slow_c.ack(vec![id.clone()]).await.unwrap().ignored, [id]);
    hub.stop().await;
}

#[tokio::test]
async fn reassign_on_timeout_false_keeps_the_delivery_with_its_agent() {
    let hub = TestHub::start().await;
    let (slow, slow_c) = worker(&hub, "slow", |c| c.reassign_on_timeout = Some(false)).await;
    let (_, spare_c) = worker(&hub, "spare", |_| {}).await;
    let id = job_for(&hub, (&slow, &slow_c)).await;
    slow_c.inbox(&InboxOptions { visibility_ms: Some(200), ..Default::default() }).await.unwrap();
    // The lease runs out; `slow` gets it again (attempt 2): it was not moved.
    let again = within(10, "slow gets the job again", async {
        loop {
            let got = slow_c.inbox(&InboxOptions { wait_ms: Some(2000), ..Default::default() }).await.unwrap();
            if let Some(m) = got.messages.into_iter().next() {
                return m;
            }
        }
    })
    .await;
    assert_eq!((again.message.id.as_str(), again.attempt), (id.as_str(), 2));
    assert!(spare_c.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty());
    let card = hub.admin().get_agent(&slow.agent.id).await.unwrap();
    assert_eq!(card.capabilities[0].reassign_on_timeout, Some(false), "the setting is on the card");
    hub.stop().await;
}
