//! Storage for the hub as an OAuth2 authorization server: its token signing keys (shared by
//! every node, rotated by the operator) and the external identity providers each tenant
//! trusts. One area of [`Store`](crate::Store).

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::error::Result;

/// One of the hub's Ed25519 token signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key id (`kid` in a token's header and in the key set).
    pub kid: String,
    /// The private key, PKCS #8 (DER). Never leaves the store but to sign.
    pub pkcs8: Vec<u8>,
    /// The public key, 32 bytes.
    pub public_key: Vec<u8>,
    pub created_at: Millis,
    /// When it stopped signing (a rotation); `None` for the current key.
    pub retired_at: Option<Millis>,
    /// When it leaves the key set: every token it signed has expired by then.
    pub published_until: Option<Millis>,
}

/// One identity provider of a tenant, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProviderRecord {
    pub tenant: String,
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    /// `sub` or `email`.
    pub user_claim: Option<String>,
    pub agent_claim: Option<String>,
}

/// The hub's signing keys and the tenants' identity providers.
#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// The keys to publish at `now`: the current one and those retired but still published,
    /// newest first.
    async fn oauth_keys(&self, now: Millis) -> Result<Vec<SigningKeyRecord>>;
    /// Stores `candidate` as the current key if there is none (first start; nodes starting
    /// together agree on one), and returns the current key.
    async fn ensure_oauth_key(&self, candidate: SigningKeyRecord) -> Result<SigningKeyRecord>;
    /// Retires the current key at `new.created_at`, published until `published_until`, and
    /// makes `new` the current key, with the audit entry, in one transaction. Returns the
    /// retired key's id (`None` if there was no current key). Concurrent rotations queue.
    async fn rotate_oauth_key(
        &self,
        new: SigningKeyRecord,
        published_until: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<String>>;
    /// The tenant's identity providers, in the order they were given.
    async fn identity_providers(&self, tenant: &str) -> Result<Vec<IdentityProviderRecord>>;
    /// Replaces the tenant's identity providers, with the audit entry. An (issuer, audience)
    /// pair another tenant configured is `Conflict::IssuerTaken`, and nothing is written.
    async fn put_identity_providers(
        &self,
        tenant: &str,
        providers: Vec<IdentityProviderRecord>,
        audit: Option<NewAuditEvent>,
    ) -> Result<()>;
    /// Every tenant's providers with this issuer: how a token's `iss` finds its tenant. Like
    /// the token look-up, not scoped to one tenant; the caller picks by audience.
    async fn identity_providers_for_issuer(&self, issuer: &str) -> Result<Vec<IdentityProviderRecord>>;
}
