//! The SQLite side of [`KeyStore`]: principals' public keys.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append;
use super::{SqliteStore, internal};
use crate::Result;
use crate::keys::{KEY_COLS, KeyRecord, KeyStore};

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        tenant: r.get(0)?,
        key_id: r.get(1)?,
        principal: r.get(2)?,
        kind: r.get(3)?,
        public_key: r.get(4)?,
        created_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

fn get(c: &Connection, tenant: &str, key_id: &str) -> rusqlite::Result<Option<KeyRecord>> {
    c.prepare_cached(&format!("SELECT {KEY_COLS} FROM principal_keys WHERE tenant_id = ?1 AND key_id = ?2"))?
        .query_row(params![tenant, key_id], key_from_row)
        .optional()
}

/// Revokes a current key (of `principal`, if given); the number of rows changed.
fn revoke(c: &Connection, tenant: &str, key_id: &str, principal: Option<&str>, at: Millis) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE principal_keys SET revoked_at = ?4 WHERE tenant_id = ?1 AND key_id = ?2 AND revoked_at IS NULL \
         AND (?3 IS NULL OR principal = ?3)",
        params![tenant, key_id, principal, at],
    )
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn publish_key(&self, key: KeyRecord, replaces: Option<String>, audit: Vec<NewAuditEvent>) -> Result<bool> {
        self.write(move |c, _| {
            if let Some(old) = &replaces
                && revoke(c, &key.tenant, old, Some(&key.principal), key.created_at).map_err(internal)? == 0
            {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO principal_keys (tenant_id, key_id, principal, kind, public_key, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key.tenant, key.key_id, key.principal, key.kind, key.public_key, key.created_at],
            )
            .map_err(internal)?;
            for e in &audit {
                append(c, e)?;
            }
            Ok(true)
        })
        .await
    }

    async fn revoke_key(
        &self,
        tenant: &str,
        key_id: &str,
        principal: Option<&str>,
        at: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<KeyRecord>> {
        let (tenant, key_id, principal) = (tenant.to_owned(), key_id.to_owned(), principal.map(str::to_owned));
        self.write(move |c, _| {
            if revoke(c, &tenant, &key_id, principal.as_deref(), at).map_err(internal)? == 0 {
                return Ok(None);
            }
            if let Some(e) = &audit {
                append(c, e)?;
            }
            get(c, &tenant, &key_id).map_err(internal)
        })
        .await
    }

    async fn get_key(&self, tenant: &str, key_id: &str) -> Result<Option<KeyRecord>> {
        let (tenant, key_id) = (tenant.to_owned(), key_id.to_owned());
        self.read(move |c| get(c, &tenant, &key_id).map_err(internal)).await
    }

    async fn keys_of(&self, tenant: &str, principals: Vec<String>, include_revoked: bool) -> Result<Vec<KeyRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM principal_keys WHERE tenant_id = ?1 AND principal = ?2 \
                     AND (?3 OR revoked_at IS NULL) ORDER BY created_at, key_id"
                ))
                .map_err(internal)?;
            let mut out = Vec::new();
            for p in &principals {
                let rows = st.query_map(params![tenant, p, include_revoked], key_from_row).map_err(internal)?;
                for r in rows {
                    out.push(r.map_err(internal)?);
                }
            }
            // Oldest first over all the principals, as PostgreSQL's one query orders them.
            out.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
            Ok(out)
        })
        .await
    }
}
