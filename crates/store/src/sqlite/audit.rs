//! The SQLite side of [`AuditStore`]: appends run on the writer thread, inside the job of the
//! change they record (the one writer is what keeps each tenant's chain single).

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use switchboard_core::api::AuditEvent;
use switchboard_core::audit::{NewAuditEvent, canonical_json, chain_next};
use switchboard_core::time::rfc3339;

use super::{SqliteStore, internal};
use crate::Result;
use crate::audit::{AuditFilter, AuditStore, detail_from_text, list_sql};

/// Appends `e` to its tenant's chain on the writer's connection, in the caller's transaction.
pub(super) fn append(c: &Connection, e: &NewAuditEvent) -> Result<AuditEvent> {
    let head: Option<(i64, String)> = c
        .prepare_cached("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1")
        .and_then(|mut st| st.query_row([&e.tenant], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(internal)?;
    let event = chain_next(head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())), e);
    c.prepare_cached(
        "INSERT INTO audit_events (tenant_id, seq, at, actor, action, target, detail, hash, prev_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut st| {
        st.execute(params![
            e.tenant,
            event.seq,
            e.at,
            event.actor,
            event.action,
            event.target,
            canonical_json(&event.detail),
            event.hash,
            event.prev_hash
        ])
    })
    .map_err(internal)?;
    c.prepare_cached(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tenant_id) DO UPDATE SET seq = ?2, hash = ?3",
    )
    .and_then(|mut st| st.execute(params![e.tenant, event.seq, event.hash]))
    .map_err(internal)?;
    Ok(event)
}

/// Appends `audit` if there is one and `changed` says the change happened.
pub(super) fn append_if(c: &Connection, changed: bool, audit: Option<&NewAuditEvent>) -> Result<()> {
    if let (true, Some(e)) = (changed, audit) {
        append(c, e)?;
    }
    Ok(())
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        seq: r.get(0)?,
        at: rfc3339(r.get(1)?),
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: detail_from_text(r.get(5)?),
        hash: r.get(6)?,
        prev_hash: r.get(7)?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent> {
        self.write(move |c, _| append(c, &event)).await
    }

    async fn list_audit(&self, tenant: &str, f: AuditFilter) -> Result<Vec<AuditEvent>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut args = vec![SqlValue::Text(tenant), SqlValue::Integer(f.after.unwrap_or(0))];
            args.extend(f.actor.clone().map(SqlValue::Text));
            args.extend(f.action.clone().map(SqlValue::Text));
            args.extend(f.since.map(SqlValue::Integer));
            args.push(SqlValue::Integer(i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX)));
            let mut st = c.prepare_cached(&list_sql(&f, '?')).map_err(internal)?;
            let rows = st.query_map(params_from_iter(args), event_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn audit_head(&self, tenant: &str) -> Result<i64> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let seq: Option<i64> = c
                .query_row("SELECT seq FROM audit_heads WHERE tenant_id = ?1", [tenant], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            Ok(seq.unwrap_or(0))
        })
        .await
    }

    async fn audit_tenants(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c
                .prepare("SELECT tenant_id FROM audit_heads UNION SELECT tenant_id FROM audit_events ORDER BY 1")
                .map_err(internal)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn audit_sends(&self, tenant: &str) -> Result<bool> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let on: Option<bool> = c
                .query_row("SELECT sends FROM audit_settings WHERE tenant_id = ?1", [tenant], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            Ok(on.unwrap_or(false))
        })
        .await
    }

    async fn set_audit_sends(&self, tenant: &str, on: bool, audit: Option<NewAuditEvent>) -> Result<()> {
        let tenant = tenant.to_owned();
        self.write(move |c, _| {
            c.execute(
                "INSERT INTO audit_settings (tenant_id, sends) VALUES (?1, ?2) \
                 ON CONFLICT (tenant_id) DO UPDATE SET sends = ?2",
                params![tenant, on],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }
}
