//! The PostgreSQL side of [`NotifyStore`]: notification preferences, the per-tenant cursor over
//! deliveries to people, and the e-mail outbox, shared by every node.
//!
//! Several nodes scan one tenant at once harmlessly: the outbox insert is `ON CONFLICT DO
//! NOTHING`, and the cursor moves by compare-and-set (a scan that lost rolls back, outbox
//! rows and all, and the next tick reads from the winner's position). Claims take due rows
//! `FOR UPDATE SKIP LOCKED` and move them past a hold, so one node sends each.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::PostgresStore;
use super::audit::append_if;
use super::error::{Fail, retrying};
use crate::Result;
use crate::notify::{Collect, NotifyStore, OutboxItem, ScannedDelivery, scan};

/// The deliveries after the cursor, oldest first (the primary key's (tenant, seq) range),
/// with the recipient and, for those to people only, who sent the message and the message it
/// replies to.
const SCAN: &str = "SELECT d.seq, d.recipient, d.message_id, d.created_at, \
        CASE WHEN d.recipient LIKE 'user:%' THEN m.sender END, \
        CASE WHEN d.recipient LIKE 'user:%' THEN \
            (SELECT p.sender FROM messages p WHERE p.tenant_id = m.tenant_id AND p.id = m.in_reply_to) END \
     FROM deliveries d JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
     WHERE d.tenant_id = $1 AND d.seq > $2 ORDER BY d.seq LIMIT $3";

/// How long after its accept a delivery may still commit, for the cursor (see
/// `notify::scan`): a send's transaction holding its `seq` longer than this is a database in
/// trouble; its delivery would be passed over without an e-mail (never a message lost).
const SETTLE_MS: i64 = 10_000;

#[async_trait]
impl NotifyStore for PostgresStore {
    async fn notify_prefs(&self, tenant: &str, user_id: &str) -> Result<Option<String>> {
        let run = async {
            let c = self.conn().await?;
            let row = c
                .query_opt("SELECT prefs FROM notify_prefs WHERE tenant_id = $1 AND user_id = $2", &[&tenant, &user_id])
                .await?;
            Ok::<_, Fail>(row.map(|r| r.try_get(0)).transpose()?)
        };
        run.await.map_err(Fail::into_store)
    }

    async fn put_notify_prefs(
        &self,
        tenant: &str,
        user_id: &str,
        prefs: String,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool> {
        let (prefs, audit) = (&prefs, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // The user row is locked so a deletion racing this waits, then finds the row.
            let exists = tx
                .query_opt("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 FOR SHARE", &[&tenant, &user_id])
                .await?
                .is_some();
            if !exists {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO notify_prefs (tenant_id, user_id, prefs, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET prefs = excluded.prefs, updated_at = excluded.updated_at",
                &[&tenant, &user_id, prefs, &now],
            )
            .await?;
            tx.execute(
                "UPDATE notify_outbox SET due_at = $3 WHERE tenant_id = $1 AND user_id = $2 \
                 AND sent_at IS NULL AND claimed_by IS NULL AND due_at > $3",
                &[&tenant, &user_id, &now],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn collect_notifications(&self, k: Collect) -> Result<usize> {
        let k = &k;
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let cursor: Option<i64> = tx
                .query_opt("SELECT seq FROM notify_cursors WHERE tenant_id = $1", &[&k.tenant])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            let from = cursor.unwrap_or(0);
            let st = tx.prepare_cached(SCAN).await?;
            let mut rows = Vec::new();
            for r in tx.query(&st, &[&k.tenant, &from, &(k.limit as i64)]).await? {
                rows.push(ScannedDelivery {
                    seq: r.try_get(0)?,
                    recipient: r.try_get(1)?,
                    message_id: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    sender: r.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                    parent_sender: r.try_get(5)?,
                });
            }
            let found = scan(&rows, from, k, SETTLE_MS);
            let moved = match cursor {
                None => {
                    tx.execute(
                        "INSERT INTO notify_cursors (tenant_id, seq, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (tenant_id) DO NOTHING",
                        &[&k.tenant, &found.cursor, &k.now],
                    )
                    .await?
                }
                Some(_) if found.cursor == from => 1,
                Some(_) => {
                    tx.execute(
                        "UPDATE notify_cursors SET seq = $3, updated_at = $4 WHERE tenant_id = $1 AND seq = $2",
                        &[&k.tenant, &from, &found.cursor, &k.now],
                    )
                    .await?
                }
            };
            if moved == 0 {
                // Another node moved the cursor first; its scan covered these rows.
                return Ok(0);
            }
            let (users, messages, ats): (Vec<&str>, Vec<&str>, Vec<i64>) = found
                .requests
                .iter()
                .map(|(u, m, at)| (u.as_str(), m.as_str(), *at))
                .fold((Vec::new(), Vec::new(), Vec::new()), |(mut u, mut m, mut a), (x, y, z)| {
                    u.push(x);
                    m.push(y);
                    a.push(z);
                    (u, m, a)
                });
            let added = tx
                .execute(
                    "INSERT INTO notify_outbox (tenant_id, user_id, message_id, created_at, due_at) \
                     SELECT $1, u, m, a, $5 FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(u, m, a) \
                     ON CONFLICT DO NOTHING",
                    &[&k.tenant, &users, &messages, &ats, &k.now],
                )
                .await?;
            tx.commit().await?;
            Ok(added as usize)
        })
        .await
    }

    async fn claim_notifications(
        &self,
        now: Millis,
        hold_ms: i64,
        node: &str,
        limit: usize,
    ) -> Result<Vec<OutboxItem>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let rows = c
                .query(
                    "UPDATE notify_outbox o SET due_at = $2, claimed_by = $3 FROM ( \
                         SELECT tenant_id, user_id, message_id FROM notify_outbox \
                         WHERE sent_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) d \
                     WHERE o.tenant_id = d.tenant_id AND o.user_id = d.user_id AND o.message_id = d.message_id \
                     RETURNING o.tenant_id, o.user_id, o.message_id, o.created_at",
                    &[&now, &(now + hold_ms), &node, &(limit as i64)],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(OutboxItem {
                    tenant: r.try_get(0)?,
                    user_id: r.try_get(1)?,
                    message_id: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn defer_notifications(&self, items: &[OutboxItem], due_at: Millis) -> Result<()> {
        let (t, u, m) = columns(items);
        let (t, u, m) = (&t, &u, &m);
        retrying(move || async move {
            let c = self.conn().await?;
            c.execute(
                "UPDATE notify_outbox o SET due_at = $4, claimed_by = NULL \
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS k(t, u, m) \
                 WHERE o.tenant_id = k.t AND o.user_id = k.u AND o.message_id = k.m AND o.sent_at IS NULL",
                &[t, u, m, &due_at],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn finish_notifications(&self, items: &[OutboxItem], now: Millis) -> Result<()> {
        let (t, u, m) = columns(items);
        let (t, u, m) = (&t, &u, &m);
        retrying(move || async move {
            let c = self.conn().await?;
            c.execute(
                "UPDATE notify_outbox o SET sent_at = $4 \
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS k(t, u, m) \
                 WHERE o.tenant_id = k.t AND o.user_id = k.u AND o.message_id = k.m AND o.sent_at IS NULL",
                &[t, u, m, &now],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn link_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        let candidate = &candidate;
        retrying(move || async move {
            let c = self.conn().await?;
            // Nodes starting together: the first insert wins and every node reads it back.
            c.execute(
                "INSERT INTO hub_keys (id, secret, created_at) VALUES ('open-link', $1, $2) ON CONFLICT (id) DO NOTHING",
                &[candidate, &switchboard_core::time::now_ms()],
            )
            .await?;
            let row = c.query_one("SELECT secret FROM hub_keys WHERE id = 'open-link'", &[]).await?;
            Ok(row.try_get(0)?)
        })
        .await
    }
}

/// The outbox keys as three columns, for `unnest`.
fn columns(items: &[OutboxItem]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let t = items.iter().map(|i| i.tenant.clone()).collect();
    let u = items.iter().map(|i| i.user_id.clone()).collect();
    let m = items.iter().map(|i| i.message_id.clone()).collect();
    (t, u, m)
}
