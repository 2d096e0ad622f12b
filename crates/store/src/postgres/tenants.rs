//! The PostgreSQL side of [`TenantStore`]: tenants and their admin tokens.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;

use super::PostgresStore;
use super::audit::append_if;
use super::error::{Fail, retrying};
use crate::{Conflict, Result, StoreError, TenantRecord, TenantStore};

#[async_trait]
impl TenantStore for PostgresStore {
    async fn create_tenant(&self, t: TenantRecord, token_hash: String, audit: Option<NewAuditEvent>) -> Result<()> {
        let (t, token_hash, audit) = (&t, &token_hash, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)",
                &[&t.id, &t.name, &t.created_at],
            )
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) if db.constraint() == Some("tenants_name") => {
                    Fail::Store(StoreError::Conflict(Conflict::TenantNameTaken { name: t.name.clone() }))
                }
                _ => Fail::Db(e),
            })?;
            tx.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at) VALUES ($1, $2, 'admin', $3)",
                &[token_hash, &t.id, &t.created_at],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn list_tenants(&self, after: Option<String>, limit: usize) -> Result<Vec<TenantRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(
                    "SELECT id, name, created_at FROM tenants WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2",
                )
                .await?;
            let rows = c.query(&st, &[&after, &(limit as i64)]).await?;
            rows.iter()
                .map(|r| Ok(TenantRecord { id: r.try_get(0)?, name: r.try_get(1)?, created_at: r.try_get(2)? }))
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }
}
