//! The SQLite side of [`OAuthStore`]: the hub's token signing keys and the tenants' identity
//! providers.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::oauth::{IdentityProviderRecord, OAuthStore, SigningKeyRecord};
use crate::{Conflict, Result, StoreError};

const KEY_COLS: &str = "kid, pkcs8, public_key, created_at, retired_at, published_until";
const PROVIDER_COLS: &str = "tenant_id, issuer, audience, jwks_url, user_claim, agent_claim";

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: r.get(0)?,
        pkcs8: r.get(1)?,
        public_key: r.get(2)?,
        created_at: r.get(3)?,
        retired_at: r.get(4)?,
        published_until: r.get(5)?,
    })
}

fn provider_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityProviderRecord> {
    Ok(IdentityProviderRecord {
        tenant: r.get(0)?,
        issuer: r.get(1)?,
        audience: r.get(2)?,
        jwks_url: r.get(3)?,
        user_claim: r.get(4)?,
        agent_claim: r.get(5)?,
    })
}

fn current_key(c: &Connection) -> Result<Option<SigningKeyRecord>> {
    c.query_row(&format!("SELECT {KEY_COLS} FROM oauth_keys WHERE retired_at IS NULL"), [], key_from_row)
        .optional()
        .map_err(internal)
}

fn insert_key(c: &Connection, k: &SigningKeyRecord) -> Result<usize> {
    c.execute(
        "INSERT OR IGNORE INTO oauth_keys (kid, pkcs8, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![k.kid, k.pkcs8, k.public_key, k.created_at],
    )
    .map_err(internal)
}

#[async_trait]
impl OAuthStore for SqliteStore {
    async fn oauth_keys(&self, now: Millis) -> Result<Vec<SigningKeyRecord>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM oauth_keys WHERE retired_at IS NULL OR published_until > ?1 \
                     ORDER BY created_at DESC, kid DESC"
                ))
                .map_err(internal)?;
            st.query_map([now], key_from_row).map_err(internal)?.collect::<rusqlite::Result<_>>().map_err(internal)
        })
        .await
    }

    async fn ensure_oauth_key(&self, candidate: SigningKeyRecord) -> Result<SigningKeyRecord> {
        self.write(move |c, _| {
            if let Some(k) = current_key(c)? {
                return Ok(k);
            }
            insert_key(c, &candidate)?;
            current_key(c)?.ok_or_else(|| StoreError::Internal("the signing key just stored is not there".into()))
        })
        .await
    }

    async fn rotate_oauth_key(
        &self,
        new: SigningKeyRecord,
        published_until: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<String>> {
        self.write(move |c, _| {
            let old = current_key(c)?;
            c.execute(
                "UPDATE oauth_keys SET retired_at = ?1, published_until = ?2 WHERE retired_at IS NULL",
                params![new.created_at, published_until],
            )
            .map_err(internal)?;
            insert_key(c, &new)?;
            append_if(c, true, audit.as_ref())?;
            Ok(old.map(|k| k.kid))
        })
        .await
    }

    async fn identity_providers(&self, tenant: &str) -> Result<Vec<IdentityProviderRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {PROVIDER_COLS} FROM identity_providers WHERE tenant_id = ?1 ORDER BY position"
                ))
                .map_err(internal)?;
            st.query_map([tenant], provider_from_row)
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)
        })
        .await
    }

    async fn put_identity_providers(
        &self,
        tenant: &str,
        providers: Vec<IdentityProviderRecord>,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let tenant = tenant.to_owned();
        self.write(move |c, _| {
            for p in &providers {
                let taken: Option<String> = c
                    .query_row(
                        "SELECT tenant_id FROM identity_providers WHERE issuer = ?1 AND audience = ?2 AND tenant_id <> ?3",
                        params![p.issuer, p.audience, tenant],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(internal)?;
                if taken.is_some() {
                    return Err(StoreError::Conflict(Conflict::IssuerTaken {
                        issuer: p.issuer.clone(),
                        audience: p.audience.clone(),
                    }));
                }
            }
            c.execute("DELETE FROM identity_providers WHERE tenant_id = ?1", [&tenant]).map_err(internal)?;
            for (i, p) in providers.iter().enumerate() {
                c.execute(
                    "INSERT INTO identity_providers (tenant_id, position, issuer, audience, jwks_url, user_claim, agent_claim) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![tenant, i as i64, p.issuer, p.audience, p.jwks_url, p.user_claim, p.agent_claim],
                )
                .map_err(internal)?;
            }
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn identity_providers_for_issuer(&self, issuer: &str) -> Result<Vec<IdentityProviderRecord>> {
        let issuer = issuer.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {PROVIDER_COLS} FROM identity_providers WHERE issuer = ?1 ORDER BY tenant_id, position"
                ))
                .map_err(internal)?;
            st.query_map([issuer], provider_from_row)
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)
        })
        .await
    }
}
