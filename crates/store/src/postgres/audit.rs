//! The PostgreSQL side of [`AuditStore`]. Several nodes append to one chain per tenant: an
//! append locks the tenant's head row (`audit_heads`) until its transaction ends, so a
//! second node's append waits for the first to commit and then continues from its entry.

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use switchboard_core::api::AuditEvent;
use switchboard_core::audit::{GENESIS_HASH, NewAuditEvent, canonical_json, chain_next};
use switchboard_core::time::rfc3339;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::error::{Fail, retrying};
use crate::Result;
use crate::audit::{AuditFilter, AuditStore, detail_from_text, list_sql};

/// Appends `e` to its tenant's chain inside `tx`. Call it last in a transaction: the head
/// row stays locked until the commit.
pub(super) async fn append(tx: &Transaction<'_>, e: &NewAuditEvent) -> Result<AuditEvent, Fail> {
    // Creates the head of a new chain or locks the existing one (an `ON CONFLICT DO UPDATE`
    // locks the row it conflicts with, like `FOR UPDATE`, and returns its latest committed
    // values once any other holder has committed).
    let st = tx
        .prepare_cached(
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash",
        )
        .await?;
    let head = tx.query_one(&st, &[&e.tenant, &GENESIS_HASH]).await?;
    let (seq, hash): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
    let event = chain_next(Some((seq, hash.as_str())), e);
    let st = tx
        .prepare_cached(
            "INSERT INTO audit_events (tenant_id, seq, at, actor, action, target, detail, hash, prev_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    tx.execute(
        &st,
        &[
            &e.tenant,
            &event.seq,
            &e.at,
            &event.actor,
            &event.action,
            &event.target,
            &canonical_json(&event.detail),
            &event.hash,
            &event.prev_hash,
        ],
    )
    .await?;
    let st = tx.prepare_cached("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1").await?;
    tx.execute(&st, &[&e.tenant, &event.seq, &event.hash]).await?;
    Ok(event)
}

/// Appends `audit` if there is one and `changed` says the change happened.
pub(super) async fn append_if(tx: &Transaction<'_>, changed: bool, audit: Option<&NewAuditEvent>) -> Result<(), Fail> {
    if let (true, Some(e)) = (changed, audit) {
        append(tx, e).await?;
    }
    Ok(())
}

fn event_from_row(r: &Row) -> Result<AuditEvent, Fail> {
    Ok(AuditEvent {
        seq: r.try_get(0)?,
        at: rfc3339(r.try_get(1)?),
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        detail: detail_from_text(r.try_get(5)?),
        hash: r.try_get(6)?,
        prev_hash: r.try_get(7)?,
    })
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent> {
        let event = &event;
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let stored = append(&tx, event).await?;
            tx.commit().await?;
            Ok(stored)
        })
        .await
    }

    async fn list_audit(&self, tenant: &str, f: AuditFilter) -> Result<Vec<AuditEvent>> {
        let run = async {
            let c = self.conn().await?;
            let after = f.after.unwrap_or(0);
            let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
            let mut args: Vec<&(dyn ToSql + Sync)> = vec![&tenant, &after];
            if let Some(actor) = &f.actor {
                args.push(actor);
            }
            if let Some(action) = &f.action {
                args.push(action);
            }
            if let Some(since) = &f.since {
                args.push(since);
            }
            args.push(&limit);
            let st = c.prepare_cached(&list_sql(&f, '$')).await?;
            let rows = c.query(&st, &args).await?;
            rows.iter().map(event_from_row).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn audit_head(&self, tenant: &str) -> Result<i64> {
        retrying(move || async move {
            let c = self.conn().await?;
            let row = c.query_opt("SELECT seq FROM audit_heads WHERE tenant_id = $1", &[&tenant]).await?;
            Ok(match row {
                Some(r) => r.try_get(0)?,
                None => 0,
            })
        })
        .await
    }

    async fn audit_tenants(&self) -> Result<Vec<String>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let rows = c
                .query("SELECT tenant_id FROM audit_heads UNION SELECT tenant_id FROM audit_events ORDER BY 1", &[])
                .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect::<Result<Vec<_>, Fail>>()
        })
        .await
    }

    async fn audit_sends(&self, tenant: &str) -> Result<bool> {
        retrying(move || async move {
            let c = self.conn().await?;
            let row = c.query_opt("SELECT sends FROM audit_settings WHERE tenant_id = $1", &[&tenant]).await?;
            Ok(match row {
                Some(r) => r.try_get(0)?,
                None => false,
            })
        })
        .await
    }

    async fn set_audit_sends(&self, tenant: &str, on: bool, audit: Option<NewAuditEvent>) -> Result<()> {
        let audit = &audit;
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO audit_settings (tenant_id, sends) VALUES ($1, $2) \
                 ON CONFLICT (tenant_id) DO UPDATE SET sends = EXCLUDED.sends",
                &[&tenant, &on],
            )
            .await?;
            append_if(&tx, true, audit.as_ref()).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
