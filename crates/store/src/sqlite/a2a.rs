//! The SQLite side of [`A2aStore`]: the task index and the push configs.

use async_trait::async_trait;
use rusqlite::{Row, params};
use switchboard_core::time::Millis;

use super::{SqliteStore, internal};
use crate::Result;
use crate::a2a::{A2aPushConfigRecord, A2aStore, A2aTaskFilter, A2aTaskRecord};

const TASK_COLUMNS: &str = "tenant_id, id, agent_id, owner, context_id, created_at";
const CONFIG_COLUMNS: &str = "tenant_id, task_id, id, owner, url, token, auth_scheme, auth_credentials, created_at";

fn task(r: &Row<'_>) -> rusqlite::Result<A2aTaskRecord> {
    Ok(A2aTaskRecord {
        tenant: r.get(0)?,
        id: r.get(1)?,
        agent_id: r.get(2)?,
        owner: r.get(3)?,
        context_id: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn config(r: &Row<'_>) -> rusqlite::Result<A2aPushConfigRecord> {
    Ok(A2aPushConfigRecord {
        tenant: r.get(0)?,
        task_id: r.get(1)?,
        id: r.get(2)?,
        owner: r.get(3)?,
        url: r.get(4)?,
        token: r.get(5)?,
        auth_scheme: r.get(6)?,
        auth_credentials: r.get(7)?,
        created_at: r.get(8)?,
    })
}

#[async_trait]
impl A2aStore for SqliteStore {
    async fn record_a2a_task(&self, t: A2aTaskRecord) -> Result<()> {
        self.write(move |c, _| {
            c.execute(
                &format!(
                    "INSERT INTO a2a_tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING"
                ),
                params![t.tenant, t.id, t.agent_id, t.owner, t.context_id, t.created_at],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn list_a2a_tasks(&self, tenant: &str, f: A2aTaskFilter) -> Result<Vec<A2aTaskRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM a2a_tasks WHERE tenant_id = ?1 AND agent_id = ?2 \
                 AND (?3 IS NULL OR owner = ?3) AND (?4 IS NULL OR context_id = ?4) \
                 ORDER BY created_at DESC, id DESC LIMIT ?5"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, f.agent_id, f.owner, f.context_id, f.limit as i64], task)
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn put_a2a_push_config(&self, p: A2aPushConfigRecord) -> Result<()> {
        self.write(move |c, _| {
            c.execute(
                &format!(
                    "INSERT INTO a2a_push_configs ({CONFIG_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                     ON CONFLICT (tenant_id, task_id, id) DO UPDATE SET owner = excluded.owner, url = excluded.url, \
                     token = excluded.token, auth_scheme = excluded.auth_scheme, \
                     auth_credentials = excluded.auth_credentials"
                ),
                params![
                    p.tenant,
                    p.task_id,
                    p.id,
                    p.owner,
                    p.url,
                    p.token,
                    p.auth_scheme,
                    p.auth_credentials,
                    p.created_at
                ],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn a2a_push_configs(&self, tenant: &str, task_id: &str) -> Result<Vec<A2aPushConfigRecord>> {
        let (tenant, task_id) = (tenant.to_owned(), task_id.to_owned());
        self.read(move |c| {
            let sql = format!(
                "SELECT {CONFIG_COLUMNS} FROM a2a_push_configs WHERE tenant_id = ?1 AND task_id = ?2 \
                 ORDER BY created_at, id"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(internal)?;
            let rows = stmt.query_map(params![tenant, task_id], config).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn delete_a2a_push_config(&self, tenant: &str, task_id: &str, id: &str) -> Result<bool> {
        let (tenant, task_id, id) = (tenant.to_owned(), task_id.to_owned(), id.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute(
                    "DELETE FROM a2a_push_configs WHERE tenant_id = ?1 AND task_id = ?2 AND id = ?3",
                    params![tenant, task_id, id],
                )
                .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn all_a2a_push_configs(&self, after: Millis, limit: usize) -> Result<Vec<A2aPushConfigRecord>> {
        self.read(move |c| {
            let sql = format!(
                "SELECT {CONFIG_COLUMNS} FROM a2a_push_configs WHERE created_at > ?1 ORDER BY created_at LIMIT ?2"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(internal)?;
            let rows = stmt.query_map(params![after, limit as i64], config).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }
}
