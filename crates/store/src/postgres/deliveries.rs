//! The PostgreSQL side of [`DeliveryStore`]: leases under row locks, acks, nacks and the
//! node-wide maintenance reads.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use switchboard_core::api::DeliveryState;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;
use tokio_postgres::types::ToSql;

use super::audit::append_if;
use super::error::{Fail, internal, retrying};
use super::listener::{dedup, notify};
use super::rows::{attempts_of, message_from_row};
use super::{OPEN, PostgresStore};
use crate::audit::{with_count, with_ids};
use crate::sql::{DELIVERY_LISTING, MESSAGE_COLS, OUT_OF_ATTEMPTS, qualified};
use crate::{
    Acked, DeliveryCounts, DeliveryFilter, DeliveryRow, DeliveryStore, Lapsed, LeaseRequest, Leased, Reassign, Result,
    WakeKey,
};

impl PostgresStore {
    /// Acks; `synchronous: false` commits without waiting for the WAL flush (see
    /// `Store::ack_unanswered`).
    async fn ack_in(
        &self,
        synchronous: bool,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = &ids;
        let audit = &audit;
        let mut created = retrying(move || async move {
            let mut c = self.conn().await?;
            // The whole batch of acks in one statement.
            let sql = format!(
                "UPDATE deliveries SET state = 'acked', acked_at = $4, updated_at = $4, due_at = NULL, \
                 lease_expires_at = NULL \
                 WHERE tenant_id = $1 AND recipient = $2 AND message_id = ANY($3) AND state IN {OPEN} \
                 RETURNING message_id, created_at"
            );
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&tenant, &recipient, ids, &now];
            let rows = if synchronous && audit.is_none() {
                let st = c.prepare_cached(&sql).await?;
                c.query(&st, &params).await?
            } else {
                // A transaction of its own: to commit without waiting for the WAL flush, or
                // to write the audit entry with the acks.
                let tx = c.transaction().await?;
                if !synchronous {
                    tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
                }
                let st = tx.prepare_cached(&sql).await?;
                let rows = tx.query(&st, &params).await?;
                if let Some(e) = audit.as_ref().filter(|_| !rows.is_empty()) {
                    let acked: Vec<Acked> = rows
                        .iter()
                        .map(|r| Ok(Acked { id: r.try_get(0)?, created_at: r.try_get(1)? }))
                        .collect::<Result<_, Fail>>()?;
                    super::audit::append(&tx, &with_ids(e.clone(), &acked)).await?;
                }
                tx.commit().await?;
                rows
            };
            let mut created = HashMap::new();
            for r in rows {
                created.insert(r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?);
            }
            Ok(created)
        })
        .await?;
        // In the caller's order, each id once, as the SQLite store answers.
        Ok(ids
            .iter()
            .filter_map(|id| created.remove(id).map(|created_at| Acked { id: id.clone(), created_at }))
            .collect())
    }
}

/// A statement built at run time (the filters differ per call), with its parameters
/// numbered in the order they are bound.
struct Query {
    sql: String,
    args: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Query {
    fn new(sql: &str) -> Query {
        Query { sql: sql.to_owned(), args: Vec::new() }
    }

    /// Binds `v` and returns its placeholder.
    fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.args.push(Box::new(v));
        format!("${}", self.args.len())
    }

    /// Appends the filter's conditions on `d` (deliveries), as the SQLite store does.
    fn filter(&mut self, f: &DeliveryFilter) {
        if let Some(s) = f.state {
            let p = self.bind(s.as_str());
            self.sql += &format!(" AND d.state = {p}");
        }
        if let Some(r) = &f.recipient {
            let p = self.bind(r.clone());
            self.sql += &format!(" AND d.recipient = {p}");
        }
        if !f.message_ids.is_empty() {
            let p = self.bind(f.message_ids.clone());
            self.sql += &format!(" AND d.message_id = ANY({p}::text[])");
        }
        if let Some(since) = f.since {
            let p = self.bind(since);
            self.sql += &format!(" AND d.created_at >= {p}::int8");
        }
        if let Some(after) = f.after {
            let p = self.bind(after);
            self.sql += &format!(" AND d.seq > {p}::int8");
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn outstanding(&self, tenant: &str, recipients: &[String]) -> Result<Vec<(String, i64)>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT recipient, count(*) FROM deliveries \
                     WHERE tenant_id = $1 AND recipient = ANY($2) AND state IN {OPEN} GROUP BY recipient"
                ))
                .await?;
            let mut counts = HashMap::new();
            for r in c.query(&st, &[&tenant, &recipients]).await? {
                counts.insert(r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?);
            }
            Ok::<_, Fail>(recipients.iter().map(|r| (r.clone(), counts.get(r).copied().unwrap_or(0))).collect())
        };
        run.await.map_err(Fail::into_store)
    }

    async fn lease(&self, req: LeaseRequest) -> Result<Vec<Leased>> {
        let run = async {
            let mut c = self.conn().await?;
            // A lease lost in a crash only means the message is delivered again (at least
            // once), so its commit does not wait for the WAL flush: `synchronous_commit = off`
            // for this transaction alone. A later synchronous commit (an accept, an ack)
            // flushes the WAL up to itself, leases included.
            let tx = c.transaction().await?;
            tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
            // One statement in that short transaction. `due` takes the rows under lock in
            // queue order (order key, then seq), skipping rows another node is leasing right now; a row that node
            // has just committed is re-checked against `due_at <= now` and dropped. The
            // CTE is MATERIALIZED so the locking select runs exactly once. Like SQLite:
            // past-TTL rows expire, rows out of attempts die, the rest are delivered.
            let st = tx
                .prepare_cached(&format!(
                    "WITH due AS MATERIALIZED ( \
                         SELECT seq FROM deliveries \
                         WHERE tenant_id = $1 AND recipient = $2 AND state IN {OPEN} AND due_at <= $3 \
                         ORDER BY order_key, seq LIMIT $4 \
                         FOR UPDATE SKIP LOCKED \
                     ), taken AS ( \
                         UPDATE deliveries d SET \
                             state = CASE WHEN d.expires_at <= $3 THEN 'expired' \
                                          WHEN d.attempts >= $5 THEN 'dead' ELSE 'delivered' END, \
                             attempts = CASE WHEN {ok} THEN d.attempts + 1 ELSE d.attempts END, \
                             due_at = CASE WHEN {ok} THEN $6::int8 END, \
                             lease_expires_at = CASE WHEN {ok} THEN $6 ELSE d.lease_expires_at END, \
                             delivered_at = CASE WHEN {ok} THEN coalesce(d.delivered_at, $3) \
                                                 ELSE d.delivered_at END, \
                             leased_by = CASE WHEN {ok} THEN $7::text ELSE d.leased_by END, \
                             last_error = CASE WHEN {ok} OR d.expires_at <= $3 THEN d.last_error \
                                 ELSE '{OUT_OF_ATTEMPTS}' END, \
                             updated_at = $3 \
                         FROM due WHERE d.tenant_id = $1 AND d.seq = due.seq \
                         RETURNING d.seq, d.order_key, d.message_id, d.state, d.attempts \
                     ) \
                     SELECT t.attempts, {m_cols} FROM taken t \
                     JOIN messages m ON m.tenant_id = $1 AND m.id = t.message_id \
                     WHERE t.state = 'delivered' ORDER BY t.order_key, t.seq",
                    ok = "(coalesce(d.expires_at > $3, true) AND d.attempts < $5)",
                    m_cols = qualified(MESSAGE_COLS, "m"),
                ))
                .await?;
            let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
            let max_attempts = i32::try_from(req.max_attempts).unwrap_or(i32::MAX);
            let lease_until = req.now + req.lease_ms;
            let rows = tx
                .query(
                    &st,
                    &[&req.tenant, &req.recipient, &req.now, &limit, &max_attempts, &lease_until, &self.node_id],
                )
                .await?;
            tx.commit().await?;
            rows.iter()
                .map(|r| {
                    Ok(Leased {
                        attempt: attempts_of(r, 0)?,
                        message: message_from_row(r, 1)?,
                        lease_expires_at: lease_until,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn ack(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>> {
        self.ack_in(true, tenant, recipient, ids, now, audit).await
    }

    async fn ack_unanswered(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>> {
        self.ack_in(false, tenant, recipient, ids, now, audit).await
    }

    async fn nack(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        due_at: Millis,
        now: Millis,
    ) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = &ids;
        let key = (tenant.to_owned(), recipient.to_owned());
        let wakes = due_at <= now;
        let key_ref = &key;
        let mut nacked = retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(&format!(
                    "UPDATE deliveries SET state = 'pending', due_at = $4, lease_expires_at = NULL, updated_at = $5 \
                     WHERE tenant_id = $1 AND recipient = $2 AND message_id = ANY($3) AND state IN {OPEN} \
                     RETURNING message_id"
                ))
                .await?;
            let mut nacked = HashSet::new();
            for r in tx.query(&st, &[&tenant, &recipient, ids, &due_at, &now]).await? {
                nacked.insert(r.try_get::<_, String>(0)?);
            }
            // Due now: other nodes' consumers of this recipient should look again. (A later
            // due_at is announced by the reapers' `due_recipients` when it comes.)
            if wakes && !nacked.is_empty() {
                notify(&tx, std::slice::from_ref(key_ref)).await?;
            }
            tx.commit().await?;
            Ok(nacked)
        })
        .await?;
        if wakes && !nacked.is_empty() {
            self.wake.wake([&key]);
        }
        Ok(ids.iter().filter(|id| nacked.remove(*id)).cloned().collect())
    }

    async fn expire(&self, now: Millis) -> Result<u64> {
        retrying(move || async move {
            let c = self.conn().await?;
            // Node-wide maintenance: scans every tenant, returns only a count.
            let st = c
                .prepare_cached(&format!(
                    "UPDATE deliveries SET state = 'expired', due_at = NULL, lease_expires_at = NULL, updated_at = $1 \
                     WHERE state IN {OPEN} AND expires_at IS NOT NULL AND expires_at <= $1"
                ))
                .await?;
            Ok(c.execute(&st, &[&now]).await?)
        })
        .await
    }

    async fn due_recipients(&self, after: Millis, upto: Millis) -> Result<Vec<WakeKey>> {
        let run = async {
            let c = self.conn().await?;
            // Node-wide maintenance: scans every tenant, returns only (tenant, recipient).
            let st = c
                .prepare_cached(&format!(
                    "SELECT DISTINCT tenant_id, recipient FROM deliveries \
                     WHERE state IN {OPEN} AND due_at > $1 AND due_at <= $2"
                ))
                .await?;
            c.query(&st, &[&after, &upto])
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn lapsed_anycast(&self, after: Millis, upto: Millis) -> Result<Vec<Lapsed>> {
        let run = async {
            let c = self.conn().await?;
            // Node-wide maintenance, like `due_recipients`, over the same index on `due_at`.
            let st = c
                .prepare_cached(&format!(
                    "SELECT d.tenant_id, d.message_id, d.recipient, m.recipient FROM deliveries d \
                     JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
                     WHERE d.state IN {OPEN} AND d.due_at > $1 AND d.due_at <= $2 AND d.attempts > 0 \
                     AND d.due_at > d.updated_at {anycast}",
                    anycast = crate::sql::ANYCAST_CONDITION,
                ))
                .await?;
            c.query(&st, &[&after, &upto])
                .await?
                .iter()
                .map(|r| {
                    Ok(Lapsed {
                        tenant: r.try_get(0)?,
                        message_id: r.try_get(1)?,
                        recipient: r.try_get(2)?,
                        to: r.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn reassign(&self, r: Reassign) -> Result<bool> {
        let r = &r;
        let moved = retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // The row lock and READ COMMITTED's re-check of the WHERE clause make this safe
            // beside a lease of the old recipient or another node's reassignment: whichever
            // commits first changes `due_at`/`updated_at` or `recipient`, and the other
            // matches nothing.
            let st = tx
                .prepare_cached(&format!(
                    "UPDATE deliveries SET recipient = $4, push = $5, state = 'pending', due_at = $6, \
                     lease_expires_at = NULL, leased_by = NULL, updated_at = $6 \
                     WHERE tenant_id = $1 AND message_id = $2 AND recipient = $3 AND state IN {OPEN} \
                     AND due_at <= $6 AND due_at > updated_at"
                ))
                .await?;
            let n = tx.execute(&st, &[&r.tenant, &r.message_id, &r.from, &r.to, &r.push, &r.now]).await?;
            if n > 0 {
                notify(&tx, &[(r.tenant.clone(), r.to.clone())]).await?;
            }
            tx.commit().await?;
            Ok(n > 0)
        })
        .await?;
        if moved {
            self.wake.wake([&(r.tenant.clone(), r.to.clone())]);
        }
        Ok(moved)
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT count(*) FILTER (WHERE state = 'pending'), \
                            count(*) FILTER (WHERE state <> 'pending') \
                     FROM deliveries WHERE state IN {OPEN}"
                ))
                .await?;
            let r = c.query_one(&st, &[]).await?;
            Ok::<_, Fail>(DeliveryCounts { pending: r.try_get(0)?, in_flight: r.try_get(1)? })
        };
        run.await.map_err(Fail::into_store)
    }

    async fn list_deliveries(&self, tenant: &str, f: DeliveryFilter) -> Result<Vec<(i64, DeliveryRow)>> {
        let mut q = Query::new(DELIVERY_LISTING);
        let p = q.bind(tenant.to_owned());
        q.sql += &p;
        q.filter(&f);
        let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
        let p = q.bind(limit);
        q.sql += &format!(" ORDER BY d.seq LIMIT {p}");
        let run = async {
            let c = self.conn().await?;
            c.query(&q.sql, &q.params())
                .await?
                .iter()
                .map(|r| {
                    let state: String = r.try_get(4)?;
                    Ok((
                        r.try_get(0)?,
                        DeliveryRow {
                            message_id: r.try_get(1)?,
                            sender: r.try_get(2)?,
                            recipient: r.try_get(3)?,
                            state: DeliveryState::parse(&state)
                                .ok_or_else(|| internal(format!("unknown delivery state `{state}`")))?,
                            attempts: attempts_of(r, 5)?,
                            created_at: r.try_get(6)?,
                            updated_at: r.try_get(7)?,
                            last_error: r.try_get(8)?,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn replay_dead(
        &self,
        tenant: &str,
        mut f: DeliveryFilter,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<u64> {
        f.state = Some(DeliveryState::Dead);
        let mut q = Query::new("UPDATE deliveries AS d SET state = 'pending', attempts = 0, due_at = ");
        let p = q.bind(now);
        q.sql += &format!(
            "{p}::int8, lease_expires_at = NULL, updated_at = {p}::int8, last_error = NULL WHERE d.tenant_id = "
        );
        let p = q.bind(tenant.to_owned());
        q.sql += &p;
        q.filter(&f);
        q.sql += " RETURNING d.recipient";
        let (q, audit) = (&q, audit.as_ref());
        let keys = retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let rows = tx.query(&q.sql, &q.params()).await?;
            let n = rows.len() as u64;
            let mut keys: Vec<WakeKey> = Vec::with_capacity(rows.len());
            for r in &rows {
                keys.push((tenant.to_owned(), r.try_get(0)?));
            }
            dedup(&mut keys);
            // Due now: consumers on every node should look again, as after an accept.
            notify(&tx, &keys).await?;
            append_if(&tx, n > 0, audit.map(|a| with_count(a.clone(), n)).as_ref()).await?;
            tx.commit().await?;
            Ok((n, keys))
        })
        .await;
        let (n, keys) = keys?;
        self.wake.wake(keys.iter());
        Ok(n)
    }

    async fn purge_dead(&self, tenant: &str, mut f: DeliveryFilter, audit: Option<NewAuditEvent>) -> Result<u64> {
        f.state = Some(DeliveryState::Dead);
        let mut q = Query::new("DELETE FROM deliveries AS d WHERE d.tenant_id = ");
        let p = q.bind(tenant.to_owned());
        q.sql += &p;
        q.filter(&f);
        let (q, audit) = (&q, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx.execute(&q.sql, &q.params()).await?;
            append_if(&tx, n > 0, audit.map(|a| with_count(a.clone(), n)).as_ref()).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }
}
