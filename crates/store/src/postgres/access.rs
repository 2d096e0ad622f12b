//! The PostgreSQL side of [`AccessStore`], with the SQLite store's semantics. The version
//! bump is `version + 1` under the row's lock, so two nodes changing one tenant at once
//! leave two versions, and every other node sees the last one.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;

use super::PostgresStore;
use super::audit::append_if;
use super::error::retrying;
use crate::Result;
use crate::access::{AccessRecord, AccessStore};

impl PostgresStore {
    async fn put_access(
        &self,
        tenant: &str,
        column: &'static str,
        value: Option<&str>,
        audit: Option<&NewAuditEvent>,
    ) -> Result<i64> {
        let sql = format!(
            "INSERT INTO tenant_access (tenant_id, {column}, version) VALUES ($1, $2, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET {column} = EXCLUDED.{column}, \
             version = tenant_access.version + 1 RETURNING version"
        );
        let sql = &sql;
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let version: i64 = tx.query_one(sql, &[&tenant, &value]).await?.try_get(0)?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(version)
        })
        .await
    }
}

#[async_trait]
impl AccessStore for PostgresStore {
    async fn access(&self, tenant: &str) -> Result<AccessRecord> {
        retrying(move || async move {
            let c = self.conn().await?;
            let row = c
                .query_opt("SELECT policy, limits, version FROM tenant_access WHERE tenant_id = $1", &[&tenant])
                .await?;
            Ok(match row {
                Some(r) => AccessRecord { policy: r.try_get(0)?, limits: r.try_get(1)?, version: r.try_get(2)? },
                None => AccessRecord::default(),
            })
        })
        .await
    }

    async fn put_policy(&self, tenant: &str, policy: Option<String>, audit: Option<NewAuditEvent>) -> Result<i64> {
        self.put_access(tenant, "policy", policy.as_deref(), audit.as_ref()).await
    }

    async fn put_limits(&self, tenant: &str, limits: String, audit: Option<NewAuditEvent>) -> Result<i64> {
        self.put_access(tenant, "limits", Some(&limits), audit.as_ref()).await
    }

    async fn access_versions(&self) -> Result<Vec<(String, i64)>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let rows = c.query("SELECT tenant_id, version FROM tenant_access", &[]).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        })
        .await
    }

    async fn count_agents(&self, tenant: &str) -> Result<u64> {
        retrying(move || async move {
            let c = self.conn().await?;
            let n: i64 =
                c.query_one("SELECT count(*) FROM agents WHERE tenant_id = $1", &[&tenant]).await?.try_get(0)?;
            Ok(n as u64)
        })
        .await
    }

    async fn count_messages(&self, tenant: &str) -> Result<u64> {
        retrying(move || async move {
            let c = self.conn().await?;
            let n: i64 =
                c.query_one("SELECT count(*) FROM messages WHERE tenant_id = $1", &[&tenant]).await?.try_get(0)?;
            Ok(n as u64)
        })
        .await
    }
}
