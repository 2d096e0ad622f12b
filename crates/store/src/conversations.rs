//! Conversations: who takes part, how far each has read, and the history in the one total
//! order of the conversation. One area of [`Store`](crate::Store).
//!
//! The order is a per-conversation sequence number, `seq` (1, 2, 3, … without gaps), given
//! to a message by the accept that stores it (see [`NewMessage::in_history`](crate::NewMessage)),
//! in the same transaction: `conversations.last_seq` is incremented under the row's lock, so
//! concurrent senders, on one node or several, are serialised by the conversation alone.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::MessageRecord;
use crate::error::Result;

/// A stored conversation with its participants (in the order they joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub tenant: String,
    pub id: String,
    pub title: Option<String>,
    /// `agent:<id>`, `user:<id>` or `admin`.
    pub created_by: String,
    pub created_at: Millis,
    /// The `seq` of its latest message (0: none yet).
    pub last_seq: i64,
    pub participants: Vec<ParticipantRecord>,
}

/// A participant of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantRecord {
    /// `agent:<id>` or `user:<id>`.
    pub address: String,
    /// The `seq` it has read up to (0: nothing).
    pub read_up_to: i64,
    pub joined_at: Millis,
}

/// Which page of a history to read.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only messages with a `seq` above this (the cursor of the previous page).
    pub after_seq: i64,
    pub limit: usize,
    /// Only this message and the messages replying to it, directly or through other replies
    /// (`in_reply_to` chains within the conversation).
    pub thread: Option<String>,
}

/// Conversations and their histories. Changes take the audit entry that records them,
/// written in the same transaction when something changed.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Stores a new conversation and its participants.
    async fn create_conversation(&self, c: ConversationRecord, audit: Option<NewAuditEvent>) -> Result<()>;
    async fn get_conversation(&self, tenant: &str, id: &str) -> Result<Option<ConversationRecord>>;
    /// A page of the tenant's conversations in id (creation) order after `after`; only
    /// those `participant` takes part in, when given.
    async fn list_conversations(
        &self,
        tenant: &str,
        participant: Option<&str>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>>;
    /// Adds a participant: `None` if there is no such conversation, else whether it was
    /// added now (`false`: it took part already, and nothing is written).
    async fn add_participant(
        &self,
        tenant: &str,
        id: &str,
        address: &str,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<bool>>;
    /// Removes a participant with its read marker; `false` if it took no part.
    async fn remove_participant(
        &self,
        tenant: &str,
        id: &str,
        address: &str,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool>;
    /// A page of the history, in `seq` order, each message with its `seq`.
    async fn conversation_history(&self, tenant: &str, id: &str, q: HistoryQuery) -> Result<Vec<(i64, MessageRecord)>>;
    /// Moves `participant`'s read marker up to `up_to` (never back) and returns where it
    /// stands; `None` if it takes no part.
    async fn mark_read(&self, tenant: &str, id: &str, participant: &str, up_to: i64) -> Result<Option<i64>>;
    /// How many messages after `seq` others than `participant` sent.
    async fn unread(&self, tenant: &str, id: &str, participant: &str, after_seq: i64) -> Result<i64>;
}

/// SQL both backends spell alike, written with SQLite's `?N` placeholders; PostgreSQL's
/// statements are these with `$N` (see [`sql::pg`]). Nullable parameters are `CAST` so that
/// PostgreSQL can type them.
pub(crate) mod sql {
    use crate::sql::MESSAGE_COLS;

    /// `?N` → `$N`: the statements here have no other `?`.
    pub(crate) fn pg(sqlite: &str) -> String {
        sqlite.replace('?', "$")
    }

    pub(crate) const CONVERSATION_COLS: &str = "c.tenant_id, c.id, c.title, c.created_by, c.created_at, c.last_seq";

    pub(crate) fn get() -> String {
        format!("SELECT {CONVERSATION_COLS} FROM conversations c WHERE c.tenant_id = ?1 AND c.id = ?2")
    }

    pub(crate) const PARTICIPANTS: &str = "SELECT address, read_up_to, joined_at FROM conversation_participants \
         WHERE tenant_id = ?1 AND conversation_id = ?2 ORDER BY joined_at, address";

    /// A page of the tenant's conversations (`?2`: after this id; `?3`: limit).
    pub(crate) fn list_all() -> String {
        format!(
            "SELECT {CONVERSATION_COLS} FROM conversations c WHERE c.tenant_id = ?1 \
             AND (CAST(?2 AS TEXT) IS NULL OR c.id > ?2) ORDER BY c.id LIMIT ?3"
        )
    }

    /// A page of the conversations `?4` takes part in, driven by the participant index.
    pub(crate) fn list_of() -> String {
        format!(
            "SELECT {CONVERSATION_COLS} FROM conversation_participants p \
             JOIN conversations c ON c.tenant_id = p.tenant_id AND c.id = p.conversation_id \
             WHERE p.tenant_id = ?1 AND p.address = ?4 AND (CAST(?2 AS TEXT) IS NULL OR p.conversation_id > ?2) \
             ORDER BY p.conversation_id LIMIT ?3"
        )
    }

    /// `?1` tenant, `?2` conversation, `?3` after this seq, `?4` limit: `seq` then the message.
    pub(crate) fn history() -> String {
        let cols = crate::sql::qualified(MESSAGE_COLS, "m");
        format!(
            "SELECT cm.seq, {cols} FROM conversation_messages cm \
             JOIN messages m ON m.tenant_id = cm.tenant_id AND m.id = cm.message_id \
             WHERE cm.tenant_id = ?1 AND cm.conversation_id = ?2 AND cm.seq > ?3 ORDER BY cm.seq LIMIT ?4"
        )
    }

    /// [`history`] of the thread of message `?5`: it and every message replying to it,
    /// directly or through other replies of the conversation.
    pub(crate) fn thread() -> String {
        let cols = crate::sql::qualified(MESSAGE_COLS, "m");
        format!(
            "WITH RECURSIVE thread(seq, message_id) AS ( \
                 SELECT seq, message_id FROM conversation_messages \
                 WHERE tenant_id = ?1 AND conversation_id = ?2 AND message_id = ?5 \
                 UNION \
                 SELECT r.seq, r.message_id FROM conversation_messages r JOIN thread t \
                 ON r.tenant_id = ?1 AND r.conversation_id = ?2 AND r.in_reply_to = t.message_id) \
             SELECT cm.seq, {cols} FROM thread cm JOIN messages m ON m.tenant_id = ?1 AND m.id = cm.message_id \
             WHERE cm.seq > ?3 ORDER BY cm.seq LIMIT ?4"
        )
    }

    pub(crate) const UNREAD: &str = "SELECT count(*) FROM conversation_messages \
         WHERE tenant_id = ?1 AND conversation_id = ?2 AND seq > ?3 AND sender <> ?4";

    /// Moves the marker forward only; answers where it stands (no row: not a participant).
    pub(crate) const MARK_READ: &str = "UPDATE conversation_participants SET read_up_to = \
         CASE WHEN read_up_to < ?4 THEN ?4 ELSE read_up_to END \
         WHERE tenant_id = ?1 AND conversation_id = ?2 AND address = ?3 RETURNING read_up_to";
}
