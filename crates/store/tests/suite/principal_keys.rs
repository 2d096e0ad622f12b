//! Principals' public keys on every backend: a rotation revokes the old key in the step that
//! publishes the new one, only the owner (or, with no owner given, an admin) revokes, a
//! revoked key keeps its row, key changes are audited in their transaction; and a message
//! keeps its sender's signature.

use serde_json::json;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_store::audit::AuditFilter;
use switchboard_store::keys::KeyRecord;
use switchboard_store::prelude::*;

use super::{T, message};

fn key(id: &str, principal: &str, at: i64) -> KeyRecord {
    KeyRecord {
        tenant: T.into(),
        key_id: id.into(),
        principal: principal.into(),
        kind: "x25519".into(),
        public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=".into(),
        created_at: at,
        revoked_at: None,
    }
}

fn audit(action: AuditAction) -> NewAuditEvent {
    NewAuditEvent {
        tenant: T.into(),
        at: 1,
        actor: "agent:a".into(),
        action,
        target: "agent:a".into(),
        detail: json!({}),
    }
}

fn ids(keys: &[KeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.key_id.as_str()).collect()
}

pub async fn public_keys_rotate_and_revoke_and_are_never_deleted(s: &dyn Store) {
    s.publish_key(key("pk_1", "agent:a", 1), None, vec![audit(AuditAction::KeyPublish)]).await.unwrap();
    s.publish_key(key("pk_b", "agent:b", 2), None, vec![]).await.unwrap();
    // Rotation: replacing a key that is not a current one of the principal writes nothing.
    assert!(!s.publish_key(key("pk_x", "agent:a", 3), Some("pk_b".into()), vec![]).await.unwrap());
    assert!(s.get_key(T, "pk_x").await.unwrap().is_none());
    let rotation = vec![audit(AuditAction::KeyPublish), audit(AuditAction::KeyRevoke)];
    assert!(s.publish_key(key("pk_2", "agent:a", 4), Some("pk_1".into()), rotation).await.unwrap());

    let current = s.keys_of(T, vec!["agent:a".into(), "agent:b".into()], false).await.unwrap();
    assert_eq!(ids(&current), ["pk_b", "pk_2"]);
    let all = s.keys_of(T, vec!["agent:a".into()], true).await.unwrap();
    assert_eq!(ids(&all), ["pk_1", "pk_2"]);
    assert_eq!(all[0].revoked_at, Some(4), "revoked at the rotation's time");
    assert!(s.keys_of("other-tenant", vec!["agent:a".into()], true).await.unwrap().is_empty());

    // Only the owner revokes its key; without an owner (an admin) any; a revoked key twice is none.
    assert!(s.revoke_key(T, "pk_2", Some("agent:b"), 5, None).await.unwrap().is_none());
    let revoked = s.revoke_key(T, "pk_2", None, 6, Some(audit(AuditAction::KeyRevoke))).await.unwrap();
    assert_eq!(revoked.map(|k| k.revoked_at), Some(Some(6)));
    assert!(s.revoke_key(T, "pk_2", None, 7, Some(audit(AuditAction::KeyRevoke))).await.unwrap().is_none());
    assert_eq!(s.get_key(T, "pk_2").await.unwrap().map(|k| k.revoked_at), Some(Some(6)));

    let events = s.list_audit(T, AuditFilter { limit: 100, ..Default::default() }).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.publish", "key.publish", "key.revoke", "key.revoke"]);
}

pub async fn a_message_keeps_its_signature(s: &dyn Store) {
    let mut signed = message(T, "m1", "agent:b", None);
    signed.signature = Some(r#"{"key_id":"pk_1","sig":"c2ln"}"#.into());
    let plain = message(T, "m2", "agent:b", None);
    s.accept(vec![signed, plain]).await.unwrap();
    let (m1, _) = s.get_message(T, "m1").await.unwrap().expect("m1 stored");
    assert_eq!(m1.signature.as_deref(), Some(r#"{"key_id":"pk_1","sig":"c2ln"}"#));
    let (m2, _) = s.get_message(T, "m2").await.unwrap().expect("m2 stored");
    assert_eq!(m2.signature, None);
}
