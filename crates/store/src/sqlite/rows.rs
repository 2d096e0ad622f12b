//! Column lists and the readers that turn SQLite rows into records.

use rusqlite::{Connection, params};
use switchboard_core::api::{DeliveryState, Priority};

use crate::{AgentRecord, MessageRecord, SubscriptionRecord};

pub(super) fn agent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRecord> {
    let caps: String = r.get(6)?;
    let metadata: Option<String> = r.get(7)?;
    Ok(AgentRecord {
        tenant: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        version: r.get(4)?,
        endpoint: r.get(5)?,
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        last_seen_at: r.get(10)?,
    })
}

pub(super) fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRecord> {
    message_from_row_at(r, 0)
}

/// A message whose `sql::MESSAGE_COLS` start at column `at`.
pub(super) fn message_from_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        tenant: r.get(at)?,
        id: r.get(at + 1)?,
        sender: r.get(at + 2)?,
        to: r.get(at + 3)?,
        parts: r.get(at + 4)?,
        metadata: r.get(at + 5)?,
        conversation_id: r.get(at + 6)?,
        correlation_id: r.get(at + 7)?,
        in_reply_to: r.get(at + 8)?,
        idempotency_key: r.get(at + 9)?,
        created_at: r.get(at + 10)?,
        expires_at: r.get(at + 11)?,
        priority: Priority::parse(r.get::<_, Option<String>>(at + 12)?.as_deref()),
        signature: r.get(at + 13)?,
    })
}

pub(super) fn subscription_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRecord> {
    Ok(SubscriptionRecord { tenant: r.get(0)?, topic: r.get(1)?, agent_id: r.get(2)?, created_at: r.get(3)? })
}

pub(super) fn state_of(s: &str) -> rusqlite::Result<DeliveryState> {
    DeliveryState::parse(s)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, format!("state {s}"), rusqlite::types::Type::Text))
}

pub(super) fn recipients_of(conn: &Connection, tenant: &str, id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st =
        conn.prepare_cached("SELECT recipient FROM deliveries WHERE tenant_id = ?1 AND message_id = ?2 ORDER BY seq")?;
    let rows = st.query_map(params![tenant, id], |r| r.get(0))?;
    rows.collect()
}
