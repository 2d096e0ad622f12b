//! Retention and erasure on every backend: a purge deletes old messages whose deliveries are
//! all finished (and their deliveries and conversation entries), keeps anything still open
//! however old, keeps dead letters for their own period, pages with its cursor, and stays
//! within its tenant; erasure empties payloads and leaves the row.

use switchboard_store::conversations::{ConversationRecord, HistoryQuery, ParticipantRecord};
use switchboard_store::prelude::*;
use switchboard_store::retention::{PurgeRequest, RetentionSettings};

use super::{T, lease_req, message};

fn req(after: Option<String>, messages_before: Option<i64>, dead_before: Option<i64>, limit: usize) -> PurgeRequest {
    PurgeRequest { tenant: T.into(), after, messages_before, dead_before, limit }
}

async fn exists(s: &dyn Store, id: &str) -> bool {
    s.get_message(T, id).await.unwrap().is_some()
}

pub async fn retention_purges_finished_old_messages_only(s: &dyn Store) {
    // Ids sort by age as UUIDv7 ids do: m1 … m5 accepted at 1000, young at 9000.
    let mut young = message(T, "m9_young", "agent:b", None);
    young.created_at = 9000;
    let ids = ["m1_acked", "m2_open", "m3_expired", "m4_dead", "m5_acked"];
    let mut batch: Vec<_> = ids.iter().map(|id| message(T, id, "agent:b", None)).collect();
    batch[2].expires_at = Some(1500);
    batch[3].to = "agent:c".into();
    batch[3].recipients = vec!["agent:c".into()];
    batch.push(young);
    s.accept(batch).await.unwrap();
    s.accept(vec![message("t2", "m1_acked", "agent:b", None)]).await.unwrap();
    s.expire(1600).await.unwrap();
    // m4 dies at 2000 (one attempt allowed, lease lapsed).
    let mut lr = lease_req(T, "agent:c", 1000);
    lr.max_attempts = 1;
    s.lease(lr.clone()).await.unwrap();
    lr.now = 2000;
    s.lease(lr).await.unwrap();
    let leased = s.lease(lease_req(T, "agent:b", 9100)).await.unwrap();
    assert_eq!(leased.len(), 4, "m1, m2, m5 and the young one are handed out");
    s.ack(T, "agent:b", vec!["m1_acked".into(), "m5_acked".into(), "m9_young".into()], 9200, None).await.unwrap();

    // Messages older than 5000 go; dead letters are kept (no period).
    let out = s.purge(req(None, Some(5000), None, 100), 10_000).await.unwrap();
    assert_eq!(out.examined, 5, "the young message ends the scan: {out:?}");
    assert_eq!(out.last_id, None, "the pass reached its end");
    for (id, kept) in [
        ("m1_acked", false),
        ("m2_open", true),
        ("m3_expired", false),
        ("m4_dead", true),
        ("m5_acked", false),
        ("m9_young", true),
    ] {
        assert_eq!(exists(s, id).await, kept, "{id}");
    }
    assert_eq!(out.messages, 3);
    assert!(s.get_message("t2", "m1_acked").await.unwrap().is_some(), "another tenant's message is not touched");
    // The open one is handed out still; nothing accepted was lost.
    let (_, d) = s.get_message(T, "m2_open").await.unwrap().unwrap();
    assert_eq!(d.len(), 1);

    // A dead-letter period: the dead delivery (died at 2000) goes when older than it, and
    // then its message with it.
    let out = s.purge(req(None, Some(5000), Some(1999), 100), 10_000).await.unwrap();
    assert!(exists(s, "m4_dead").await, "died at 2000, not before 1999: kept ({out:?})");
    let out = s.purge(req(None, Some(5000), Some(2001), 100), 10_000).await.unwrap();
    assert_eq!((out.messages, out.deliveries), (1, 1), "{out:?}");
    assert!(!exists(s, "m4_dead").await);
    assert!(exists(s, "m2_open").await, "an open delivery keeps its message however old");
}

pub async fn a_purge_pages_with_its_cursor(s: &dyn Store) {
    let batch: Vec<_> = (0..7).map(|i| message(T, &format!("p{i}"), "agent:b", None)).collect();
    s.accept(batch).await.unwrap();
    s.lease(lease_req(T, "agent:b", 1100)).await.unwrap();
    s.ack(T, "agent:b", (0..7).map(|i| format!("p{i}")).collect(), 1200, None).await.unwrap();
    let first = s.purge(req(None, Some(5000), None, 3), 10_000).await.unwrap();
    assert_eq!((first.examined, first.messages), (3, 3));
    assert_eq!(first.last_id.as_deref(), Some("p2"), "a full batch says where to go on");
    let second = s.purge(req(first.last_id, Some(5000), None, 3), 10_000).await.unwrap();
    assert_eq!(second.messages, 3);
    let third = s.purge(req(second.last_id, Some(5000), None, 3), 10_000).await.unwrap();
    assert_eq!((third.messages, third.last_id), (1, None), "a short batch ends the pass");
    assert!(!exists(s, "p6").await);
}

pub async fn a_purged_conversation_message_leaves_the_history(s: &dyn Store) {
    let c1 = ConversationRecord {
        tenant: T.into(),
        id: "c1".into(),
        title: None,
        created_by: "admin".into(),
        created_at: 5,
        last_seq: 0,
        participants: vec![ParticipantRecord { address: "agent:b".into(), read_up_to: 0, joined_at: 5 }],
    };
    s.create_conversation(c1, None).await.unwrap();
    let mut m = message(T, "c_m1", "agent:b", None);
    m.conversation_id = Some("c1".into());
    m.in_history = true;
    let mut n = message(T, "c_m2", "agent:b", None);
    n.conversation_id = Some("c1".into());
    n.in_history = true;
    n.created_at = 9000;
    s.accept(vec![m, n]).await.unwrap();
    s.lease(lease_req(T, "agent:b", 9100)).await.unwrap();
    s.ack(T, "agent:b", vec!["c_m1".into(), "c_m2".into()], 9200, None).await.unwrap();
    let out = s.purge(req(None, Some(5000), None, 100), 10_000).await.unwrap();
    assert_eq!(out.messages, 1);
    let history = s.conversation_history(T, "c1", HistoryQuery { limit: 10, ..Default::default() }).await.unwrap();
    let ids: Vec<_> = history.iter().map(|(_, m)| m.id.as_str()).collect();
    assert_eq!(ids, ["c_m2"], "the purged message's place is gone from the conversation");
}

pub async fn retention_settings_are_per_tenant(s: &dyn Store) {
    assert!(s.retention(T).await.unwrap().is_empty());
    let set = RetentionSettings { messages_max_age_ms: Some(60_000), dead_letters_max_age_ms: None };
    s.put_retention(T, set, None).await.unwrap();
    assert_eq!(s.retention(T).await.unwrap(), set);
    assert!(s.retention("t2").await.unwrap().is_empty());
    assert_eq!(s.retention_tenants().await.unwrap(), vec![(T.to_owned(), set)]);
    s.put_retention(T, RetentionSettings::default(), None).await.unwrap();
    assert!(s.retention_tenants().await.unwrap().is_empty(), "cleared settings are not listed");
}

pub async fn erasure_empties_payloads_and_keeps_the_rows(s: &dyn Store) {
    let mut from_ann = message(T, "e1", "agent:b", None);
    from_ann.sender = "user:ann".into();
    let to_ann = message(T, "e2", "user:ann", None);
    let other = message(T, "e3", "agent:b", None);
    s.accept(vec![from_ann, to_ann, other, message("t2", "e4", "user:ann", None)]).await.unwrap();
    let erased = s.erase_messages(T, "user:ann", 5000).await.unwrap();
    assert_eq!(erased.messages, 2);
    for id in ["e1", "e2"] {
        let (m, d) = s.get_message(T, id).await.unwrap().expect("the tombstone stays");
        assert_eq!(m.parts, "[]", "{id}");
        assert_eq!(d.len(), 1, "its delivery stays");
    }
    assert_ne!(s.get_message(T, "e3").await.unwrap().unwrap().0.parts, "[]", "others' messages are kept");
    assert_ne!(s.get_message("t2", "e4").await.unwrap().unwrap().0.parts, "[]", "per tenant");
    assert_eq!(s.erase_messages(T, "user:ann", 6000).await.unwrap().messages, 0, "done once");
}
