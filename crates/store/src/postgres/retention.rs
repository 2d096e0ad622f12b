//! The PostgreSQL side of [`RetentionStore`]. A purge batch is one transaction that first
//! takes a transaction-scoped advisory lock without waiting: the nodes of a cluster all run
//! the purge task, and the one that holds the lock does the batch while the others skip it,
//! instead of deleting the same rows in a storm of row locks.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::PostgresStore;
use super::audit::append_if;
use super::error::{Fail, retrying};
use crate::Result;
use crate::conversations::sql::pg;
use crate::retention::{Erased, PurgeOutcome, PurgeRequest, RetentionSettings, RetentionStore, plan, sql};

const PG_DELETE_DEAD: &str = "DELETE FROM deliveries WHERE tenant_id = $1 AND message_id = ANY($2) \
    AND state IN ('dead', 'failed') AND updated_at < $3";
/// The messages of `$2` that a delivery still holds (see `sql::HOLDING`).
const PG_HOLDING: &str = "SELECT DISTINCT message_id FROM deliveries WHERE tenant_id = $1 AND message_id = ANY($2) \
    AND NOT (state IN ('acked', 'expired') OR (state IN ('dead', 'failed') AND updated_at < $3))";
const PG_DELETE_DELIVERIES: &str = "DELETE FROM deliveries WHERE tenant_id = $1 AND message_id = ANY($2)";
const PG_DELETE_ATTEMPTS: &str = "DELETE FROM push_attempts WHERE tenant_id = $1 AND message_id = ANY($2)";
const PG_DELETE_MESSAGES: &str = "DELETE FROM messages WHERE tenant_id = $1 AND id = ANY($2)";

/// Arbitrary key of the advisory lock held by the node purging.
const PURGE_LOCK: i64 = 0x5357_4954_4348_0002;

fn settings(r: &tokio_postgres::Row, at: usize) -> Result<RetentionSettings, Fail> {
    Ok(RetentionSettings { messages_max_age_ms: r.try_get(at)?, dead_letters_max_age_ms: r.try_get(at + 1)? })
}

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn retention(&self, tenant: &str) -> Result<RetentionSettings> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached(&pg(sql::GET)).await?;
            match c.query_opt(&st, &[&tenant]).await? {
                Some(r) => settings(&r, 0),
                None => Ok(RetentionSettings::default()),
            }
        };
        run.await.map_err(Fail::into_store)
    }

    async fn put_retention(&self, tenant: &str, s: RetentionSettings, audit: Option<NewAuditEvent>) -> Result<()> {
        let audit = audit.as_ref();
        let now = switchboard_core::time::now_ms();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(&pg(sql::PUT), &[&tenant, &s.messages_max_age_ms, &s.dead_letters_max_age_ms, &now]).await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn retention_tenants(&self) -> Result<Vec<(String, RetentionSettings)>> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached(&pg(sql::ALL)).await?;
            c.query(&st, &[])
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, settings(r, 1)?)))
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn purge(&self, req: PurgeRequest, _now: Millis) -> Result<PurgeOutcome> {
        let req = &req;
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let locked: bool =
                tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PURGE_LOCK]).await?.try_get(0)?;
            if !locked {
                return Ok(PurgeOutcome { busy: true, ..PurgeOutcome::default() });
            }
            let after = req.after.clone().unwrap_or_default();
            let st = tx.prepare_cached(&pg(sql::CANDIDATES)).await?;
            let rows = tx.query(&st, &[&req.tenant, &after, &(req.limit as i64)]).await?;
            let rows = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<(String, Millis, Option<String>)>, Fail>>()?;
            let (candidates, end) = plan(req, rows);
            let last_id = if end { None } else { candidates.last().map(|c| c.id.clone()) };
            let mut out = PurgeOutcome { examined: candidates.len(), last_id, ..PurgeOutcome::default() };
            let dead_before = req.dead_before.unwrap_or(Millis::MIN);
            // Set-based: a statement per step for the whole batch, not one per message.
            let ids: Vec<&str> = candidates.iter().map(|m| m.id.as_str()).collect();
            if req.dead_before.is_some() {
                let st = tx.prepare_cached(PG_DELETE_DEAD).await?;
                out.deliveries += tx.execute(&st, &[&req.tenant, &ids, &dead_before]).await? as usize;
            }
            let expired: Vec<&str> = candidates.iter().filter(|m| m.expired(req)).map(|m| m.id.as_str()).collect();
            if !expired.is_empty() {
                let st = tx.prepare_cached(PG_HOLDING).await?;
                let held: std::collections::HashSet<String> = tx
                    .query(&st, &[&req.tenant, &expired, &dead_before])
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                let gone: Vec<&str> = expired.into_iter().filter(|id| !held.contains(*id)).collect();
                let entry = tx.prepare_cached(&pg(sql::DELETE_ENTRY)).await?;
                for m in candidates.iter().filter(|m| gone.contains(&m.id.as_str())) {
                    if let Some(conversation) = &m.conversation {
                        tx.execute(&entry, &[&req.tenant, conversation, &m.id]).await?;
                    }
                }
                let st = tx.prepare_cached(PG_DELETE_DELIVERIES).await?;
                out.deliveries += tx.execute(&st, &[&req.tenant, &gone]).await? as usize;
                let st = tx.prepare_cached(PG_DELETE_ATTEMPTS).await?;
                tx.execute(&st, &[&req.tenant, &gone]).await?;
                let st = tx.prepare_cached(PG_DELETE_MESSAGES).await?;
                out.messages += tx.execute(&st, &[&req.tenant, &gone]).await? as usize;
            }
            tx.commit().await?;
            Ok(out)
        })
        .await
    }

    async fn erase_messages(&self, tenant: &str, address: &str, now: Millis) -> Result<Erased> {
        retrying(move || async move {
            let c = self.conn().await?;
            let n = c.execute(&pg(sql::ERASE), &[&tenant, &address, &now]).await?;
            Ok(Erased { messages: n as usize })
        })
        .await
    }
}
