//! The SQLite side of [`ApprovalStore`]: one row per approval; updates conditional on its
//! `version`, on the one writer.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::Result;
use crate::approvals::{ApprovalFilter, ApprovalRecord, ApprovalStore};
use crate::sql::APPROVAL_COLS;

fn approval_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        tenant: r.get(0)?,
        id: r.get(1)?,
        message_id: r.get(2)?,
        requester: r.get(3)?,
        request: r.get(4)?,
        deadline: r.get(5)?,
        state: r.get(6)?,
        deciders: r.get(7)?,
        escalated: r.get(8)?,
        decisions: r.get(9)?,
        outcome: r.get(10)?,
        outbox: r.get(11)?,
        due_at: r.get(12)?,
        version: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

fn one(c: &Connection, sql: &str, tenant: &str, key: &str) -> Result<Option<ApprovalRecord>> {
    c.prepare_cached(sql)
        .map_err(internal)?
        .query_row(params![tenant, key], approval_from_row)
        .optional()
        .map_err(internal)
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn create_approval(&self, a: ApprovalRecord, audit: Option<NewAuditEvent>) -> Result<()> {
        self.write(move |c, _| {
            c.execute(
                &format!(
                    "INSERT INTO approvals ({APPROVAL_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                ),
                params![
                    a.tenant,
                    a.id,
                    a.message_id,
                    a.requester,
                    a.request,
                    a.deadline,
                    a.state,
                    a.deciders,
                    a.escalated,
                    a.decisions,
                    a.outcome,
                    a.outbox,
                    a.due_at,
                    a.version,
                    a.created_at,
                    a.updated_at
                ],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn get_approval(&self, tenant: &str, id: &str) -> Result<Option<ApprovalRecord>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            one(c, &format!("SELECT {APPROVAL_COLS} FROM approvals WHERE tenant_id = ?1 AND id = ?2"), &tenant, &id)
        })
        .await
    }

    async fn approval_for_message(&self, tenant: &str, message_id: &str) -> Result<Option<ApprovalRecord>> {
        let (tenant, id) = (tenant.to_owned(), message_id.to_owned());
        self.read(move |c| {
            let sql = format!("SELECT {APPROVAL_COLS} FROM approvals WHERE tenant_id = ?1 AND message_id = ?2");
            one(c, &sql, &tenant, &id)
        })
        .await
    }

    async fn list_approvals(&self, tenant: &str, f: ApprovalFilter) -> Result<Vec<ApprovalRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {APPROVAL_COLS} FROM approvals WHERE tenant_id = ?1 AND (?2 IS NULL OR state = ?2) \
                 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
            ))
            .map_err(internal)?
            .query_map(params![tenant, f.state, f.before, f.limit as i64], approval_from_row)
            .map_err(internal)?
            .collect::<rusqlite::Result<_>>()
            .map_err(internal)
        })
        .await
    }

    async fn update_approval(&self, a: ApprovalRecord, audit: Vec<NewAuditEvent>) -> Result<bool> {
        self.write(move |c, _| {
            let n = c
                .prepare_cached(
                    "UPDATE approvals SET state = ?4, deciders = ?5, escalated = ?6, decisions = ?7, outcome = ?8, \
                     outbox = ?9, due_at = ?10, updated_at = ?11, version = version + 1 \
                     WHERE tenant_id = ?1 AND id = ?2 AND version = ?3",
                )
                .map_err(internal)?
                .execute(params![
                    a.tenant,
                    a.id,
                    a.version,
                    a.state,
                    a.deciders,
                    a.escalated,
                    a.decisions,
                    a.outcome,
                    a.outbox,
                    a.due_at,
                    a.updated_at
                ])
                .map_err(internal)?;
            for e in &audit {
                append_if(c, n > 0, Some(e))?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn due_approvals(&self, now: Millis, limit: usize) -> Result<Vec<ApprovalRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {APPROVAL_COLS} FROM approvals WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2"
            ))
            .map_err(internal)?
            .query_map(params![now, limit as i64], approval_from_row)
            .map_err(internal)?
            .collect::<rusqlite::Result<_>>()
            .map_err(internal)
        })
        .await
    }
}
