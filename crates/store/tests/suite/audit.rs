//! The audit log on every backend: one gapless chain per tenant, written with the change it
//! records, listed with filters, and checked by `verify_audit`, which names the entry a
//! direct edit of the database (an UPDATE, a DELETE, swapped rows) broke.

use serde_json::json;
use switchboard_core::audit::{AuditAction, BreakKind, ChainBreak, GENESIS_HASH, NewAuditEvent, verify};
use switchboard_store::audit::{AuditFilter, AuditVerdict};
use switchboard_store::prelude::*;
use switchboard_store::push::PushSettings;
use switchboard_store::{AcceptOutcome, DeliveryFilter, NewMessage};

use super::{T, agent, kill_all, push_agent, pushed};

fn event(tenant: &str, actor: &str, action: AuditAction, at: i64) -> NewAuditEvent {
    NewAuditEvent {
        tenant: tenant.into(),
        at,
        actor: actor.into(),
        action,
        target: switchboard_core::Recipient::agent_text(&at.to_string().into()),
        detail: json!({"at": at}),
    }
}

async fn append_n(s: &dyn Store, tenant: &str, n: i64) {
    for i in 1..=n {
        s.append_audit(event(tenant, "admin", AuditAction::AgentRegister, i)).await.unwrap();
    }
}

async fn all(s: &dyn Store, tenant: &str) -> Vec<switchboard_core::api::AuditEvent> {
    s.list_audit(tenant, AuditFilter { limit: 1000, ..Default::default() }).await.unwrap()
}

fn ok(tenant: &str, entries: u64) -> AuditVerdict {
    AuditVerdict { tenant: tenant.into(), entries, broken: None }
}

pub(super) async fn audit_appends_form_a_chain_from_genesis(s: &dyn Store) {
    assert_eq!(s.verify_audit(T).await.unwrap(), ok(T, 0), "an empty chain is whole");
    let first = s.append_audit(event(T, "admin", AuditAction::Login, 10)).await.unwrap();
    assert_eq!((first.seq, first.prev_hash.as_str()), (1, GENESIS_HASH));
    let second = s.append_audit(event(T, "agent:a", AuditAction::AgentUpdate, 11)).await.unwrap();
    assert_eq!((second.seq, second.prev_hash.as_str()), (2, first.hash.as_str()));
    let stored = all(s, T).await;
    assert_eq!(stored, [first, second], "read back exactly as appended");
    assert_eq!(verify(&stored), Ok(()));
    assert_eq!(s.verify_audit(T).await.unwrap(), ok(T, 2));
    assert_eq!(s.audit_head(T).await.unwrap(), 2);
}

pub(super) async fn audit_listing_filters_and_pages(s: &dyn Store) {
    s.append_audit(event(T, "admin", AuditAction::AgentRegister, 100)).await.unwrap();
    s.append_audit(event(T, "agent:a", AuditAction::AgentUpdate, 200)).await.unwrap();
    s.append_audit(event(T, "admin", AuditAction::AgentDelete, 300)).await.unwrap();
    s.append_audit(event(T, "admin", AuditAction::AgentRegister, 400)).await.unwrap();
    let seqs = |f: AuditFilter| async move {
        s.list_audit(T, AuditFilter { limit: f.limit.max(10), ..f })
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(AuditFilter { actor: Some("admin".into()), ..Default::default() }).await, [1, 3, 4]);
    assert_eq!(seqs(AuditFilter { action: Some("agent.register".into()), ..Default::default() }).await, [1, 4]);
    assert_eq!(seqs(AuditFilter { since: Some(200), ..Default::default() }).await, [2, 3, 4]);
    let both = AuditFilter { actor: Some("admin".into()), since: Some(200), ..Default::default() };
    assert_eq!(seqs(both).await, [3, 4]);
    assert_eq!(seqs(AuditFilter { action: Some("login".into()), ..Default::default() }).await, Vec::<i64>::new());
    // Pages: `limit` entries after the cursor, in seq order.
    let page = s.list_audit(T, AuditFilter { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    let page = s.list_audit(T, AuditFilter { after: Some(2), limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    let exported = s.export_audit(T, 3, 100).await.unwrap();
    assert_eq!(exported.iter().map(|e| (e.seq, e.action.as_str())).collect::<Vec<_>>(), [(4, "agent.register")]);
}

pub(super) async fn audit_chains_are_per_tenant(s: &dyn Store) {
    append_n(s, T, 2).await;
    let other = s.append_audit(event("t2", "admin", AuditAction::Login, 5)).await.unwrap();
    assert_eq!((other.seq, other.prev_hash.as_str()), (1, GENESIS_HASH), "t2 starts its own chain");
    assert_eq!(all(s, "t2").await, [other]);
    assert_eq!(all(s, T).await.len(), 2);
    assert!(all(s, "t3").await.is_empty());
    assert_eq!(s.audit_tenants().await.unwrap(), [T, "t2"]);
    assert_eq!(s.verify_audit("t2").await.unwrap(), ok("t2", 1));
}

/// Each audited change writes its entry with it, only when it changed something, and a
/// change that fails writes none.
pub(super) async fn audited_changes_write_their_entry(s: &dyn Store) {
    let by = |action, target: &str| Some(NewAuditEvent { target: target.into(), ..event(T, "admin", action, 1) });
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), by(AuditAction::AgentRegister, "agent:a1")).await.unwrap();
    let taken = s.create_agent(agent(T, "a2", "ann"), "h2".into(), by(AuditAction::AgentRegister, "agent:a2")).await;
    assert!(taken.is_err(), "the name is taken");
    let mut card = agent(T, "a1", "ann2");
    card.updated_at = 2;
    assert!(s.update_agent(card, by(AuditAction::AgentUpdate, "agent:a1")).await.unwrap().is_some());
    assert!(
        s.update_agent(agent(T, "nobody", "x"), by(AuditAction::AgentUpdate, "agent:nobody")).await.unwrap().is_none()
    );
    let secret = || PushSettings { secret: "whsec_2".into(), ..Default::default() };
    s.put_push_settings(T, "a1", secret(), by(AuditAction::WebhookSecretRotate, "agent:a1")).await.unwrap();
    s.put_push_settings(T, "nobody", secret(), by(AuditAction::WebhookSecretRotate, "agent:nobody")).await.unwrap();
    s.put_tenant_push_settings(T, "{}".into(), by(AuditAction::PushSettingsUpdate, "tenant:t1")).await.unwrap();
    assert!(s.delete_agent(T, "a1", 3, by(AuditAction::AgentDelete, "agent:a1")).await.unwrap());
    assert!(!s.delete_agent(T, "a1", 3, by(AuditAction::AgentDelete, "agent:a1")).await.unwrap());

    push_agent(s, "p").await;
    s.accept(vec![pushed("m1", "p"), pushed("m2", "p")]).await.unwrap();
    kill_all(s).await;
    let replay = by(AuditAction::DeadLettersReplay, "dead_letters");
    assert_eq!(s.replay_dead(T, DeliveryFilter::default(), 2000, replay.clone()).await.unwrap(), 2);
    assert_eq!(s.replay_dead(T, DeliveryFilter::default(), 2000, replay).await.unwrap(), 0);
    let purge = by(AuditAction::DeadLettersPurge, "dead_letters");
    assert_eq!(s.purge_dead(T, DeliveryFilter::default(), purge).await.unwrap(), 0);

    let entries = all(s, T).await;
    let got: Vec<(&str, &str)> = entries.iter().map(|e| (e.action.as_str(), e.target.as_str())).collect();
    assert_eq!(
        got,
        [
            ("agent.register", "agent:a1"),
            ("agent.update", "agent:a1"),
            ("webhook_secret.rotate", "agent:a1"),
            ("push_settings.update", "tenant:t1"),
            ("agent.delete", "agent:a1"),
            ("dead_letters.replay", "dead_letters"),
        ]
    );
    assert_eq!(entries[5].detail, json!({"at": 1, "count": 2}), "a replay records how many it changed");
    assert_eq!(s.verify_audit(T).await.unwrap(), ok(T, 6));
}

pub(super) async fn auditing_sends_is_off_until_set(s: &dyn Store) {
    assert!(!s.audit_sends(T).await.unwrap());
    s.set_audit_sends(T, true, Some(event(T, "admin", AuditAction::AuditSettingsUpdate, 1))).await.unwrap();
    assert!(s.audit_sends(T).await.unwrap());
    assert!(!s.audit_sends("t2").await.unwrap(), "per tenant");
    s.set_audit_sends(T, false, None).await.unwrap();
    assert!(!s.audit_sends(T).await.unwrap());
    let got: Vec<String> = all(s, T).await.into_iter().map(|e| e.action).collect();
    assert_eq!(got, ["audit_settings.update"], "the change is recorded with it");
}

/// A send's entry is written with the message (not for a duplicate of it), and an ack's
/// with the acks, naming the ids it acked (not those it did not).
pub(super) async fn sends_and_acks_are_audited_with_their_change(s: &dyn Store) {
    let mut m = super::message(T, "m1", "agent:b", Some("k1"));
    m.audit = Some(event(T, "admin", AuditAction::MessageSend, 1000));
    let out = s.accept(vec![m.clone(), super::message(T, "m2", "agent:b", None)]).await.unwrap();
    assert!(matches!(out[0], AcceptOutcome::Accepted { .. }));
    let again = NewMessage { id: "m1-retry".into(), ..m };
    assert!(matches!(s.accept(vec![again]).await.unwrap()[0], AcceptOutcome::Duplicate { .. }));
    let ack = event(T, "agent:b", AuditAction::DeliveryAck, 1001);
    s.ack(T, "agent:b", vec!["m1".into(), "zz".into()], 1001, Some(ack.clone())).await.unwrap();
    s.ack(T, "agent:b", vec!["m1".into()], 1002, Some(ack.clone())).await.unwrap();
    s.ack_unanswered(T, "agent:b", vec!["m2".into()], 1003, Some(ack)).await.unwrap();
    let entries = all(s, T).await;
    let got: Vec<(&str, &serde_json::Value)> = entries.iter().map(|e| (e.action.as_str(), &e.detail)).collect();
    assert_eq!(
        got,
        [
            ("message.send", &json!({"at": 1000})),
            ("delivery.ack", &json!({"at": 1001, "count": 1, "ids": ["m1"]})),
            ("delivery.ack", &json!({"at": 1001, "count": 1, "ids": ["m2"]})),
        ],
        "one send entry (not for m2, which had none, nor for the duplicate); no entry for an ack that acked nothing"
    );
    assert_eq!(s.verify_audit(T).await.unwrap(), ok(T, 3));
}

/// Appends racing each other (on PostgreSQL, on many pooled connections) still form one
/// gapless chain.
pub(super) async fn concurrent_appends_keep_one_chain(s: &dyn Store) {
    const N: i64 = 40;
    let appends = (1..=N).map(|i| s.append_audit(event(T, "admin", AuditAction::Login, i)));
    let mut seqs: Vec<i64> = futures_util::future::try_join_all(appends).await.unwrap().iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
    assert_eq!(s.verify_audit(T).await.unwrap(), ok(T, N as u64));
}

/// `verify_audit` on a chain that grows while it is read (a live hub) finds nothing wrong:
/// entries appended after it read the head are not mistaken for forged ones.
pub(super) async fn verifying_while_appending_finds_no_break(s: &dyn Store) {
    let appends = (1..=1200).map(|i| s.append_audit(event(T, "admin", AuditAction::Login, i)));
    futures_util::future::try_join_all(appends).await.unwrap();
    let more = async {
        for i in 1201..=1400 {
            s.append_audit(event(T, "admin", AuditAction::Login, i)).await.unwrap();
        }
    };
    let verify = async {
        let mut verdicts = Vec::new();
        for _ in 0..8 {
            verdicts.push(s.verify_audit(T).await.unwrap());
        }
        verdicts
    };
    let ((), verdicts) = tokio::join!(more, verify);
    for v in verdicts {
        assert_eq!(v.broken, None, "after {} entries", v.entries);
    }
    assert_eq!(s.verify_audit(T).await.unwrap(), ok(T, 1400));
}

/// Direct access to the database under a store, as someone tampering with it would have.
pub(super) enum Raw {
    /// The SQLite file (a connection is opened per statement: one is not `Sync`).
    Sqlite(std::path::PathBuf),
    Postgres(tokio_postgres::Client),
}

impl Raw {
    pub(super) async fn exec(&self, sql: &str) {
        match self {
            Raw::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                c.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Raw::Postgres(c) => c.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }
}

fn broken(seq: i64, kind: BreakKind) -> Option<ChainBreak> {
    Some(ChainBreak { seq, kind })
}

pub(super) async fn an_edited_entry_is_named(s: &dyn Store, db: &Raw) {
    append_n(s, T, 4).await;
    append_n(s, "t2", 2).await;
    db.exec("UPDATE audit_events SET detail = '{\"at\":99}' WHERE tenant_id = 't1' AND seq = 2").await;
    let verdict = s.verify_audit(T).await.unwrap();
    assert_eq!((verdict.entries, verdict.broken), (4, broken(2, BreakKind::Edited)));
    assert_eq!(s.verify_audit("t2").await.unwrap(), ok("t2", 2), "another tenant's chain is whole");
    // Text that is no longer JSON at all is named the same way, not an error.
    db.exec("UPDATE audit_events SET detail = 'not json' WHERE tenant_id = 't2' AND seq = 1").await;
    assert_eq!(s.verify_audit("t2").await.unwrap().broken, broken(1, BreakKind::Edited));
}

pub(super) async fn a_removed_entry_is_named(s: &dyn Store, db: &Raw) {
    append_n(s, T, 4).await;
    db.exec("DELETE FROM audit_events WHERE tenant_id = 't1' AND seq = 2").await;
    let verdict = s.verify_audit(T).await.unwrap();
    assert_eq!(verdict.broken, broken(3, BreakKind::Removed { from: 2, to: 2 }));
    assert_eq!(verdict.entries, 3);
}

pub(super) async fn a_removed_last_entry_is_named(s: &dyn Store, db: &Raw) {
    append_n(s, T, 3).await;
    db.exec("DELETE FROM audit_events WHERE tenant_id = 't1' AND seq = 3").await;
    assert_eq!(s.verify_audit(T).await.unwrap().broken, broken(2, BreakKind::Removed { from: 3, to: 3 }));
}

pub(super) async fn swapped_entries_are_named(s: &dyn Store, db: &Raw) {
    append_n(s, T, 4).await;
    db.exec(
        "UPDATE audit_events SET seq = -2 WHERE tenant_id = 't1' AND seq = 2; \
         UPDATE audit_events SET seq = 2 WHERE tenant_id = 't1' AND seq = 3; \
         UPDATE audit_events SET seq = 3 WHERE tenant_id = 't1' AND seq = -2;",
    )
    .await;
    assert_eq!(s.verify_audit(T).await.unwrap().broken, broken(2, BreakKind::Reordered));
}

pub(super) async fn an_entry_added_outside_the_store_is_named(s: &dyn Store, db: &Raw) {
    append_n(s, T, 2).await;
    // A copy of entry 2 as entry 3, linked and hashed correctly, but not through the store.
    let mut forged = all(s, T).await.pop().unwrap();
    forged.prev_hash = forged.hash.clone();
    forged.seq = 3;
    forged.hash = switchboard_core::audit::entry_hash(&forged);
    db.exec(&format!(
        "INSERT INTO audit_events (tenant_id, seq, at, actor, action, target, detail, hash, prev_hash) \
         VALUES ('t1', 3, 2, 'admin', 'agent.register', 'agent:2', '{{\"at\":2}}', '{}', '{}')",
        forged.hash, forged.prev_hash
    ))
    .await;
    assert_eq!(s.verify_audit(T).await.unwrap().broken, broken(3, BreakKind::BeyondHead { head: 2 }));
}
