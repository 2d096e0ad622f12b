//! Ordering per recipient, as README ("Each recipient gets its messages in the order the hub
//! accepted them. A redelivery (lease expiry or nack) comes back after messages that were
//! already handed out") and ARCHITECTURE ("`deliveries.seq` is assigned at commit, in accept
//! order, and `lease` hands out in `seq` order. A redelivered message keeps its `seq`")
//! promise it, tested with several senders at once and across a redelivery. With
//! `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these run on PostgreSQL.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{TestHub, agent_addr, within};
use switchboard_client::InboxOptions;
use switchboard_core::api::SendMessage;

const SENDERS: usize = 4;
const EACH: usize = 25;

/// One send as its sender saw it: a logical time just before the request and just after
/// the 202, from one counter shared by all senders.
struct Sent {
    id: String,
    sender: usize,
    n: usize,
    asked: u64,
    answered: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_reach_one_recipient_in_commit_order() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let to = agent_addr(&bob_reg.agent.id);
    let mut stream = bob.stream().await.unwrap();
    let total = SENDERS * EACH;
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(total);
        while got.len() < total {
            let m = stream.next_message().await.unwrap().expect("stream open");
            stream.ack(&m.message.id).await.unwrap();
            got.push(m.message.id);
        }
        got
    });

    let clock = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (_, client) = hub.agent(&format!("sender-{s}"), &[]).await;
        let (to, clock) = (to.clone(), clock.clone());
        // Each sender sends its next message once the previous one is accepted.
        senders.push(tokio::spawn(async move {
            let mut sent = Vec::with_capacity(EACH);
            for n in 0..EACH {
                let asked = clock.fetch_add(1, Ordering::SeqCst);
                let id = client.send(&SendMessage::text(&to, format!("{s}-{n}"))).await.unwrap().id;
                let answered = clock.fetch_add(1, Ordering::SeqCst);
                sent.push(Sent { id, sender: s, n, asked, answered });
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for s in senders {
        sent.extend(within(60, "the senders finish", s).await.unwrap());
    }
    let got = within(60, "bob receives every message", reader).await.unwrap();
    let position: HashMap<&str, usize> = got.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    assert_eq!(position.len(), total, "each message once: {got:?}");

    // Each sender's messages arrive in its own send order.
    for s in 0..SENDERS {
        let order: Vec<usize> = got
            .iter()
            .filter_map(|id| sent.iter().find(|m| m.id == *id))
            .filter(|m| m.sender == s)
            .map(|m| m.n)
            .collect();
        assert_eq!(order, (0..EACH).collect::<Vec<_>>(), "sender {s}'s messages out of order");
    }
    // A message accepted (202) before another was sent arrives before it, whoever sent them.
    for a in &sent {
        for b in sent.iter().filter(|b| a.answered < b.asked) {
            assert!(
                position[a.id.as_str()] < position[b.id.as_str()],
                "{}-{} was accepted before {}-{} was sent, but arrived after it",
                a.sender,
                a.n,
                b.sender,
                b.n
            );
        }
    }
    // And the whole order is the store's commit order.
    let seqs = hub.delivery_seqs(&to).await;
    let in_order: Vec<i64> = got.iter().map(|id| seqs[id]).collect();
    assert!(in_order.windows(2).all(|w| w[0] < w[1]), "received out of seq order: {in_order:?}");
    hub.stop().await;
}

#[tokio::test]
async fn a_nacked_message_comes_back_after_those_handed_out_and_before_those_not_yet() {
    let hub = TestHub::start().await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let to = agent_addr(&bob_reg.agent.id);
    let admin = hub.admin();
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(admin.send(&SendMessage::text(&to, format!("m{i}"))).await.unwrap().id);
    }
    let take = |limit| {
        let bob = bob.clone();
        async move {
            let inbox = bob.inbox(&InboxOptions { limit: Some(limit), ..Default::default() }).await.unwrap();
            inbox.messages.into_iter().map(|m| (m.message.id, m.attempt)).collect::<Vec<_>>()
        }
    };
    assert_eq!(take(2).await, [(ids[0].clone(), 1), (ids[1].clone(), 1)]);
    bob.nack(vec![ids[0].clone()], None).await.unwrap();
    // m1 comes back after m2, which was already handed out, but keeps its seq: it is handed
    // out again before m3, m4 and m5, which were not.
    assert_eq!(take(10).await, [(ids[0].clone(), 2), (ids[2].clone(), 1), (ids[3].clone(), 1), (ids[4].clone(), 1)]);
    let seqs = hub.delivery_seqs(&to).await;
    assert!(ids.windows(2).all(|w| seqs[&w[0]] < seqs[&w[1]]), "a nack keeps the delivery's seq: {seqs:?}");
    hub.stop().await;
}
