//! E-mail notifications on every backend: the cursor puts each request to a person in the
//! outbox once (not deliveries to agents, not replies to the person's own messages), a claim
//! holds rows from other claims until sent, deferred or the hold ends, and preferences belong
//! to users of the tenant.

use switchboard_store::notify::{Collect, OutboxItem};
use switchboard_store::prelude::*;
use switchboard_store::users::UserRecord;

use super::{T, message};

async fn user(s: &dyn Store, id: &str) {
    let u = UserRecord {
        tenant: T.into(),
        id: id.into(),
        email: format!("{id}@example.com"),
        name: id.into(),
        role: switchboard_core::principal::Role::Member,
        has_password: false,
        created_at: 1,
        updated_at: 1,
    };
    s.create_user(u, None, None).await.unwrap();
}

fn collect(now: i64) -> Collect {
    Collect { tenant: T.into(), now, oldest: 0, limit: 100 }
}

fn ids(items: &[OutboxItem]) -> Vec<&str> {
    let mut v: Vec<&str> = items.iter().map(|i| i.message_id.as_str()).collect();
    v.sort();
    v
}

pub async fn requests_to_people_enter_the_outbox_once_and_are_claimed_once(s: &dyn Store) {
    user(s, "u1").await;
    let mut own = message(T, "m0", "agent:a", None);
    own.sender = "user:u1".into();
    let mut reply = message(T, "m3", "user:u1", None);
    reply.in_reply_to = Some("m0".into());
    let batch = vec![
        own,
        message(T, "m1", "user:u1", None),
        message(T, "m2", "agent:b", None),
        reply,
        message(T, "m4", "user:u1", None),
    ];
    s.accept(batch).await.unwrap();
    // Far past the accept (1000): every row is settled, on either backend.
    let now = 100_000;
    assert_eq!(
        s.collect_notifications(collect(now)).await.unwrap(),
        2,
        "m1 and m4; not m2 (an agent), not m3 (a reply)"
    );
    assert_eq!(s.collect_notifications(collect(now)).await.unwrap(), 0, "the cursor moved past them");

    let claimed = s.claim_notifications(now, 60_000, "node-a", 10).await.unwrap();
    assert_eq!(ids(&claimed), ["m1", "m4"]);
    assert_eq!(claimed[0].user_id, "u1");
    assert!(s.claim_notifications(now, 60_000, "node-b", 10).await.unwrap().is_empty(), "held by node-a");

    // Deferred rows come due at their time; finished ones never again.
    s.defer_notifications(&claimed[..1], now + 10).await.unwrap();
    s.finish_notifications(&claimed[1..], now).await.unwrap();
    assert!(s.claim_notifications(now + 9, 60_000, "node-b", 10).await.unwrap().is_empty());
    let again = s.claim_notifications(now + 10, 60_000, "node-b", 10).await.unwrap();
    assert_eq!(ids(&again), [claimed[0].message_id.as_str()]);
    // A claim that is never finished (its node died) comes due after the hold.
    let lapsed = s.claim_notifications(now + 10 + 60_000, 60_000, "node-c", 10).await.unwrap();
    assert_eq!(ids(&lapsed), ids(&again));
    s.finish_notifications(&lapsed, now).await.unwrap();
    assert!(s.claim_notifications(now + 1_000_000, 60_000, "node-c", 10).await.unwrap().is_empty());

    // Older than `oldest` is history; a new tenant's cursor starts from its first delivery.
    s.accept(vec![message(T, "m5", "user:u1", None)]).await.unwrap();
    let k = Collect { oldest: 2000, ..collect(now) };
    assert_eq!(s.collect_notifications(k).await.unwrap(), 0);
}

pub async fn notification_prefs_belong_to_users_and_release_held_rows(s: &dyn Store) {
    assert!(!s.put_notify_prefs(T, "nobody", "{}".into(), 1, None).await.unwrap(), "no such user");
    assert_eq!(s.notify_prefs(T, "nobody").await.unwrap(), None);
    user(s, "u1").await;
    s.accept(vec![message(T, "m1", "user:u1", None)]).await.unwrap();
    s.collect_notifications(collect(100_000)).await.unwrap();
    let claimed = s.claim_notifications(100_000, 60_000, "n", 10).await.unwrap();
    s.defer_notifications(&claimed, 10_000_000).await.unwrap();
    assert!(s.put_notify_prefs(T, "u1", r#"{"email":true}"#.into(), 200_000, None).await.unwrap());
    assert_eq!(s.notify_prefs(T, "u1").await.unwrap().as_deref(), Some(r#"{"email":true}"#));
    assert_eq!(s.notify_prefs("t2", "u1").await.unwrap(), None, "another tenant's");
    let released = s.claim_notifications(200_000, 60_000, "n", 10).await.unwrap();
    assert_eq!(ids(&released), ["m1"], "held rows come due when the preferences change");
}

pub async fn the_link_key_is_made_once(s: &dyn Store) {
    let first = s.link_key(vec![1; 32]).await.unwrap();
    assert_eq!(first, vec![1; 32]);
    assert_eq!(s.link_key(vec![2; 32]).await.unwrap(), first);
}
