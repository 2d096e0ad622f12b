//! The SQLite side of [`NotifyStore`]: notification preferences, the per-tenant cursor over
//! deliveries to people, and the e-mail outbox. The scans, and the look for due rows, read on
//! a reader connection; the one writer is asked only when there is something to write, so an
//! idle notifier costs the group commit nothing.

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
        CASE WHEN d.recipient LIKE 'user:%' THEN \
            (SELECT p.sender FROM messages p WHERE p.tenant_id = m.tenant_id AND p.id = m.in_reply_to) END \
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
            c.execute(
                "UPDATE notify_outbox SET due_at = ?3 WHERE tenant_id = ?1 AND user_id = ?2 \
                 AND sent_at IS NULL AND claimed_by IS NULL AND due_at > ?3",
                params![tenant, user, now],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(true)
        })
        .await
    }

    async fn collect_notifications(&self, k: crate::notify::Collect) -> Result<usize> {
        // The scan reads on a reader connection, so the writer (and the sends it commits) is
        // asked only when there is something to write; the write then checks that the cursor
        // is still where the scan began (nothing else moves it on this one writer, but a
        // second scan of the same tenant could).
        let tenant = k.tenant.clone();
        let limit = k.limit;
        let (cursor, rows) = self
            .read(move |c| {
                let cursor: Option<i64> = c
                    .prepare_cached("SELECT seq FROM notify_cursors WHERE tenant_id = ?1")
                    .map_err(internal)?
                    .query_row(params![tenant], |r| r.get(0))
                    .optional()
                    .map_err(internal)?;
                let mut st = c.prepare_cached(SCAN).map_err(internal)?;
                let rows = st
                    .query_map(params![tenant, cursor.unwrap_or(0), limit as i64], |r| {
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
                Ok((cursor, rows))
            })
            .await?;
        let from = cursor.unwrap_or(0);
        let found = scan(&rows, from, &k, 0);
        if found.requests.is_empty() && found.cursor == from && cursor.is_some() {
            return Ok(0);
        }
        self.write(move |c, _| {
            let now: Option<i64> = c
                .query_row("SELECT seq FROM notify_cursors WHERE tenant_id = ?1", params![k.tenant], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            if now != cursor {
                return Ok(0);
            }
            let mut ins = c
                .prepare_cached(
                    "INSERT INTO notify_outbox (tenant_id, user_id, message_id, created_at, due_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )
                .map_err(internal)?;
            let mut added = 0;
            for (user, message, at) in &found.requests {
                added += ins.execute(params![k.tenant, user, message, at, k.now]).map_err(internal)?;
            }
            c.execute(
                "INSERT INTO notify_cursors (tenant_id, seq, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
                params![k.tenant, found.cursor, k.now],
            )
            .map_err(internal)?;
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
        // Most ticks find nothing due: ask a reader before the writer.
        let due = self
            .read(move |c| {
                c.prepare_cached("SELECT 1 FROM notify_outbox WHERE sent_at IS NULL AND due_at <= ?1 LIMIT 1")
                    .map_err(internal)?
                    .query_row(params![now], |_| Ok(()))
                    .optional()
                    .map_err(internal)
            })
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
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
