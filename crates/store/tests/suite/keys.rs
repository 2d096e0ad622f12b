//! Agent keys on every backend: several live keys per agent, revocation at once or after a
//! grace period, last use recorded in batches, and the audit entry of each change.

use serde_json::json;
use switchboard_core::PrincipalKind;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_store::audit::AuditFilter;
use switchboard_store::prelude::*;

use super::{T, agent};

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

pub(super) async fn an_agent_holds_several_live_keys(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    let first = s.list_agent_keys(T, "a1", 10).await.unwrap();
    assert_eq!(first.len(), 1, "the registration key is the first key");
    assert!(first[0].id.starts_with("key_"), "{}", first[0].id);
    assert_eq!((first[0].created_at, first[0].expires_at, first[0].last_used_at), (1, None, None));
    let t = s.token_for_hash("h1").await.unwrap().unwrap();
    assert_eq!(t.key_id.as_deref(), Some(first[0].id.as_str()));

    let k2 = s
        .create_agent_key(T, "a1", "key_2".into(), "h2".into(), 5, by(AuditAction::AgentKeyCreate, "agent:a1"))
        .await
        .unwrap()
        .expect("the agent exists");
    assert_eq!((k2.id.as_str(), k2.created_at, k2.expires_at), ("key_2", 5, None));
    for h in ["h1", "h2"] {
        let p = s.principal_for_token(h).await.unwrap().expect("both keys work");
        assert_eq!(p.kind, PrincipalKind::Agent("a1".into()));
    }
    let ids: Vec<String> = s.list_agent_keys(T, "a1", 10).await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, [first[0].id.clone(), "key_2".into()]);

    let none = s
        .create_agent_key(T, "nobody", "key_3".into(), "h3".into(), 5, by(AuditAction::AgentKeyCreate, "agent:nobody"))
        .await
        .unwrap();
    assert!(none.is_none(), "no key for an agent that does not exist");
    assert!(s.token_for_hash("h3").await.unwrap().is_none(), "and nothing written");
    assert!(s.list_agent_keys("t2", "a1", 10).await.unwrap().is_empty(), "another tenant sees no keys");
    let entries = s.list_audit(T, AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    let got: Vec<_> = entries.iter().map(|e| (e.action.as_str(), e.target.as_str())).collect();
    assert_eq!(got, [("agent_key.create", "agent:a1")]);
}

pub(super) async fn revoking_a_key_ends_it_now_or_after_its_grace(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.create_agent(agent(T, "b1", "bob"), "hb".into(), None).await.unwrap();
    s.create_agent_key(T, "a1", "key_2".into(), "h2".into(), 2, None).await.unwrap();
    s.create_agent_key(T, "a1", "key_3".into(), "h3".into(), 3, None).await.unwrap();
    let revoke = || by(AuditAction::AgentKeyRevoke, "agent:a1");

    let now = s.revoke_agent_key(T, "a1", "key_2", 100, 0, revoke()).await.unwrap().expect("revoked");
    assert_eq!(now.expires_at, Some(100));
    let t = s.token_for_hash("h2").await.unwrap().unwrap();
    assert!(!t.live_at(100), "a key revoked without grace stops at once");
    assert!(s.principal_for_token("h2").await.unwrap().is_none());

    let graced = s.revoke_agent_key(T, "a1", "key_3", 100, 50, revoke()).await.unwrap().expect("revoked");
    assert_eq!(graced.expires_at, Some(150));
    let t = s.token_for_hash("h3").await.unwrap().unwrap();
    assert!(t.live_at(149) && !t.live_at(150), "a key in grace works until its grace ends");
    let listed: Vec<_> =
        s.list_agent_keys(T, "a1", 120).await.unwrap().into_iter().map(|k| (k.id, k.expires_at)).collect();
    assert_eq!(listed.len(), 2, "the revoked key is gone from the list, the one in grace is not: {listed:?}");
    assert_eq!(listed[1], ("key_3".to_string(), Some(150)));
    let again = s.revoke_agent_key(T, "a1", "key_3", 120, 1000, revoke()).await.unwrap().expect("still in grace");
    assert_eq!(again.expires_at, Some(150), "a longer grace does not extend an earlier end");
    let shorter = s.revoke_agent_key(T, "a1", "key_3", 120, 0, revoke()).await.unwrap().expect("still in grace");
    assert_eq!(shorter.expires_at, Some(120), "a revocation without grace ends a grace period");

    assert!(s.revoke_agent_key(T, "a1", "key_2", 200, 0, revoke()).await.unwrap().is_none(), "already revoked");
    assert!(s.revoke_agent_key(T, "b1", "key_3", 100, 0, revoke()).await.unwrap().is_none(), "another agent's key");
    assert!(s.revoke_agent_key("t2", "a1", "key_3", 100, 0, revoke()).await.unwrap().is_none(), "another tenant");
    assert!(s.revoke_agent_key(T, "a1", "key_nope", 100, 0, revoke()).await.unwrap().is_none());
    let entries = s.list_audit(T, AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(entries.len(), 4, "one entry per revocation that changed a key: {entries:?}");
    assert!(entries.iter().all(|e| e.action == "agent_key.revoke"));
}

pub(super) async fn key_use_is_recorded_in_batches(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.create_agent_key(T, "a1", "key_2".into(), "h2".into(), 2, None).await.unwrap();
    s.touch_agent_keys(vec![("h1".into(), 30), ("h1".into(), 20), ("unknown".into(), 5)]).await.unwrap();
    s.touch_agent_keys(vec![("h1".into(), 25)]).await.unwrap();
    let keys = s.list_agent_keys(T, "a1", 40).await.unwrap();
    let used: Vec<_> = keys.iter().map(|k| k.last_used_at).collect();
    assert_eq!(used, [Some(30), None], "the latest use is kept; an unused key has none");
    s.touch_agent_keys(vec![]).await.unwrap();
}

pub(super) async fn deleting_an_agent_removes_its_keys(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.create_agent_key(T, "a1", "key_2".into(), "h2".into(), 2, None).await.unwrap();
    assert!(s.delete_agent(T, "a1", 3, None).await.unwrap());
    assert!(s.token_for_hash("h2").await.unwrap().is_none());
    assert!(s.list_agent_keys(T, "a1", 4).await.unwrap().is_empty());
}
