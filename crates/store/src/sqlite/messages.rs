//! The SQLite side of [`MessageStore`]: accepts run on the writer thread (group commit, in
//! `writer.rs`); reads on the reader connections.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{message_from_row, recipients_of, state_of};
use super::writer::HOT;
use super::{SqliteStore, internal};
use crate::sql::{DELIVERY_COLS, MESSAGE_COLS, OrderBase, priority_text};
use crate::{AcceptOutcome, DeliveryRecord, MessageRecord, MessageStore, NewMessage, Result, WakeKey};

fn accept_one(
    conn: &Connection,
    m: &NewMessage,
    order: &OrderBase,
    keys: &mut Vec<WakeKey>,
) -> rusqlite::Result<AcceptOutcome> {
    if let Some(key) = &m.idempotency_key {
        let mut st = conn.prepare_cached(
            "SELECT id, request_hash, created_at FROM messages WHERE tenant_id = ?1 AND sender = ?2 AND idempotency_key = ?3",
        )?;
        let found: Option<(String, String, i64)> =
            st.query_row(params![m.tenant, m.sender, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
        if let Some((id, hash, created_at)) = found {
            if hash != m.request_hash {
                return Ok(AcceptOutcome::KeyReused { id });
            }
            let recipients = recipients_of(conn, &m.tenant, &id)?;
            return Ok(AcceptOutcome::Duplicate { id, recipients, created_at });
        }
    }
    let mut st = conn.prepare_cached(
        "INSERT INTO messages (tenant_id, id, sender, recipient, parts, metadata, conversation_id, correlation_id, \
         in_reply_to, idempotency_key, request_hash, created_at, expires_at, routing, priority, signature) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    st.execute(params![
        m.tenant,
        m.id,
        m.sender,
        m.to,
        m.parts,
        m.metadata,
        m.conversation_id,
        m.correlation_id,
        m.in_reply_to,
        m.idempotency_key,
        m.request_hash,
        m.created_at,
        m.expires_at,
        m.routing,
        priority_text(m.priority),
        m.signature
    ])?;
    if m.in_history {
        super::conversations::append_history(conn, m)?;
    }
    let mut st = conn.prepare_cached(
        "INSERT INTO deliveries (tenant_id, message_id, recipient, state, attempts, due_at, created_at, updated_at, expires_at, push, order_key) \
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4, ?5, ?6, ?7)",
    )?;
    let order_key = order.key(m.created_at, m.priority);
    for r in &m.recipients {
        st.execute(params![m.tenant, m.id, r, m.created_at, m.expires_at, m.push_recipients.contains(r), order_key])?;
        keys.push((m.tenant.clone(), r.clone()));
    }
    Ok(AcceptOutcome::Accepted { id: m.id.clone(), recipients: m.recipients.clone(), created_at: m.created_at })
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn accept(&self, messages: Vec<NewMessage>) -> Result<Vec<AcceptOutcome>> {
        let order = self.order.clone();
        self.queue(HOT, move |c, keys| {
            let mut out = Vec::with_capacity(messages.len());
            for m in &messages {
                let outcome = accept_one(c, m, &order, keys).map_err(internal)?;
                super::audit::append_if(c, matches!(outcome, AcceptOutcome::Accepted { .. }), m.audit.as_ref())?;
                out.push(outcome);
            }
            Ok(out)
        })
        .await
    }

    async fn first_reply(&self, tenant: &str, id: &str, not_from: &str) -> Result<Option<MessageRecord>> {
        let (tenant, id, not_from) = (tenant.to_owned(), id.to_owned(), not_from.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages WHERE tenant_id = ?1 AND in_reply_to = ?2 AND sender <> ?3 \
                     ORDER BY seq LIMIT 1"
                ))
                .map_err(internal)?;
            st.query_row(params![tenant, id, not_from], message_from_row).optional().map_err(internal)
        })
        .await
    }

    async fn get_message(&self, tenant: &str, id: &str) -> Result<Option<(MessageRecord, Vec<DeliveryRecord>)>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {MESSAGE_COLS} FROM messages WHERE tenant_id = ?1 AND id = ?2"))
                .map_err(internal)?;
            let Some(m) = st.query_row(params![tenant, id], message_from_row).optional().map_err(internal)? else {
                return Ok(None);
            };
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLS} FROM deliveries WHERE tenant_id = ?1 AND message_id = ?2 ORDER BY seq"
                ))
                .map_err(internal)?;
            let rows = st
                .query_map(params![tenant, id], |r| {
                    let state: String = r.get(1)?;
                    Ok(DeliveryRecord {
                        recipient: r.get(0)?,
                        state: state_of(&state)?,
                        attempts: r.get(2)?,
                        updated_at: r.get(3)?,
                        delivered_at: r.get(4)?,
                        acked_at: r.get(5)?,
                        lease_expires_at: r.get(6)?,
                        last_error: r.get(7)?,
                    })
                })
                .map_err(internal)?;
            let d = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)?;
            Ok(Some((m, d)))
        })
        .await
    }
}
