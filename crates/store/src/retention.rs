//! How long stored messages live, and erasing a principal's data. One area of
//! [`Store`](crate::Store).
//!
//! Retention is per tenant. A background task on every node ([`RetentionStore::purge`] in
//! bounded batches) deletes:
//! - a message older than `messages_max_age_ms` whose every delivery is finished (acked or
//!   expired), with those deliveries, its push attempts and its place in its conversation;
//! - a dead (or failed) delivery older than `dead_letters_max_age_ms` since it died; the
//!   message goes once nothing else holds it.
//!
//! A message that still has an open delivery is never deleted, however old: nothing accepted
//! is lost by retention. Messages are scanned in id order (UUIDv7, so oldest first) from a
//! cursor the caller keeps, a batch at a time: each batch is one short transaction.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::error::Result;

/// A tenant's retention (`None`: kept for ever).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionSettings {
    pub messages_max_age_ms: Option<i64>,
    pub dead_letters_max_age_ms: Option<i64>,
}

impl RetentionSettings {
    pub fn is_empty(&self) -> bool {
        self.messages_max_age_ms.is_none() && self.dead_letters_max_age_ms.is_none()
    }
}

/// One batch of a purge.
#[derive(Debug, Clone)]
pub struct PurgeRequest {
    pub tenant: String,
    /// Start after this message id (the previous batch's `last_id`); `None`: from the oldest.
    pub after: Option<String>,
    /// Messages accepted before this, all of whose deliveries are finished, go (`None`: none).
    pub messages_before: Option<Millis>,
    /// Dead and failed deliveries that died before this go (`None`: none).
    pub dead_before: Option<Millis>,
    /// How many messages one batch looks at.
    pub limit: usize,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeOutcome {
    /// Messages looked at.
    pub examined: usize,
    /// Messages deleted.
    pub messages: usize,
    /// Deliveries deleted (finished ones with their message, and dead letters).
    pub deliveries: usize,
    /// Where the next batch starts; `None` when this batch reached messages too young to
    /// touch or the end (the next pass starts again from the oldest).
    pub last_id: Option<String>,
    /// Another node held the purge (PostgreSQL): this batch did nothing.
    pub busy: bool,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// Messages whose payload (parts, metadata, routing) was replaced by a tombstone.
    pub messages: usize,
}

#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// The tenant's retention (empty when never set).
    async fn retention(&self, tenant: &str) -> Result<RetentionSettings>;
    /// Replaces the tenant's retention, with its audit entry in the same transaction.
    async fn put_retention(&self, tenant: &str, s: RetentionSettings, audit: Option<NewAuditEvent>) -> Result<()>;
    /// Every tenant with a retention set.
    async fn retention_tenants(&self) -> Result<Vec<(String, RetentionSettings)>>;
    /// One batch of deletions (see the module's rules).
    async fn purge(&self, req: PurgeRequest, now: Millis) -> Result<PurgeOutcome>;
    /// Replaces the payload of every message `address` sent or was sent directly (its parts,
    /// metadata and routing decision) with a tombstone (`parts` empty, `erased_at` set). Ids,
    /// addresses and times stay, so threads, deliveries and the audit chain still hold.
    async fn erase_messages(&self, tenant: &str, address: &str, now: Millis) -> Result<Erased>;
}

/// The SQL both backends share (SQLite's `?N`; PostgreSQL's is these with `$N`).
pub(crate) mod sql {
    /// A batch's candidates: `?1` tenant, `?2` after id (`''` for the start), `?3` limit.
    pub(crate) const CANDIDATES: &str = "SELECT id, created_at, conversation_id FROM messages \
        WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
    /// How many deliveries of message `?2` would keep it: open ones, and dead ones still kept.
    /// `?3`: the dead-letter cutoff (`i64::MIN` when dead letters are kept for ever).
    pub(crate) const HOLDING: &str = "SELECT count(*) FROM deliveries WHERE tenant_id = ?1 AND message_id = ?2 \
        AND NOT (state = 'acked' OR state = 'expired' \
                 OR ((state = 'dead' OR state = 'failed') AND updated_at < ?3))";
    /// Dead letters of message `?2` that died before `?3`.
    pub(crate) const DELETE_DEAD: &str = "DELETE FROM deliveries WHERE tenant_id = ?1 AND message_id = ?2 \
        AND (state = 'dead' OR state = 'failed') AND updated_at < ?3";
    pub(crate) const DELETE_DELIVERIES: &str = "DELETE FROM deliveries WHERE tenant_id = ?1 AND message_id = ?2";
    pub(crate) const DELETE_ATTEMPTS: &str = "DELETE FROM push_attempts WHERE tenant_id = ?1 AND message_id = ?2";
    pub(crate) const DELETE_MESSAGE: &str = "DELETE FROM messages WHERE tenant_id = ?1 AND id = ?2";
    /// The conversation's entry for the message: its oldest entries come first, which is
    /// where a purged message's entry is (messages go oldest first).
    pub(crate) const DELETE_ENTRY: &str = "DELETE FROM conversation_messages WHERE tenant_id = ?1 \
        AND conversation_id = ?2 AND seq IN (SELECT seq FROM conversation_messages \
        WHERE tenant_id = ?1 AND conversation_id = ?2 AND message_id = ?3 ORDER BY seq LIMIT 1)";
    /// Erasure: `?1` tenant, `?2` address, `?3` now.
    pub(crate) const ERASE: &str = "UPDATE messages SET parts = '[]', metadata = NULL, routing = NULL, \
        erased_at = ?3 WHERE tenant_id = ?1 AND (sender = ?2 OR recipient = ?2) AND erased_at IS NULL";
    pub(crate) const GET: &str = "SELECT messages_max_age_ms, dead_letters_max_age_ms FROM tenant_retention \
        WHERE tenant_id = ?1";
    pub(crate) const PUT: &str = "INSERT INTO tenant_retention (tenant_id, messages_max_age_ms, \
        dead_letters_max_age_ms, updated_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id) DO UPDATE SET \
        messages_max_age_ms = excluded.messages_max_age_ms, \
        dead_letters_max_age_ms = excluded.dead_letters_max_age_ms, updated_at = excluded.updated_at";
    pub(crate) const ALL: &str = "SELECT tenant_id, messages_max_age_ms, dead_letters_max_age_ms \
        FROM tenant_retention WHERE messages_max_age_ms IS NOT NULL OR dead_letters_max_age_ms IS NOT NULL \
        ORDER BY tenant_id";
}

/// The batch's plan, the same on both backends: which candidates are young enough to stop at.
/// Returns the candidates to work on (older than the oldest cutoff that applies), and whether
/// the scan reached its end (a younger message, or fewer rows than asked).
pub(crate) fn plan(req: &PurgeRequest, rows: Vec<(String, Millis, Option<String>)>) -> (Vec<Candidate>, bool) {
    let bound = req.messages_before.max(req.dead_before).unwrap_or(Millis::MIN);
    let full = rows.len() >= req.limit;
    let mut out = Vec::with_capacity(rows.len());
    for (id, created_at, conversation) in rows {
        if created_at >= bound {
            return (out, true);
        }
        out.push(Candidate { id, created_at, conversation });
    }
    (out, !full)
}

/// A message a batch looks at.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub id: String,
    pub created_at: Millis,
    pub conversation: Option<String>,
}

impl Candidate {
    /// Whether the message itself is old enough to go (its deliveries permitting).
    pub(crate) fn expired(&self, req: &PurgeRequest) -> bool {
        req.messages_before.is_some_and(|before| self.created_at < before)
    }
}
