//! What the web app shows a person: their inbox (every message addressed to them, newest
//! first, with filters and text search) and the working status agents set in a conversation
//! ("summarizing…", with an expiry so no spinner goes stale). One area of
//! [`Store`](crate::Store).
//!
//! A person's inbox is read through the partial index `deliveries_person` (tenant,
//! recipient, seq) over deliveries to `user:` addresses only, so agents' traffic, the hot
//! path, maintains no extra index.

use async_trait::async_trait;
use switchboard_core::api::DeliveryState;
use switchboard_core::time::Millis;

use crate::MessageRecord;
use crate::error::Result;

/// Which page of a person's inbox to read.
#[derive(Debug, Clone, Default)]
pub struct InboxQuery {
    /// `user:<id>`.
    pub recipient: String,
    /// Only deliveries with a `seq` below this (the cursor of the previous page).
    pub before: Option<i64>,
    /// Only those not yet read (acknowledged).
    pub unread_only: bool,
    /// Only those from this sender address.
    pub from: Option<String>,
    /// Only those whose parts contain this text (case-insensitive for ASCII).
    pub text: Option<String>,
    /// Only messages sent to `auto` (the router's: triage items).
    pub auto_only: bool,
    pub limit: usize,
}

/// One row of a person's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    /// The delivery's sequence: the cursor.
    pub seq: i64,
    pub state: DeliveryState,
    pub message: MessageRecord,
}

/// A participant's working status in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRecord {
    /// `agent:<id>` or `user:<id>`.
    pub participant: String,
    pub text: String,
    pub expires_at: Millis,
    pub updated_at: Millis,
}

#[async_trait]
pub trait InboxStore: Send + Sync {
    /// A page of a person's inbox, newest first.
    async fn person_inbox(&self, tenant: &str, q: InboxQuery) -> Result<Vec<InboxItem>>;
    /// How many messages addressed to `recipient` are unread (not acknowledged, not final).
    async fn person_unread(&self, tenant: &str, recipient: &str) -> Result<i64>;
    /// Sets (`Some`) or clears (`None`) `participant`'s status in a conversation.
    async fn set_status(
        &self,
        tenant: &str,
        conversation: &str,
        participant: &str,
        status: Option<(String, Millis)>,
        now: Millis,
    ) -> Result<()>;
    /// The statuses of a conversation that have not expired by `now`.
    async fn statuses(&self, tenant: &str, conversation: &str, now: Millis) -> Result<Vec<StatusRecord>>;
}

/// The SQL both backends share (SQLite's `?N`; PostgreSQL's is these with `$N`).
pub(crate) mod sql {
    use crate::sql::MESSAGE_COLS;

    /// The person's inbox: `?1` tenant, `?2` recipient, `?3` before, `?4` unread only (0/1),
    /// `?5` sender or NULL, `?6` a lower-case `LIKE` pattern or NULL, `?7` auto only (0/1),
    /// `?8` limit. The `substr` term is the partial index's own condition, written out so that
    /// both planners know they may use it.
    pub(crate) fn inbox() -> String {
        let cols = crate::sql::qualified(MESSAGE_COLS, "m");
        format!(
            "SELECT d.seq, d.state, {cols} FROM deliveries d \
             JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
             WHERE d.tenant_id = ?1 AND d.recipient = ?2 AND substr(d.recipient, 1, 5) = 'user:' AND d.seq < ?3 \
             AND (CAST(?4 AS BIGINT) = 0 OR d.state IN ('pending', 'leased', 'delivered')) \
             AND (CAST(?5 AS TEXT) IS NULL OR m.sender = ?5) \
             AND (CAST(?6 AS TEXT) IS NULL OR lower(m.parts) LIKE ?6 ESCAPE '\\') \
             AND (CAST(?7 AS BIGINT) = 0 OR m.recipient = 'auto') \
             ORDER BY d.seq DESC LIMIT ?8"
        )
    }

    /// Unread deliveries of `?2`, counted over the open-delivery index.
    pub(crate) const UNREAD: &str = "SELECT count(*) FROM deliveries \
         WHERE tenant_id = ?1 AND recipient = ?2 AND (state = 'pending' OR state = 'leased' OR state = 'delivered')";

    pub(crate) const PG_UNREAD: &str = "SELECT count(*) FROM deliveries \
         WHERE tenant_id = $1 AND recipient = $2 AND state IN ('pending', 'leased', 'delivered')";

    pub(crate) const SET_STATUS: &str = "INSERT INTO conversation_status \
         (tenant_id, conversation_id, participant, text, expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (tenant_id, conversation_id, participant) \
         DO UPDATE SET text = excluded.text, expires_at = excluded.expires_at, updated_at = excluded.updated_at";

    pub(crate) const CLEAR_STATUS: &str =
        "DELETE FROM conversation_status WHERE tenant_id = ?1 AND conversation_id = ?2 AND participant = ?3";

    pub(crate) const STATUSES: &str = "SELECT participant, text, expires_at, updated_at FROM conversation_status \
         WHERE tenant_id = ?1 AND conversation_id = ?2 AND expires_at > ?3 ORDER BY participant";

    /// `text` as a case-insensitive `LIKE` pattern matching it anywhere, with `%`, `_` and the
    /// escape character itself escaped. The parts are JSON, so a quote or backslash in the
    /// text is looked for as JSON writes it.
    pub(crate) fn pattern(text: &str) -> String {
        let json = serde_json::to_string(&text.to_lowercase()).unwrap_or_default();
        let inner = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')).unwrap_or(&json);
        let mut p = String::with_capacity(inner.len() + 2);
        p.push('%');
        for c in inner.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_search_pattern_escapes_like_and_json() {
        assert_eq!(super::sql::pattern("50%_Off"), "%50\\%\\_off%");
        assert_eq!(super::sql::pattern(r#"say "hi""#), r#"%say \\"hi\\"%"#);
        assert_eq!(super::sql::pattern(r#"end""#), r#"%end\\"%"#);
    }
}
