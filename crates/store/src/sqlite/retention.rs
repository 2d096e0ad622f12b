//! The SQLite side of [`RetentionStore`]: a purge batch is one job of the writer, so it
//! shares a group commit with sends and never holds the write lock for longer than one
//! bounded batch.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::Result;
use crate::retention::{Erased, PurgeOutcome, PurgeRequest, RetentionSettings, RetentionStore, plan, sql};

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn retention(&self, tenant: &str) -> Result<RetentionSettings> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let row = c
                .prepare_cached(sql::GET)
                .and_then(|mut st| {
                    st.query_row([tenant], |r| {
                        Ok(RetentionSettings { messages_max_age_ms: r.get(0)?, dead_letters_max_age_ms: r.get(1)? })
                    })
                    .optional()
                })
                .map_err(internal)?;
            Ok(row.unwrap_or_default())
        })
        .await
    }

    async fn put_retention(&self, tenant: &str, s: RetentionSettings, audit: Option<NewAuditEvent>) -> Result<()> {
        let tenant = tenant.to_owned();
        let now = switchboard_core::time::now_ms();
        self.write(move |c, _| {
            c.execute(sql::PUT, params![tenant, s.messages_max_age_ms, s.dead_letters_max_age_ms, now])
                .map_err(internal)?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn retention_tenants(&self) -> Result<Vec<(String, RetentionSettings)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::ALL).map_err(internal)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        RetentionSettings { messages_max_age_ms: r.get(1)?, dead_letters_max_age_ms: r.get(2)? },
                    ))
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn purge(&self, req: PurgeRequest, _now: Millis) -> Result<PurgeOutcome> {
        // The candidates are read on a reader: the writer's job then only deletes.
        let (tenant, after, limit) = (req.tenant.clone(), req.after.clone().unwrap_or_default(), req.limit as i64);
        let rows = self
            .read(move |c| {
                let mut st = c.prepare_cached(sql::CANDIDATES).map_err(internal)?;
                let rows = st
                    .query_map(params![tenant, after, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(internal)?;
                rows.collect::<rusqlite::Result<Vec<(String, Millis, Option<String>)>>>().map_err(internal)
            })
            .await?;
        let (candidates, end) = plan(&req, rows);
        let last_id = if end { None } else { candidates.last().map(|c| c.id.clone()) };
        if candidates.is_empty() {
            return Ok(PurgeOutcome { last_id, ..PurgeOutcome::default() });
        }
        let examined = candidates.len();
        self.write(move |c, _| {
            let dead_before = req.dead_before.unwrap_or(Millis::MIN);
            let mut out = PurgeOutcome { examined, last_id, ..PurgeOutcome::default() };
            for m in &candidates {
                if req.dead_before.is_some() {
                    out.deliveries += run(c, sql::DELETE_DEAD, params![req.tenant, m.id, dead_before])?;
                }
                if !m.expired(&req) {
                    continue;
                }
                let holding: i64 = c
                    .prepare_cached(sql::HOLDING)
                    .and_then(|mut st| st.query_row(params![req.tenant, m.id, dead_before], |r| r.get(0)))
                    .map_err(internal)?;
                if holding > 0 {
                    continue;
                }
                out.deliveries += run(c, sql::DELETE_DELIVERIES, params![req.tenant, m.id])?;
                run(c, sql::DELETE_ATTEMPTS, params![req.tenant, m.id])?;
                if let Some(conversation) = &m.conversation {
                    run(c, sql::DELETE_ENTRY, params![req.tenant, conversation, m.id])?;
                }
                out.messages += run(c, sql::DELETE_MESSAGE, params![req.tenant, m.id])?;
            }
            Ok(out)
        })
        .await
    }

    async fn erase_messages(&self, tenant: &str, address: &str, now: Millis) -> Result<Erased> {
        let (tenant, address) = (tenant.to_owned(), address.to_owned());
        self.write(move |c, _| Ok(Erased { messages: run(c, sql::ERASE, params![tenant, address, now])? })).await
    }
}

fn run(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<usize> {
    c.prepare_cached(sql).and_then(|mut st| st.execute(p)).map_err(internal)
}
