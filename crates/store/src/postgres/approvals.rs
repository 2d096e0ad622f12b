//! The PostgreSQL side of [`ApprovalStore`]: one row per approval; an update is one
//! statement conditional on the row's `version`, so of two nodes (or two deciders) racing on
//! one approval exactly one changes it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;
use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::append_if;
use super::error::{Fail, retrying};
use crate::Result;
use crate::approvals::{ApprovalFilter, ApprovalRecord, ApprovalStore};
use crate::sql::APPROVAL_COLS;

fn approval_from_row(r: &Row) -> Result<ApprovalRecord, Fail> {
    Ok(ApprovalRecord {
        tenant: r.try_get(0)?,
        id: r.try_get(1)?,
        message_id: r.try_get(2)?,
        requester: r.try_get(3)?,
        request: r.try_get(4)?,
        deadline: r.try_get(5)?,
        state: r.try_get(6)?,
        deciders: r.try_get(7)?,
        escalated: r.try_get(8)?,
        decisions: r.try_get(9)?,
        outcome: r.try_get(10)?,
        outbox: r.try_get(11)?,
        due_at: r.try_get(12)?,
        version: r.try_get(13)?,
        created_at: r.try_get(14)?,
        updated_at: r.try_get(15)?,
    })
}

async fn one(c: &impl GenericClient, sql: &str, tenant: &str, key: &str) -> Result<Option<ApprovalRecord>, Fail> {
    let st = c.prepare_cached(sql).await?;
    c.query_opt(&st, &[&tenant, &key]).await?.as_ref().map(approval_from_row).transpose()
}

#[async_trait]
impl ApprovalStore for PostgresStore {
    async fn create_approval(&self, a: ApprovalRecord, audit: Option<NewAuditEvent>) -> Result<()> {
        let (a, audit) = (&a, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                &format!(
                    "INSERT INTO approvals ({APPROVAL_COLS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                ),
                &[
                    &a.tenant,
                    &a.id,
                    &a.message_id,
                    &a.requester,
                    &a.request,
                    &a.deadline,
                    &a.state,
                    &a.deciders,
                    &a.escalated,
                    &a.decisions,
                    &a.outcome,
                    &a.outbox,
                    &a.due_at,
                    &a.version,
                    &a.created_at,
                    &a.updated_at,
                ],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn get_approval(&self, tenant: &str, id: &str) -> Result<Option<ApprovalRecord>> {
        let run = async {
            let c = self.conn().await?;
            one(&c, &format!("SELECT {APPROVAL_COLS} FROM approvals WHERE tenant_id = $1 AND id = $2"), tenant, id)
                .await
        };
        run.await.map_err(Fail::into_store)
    }

    async fn approval_for_message(&self, tenant: &str, message_id: &str) -> Result<Option<ApprovalRecord>> {
        let run = async {
            let c = self.conn().await?;
            let sql = format!("SELECT {APPROVAL_COLS} FROM approvals WHERE tenant_id = $1 AND message_id = $2");
            one(&c, &sql, tenant, message_id).await
        };
        run.await.map_err(Fail::into_store)
    }

    async fn list_approvals(&self, tenant: &str, f: ApprovalFilter) -> Result<Vec<ApprovalRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {APPROVAL_COLS} FROM approvals WHERE tenant_id = $1 \
                     AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
                ))
                .await?;
            let rows = c.query(&st, &[&tenant, &f.state, &f.before, &(f.limit as i64)]).await?;
            rows.iter().map(approval_from_row).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn update_approval(&self, a: ApprovalRecord, audit: Vec<NewAuditEvent>) -> Result<bool> {
        let (a, audit) = (&a, &audit);
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute(
                    "UPDATE approvals SET state = $4, deciders = $5, escalated = $6, decisions = $7, outcome = $8, \
                     outbox = $9, due_at = $10, updated_at = $11, version = version + 1 \
                     WHERE tenant_id = $1 AND id = $2 AND version = $3",
                    &[
                        &a.tenant,
                        &a.id,
                        &a.version,
                        &a.state,
                        &a.deciders,
                        &a.escalated,
                        &a.decisions,
                        &a.outcome,
                        &a.outbox,
                        &a.due_at,
                        &a.updated_at,
                    ],
                )
                .await?;
            for e in audit {
                append_if(&tx, n > 0, Some(e)).await?;
            }
            tx.commit().await?;
            Ok(n > 0)
        })
        .await
    }

    async fn due_approvals(&self, now: Millis, limit: usize) -> Result<Vec<ApprovalRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {APPROVAL_COLS} FROM approvals WHERE due_at IS NOT NULL AND due_at <= $1 \
                     ORDER BY due_at LIMIT $2"
                ))
                .await?;
            let rows = c.query(&st, &[&now, &(limit as i64)]).await?;
            rows.iter().map(approval_from_row).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }
}
