//! Request/reply (issue 12 item 3): `POST /v1/messages?wait=reply` answers 200 with the first
//! reply, or 504 `reply_timeout` with the request still delivered and a late reply delivered
//! as any message. With `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these run on PostgreSQL, and
//! the cross-node case runs with the reply accepted by a second node.

mod common;

use common::{ADMIN, TestHub, agent_addr, assert_problem, assert_unchanged, raw, within};
use serde_json::json;
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{DeliveryState, SendMessage};

/// Waits for bob's next message and answers it.
async fn answer_next(bob: &Client, text: &str) -> String {
    let got = within(10, "bob gets the request", async {
        loop {
            let got = bob.inbox(&InboxOptions { wait_ms: Some(2000), ..Default::default() }).await.unwrap();
            if let Some(m) = got.messages.into_iter().next() {
                return m;
            }
        }
    })
    .await;
    let request = got.message;
    bob.ack(vec![request.id.clone()]).await.unwrap();
    let reply = SendMessage { in_reply_to: Some(request.id.clone()), ..SendMessage::text(&request.from, text) };
    bob.send(&reply).await.unwrap();
    request.id
}

#[tokio::test]
async fn a_request_is_answered_with_its_reply() {
    let hub = TestHub::start().await;
    let (alice_reg, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let responder = tokio::spawn(async move { answer_next(&bob, "pong").await });
    let answer = alice.request(&SendMessage::text(agent_addr(&bob_reg.agent.id), "ping"), 10_000).await.unwrap();
    let request_id = responder.await.unwrap();
    assert_eq!(answer.message.id, request_id);
    assert_eq!(answer.message.from, agent_addr(&alice_reg.agent.id));
    assert_eq!(answer.reply.in_reply_to.as_deref(), Some(request_id.as_str()));
    assert_eq!(serde_json::to_value(&answer.reply.parts[0]).unwrap()["text"], "pong");
    // The answer handed the reply over: it is acknowledged, not left in alice's inbox.
    let status = alice.get_message(&answer.reply.id).await.unwrap();
    assert_eq!(status.deliveries[0].state, DeliveryState::Acked);
    assert!(alice.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn no_reply_in_time_is_504_and_a_late_reply_is_delivered() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let err = alice.request(&SendMessage::text(agent_addr(&bob_reg.agent.id), "ping"), 200).await.unwrap_err();
    assert_eq!(err.code(), Some("reply_timeout"), "{err}");
    // The request was stored and stays delivered: bob gets it and answers late.
    let request_id = answer_next(&bob, "late pong").await;
    let got = alice.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].message.in_reply_to.as_deref(), Some(request_id.as_str()));
    hub.stop().await;
}

#[tokio::test]
async fn a_504_is_a_problem_document_and_bad_waits_change_nothing() {
    let hub = TestHub::start().await;
    let (alice, _) = hub.agent("alice", &[]).await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let body = json!({"to": agent_addr(&bob.agent.id), "parts": [{"kind": "text", "text": "ping"}]}).to_string();
    let got =
        raw(&hub, "POST", "/v1/messages?wait=reply&timeout_ms=50", Some(&alice.api_key), Some(body.clone())).await;
    let p = assert_problem(got, 504, "reply_timeout");
    assert!(p["detail"].as_str().unwrap().contains("stays delivered"), "{p}");
    let before = hub.snapshot().await;
    // The admin has no inbox for a reply: 422 naming `wait`.
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages?wait=reply", Some(ADMIN), Some(body.clone())).await,
        422,
        "invalid_body",
    );
    assert_eq!(p["errors"][0]["path"], "wait", "{p}");
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages?wait=reply&timeout_ms=300001", Some(&alice.api_key), Some(body)).await,
        400,
        "invalid_query",
    );
    assert_eq!(p["errors"][0]["path"], "timeout_ms", "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "refused waits for a reply");
    hub.stop().await;
}

#[tokio::test]
async fn a_reply_accepted_by_another_node_answers_the_wait() {
    let hub = TestHub::start().await;
    let Some(other) = hub.second_node().await else { return };
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, _) = hub.agent("bob", &[]).await;
    // bob talks to the second node only.
    let bob = Client::new(other.url(), None).with_token(bob_reg.api_key.clone());
    let responder = tokio::spawn(async move { answer_next(&bob, "from node two").await });
    let answer = alice.request(&SendMessage::text(agent_addr(&bob_reg.agent.id), "ping"), 10_000).await.unwrap();
    assert_eq!(answer.message.id, responder.await.unwrap());
    assert_eq!(serde_json::to_value(&answer.reply.parts[0]).unwrap()["text"], "from node two");
    other.stop().await;
    hub.stop().await;
}
