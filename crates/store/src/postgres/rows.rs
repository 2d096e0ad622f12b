//! Column lists and the readers that turn PostgreSQL rows into records.

use switchboard_core::api::Priority;
use tokio_postgres::Row;

use super::error::Fail;
use crate::{AgentRecord, MessageRecord, StoreError, SubscriptionRecord};

pub(super) fn agent_from_row(r: &Row) -> Result<AgentRecord, Fail> {
    let caps: String = r.try_get(6)?;
    let metadata: Option<String> = r.try_get(7)?;
    Ok(AgentRecord {
        tenant: r.try_get(0)?,
        id: r.try_get(1)?,
        name: r.try_get(2)?,
        description: r.try_get(3)?,
        version: r.try_get(4)?,
        endpoint: r.try_get(5)?,
        // Same leniency as the SQLite store: the card was validated when written.
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        created_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
        last_seen_at: r.try_get(10)?,
    })
}

/// Reads `sql::MESSAGE_COLS` starting at column `at`.
pub(super) fn message_from_row(r: &Row, at: usize) -> Result<MessageRecord, Fail> {
    Ok(MessageRecord {
        tenant: r.try_get(at)?,
        id: r.try_get(at + 1)?,
        sender: r.try_get(at + 2)?,
        to: r.try_get(at + 3)?,
        parts: r.try_get(at + 4)?,
        metadata: r.try_get(at + 5)?,
        conversation_id: r.try_get(at + 6)?,
        correlation_id: r.try_get(at + 7)?,
        in_reply_to: r.try_get(at + 8)?,
        idempotency_key: r.try_get(at + 9)?,
        created_at: r.try_get(at + 10)?,
        expires_at: r.try_get(at + 11)?,
        priority: Priority::parse(r.try_get::<_, Option<&str>>(at + 12)?),
        signature: r.try_get(at + 13)?,
    })
}

pub(super) fn subscription_from_row(r: &Row) -> Result<SubscriptionRecord, Fail> {
    Ok(SubscriptionRecord {
        tenant: r.try_get(0)?,
        topic: r.try_get(1)?,
        agent_id: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

pub(super) fn attempts_of(r: &Row, i: usize) -> Result<u32, Fail> {
    let n: i32 = r.try_get(i)?;
    u32::try_from(n).map_err(|_| Fail::Store(StoreError::Internal(format!("negative attempt count {n}"))))
}
