//! The PostgreSQL side of [`OAuthStore`], with the SQLite store's semantics. Several nodes
//! share the keys: the first start's insert wins (the partial unique index allows one current
//! key), and rotations take an advisory lock so that two at once queue instead of both
//! retiring the same key.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use tokio_postgres::{GenericClient, Row};

use super::PostgresStore;
use super::audit::append_if;
use super::error::{Fail, retrying};
use crate::oauth::{IdentityProviderRecord, OAuthStore, SigningKeyRecord};
use crate::{Conflict, Result, StoreError};

const KEY_COLS: &str = "kid, pkcs8, public_key, created_at, retired_at, published_until";
const PROVIDER_COLS: &str = "tenant_id, issuer, audience, jwks_url, user_claim, agent_claim";
/// Arbitrary key of the advisory lock that serialises key rotations.
const ROTATION_LOCK: i64 = 0x5357_4954_4348_0010;

fn key_from_row(r: &Row) -> Result<SigningKeyRecord, Fail> {
    Ok(SigningKeyRecord {
        kid: r.try_get(0)?,
        pkcs8: r.try_get(1)?,
        public_key: r.try_get(2)?,
        created_at: r.try_get(3)?,
        retired_at: r.try_get(4)?,
        published_until: r.try_get(5)?,
    })
}

fn provider_from_row(r: &Row) -> Result<IdentityProviderRecord, Fail> {
    Ok(IdentityProviderRecord {
        tenant: r.try_get(0)?,
        issuer: r.try_get(1)?,
        audience: r.try_get(2)?,
        jwks_url: r.try_get(3)?,
        user_claim: r.try_get(4)?,
        agent_claim: r.try_get(5)?,
    })
}

async fn current_key(c: &impl GenericClient) -> Result<Option<SigningKeyRecord>, Fail> {
    let row = c.query_opt(&format!("SELECT {KEY_COLS} FROM oauth_keys WHERE retired_at IS NULL"), &[]).await?;
    row.as_ref().map(key_from_row).transpose()
}

async fn insert_key(c: &impl GenericClient, k: &SigningKeyRecord) -> Result<u64, Fail> {
    Ok(c.execute(
        "INSERT INTO oauth_keys (kid, pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&k.kid, &k.pkcs8, &k.public_key, &k.created_at],
    )
    .await?)
}

fn taken(p: &IdentityProviderRecord) -> Fail {
    Fail::Store(StoreError::Conflict(Conflict::IssuerTaken { issuer: p.issuer.clone(), audience: p.audience.clone() }))
}

#[async_trait]
impl OAuthStore for PostgresStore {
    async fn oauth_keys(&self, now: Millis) -> Result<Vec<SigningKeyRecord>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {KEY_COLS} FROM oauth_keys WHERE retired_at IS NULL OR published_until > $1 \
                         ORDER BY created_at DESC, kid DESC"
                    ),
                    &[&now],
                )
                .await?;
            rows.iter().map(key_from_row).collect()
        })
        .await
    }

    async fn ensure_oauth_key(&self, candidate: SigningKeyRecord) -> Result<SigningKeyRecord> {
        let candidate = &candidate;
        retrying(move || async move {
            let c = self.conn().await?;
            if let Some(k) = current_key(&**c).await? {
                return Ok(k);
            }
            // Nodes starting together: the first insert wins and every node reads it back.
            insert_key(&**c, candidate).await?;
            current_key(&**c).await?.ok_or_else(|| super::error::internal("no current signing key after insert".into()))
        })
        .await
    }

    async fn rotate_oauth_key(
        &self,
        new: SigningKeyRecord,
        published_until: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<String>> {
        let (new, audit) = (&new, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROTATION_LOCK]).await?;
            let old = current_key(&*tx).await?;
            tx.execute(
                "UPDATE oauth_keys SET retired_at = $1, published_until = $2 WHERE retired_at IS NULL",
                &[&new.created_at, &published_until],
            )
            .await?;
            insert_key(&*tx, new).await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(old.map(|k| k.kid))
        })
        .await
    }

    async fn identity_providers(&self, tenant: &str) -> Result<Vec<IdentityProviderRecord>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let rows = c
                .query(
                    &format!("SELECT {PROVIDER_COLS} FROM identity_providers WHERE tenant_id = $1 ORDER BY position"),
                    &[&tenant],
                )
                .await?;
            rows.iter().map(provider_from_row).collect()
        })
        .await
    }

    async fn put_identity_providers(
        &self,
        tenant: &str,
        providers: Vec<IdentityProviderRecord>,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let (providers, audit) = (&providers, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            for p in providers {
                let other = tx
                    .query_opt(
                        "SELECT 1 FROM identity_providers WHERE issuer = $1 AND audience = $2 AND tenant_id <> $3",
                        &[&p.issuer, &p.audience, &tenant],
                    )
                    .await?;
                if other.is_some() {
                    return Err(taken(p));
                }
            }
            tx.execute("DELETE FROM identity_providers WHERE tenant_id = $1", &[&tenant]).await?;
            for (i, p) in providers.iter().enumerate() {
                let position = i as i32;
                tx.execute(
                    "INSERT INTO identity_providers (tenant_id, position, issuer, audience, jwks_url, user_claim, agent_claim) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&tenant, &position, &p.issuer, &p.audience, &p.jwks_url, &p.user_claim, &p.agent_claim],
                )
                .await
                // Another tenant took the pair after the check above (its transaction
                // committed first): the same answer as if it had been there before.
                .map_err(|e| match e.as_db_error() {
                    Some(db) if db.constraint() == Some("identity_providers_pair") => taken(p),
                    _ => Fail::Db(e),
                })?;
            }
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn identity_providers_for_issuer(&self, issuer: &str) -> Result<Vec<IdentityProviderRecord>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {PROVIDER_COLS} FROM identity_providers WHERE issuer = $1 ORDER BY tenant_id, position"
                    ),
                    &[&issuer],
                )
                .await?;
            rows.iter().map(provider_from_row).collect()
        })
        .await
    }
}
