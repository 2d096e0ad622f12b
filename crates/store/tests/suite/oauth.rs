//! The hub's token signing keys and the tenants' identity providers on every backend.

use serde_json::json;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_store::audit::AuditFilter;
use switchboard_store::oauth::{IdentityProviderRecord, SigningKeyRecord};
use switchboard_store::prelude::*;
use switchboard_store::{Conflict, StoreError};

fn key(kid: &str, at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        pkcs8: vec![1, 2, 3],
        public_key: vec![4; 32],
        created_at: at,
        retired_at: None,
        published_until: None,
    }
}

fn provider(tenant: &str, issuer: &str, audience: &str) -> IdentityProviderRecord {
    IdentityProviderRecord {
        tenant: tenant.into(),
        issuer: issuer.into(),
        audience: audience.into(),
        jwks_url: format!("{issuer}/jwks"),
        user_claim: Some("email".into()),
        agent_claim: None,
    }
}

fn audit(tenant: &str, action: AuditAction) -> Option<NewAuditEvent> {
    Some(NewAuditEvent {
        tenant: tenant.into(),
        at: 5,
        actor: "operator".into(),
        action,
        target: "x".into(),
        detail: json!({}),
    })
}

/// The first start stores its key; a second node starting later gets that one, not its own.
pub async fn the_first_signing_key_stored_is_everyones(s: &dyn Store) {
    assert_eq!(s.ensure_oauth_key(key("k1", 1)).await.unwrap().kid, "k1");
    assert_eq!(s.ensure_oauth_key(key("k2", 2)).await.unwrap().kid, "k1");
    let keys = s.oauth_keys(10).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["k1"]);
    assert_eq!(keys[0].pkcs8, vec![1, 2, 3]);
}

/// A rotation retires the current key, published until the time given, and audits.
pub async fn a_rotated_key_stays_published_until_its_tokens_expire(s: &dyn Store) {
    s.ensure_oauth_key(key("k1", 1)).await.unwrap();
    let retired = s.rotate_oauth_key(key("k2", 100), 200, audit("t1", AuditAction::OAuthKeyRotate)).await.unwrap();
    assert_eq!(retired.as_deref(), Some("k1"));
    let at = |now| async move { s.oauth_keys(now).await.unwrap().into_iter().map(|k| k.kid).collect::<Vec<_>>() };
    assert_eq!(at(150).await, ["k2", "k1"], "the new key first, the old one still published");
    assert_eq!(at(200).await, ["k2"], "gone once its tokens have expired");
    let old = s.oauth_keys(150).await.unwrap().pop().unwrap();
    assert_eq!((old.retired_at, old.published_until), (Some(100), Some(200)));
    assert_eq!(s.ensure_oauth_key(key("k3", 300)).await.unwrap().kid, "k2", "one current key");
    let log = s.list_audit("t1", AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["oauth.key_rotated"]);
}

/// Providers are per tenant, replaced as a whole, found by issuer across tenants; an
/// (issuer, audience) pair belongs to one tenant, and a refused change writes nothing.
pub async fn identity_providers_are_per_tenant_and_pairs_unique(s: &dyn Store) {
    let a = vec![provider("t1", "https://idp", "aud-1"), provider("t1", "https://other", "aud-1")];
    s.put_identity_providers("t1", a.clone(), audit("t1", AuditAction::IdentityProvidersUpdate)).await.unwrap();
    s.put_identity_providers("t2", vec![provider("t2", "https://idp", "aud-2")], None).await.unwrap();
    assert_eq!(s.identity_providers("t1").await.unwrap(), a);
    let found = s.identity_providers_for_issuer("https://idp").await.unwrap();
    assert_eq!(
        found.iter().map(|p| (p.tenant.as_str(), p.audience.as_str())).collect::<Vec<_>>(),
        [("t1", "aud-1"), ("t2", "aud-2")]
    );

    let steal = s.put_identity_providers("t2", vec![provider("t2", "https://idp", "aud-1")], None).await;
    assert_eq!(
        steal,
        Err(StoreError::Conflict(Conflict::IssuerTaken { issuer: "https://idp".into(), audience: "aud-1".into() }))
    );
    assert_eq!(s.identity_providers("t2").await.unwrap(), vec![provider("t2", "https://idp", "aud-2")]);

    // Replacing with a list that keeps a pair of one's own is fine; an empty list clears.
    s.put_identity_providers("t1", vec![provider("t1", "https://idp", "aud-1")], None).await.unwrap();
    assert_eq!(s.identity_providers("t1").await.unwrap().len(), 1);
    s.put_identity_providers("t1", vec![], None).await.unwrap();
    assert!(s.identity_providers("t1").await.unwrap().is_empty());
    let log = s.list_audit("t1", AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["identity_providers.update"]);
}
