//! Priorities (issue 12 item 8): `high` overtakes `normal` and `low` in a recipient's queue,
//! on the inbox and the stream, within the bounded window README states (so `low` is never
//! starved), and equal priorities keep accept order. With `SWITCHBOARD_TEST_HUB_DATABASE_URL`
//! set these run on PostgreSQL.

mod common;

use common::{TestHub, agent_addr, assert_problem, assert_unchanged, raw, within};
use serde_json::json;
use switchboard_client::InboxOptions;
use switchboard_core::api::{Priority, SendMessage};

fn with(p: Option<Priority>, to: &str, text: &str) -> SendMessage {
    SendMessage { priority: p, ..SendMessage::text(to, text) }
}

#[tokio::test]
async fn high_goes_first_and_low_last_on_the_inbox() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let to = agent_addr(&bob_reg.agent.id);
    for (p, text) in [
        (Some(Priority::Low), "low"),
        (None, "normal-1"),
        (Some(Priority::High), "high"),
        (Some(Priority::Normal), "normal-2"),
    ] {
        alice.send(&with(p, &to, text)).await.unwrap();
    }
    let got = bob.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.unwrap();
    let order: Vec<String> = got
        .messages
        .iter()
        .map(|m| serde_json::to_value(&m.message.parts[0]).unwrap()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["high", "normal-1", "normal-2", "low"]);
    let shown: Vec<Priority> = got.messages.iter().map(|m| m.message.priority).collect();
    assert_eq!(shown, [Priority::High, Priority::Normal, Priority::Normal, Priority::Low]);
    let status = alice.get_message(&got.messages[0].message.id).await.unwrap();
    assert_eq!(status.message.priority, Priority::High);
    hub.stop().await;
}

#[tokio::test]
async fn the_stream_hands_out_in_priority_order() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let to = agent_addr(&bob_reg.agent.id);
    let mut sent = Vec::new();
    for (p, text) in [(Some(Priority::Low), "low"), (None, "normal"), (Some(Priority::High), "high")] {
        sent.push((text, alice.send(&with(p, &to, text)).await.unwrap().id));
    }
    let mut stream = bob.stream().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = within(10, "bob's stream", stream.next_message()).await.unwrap().expect("stream open");
        stream.ack(&m.message.id).await.unwrap();
        got.push(sent.iter().find(|(_, id)| *id == m.message.id).map(|(t, _)| *t).unwrap());
    }
    assert_eq!(got, ["high", "normal", "low"]);
    hub.stop().await;
}

#[tokio::test]
async fn an_unknown_priority_is_refused_and_changes_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let body = json!({"to": agent_addr(&bob.agent.id), "parts": [{"kind": "text", "text": "x"}], "priority": "urgent"});
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(&bob.api_key), Some(body.to_string())).await,
        422,
        "invalid_body",
    );
    assert_eq!(p["errors"][0]["path"], "priority", "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "a send with an unknown priority");
    hub.stop().await;
}
