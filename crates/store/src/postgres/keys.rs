//! The PostgreSQL side of [`KeyStore`]: principals' public keys.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;
use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::append;
use super::error::{Fail, retrying};
use crate::Result;
use crate::keys::{KEY_COLS, KeyRecord, KeyStore};

fn key_from_row(r: &Row) -> Result<KeyRecord, Fail> {
    Ok(KeyRecord {
        tenant: r.try_get(0)?,
        key_id: r.try_get(1)?,
        principal: r.try_get(2)?,
        kind: r.try_get(3)?,
        public_key: r.try_get(4)?,
        created_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
    })
}

const REVOKE: &str = "UPDATE principal_keys SET revoked_at = $4 WHERE tenant_id = $1 AND key_id = $2 \
     AND revoked_at IS NULL AND ($3::text IS NULL OR principal = $3)";

#[async_trait]
impl KeyStore for PostgresStore {
    async fn publish_key(&self, key: KeyRecord, replaces: Option<String>, audit: Vec<NewAuditEvent>) -> Result<bool> {
        let (key, replaces, audit) = (&key, &replaces, &audit);
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            if let Some(old) = replaces {
                let n = tx.execute(REVOKE, &[&key.tenant, old, &key.principal, &key.created_at]).await?;
                if n == 0 {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO principal_keys (tenant_id, key_id, principal, kind, public_key, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&key.tenant, &key.key_id, &key.principal, &key.kind, &key.public_key, &key.created_at],
            )
            .await?;
            for e in audit {
                append(&tx, e).await?;
            }
            tx.commit().await?;
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
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            if tx.execute(REVOKE, &[&tenant, &key_id, &principal, &at]).await? == 0 {
                return Ok(None);
            }
            if let Some(e) = audit {
                append(&tx, e).await?;
            }
            let row = tx
                .query_one(
                    &format!("SELECT {KEY_COLS} FROM principal_keys WHERE tenant_id = $1 AND key_id = $2"),
                    &[&tenant, &key_id],
                )
                .await?;
            let key = key_from_row(&row)?;
            tx.commit().await?;
            Ok(Some(key))
        })
        .await
    }

    async fn get_key(&self, tenant: &str, key_id: &str) -> Result<Option<KeyRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!("SELECT {KEY_COLS} FROM principal_keys WHERE tenant_id = $1 AND key_id = $2"))
                .await?;
            c.query_opt(&st, &[&tenant, &key_id]).await?.as_ref().map(key_from_row).transpose()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn keys_of(&self, tenant: &str, principals: Vec<String>, include_revoked: bool) -> Result<Vec<KeyRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM principal_keys WHERE tenant_id = $1 AND principal = ANY($2) \
                     AND ($3 OR revoked_at IS NULL) ORDER BY created_at, key_id"
                ))
                .await?;
            c.query(&st, &[&tenant, &principals, &include_revoked])
                .await?
                .iter()
                .map(key_from_row)
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }
}
