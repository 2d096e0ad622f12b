//! Conversations on every backend: participants and their audit entries, the history's one
//! gapless order (also under concurrent accepts), threads, and read markers that only move
//! forward.

use serde_json::json;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_store::audit::AuditFilter;
use switchboard_store::conversations::{ConversationRecord, HistoryQuery, ParticipantRecord};
use switchboard_store::prelude::*;
use switchboard_store::{AcceptOutcome, NewMessage};

use super::{T, message};

fn by(action: AuditAction, target: &str) -> Option<NewAuditEvent> {
    Some(NewAuditEvent {
        tenant: T.into(),
        at: 1,
        actor: "admin".into(),
        action,
        target: target.into(),
        detail: json!({}),
    })
}

fn conversation(tenant: &str, id: &str, people: &[&str]) -> ConversationRecord {
    ConversationRecord {
        tenant: tenant.into(),
        id: id.into(),
        title: Some("plan".into()),
        created_by: "admin".into(),
        created_at: 5,
        last_seq: 0,
        participants: people
            .iter()
            .map(|a| ParticipantRecord { address: (*a).into(), read_up_to: 0, joined_at: 5 })
            .collect(),
    }
}

/// A message from `from` into conversation `cv`'s history.
fn said(id: &str, cv: &str, from: &str) -> NewMessage {
    let mut m = message(T, id, &format!("conversation:{cv}"), None);
    m.sender = from.into();
    m.conversation_id = Some(cv.into());
    m.in_history = true;
    m
}

async fn history(s: &dyn Store, cv: &str, after_seq: i64, limit: usize) -> Vec<(i64, String)> {
    let q = HistoryQuery { after_seq, limit, thread: None };
    s.conversation_history(T, cv, q).await.unwrap().into_iter().map(|(seq, m)| (seq, m.id)).collect()
}

async fn actions(s: &dyn Store) -> Vec<String> {
    let f = AuditFilter { limit: 100, ..Default::default() };
    s.list_audit(T, f).await.unwrap().into_iter().map(|e| e.action).collect()
}

pub(super) async fn conversations_are_listed_per_participant_and_tenant(s: &dyn Store) {
    let create = by(AuditAction::ConversationCreate, "conversation:c1");
    s.create_conversation(conversation(T, "c1", &["agent:a", "user:u"]), create).await.unwrap();
    s.create_conversation(conversation(T, "c2", &["agent:a"]), None).await.unwrap();
    s.create_conversation(conversation("t2", "c3", &["agent:a"]), None).await.unwrap();
    let c1 = s.get_conversation(T, "c1").await.unwrap().unwrap();
    assert_eq!(c1, conversation(T, "c1", &["agent:a", "user:u"]));
    assert!(s.get_conversation("t2", "c1").await.unwrap().is_none(), "tenants do not see each other");
    let ids = |v: Vec<ConversationRecord>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_conversations(T, None, None, 10).await.unwrap()), ["c1", "c2"]);
    assert_eq!(ids(s.list_conversations(T, None, None, 1).await.unwrap()), ["c1"]);
    assert_eq!(ids(s.list_conversations(T, None, Some("c1".into()), 10).await.unwrap()), ["c2"]);
    assert_eq!(ids(s.list_conversations(T, Some("user:u"), None, 10).await.unwrap()), ["c1"]);
    assert_eq!(ids(s.list_conversations(T, Some("agent:a"), Some("c1".into()), 10).await.unwrap()), ["c2"]);
    let listed = s.list_conversations(T, Some("agent:a"), None, 10).await.unwrap();
    assert_eq!(listed[0].participants.len(), 2, "a listed conversation has all its participants");
    assert_eq!(ids(s.list_conversations("t2", None, None, 10).await.unwrap()), ["c3"]);
    assert_eq!(actions(s).await, ["conversation.create"]);
}

pub(super) async fn participants_join_once_and_leave_with_an_entry_each(s: &dyn Store) {
    s.create_conversation(conversation(T, "c1", &["agent:a"]), None).await.unwrap();
    let join = by(AuditAction::ConversationJoin, "conversation:c1");
    assert_eq!(s.add_participant(T, "c1", "user:u", 7, join.clone()).await.unwrap(), Some(true));
    assert_eq!(s.add_participant(T, "c1", "user:u", 8, join.clone()).await.unwrap(), Some(false), "already in");
    assert_eq!(s.add_participant(T, "nope", "user:u", 8, join.clone()).await.unwrap(), None);
    assert_eq!(s.add_participant("t2", "c1", "user:u", 8, join).await.unwrap(), None, "another tenant's");
    let c1 = s.get_conversation(T, "c1").await.unwrap().unwrap();
    let who: Vec<(&str, i64)> = c1.participants.iter().map(|p| (p.address.as_str(), p.joined_at)).collect();
    assert_eq!(who, [("agent:a", 5), ("user:u", 7)], "in the order they joined");
    let leave = by(AuditAction::ConversationLeave, "conversation:c1");
    assert!(s.remove_participant(T, "c1", "agent:a", leave.clone()).await.unwrap());
    assert!(!s.remove_participant(T, "c1", "agent:a", leave).await.unwrap(), "already gone");
    let c1 = s.get_conversation(T, "c1").await.unwrap().unwrap();
    assert_eq!(c1.participants.len(), 1);
    assert_eq!(
        actions(s).await,
        ["conversation.participant_add", "conversation.participant_remove"],
        "an entry only for what changed"
    );
}

pub(super) async fn history_numbers_messages_without_gaps_in_accept_order(s: &dyn Store) {
    s.create_conversation(conversation(T, "c1", &["agent:a", "agent:b"]), None).await.unwrap();
    s.create_conversation(conversation(T, "c2", &["agent:a"]), None).await.unwrap();
    let mut keyed = said("m3", "c1", "agent:b");
    keyed.idempotency_key = Some("k".into());
    let group = vec![said("m1", "c1", "agent:a"), said("m2", "c2", "agent:a"), said("m2b", "c1", "agent:b"), keyed];
    let out = s.accept(group).await.unwrap();
    assert!(out.iter().all(|o| matches!(o, AcceptOutcome::Accepted { .. })), "{out:?}");
    let mut again = said("m3-retry", "c1", "agent:b");
    again.idempotency_key = Some("k".into());
    let mut label = said("m4", "c1", "agent:a");
    label.in_history = false;
    let out = s.accept(vec![again, label, said("m5", "gone", "agent:a"), said("m6", "c1", "agent:a")]).await.unwrap();
    assert!(matches!(out[0], AcceptOutcome::Duplicate { .. }), "{out:?}");
    let expect = [(1, "m1".to_owned()), (2, "m2b".into()), (3, "m3".into()), (4, "m6".into())];
    assert_eq!(
        history(s, "c1", 0, 10).await,
        expect,
        "a duplicate, a message not in the history and one for an unknown conversation take no number"
    );
    assert_eq!(history(s, "c1", 1, 2).await, expect[1..3], "pages follow seq");
    assert_eq!(history(s, "c2", 0, 10).await, [(1, "m2".to_owned())], "each conversation counts alone");
    assert_eq!(s.get_conversation(T, "c1").await.unwrap().unwrap().last_seq, 4);
    assert!(
        s.conversation_history("t2", "c1", HistoryQuery { limit: 10, ..Default::default() }).await.unwrap().is_empty()
    );
}

pub(super) async fn concurrent_senders_share_one_gapless_order(s: &dyn Store) {
    s.create_conversation(conversation(T, "c1", &["agent:a", "agent:b"]), None).await.unwrap();
    const EACH: usize = 20;
    let sender = |who: &'static str| async move {
        for n in 0..EACH {
            let out = s.accept(vec![said(&format!("{who}-{n:02}"), "c1", who)]).await.unwrap();
            assert!(matches!(out[0], AcceptOutcome::Accepted { .. }));
        }
    };
    futures_util::future::join(sender("agent:a"), sender("agent:b")).await;
    let got = history(s, "c1", 0, 100).await;
    assert_eq!(got.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (1..=2 * EACH as i64).collect::<Vec<_>>());
    for who in ["agent:a", "agent:b"] {
        let mine: Vec<&String> = got.iter().map(|(_, id)| id).filter(|id| id.starts_with(who)).collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(mine, sorted, "each sender's messages keep the order it sent them in");
    }
}

pub(super) async fn threads_follow_replies_through_replies(s: &dyn Store) {
    s.create_conversation(conversation(T, "c1", &["agent:a", "agent:b"]), None).await.unwrap();
    let reply = |id: &str, to: &str| {
        let mut m = said(id, "c1", "agent:b");
        m.in_reply_to = Some(to.into());
        m
    };
    let msgs = vec![said("root", "c1", "agent:a"), said("other", "c1", "agent:a"), reply("r1", "root")];
    s.accept(msgs).await.unwrap();
    s.accept(vec![reply("r2", "r1"), reply("r3", "other"), reply("r4", "root")]).await.unwrap();
    let thread = |root: &str, after_seq: i64| HistoryQuery { after_seq, limit: 10, thread: Some(root.into()) };
    let ids = |v: Vec<(i64, switchboard_store::MessageRecord)>| v.into_iter().map(|(_, m)| m.id).collect::<Vec<_>>();
    assert_eq!(ids(s.conversation_history(T, "c1", thread("root", 0)).await.unwrap()), ["root", "r1", "r2", "r4"]);
    assert_eq!(ids(s.conversation_history(T, "c1", thread("root", 3)).await.unwrap()), ["r2", "r4"], "paged by seq");
    assert_eq!(ids(s.conversation_history(T, "c1", thread("r1", 0)).await.unwrap()), ["r1", "r2"]);
    assert!(s.conversation_history(T, "c1", thread("nope", 0)).await.unwrap().is_empty());
}

pub(super) async fn read_markers_only_move_forward(s: &dyn Store) {
    s.create_conversation(conversation(T, "c1", &["agent:a", "user:u"]), None).await.unwrap();
    let msgs = vec![said("m1", "c1", "agent:a"), said("m2", "c1", "user:u"), said("m3", "c1", "agent:a")];
    s.accept(msgs).await.unwrap();
    assert_eq!(s.unread(T, "c1", "user:u", 0).await.unwrap(), 2, "its own message is not unread");
    assert_eq!(s.mark_read(T, "c1", "user:u", 2).await.unwrap(), Some(2));
    assert_eq!(s.mark_read(T, "c1", "user:u", 1).await.unwrap(), Some(2), "never back");
    assert_eq!(s.unread(T, "c1", "user:u", 2).await.unwrap(), 1);
    assert_eq!(s.mark_read(T, "c1", "user:x", 2).await.unwrap(), None, "not a participant");
    let c1 = s.get_conversation(T, "c1").await.unwrap().unwrap();
    let marks: Vec<(&str, i64)> = c1.participants.iter().map(|p| (p.address.as_str(), p.read_up_to)).collect();
    assert_eq!(marks, [("agent:a", 0), ("user:u", 2)]);
}

pub(super) async fn deleting_an_agent_or_user_ends_its_places(s: &dyn Store) {
    s.create_agent(super::agent(T, "a", "ann"), "hash-a".into(), None).await.unwrap();
    let u = switchboard_store::users::UserRecord {
        tenant: T.into(),
        id: "u".into(),
        email: "u@example.com".into(),
        name: "U".into(),
        role: switchboard_core::principal::Role::Member,
        has_password: false,
        created_at: 1,
        updated_at: 1,
    };
    s.create_user(u, None, None).await.unwrap();
    s.create_conversation(conversation(T, "c1", &["agent:a", "user:u", "agent:b"]), None).await.unwrap();
    assert!(s.delete_agent(T, "a", 9, None).await.unwrap());
    assert!(s.delete_user(T, "u", None).await.unwrap());
    let c1 = s.get_conversation(T, "c1").await.unwrap().unwrap();
    assert_eq!(c1.participants.iter().map(|p| p.address.as_str()).collect::<Vec<_>>(), ["agent:b"]);
}
