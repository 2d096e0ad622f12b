//! Priorities, anycast reassignment and request/reply on every backend.

use switchboard_core::api::Priority;
use switchboard_store::prelude::*;
use switchboard_store::{NewMessage, Reassign};

use super::{T, lease_req, message};

fn with_priority(id: &str, created_at: i64, p: Priority) -> NewMessage {
    let mut m = message(T, id, "agent:b", None);
    m.created_at = created_at;
    m.priority = p;
    m
}

pub async fn priorities_order_a_recipients_queue(s: &dyn Store) {
    s.accept(vec![
        with_priority("low", 1000, Priority::Low),
        with_priority("n1", 1001, Priority::Normal),
        with_priority("high", 1002, Priority::High),
        with_priority("n2", 1003, Priority::Normal),
        // Sent more than 30 s after the low one: it does not overtake it (no starvation).
        with_priority("late", 31_001, Priority::Normal),
    ])
    .await
    .unwrap();
    let mut req = lease_req(T, "agent:b", 100_000);
    req.limit = 2;
    let mut order = Vec::new();
    for _ in 0..3 {
        order.extend(s.lease(req.clone()).await.unwrap().into_iter().map(|l| l.message.id));
    }
    assert_eq!(order, ["high", "n1", "n2", "low", "late"]);
    let (m, _) = s.get_message(T, "high").await.unwrap().unwrap();
    assert_eq!(m.priority, Priority::High);
    let (m, _) = s.get_message(T, "n1").await.unwrap().unwrap();
    assert_eq!(m.priority, Priority::Normal);
}

fn anycast(id: &str, to: &str) -> NewMessage {
    let mut m = message(T, id, "capability:x", None);
    m.recipients = vec![to.into()];
    m
}

fn reassign(id: &str, from: &str, to: &str, now: i64) -> Reassign {
    Reassign { tenant: T.into(), message_id: id.into(), from: from.into(), to: to.into(), push: false, now }
}

pub async fn a_lapsed_anycast_delivery_moves_once(s: &dyn Store) {
    let mut all = message(T, "all", "capability:x?all", None);
    all.recipients = vec!["agent:a".into()];
    s.accept(vec![anycast("m1", "agent:a"), message(T, "direct", "agent:a", None), all]).await.unwrap();
    // Not attempted yet: nothing has lapsed.
    assert!(s.lapsed_anycast(0, 1000).await.unwrap().is_empty());
    assert_eq!(s.lease(lease_req(T, "agent:a", 1000)).await.unwrap().len(), 3);
    // The lease (100 ms) runs out at 1100: only the anycast one is offered to another agent.
    let lapsed = s.lapsed_anycast(1050, 1100).await.unwrap();
    assert_eq!(lapsed.len(), 1, "{lapsed:?}");
    assert_eq!((lapsed[0].message_id.as_str(), lapsed[0].recipient.as_str()), ("m1", "agent:a"));
    assert_eq!(lapsed[0].to, "capability:x");
    assert!(!s.reassign(reassign("m1", "agent:a", "agent:b", 1050)).await.unwrap(), "not due yet");
    let mut woken = s.wakeups().subscribe((T.into(), "agent:b".into()));
    woken.borrow_and_update();
    assert!(s.reassign(reassign("m1", "agent:a", "agent:b", 1100)).await.unwrap());
    assert!(woken.has_changed().unwrap(), "the new recipient is woken");
    // A second node's reaper saw the same lapse: nothing more happens.
    assert!(!s.reassign(reassign("m1", "agent:a", "agent:c", 1100)).await.unwrap());
    assert!(!s.reassign(reassign("m1", "agent:b", "agent:c", 1100)).await.unwrap(), "due by a commit, not a lapse");
    assert!(s.lapsed_anycast(1100, 1200).await.unwrap().is_empty());
    let got = s.lease(lease_req(T, "agent:b", 1100)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].message.id.as_str(), got[0].attempt), ("m1", 2), "attempts carry over");
    let old: Vec<_> = s.lease(lease_req(T, "agent:a", 1100)).await.unwrap().into_iter().map(|l| l.message.id).collect();
    assert!(!old.contains(&"m1".to_owned()), "{old:?}");
    assert!(s.ack(T, "agent:a", vec!["m1".into()], 1101, None).await.unwrap().is_empty(), "the old holder's ack");
    assert_eq!(s.ack(T, "agent:b", vec!["m1".into()], 1101, None).await.unwrap().len(), 1);
}

pub async fn a_lease_taken_again_is_not_moved(s: &dyn Store) {
    s.accept(vec![anycast("m1", "agent:a")]).await.unwrap();
    s.lease(lease_req(T, "agent:a", 1000)).await.unwrap();
    // The holder leases it again as the lease runs out, before any reaper acts.
    assert_eq!(s.lease(lease_req(T, "agent:a", 1100)).await.unwrap().len(), 1);
    assert!(!s.reassign(reassign("m1", "agent:a", "agent:b", 1150)).await.unwrap());
    assert!(s.reassign(reassign("m1", "agent:a", "agent:b", 1200)).await.unwrap(), "its second lease ran out");
}

pub async fn first_reply_is_found_by_in_reply_to(s: &dyn Store) {
    let mut request = message(T, "req", "agent:b", None);
    request.sender = "agent:a".into();
    let reply = |id: &str, from: &str, at: i64| {
        let mut m = message(T, id, "agent:a", None);
        m.sender = from.into();
        m.in_reply_to = Some("req".into());
        m.created_at = at;
        m
    };
    s.accept(vec![request]).await.unwrap();
    assert!(s.first_reply(T, "req", "agent:a").await.unwrap().is_none());
    s.accept(vec![reply("own", "agent:a", 1001), reply("r1", "agent:b", 1002), reply("r2", "agent:c", 1003)])
        .await
        .unwrap();
    let found = s.first_reply(T, "req", "agent:a").await.unwrap().unwrap();
    assert_eq!(found.id, "r1");
    assert_eq!(found.in_reply_to.as_deref(), Some("req"));
    assert!(s.first_reply("t2", "req", "agent:a").await.unwrap().is_none(), "tenants");
}
