//! The SQLite side of [`NotifyStore`]: notification preferences, the per-tenant cursor over
//! deliveries to people, and the e-mail outbox. Every write runs on the one writer, so the
//! cursor's compare-and-set never loses here; it matters on PostgreSQL.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::Result;
use crate::notify::{NotifyStore, OutboxItem, ScannedDelivery, scan};

/// The deliveries after the cursor, oldest first, with what the filter needs: the
/// recipient, and who sent the message this one replies to (if it replies to one).
const SCAN: &str = "SELECT d.seq, d.recipient, d.message_id, d.created_at, m.sender, \
        (SELECT p.sender FROM messages p WHERE p.tenant_id = m.tenant_id AND p.id = m.in_reply_to) \
     FROM deliveries d JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
     WHERE d.tenant_id = ?1 AND d.seq > ?2 ORDER BY d.seq LIMIT ?3";

#[async_trait]
impl NotifyStore for SqliteStore {
    async fn notify_prefs(&self, tenant: &str, user_id: &str) -> Result<Option<String>> {
        let (tenant, user) = (tenant.to_owned(), user_id.to_owned());
        self.read(move |c| {
            c.prepare_cached("SELECT prefs FROM notify_prefs WHERE tenant_id = ?1 AND user_id = ?2")
                .map_err(internal)?
                .query_row(params![tenant, user], |r| r.get(0))
                .optional()
                .map_err(internal)
        })
        .await
    }

    async fn put_notify_prefs(
        &self,
        tenant: &str,
        user_id: &str,
        prefs: String,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool> {
        let (tenant, user) = (tenant.to_owned(), user_id.to_owned());
        self.write(move |c, _| {
            let exists = c
                .query_row("SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2", params![tenant, user], |_| Ok(()))
                .optional()
                .map_err(internal)?
                .is_some();
            if !exists {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO notify_prefs (tenant_id, user_id, prefs, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET prefs = excluded.prefs, updated_at = excluded.updated_at",
                params![tenant, user, prefs, now],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(true)
        })
        .await
    }

    async fn collect_notifications(&self, k: crate::notify::Collect) -> Result<usize> {
        self.write(move |c, _| {
            let cursor: Option<i64> = c
                .query_row("SELECT seq FROM notify_cursors WHERE tenant_id = ?1", params![k.tenant], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            let from = cursor.unwrap_or(0);
            let mut st = c.prepare_cached(SCAN).map_err(internal)?;
            let rows = st
                .query_map(params![k.tenant, from, k.limit as i64], |r| {
                    Ok(ScannedDelivery {
                        seq: r.get(0)?,
                        recipient: r.get(1)?,
                        message_id: r.get(2)?,
                        created_at: r.get(3)?,
                        sender: r.get(4)?,
                        parent_sender: r.get(5)?,
                    })
                })
                .map_err(internal)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(internal)?;
            let scan = scan(&rows, from, &k, 0);
            let mut ins = c
                .prepare_cached(
                    "INSERT INTO notify_outbox (tenant_id, user_id, message_id, created_at, due_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )
                .map_err(internal)?;
            let mut added = 0;
            for (user, message, at) in &scan.requests {
                added += ins.execute(params![k.tenant, user, message, at, k.now]).map_err(internal)?;
            }
            if scan.cursor != from || cursor.is_none() {
                c.execute(
                    "INSERT INTO notify_cursors (tenant_id, seq, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
                    params![k.tenant, scan.cursor, k.now],
                )
                .map_err(internal)?;
            }
            Ok(added)
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
        let node = node.to_owned();
        self.write(move |c, _| {
            let mut st = c
                .prepare_cached(
                    "UPDATE notify_outbox SET due_at = ?2, claimed_by = ?3 WHERE rowid IN \
                     (SELECT rowid FROM notify_outbox WHERE sent_at IS NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?4) \
                     RETURNING tenant_id, user_id, message_id, created_at",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![now, now + hold_ms, node, limit as i64], |r| {
                    Ok(OutboxItem {
                        tenant: r.get(0)?,
                        user_id: r.get(1)?,
                        message_id: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                })
                .map_err(internal)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(internal)?;
            Ok(rows)
        })
        .await
    }

    async fn defer_notifications(&self, items: &[OutboxItem], due_at: Millis) -> Result<()> {
        let items = items.to_vec();
        self.write(move |c, _| {
            let mut st = c
                .prepare_cached(
                    "UPDATE notify_outbox SET due_at = ?4, claimed_by = NULL \
                     WHERE tenant_id = ?1 AND user_id = ?2 AND message_id = ?3 AND sent_at IS NULL",
                )
                .map_err(internal)?;
            for i in &items {
                st.execute(params![i.tenant, i.user_id, i.message_id, due_at]).map_err(internal)?;
            }
            Ok(())
        })
        .await
    }

    async fn finish_notifications(&self, items: &[OutboxItem], now: Millis) -> Result<()> {
        let items = items.to_vec();
        self.write(move |c, _| {
            let mut st = c
                .prepare_cached(
                    "UPDATE notify_outbox SET sent_at = ?4 \
                     WHERE tenant_id = ?1 AND user_id = ?2 AND message_id = ?3 AND sent_at IS NULL",
                )
                .map_err(internal)?;
            for i in &items {
                st.execute(params![i.tenant, i.user_id, i.message_id, now]).map_err(internal)?;
            }
            Ok(())
        })
        .await
    }

    async fn link_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        self.write(move |c, _| {
            c.execute(
                "INSERT OR IGNORE INTO hub_keys (id, secret, created_at) VALUES ('open-link', ?1, ?2)",
                params![candidate, switchboard_core::time::now_ms()],
            )
            .map_err(internal)?;
            c.query_row("SELECT secret FROM hub_keys WHERE id = 'open-link'", [], |r| r.get(0)).map_err(internal)
        })
        .await
    }
}
