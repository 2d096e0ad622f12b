//! Principals' public keys (end-to-end trust): X25519 keys that sealed messages are
//! encrypted to and Ed25519 keys that signatures are checked against. One area of
//! [`Store`](crate::Store). The hub stores public halves only.
//!
//! A key is never deleted: a revoked one keeps its row with `revoked_at`, so a signature made
//! before the revocation can still be checked.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::error::Result;

/// A published public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub tenant: String,
    /// `pk_…`.
    pub key_id: String,
    /// `agent:<id>` or `user:<id>`.
    pub principal: String,
    /// `x25519` or `ed25519`.
    pub kind: String,
    /// Standard base64 of the 32 bytes.
    pub public_key: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// The columns of `principal_keys` a [`KeyRecord`] is read from, in its fields' order.
pub(crate) const KEY_COLS: &str = "tenant_id, key_id, principal, kind, public_key, created_at, revoked_at";

/// The directory of public keys. Every change takes the audit entry recording it, written in
/// its transaction when something changed.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores `key`. With `replaces`, revokes that key of the same principal at
    /// `key.created_at` in the same transaction; `false` (nothing written) when it is not a
    /// current key of the principal.
    async fn publish_key(&self, key: KeyRecord, replaces: Option<String>, audit: Vec<NewAuditEvent>) -> Result<bool>;
    /// Revokes a current key at `at`; with `principal`, only a key of that principal. The
    /// revoked key, or `None` if there was no such current key (nothing written).
    async fn revoke_key(
        &self,
        tenant: &str,
        key_id: &str,
        principal: Option<&str>,
        at: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<KeyRecord>>;
    async fn get_key(&self, tenant: &str, key_id: &str) -> Result<Option<KeyRecord>>;
    /// The keys of these principals, oldest first; revoked ones too if `include_revoked`.
    async fn keys_of(&self, tenant: &str, principals: Vec<String>, include_revoked: bool) -> Result<Vec<KeyRecord>>;
}
