//! The SQLite side of [`DeliveryStore`]: leases, acks and nacks (writes on the writer thread,
//! in the modes `writer.rs` describes) and the node-wide maintenance reads.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params, params_from_iter};
use switchboard_core::api::DeliveryState;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::rows::{message_from_row_at, state_of};
use super::writer::{HOT, LAZY, Mode};
use super::{OPEN, SqliteStore, internal};
use crate::audit::{with_count, with_ids};
use crate::sql::{DELIVERY_LISTING, MESSAGE_COLS, OUT_OF_ATTEMPTS, qualified};
use crate::{
    Acked, DeliveryCounts, DeliveryFilter, DeliveryRow, DeliveryStore, Lapsed, LeaseRequest, Leased, MessageRecord,
    Reassign, Result, StoreError, WakeKey,
};

/// The due deliveries of one recipient with their messages, in queue order: by order key
/// (accept time moved by the priority), then accept order.
///
/// `LIMIT ?4 + 0`, not `LIMIT ?4`: SQLite plans with a bound LIMIT's value, so a new value
/// (a stream's room changes from lease to lease) re-prepares the statement on every run,
/// which callgrind showed as 8% of the hub's instructions.
fn lease_due_sql() -> String {
    format!(
        "SELECT d.seq, d.attempts, d.expires_at, {m_cols} FROM deliveries d \
         JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
         WHERE d.tenant_id = ?1 AND d.recipient = ?2 AND {OPEN} AND d.due_at <= ?3 \
         ORDER BY d.order_key, d.seq LIMIT ?4 + 0",
        m_cols = qualified(MESSAGE_COLS, "m"),
    )
}

impl SqliteStore {
    /// Acks in the given write mode (durable when answered, lazy when not).
    async fn ack_in(
        &self,
        mode: Mode,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>> {
        let (tenant, recipient) = (tenant.to_owned(), recipient.to_owned());
        self.queue(mode, move |c, _| {
            let mut st = c
                .prepare_cached(&format!(
                    "UPDATE deliveries SET state = 'acked', acked_at = ?4, updated_at = ?4, due_at = NULL, \
                     lease_expires_at = NULL WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 \
                     AND {OPEN} RETURNING created_at"
                ))
                .map_err(internal)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let created: Option<i64> =
                    st.query_row(params![tenant, id, recipient, now], |r| r.get(0)).optional().map_err(internal)?;
                if let Some(created_at) = created {
                    out.push(Acked { id, created_at });
                }
            }
            if let Some(e) = audit.filter(|_| !out.is_empty()) {
                super::audit::append(c, &with_ids(e, &out))?;
            }
            Ok(out)
        })
        .await
    }
}

/// Appends the filter's conditions on `d` (deliveries) and `m` (messages) to `sql`.
fn filter_sql(f: &DeliveryFilter, sql: &mut String, args: &mut Vec<SqlValue>) {
    if let Some(s) = f.state {
        sql.push_str(" AND d.state = ?");
        args.push(SqlValue::Text(s.as_str().into()));
    }
    if let Some(r) = &f.recipient {
        sql.push_str(" AND d.recipient = ?");
        args.push(SqlValue::Text(r.clone()));
    }
    if !f.message_ids.is_empty() {
        sql.push_str(" AND d.message_id IN (");
        sql.push_str(&vec!["?"; f.message_ids.len()].join(", "));
        sql.push(')');
        args.extend(f.message_ids.iter().map(|id| SqlValue::Text(id.clone())));
    }
    if let Some(since) = f.since {
        sql.push_str(" AND d.created_at >= ?");
        args.push(SqlValue::Integer(since));
    }
    if let Some(after) = f.after {
        sql.push_str(" AND d.seq > ?");
        args.push(SqlValue::Integer(after));
    }
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn outstanding(&self, tenant: &str, recipients: &[String]) -> Result<Vec<(String, i64)>> {
        let tenant = tenant.to_owned();
        let recipients = recipients.to_vec();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT count(*) FROM deliveries WHERE tenant_id = ?1 AND recipient = ?2 AND {OPEN}"
                ))
                .map_err(internal)?;
            recipients
                .into_iter()
                .map(|r| {
                    let n: i64 = st.query_row(params![tenant, r], |row| row.get(0)).map_err(internal)?;
                    Ok((r, n))
                })
                .collect()
        })
        .await
    }
    async fn lease(&self, req: LeaseRequest) -> Result<Vec<Leased>> {
        // Lazy: a lease lost in a crash only means the message is delivered again, which
        // at-least-once allows; the consumer need not wait for a second fsync after the send's.
        self.queue(LAZY, move |c, _| {
            // The due deliveries and their messages in one statement, not one read per message.
            let mut st = c.prepare_cached(&lease_due_sql()).map_err(internal)?;
            let due: Vec<(i64, u32, Option<i64>, MessageRecord)> = st
                .query_map(params![req.tenant, req.recipient, req.now, req.limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, message_from_row_at(r, 3)?))
                })
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)?;
            let lease_until = req.now + req.lease_ms;
            let mut out = Vec::with_capacity(due.len());
            for (seq, attempts, expires_at, message) in due {
                if expires_at.is_some_and(|e| e <= req.now) {
                    c.prepare_cached("UPDATE deliveries SET state = 'expired', due_at = NULL, updated_at = ?2 WHERE seq = ?1")
                        .and_then(|mut s| s.execute(params![seq, req.now]))
                        .map_err(internal)?;
                    continue;
                }
                if attempts >= req.max_attempts {
                    c.prepare_cached(
                        "UPDATE deliveries SET state = 'dead', due_at = NULL, updated_at = ?2, last_error = ?3 \
                         WHERE seq = ?1",
                    )
                    .and_then(|mut s| s.execute(params![seq, req.now, OUT_OF_ATTEMPTS]))
                    .map_err(internal)?;
                    continue;
                }
                c.prepare_cached(
                    "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, due_at = ?2, lease_expires_at = ?2, \
                     delivered_at = coalesce(delivered_at, ?3), updated_at = ?3 WHERE seq = ?1",
                )
                .and_then(|mut s| s.execute(params![seq, lease_until, req.now]))
                .map_err(internal)?;
                out.push(Leased { message, attempt: attempts + 1, lease_expires_at: lease_until });
            }
            Ok(out)
        })
        .await
    }

    async fn ack(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>> {
        self.ack_in(HOT, tenant, recipient, ids, now, audit).await
    }

    async fn ack_unanswered(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>> {
        self.ack_in(LAZY, tenant, recipient, ids, now, audit).await
    }

    async fn nack(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        due_at: Millis,
        now: Millis,
    ) -> Result<Vec<String>> {
        let (tenant, recipient) = (tenant.to_owned(), recipient.to_owned());
        self.write(move |c, keys| {
            let mut st = c
                .prepare_cached(&format!(
                    "UPDATE deliveries SET state = 'pending', due_at = ?4, lease_expires_at = NULL, updated_at = ?5 \
                     WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 AND {OPEN}"
                ))
                .map_err(internal)?;
            let mut out = Vec::new();
            for id in ids {
                if st.execute(params![tenant, id, recipient, due_at, now]).map_err(internal)? > 0 {
                    out.push(id);
                }
            }
            if !out.is_empty() && due_at <= now {
                keys.push((tenant, recipient));
            }
            Ok(out)
        })
        .await
    }

    async fn expire(&self, now: Millis) -> Result<u64> {
        self.write(move |c, _| {
            let n = c
                .execute(
                    &format!(
                        "UPDATE deliveries SET state = 'expired', due_at = NULL, lease_expires_at = NULL, updated_at = ?1 \
                         WHERE {OPEN} AND expires_at IS NOT NULL AND expires_at <= ?1"
                    ),
                    params![now],
                )
                .map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }

    async fn due_recipients(&self, after: Millis, upto: Millis) -> Result<Vec<WakeKey>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT DISTINCT tenant_id, recipient FROM deliveries \
                     WHERE {OPEN} AND due_at > ?1 AND due_at <= ?2"
                ))
                .map_err(internal)?;
            let rows = st.query_map(params![after, upto], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn lapsed_anycast(&self, after: Millis, upto: Millis) -> Result<Vec<Lapsed>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT d.tenant_id, d.message_id, d.recipient, m.recipient FROM deliveries d \
                     JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
                     WHERE {open} AND d.due_at > ?1 AND d.due_at <= ?2 AND d.attempts > 0 \
                     AND d.due_at > d.updated_at {anycast}",
                    open = OPEN.replace("state", "d.state"),
                    anycast = crate::sql::ANYCAST_CONDITION,
                ))
                .map_err(internal)?;
            let rows = st
                .query_map(params![after, upto], |r| {
                    Ok(Lapsed { tenant: r.get(0)?, message_id: r.get(1)?, recipient: r.get(2)?, to: r.get(3)? })
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn reassign(&self, r: Reassign) -> Result<bool> {
        self.write(move |c, keys| {
            let n = c
                .prepare_cached(&format!(
                    "UPDATE deliveries SET recipient = ?4, push = ?5, state = 'pending', due_at = ?6, \
                     lease_expires_at = NULL, updated_at = ?6 \
                     WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 AND {OPEN} \
                     AND due_at <= ?6 AND due_at > updated_at"
                ))
                .and_then(|mut st| st.execute(params![r.tenant, r.message_id, r.from, r.to, r.push, r.now]))
                .map_err(internal)?;
            if n > 0 {
                keys.push((r.tenant, r.to));
            }
            Ok(n > 0)
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts> {
        self.read(|c| {
            c.query_row(
                &format!(
                    "SELECT coalesce(sum(state = 'pending'), 0), coalesce(sum(state != 'pending'), 0) \
                     FROM deliveries WHERE {OPEN}"
                ),
                [],
                |r| Ok(DeliveryCounts { pending: r.get(0)?, in_flight: r.get(1)? }),
            )
            .map_err(internal)
        })
        .await
    }

    async fn list_deliveries(&self, tenant: &str, f: DeliveryFilter) -> Result<Vec<(i64, DeliveryRow)>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut sql = format!("{DELIVERY_LISTING}?");
            let mut args = vec![SqlValue::Text(tenant)];
            filter_sql(&f, &mut sql, &mut args);
            sql.push_str(" ORDER BY d.seq LIMIT ?");
            args.push(SqlValue::Integer(f.limit.max(1) as i64));
            let mut st = c.prepare(&sql).map_err(internal)?;
            let rows = st
                .query_map(params_from_iter(args), |r| {
                    let state: String = r.get(4)?;
                    Ok((
                        r.get(0)?,
                        DeliveryRow {
                            message_id: r.get(1)?,
                            sender: r.get(2)?,
                            recipient: r.get(3)?,
                            state: state_of(&state)?,
                            attempts: r.get(5)?,
                            created_at: r.get(6)?,
                            updated_at: r.get(7)?,
                            last_error: r.get(8)?,
                        },
                    ))
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn replay_dead(
        &self,
        tenant: &str,
        mut f: DeliveryFilter,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<u64> {
        let tenant = tenant.to_owned();
        f.state = Some(DeliveryState::Dead);
        self.write(move |c, keys| {
            let mut sql = String::from(
                "UPDATE deliveries AS d SET state = 'pending', attempts = 0, due_at = ?, lease_expires_at = NULL, \
                 updated_at = ?, last_error = NULL WHERE d.tenant_id = ?",
            );
            let mut args = vec![SqlValue::Integer(now), SqlValue::Integer(now), SqlValue::Text(tenant.clone())];
            filter_sql(&f, &mut sql, &mut args);
            sql.push_str(" RETURNING recipient");
            let mut st = c.prepare(&sql).map_err(internal)?;
            let recipients: Vec<String> = st
                .query_map(params_from_iter(args), |r| r.get(0))
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)?;
            let n = recipients.len() as u64;
            append_if(c, n > 0, audit.map(|a| with_count(a, n)).as_ref())?;
            keys.extend(recipients.into_iter().map(|r| (tenant.clone(), r)));
            Ok(n)
        })
        .await
    }

    async fn purge_dead(&self, tenant: &str, mut f: DeliveryFilter, audit: Option<NewAuditEvent>) -> Result<u64> {
        let tenant = tenant.to_owned();
        f.state = Some(DeliveryState::Dead);
        self.write(move |c, _| {
            let mut sql = String::from("DELETE FROM deliveries AS d WHERE d.tenant_id = ?");
            let mut args = vec![SqlValue::Text(tenant)];
            filter_sql(&f, &mut sql, &mut args);
            let n = c.execute(&sql, params_from_iter(args)).map_err(internal)? as u64;
            append_if(c, n > 0, audit.map(|a| with_count(a, n)).as_ref())?;
            Ok(n)
        })
        .await
        .map_err(|e: StoreError| e)
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::lease_due_sql;

    /// Leasing with a different limit each time must not re-prepare the statement.
    #[test]
    fn lease_statement_is_prepared_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = crate::sqlite::open(&dir.path().join("x.db")).expect("open");
        conn.execute_batch(include_str!("schema.sql")).expect("schema");
        for limit in 1..20_i64 {
            let mut st = conn.prepare_cached(&lease_due_sql()).expect("prepare");
            let rows =
                st.query_map(params!["t", "agent:a", limit * 1000, limit], |r| r.get::<_, i64>(0)).expect("query");
            assert_eq!(rows.count(), 0);
        }
        let st = conn.prepare_cached(&lease_due_sql()).expect("prepare");
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
        assert_eq!(st.get_status(rusqlite::StatementStatus::Run), 19);
    }
}
