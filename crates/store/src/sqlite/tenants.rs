//! The SQLite side of [`TenantStore`]: tenants and their admin tokens.

use async_trait::async_trait;
use rusqlite::params;
use switchboard_core::audit::NewAuditEvent;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::{Conflict, Result, StoreError, TenantRecord, TenantStore};

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, t: TenantRecord, token_hash: String, audit: Option<NewAuditEvent>) -> Result<()> {
        self.write(move |c, _| {
            let res = c.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![t.id, t.name, t.created_at],
            );
            match res {
                // The id is new (UUIDv7), so the rule broken is the unique name.
                Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(StoreError::Conflict(Conflict::TenantNameTaken { name: t.name }));
                }
                r => r.map_err(internal)?,
            };
            c.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at) VALUES (?1, ?2, 'admin', ?3)",
                params![token_hash, t.id, t.created_at],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn list_tenants(&self, after: Option<String>, limit: usize) -> Result<Vec<TenantRecord>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT id, name, created_at FROM tenants WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![after, limit as i64], |r| {
                    Ok(TenantRecord { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? })
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }
}
