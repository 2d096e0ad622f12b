//! The PostgreSQL side of [`A2aStore`]: the task index and the push configs.

use async_trait::async_trait;
use switchboard_core::time::Millis;
use tokio_postgres::Row;

use super::PostgresStore;
use super::error::{Fail, retrying};
use crate::Result;
use crate::a2a::{A2aPushConfigRecord, A2aStore, A2aTaskFilter, A2aTaskRecord};

const TASK_COLUMNS: &str = "tenant_id, id, agent_id, owner, context_id, created_at";
const CONFIG_COLUMNS: &str = "tenant_id, task_id, id, owner, url, token, auth_scheme, auth_credentials, created_at";

fn task(r: &Row) -> Result<A2aTaskRecord, Fail> {
    Ok(A2aTaskRecord {
        tenant: r.try_get(0)?,
        id: r.try_get(1)?,
        agent_id: r.try_get(2)?,
        owner: r.try_get(3)?,
        context_id: r.try_get(4)?,
        created_at: r.try_get(5)?,
    })
}

fn config(r: &Row) -> Result<A2aPushConfigRecord, Fail> {
    Ok(A2aPushConfigRecord {
        tenant: r.try_get(0)?,
        task_id: r.try_get(1)?,
        id: r.try_get(2)?,
        owner: r.try_get(3)?,
        url: r.try_get(4)?,
        token: r.try_get(5)?,
        auth_scheme: r.try_get(6)?,
        auth_credentials: r.try_get(7)?,
        created_at: r.try_get(8)?,
    })
}

#[async_trait]
impl A2aStore for PostgresStore {
    async fn record_a2a_task(&self, t: A2aTaskRecord) -> Result<()> {
        let t = &t;
        retrying(move || async move {
            let c = self.conn().await?;
            c.execute(
                &format!(
                    "INSERT INTO a2a_tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
                ),
                &[&t.tenant, &t.id, &t.agent_id, &t.owner, &t.context_id, &t.created_at],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn list_a2a_tasks(&self, tenant: &str, f: A2aTaskFilter) -> Result<Vec<A2aTaskRecord>> {
        let run = async {
            let c = self.conn().await?;
            let limit = f.limit as i64;
            let rows = c
                .query(
                    &format!(
                        "SELECT {TASK_COLUMNS} FROM a2a_tasks WHERE tenant_id = $1 AND agent_id = $2 \
                         AND ($3::TEXT IS NULL OR owner = $3) AND ($4::TEXT IS NULL OR context_id = $4) \
                         ORDER BY created_at DESC, id DESC LIMIT $5"
                    ),
                    &[&tenant, &f.agent_id, &f.owner, &f.context_id, &limit],
                )
                .await?;
            rows.iter().map(task).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn put_a2a_push_config(&self, p: A2aPushConfigRecord) -> Result<()> {
        let p = &p;
        retrying(move || async move {
            let c = self.conn().await?;
            c.execute(
                &format!(
                    "INSERT INTO a2a_push_configs ({CONFIG_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (tenant_id, task_id, id) DO UPDATE SET owner = excluded.owner, url = excluded.url, \
                     token = excluded.token, auth_scheme = excluded.auth_scheme, \
                     auth_credentials = excluded.auth_credentials"
                ),
                &[
                    &p.tenant,
                    &p.task_id,
                    &p.id,
                    &p.owner,
                    &p.url,
                    &p.token,
                    &p.auth_scheme,
                    &p.auth_credentials,
                    &p.created_at,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn a2a_push_configs(&self, tenant: &str, task_id: &str) -> Result<Vec<A2aPushConfigRecord>> {
        let run = async {
            let c = self.conn().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {CONFIG_COLUMNS} FROM a2a_push_configs WHERE tenant_id = $1 AND task_id = $2 \
                         ORDER BY created_at, id"
                    ),
                    &[&tenant, &task_id],
                )
                .await?;
            rows.iter().map(config).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn delete_a2a_push_config(&self, tenant: &str, task_id: &str, id: &str) -> Result<bool> {
        retrying(move || async move {
            let c = self.conn().await?;
            let n = c
                .execute(
                    "DELETE FROM a2a_push_configs WHERE tenant_id = $1 AND task_id = $2 AND id = $3",
                    &[&tenant, &task_id, &id],
                )
                .await?;
            Ok(n > 0)
        })
        .await
    }

    async fn all_a2a_push_configs(&self, after: Millis, limit: usize) -> Result<Vec<A2aPushConfigRecord>> {
        let run = async {
            let c = self.conn().await?;
            let limit = limit as i64;
            let rows = c
                .query(
                    &format!(
                        "SELECT {CONFIG_COLUMNS} FROM a2a_push_configs WHERE created_at > $1 \
                         ORDER BY created_at LIMIT $2"
                    ),
                    &[&after, &limit],
                )
                .await?;
            rows.iter().map(config).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }
}
