//! The SQLite side of [`AccessStore`]: policy and limits in `tenant_access`, one row per
//! tenant that set either.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::Result;
use crate::access::{AccessRecord, AccessStore};

/// Writes one column of the tenant's row and bumps its version; returns the new version.
fn put(c: &Connection, tenant: &str, column: &str, value: Option<&str>) -> Result<i64> {
    c.execute(
        &format!(
            "INSERT INTO tenant_access (tenant_id, {column}, version) VALUES (?1, ?2, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET {column} = ?2, version = version + 1"
        ),
        params![tenant, value],
    )
    .map_err(internal)?;
    c.query_row("SELECT version FROM tenant_access WHERE tenant_id = ?1", [tenant], |r| r.get(0)).map_err(internal)
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn access(&self, tenant: &str) -> Result<AccessRecord> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            c.query_row("SELECT policy, limits, version FROM tenant_access WHERE tenant_id = ?1", [tenant], |r| {
                Ok(AccessRecord { policy: r.get(0)?, limits: r.get(1)?, version: r.get(2)? })
            })
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(internal)
        })
        .await
    }

    async fn put_policy(&self, tenant: &str, policy: Option<String>, audit: Option<NewAuditEvent>) -> Result<i64> {
        let tenant = tenant.to_owned();
        self.write(move |c, _| {
            let v = put(c, &tenant, "policy", policy.as_deref())?;
            append_if(c, true, audit.as_ref())?;
            Ok(v)
        })
        .await
    }

    async fn put_limits(&self, tenant: &str, limits: String, audit: Option<NewAuditEvent>) -> Result<i64> {
        let tenant = tenant.to_owned();
        self.write(move |c, _| {
            let v = put(c, &tenant, "limits", Some(&limits))?;
            append_if(c, true, audit.as_ref())?;
            Ok(v)
        })
        .await
    }

    async fn access_versions(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT tenant_id, version FROM tenant_access").map_err(internal)?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn count_agents(&self, tenant: &str) -> Result<u64> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            c.query_row("SELECT count(*) FROM agents WHERE tenant_id = ?1", [tenant], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(internal)
        })
        .await
    }

    async fn count_messages(&self, tenant: &str) -> Result<u64> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            c.query_row("SELECT count(*) FROM messages WHERE tenant_id = ?1", [tenant], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(internal)
        })
        .await
    }
}
