//! E-mail notifications' storage: each person's preferences, each tenant's scan position over
//! the deliveries to people, the outbox of e-mails to send, and the key that signs the links
//! in them. One area of [`Store`](crate::Store).
//!
//! The accept path writes nothing here. A notifier (any node) moves a tenant's cursor over
//! new deliveries to `user:` addresses, putting each request in the outbox (insert-once, so
//! two nodes scanning together add it once); then claims due outbox rows (one node at a
//! time, for a hold), sends, and marks them sent. A node that dies holding a claim leaves
//! rows that come due again after the hold: sent again, never skipped.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::error::Result;

/// One scan of a tenant's new deliveries into the outbox.
#[derive(Debug, Clone)]
pub struct Collect {
    pub tenant: String,
    pub now: Millis,
    /// Deliveries accepted before this are history, not news, and are passed over (so
    /// turning e-mail on does not mail a year of messages, nor a node down for a day its
    /// backlog).
    pub oldest: Millis,
    /// Deliveries read at most per scan.
    pub limit: usize,
}

/// An e-mail to send: a request `message_id` to the person `user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub tenant: String,
    pub user_id: String,
    pub message_id: String,
    /// When the delivery was accepted.
    pub created_at: Millis,
}

/// E-mail notifications' storage.
#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// A person's notification preferences (JSON text), if they set any.
    async fn notify_prefs(&self, tenant: &str, user_id: &str) -> Result<Option<String>>;
    /// Replaces a person's preferences, with the audit entry recording it; `false` (nothing
    /// written) if the tenant has no such user. Their rows held for later (quiet hours) come
    /// due at `now`, to be judged by the new preferences.
    async fn put_notify_prefs(
        &self,
        tenant: &str,
        user_id: &str,
        prefs: String,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool>;
    /// Moves the tenant's cursor over its next deliveries, putting those to people that are
    /// requests (not a reply to a message the person sent) in the outbox, due now. Answers
    /// how many it added. Two nodes may scan at once: the cursor moves by compare-and-set,
    /// and the outbox takes each (person, message) once.
    async fn collect_notifications(&self, c: Collect) -> Result<usize>;
    /// Claims up to `limit` due outbox rows of any tenant for `node`: they are not due again
    /// until `now + hold_ms`, so no other node takes them meanwhile.
    async fn claim_notifications(&self, now: Millis, hold_ms: i64, node: &str, limit: usize)
    -> Result<Vec<OutboxItem>>;
    /// Puts claimed rows back, due at `due_at` (a person's quiet hours end then, or a send
    /// failed and is retried then).
    async fn defer_notifications(&self, items: &[OutboxItem], due_at: Millis) -> Result<()>;
    /// Marks rows sent (or settled without an e-mail: turned off, already read).
    async fn finish_notifications(&self, items: &[OutboxItem], now: Millis) -> Result<()>;
    /// The hub's key for signing the links in e-mails (32 secret bytes), shared by every
    /// node: stores `candidate` if there is none yet and returns whichever is stored.
    async fn link_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>>;
}

/// A delivery read by a scan, with what the filter needs.
#[derive(Debug, Clone)]
pub(crate) struct ScannedDelivery {
    pub seq: i64,
    pub recipient: String,
    pub message_id: String,
    pub created_at: Millis,
    /// The message's sender.
    pub sender: String,
    /// The sender of the message this one replies to, if it replies to one.
    pub parent_sender: Option<String>,
}

/// What a scan found: the requests to people, and where the cursor goes.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    /// (user id, message id, accepted at).
    pub requests: Vec<(String, String, Millis)>,
    pub cursor: i64,
}

/// The one rule of both backends: which scanned deliveries are requests to a person, and how
/// far the cursor may move: past the prefix of rows older than `settle_ms` only. PostgreSQL
/// draws `seq` before commit, so a delivery committed late can appear behind a position the
/// cursor has passed; the rows inside the window are scanned again (the outbox takes each
/// once). SQLite's one writer commits in `seq` order, so it settles at once.
pub(crate) fn scan(rows: &[ScannedDelivery], from: i64, k: &Collect, settle_ms: i64) -> Scanned {
    let mut out = Scanned { requests: Vec::new(), cursor: from };
    let mut settled = true;
    for r in rows {
        if settled && r.created_at <= k.now - settle_ms {
            out.cursor = r.seq;
        } else {
            settled = false;
        }
        let Some(user) = r.recipient.strip_prefix("user:") else { continue };
        let own = r.sender == r.recipient;
        let answer = r.parent_sender.as_deref() == Some(r.recipient.as_str());
        if own || answer || r.created_at < k.oldest {
            continue;
        }
        out.requests.push((user.to_owned(), r.message_id.clone(), r.created_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, to: &str, at: Millis, parent: Option<&str>) -> ScannedDelivery {
        ScannedDelivery {
            seq,
            recipient: to.into(),
            message_id: format!("m{seq}"),
            created_at: at,
            sender: "agent:a".into(),
            parent_sender: parent.map(Into::into),
        }
    }

    #[test]
    fn requests_to_people_are_kept_and_the_cursor_stops_at_the_first_unsettled_row() {
        let k = Collect { tenant: "t".into(), now: 100, oldest: 5, limit: 10 };
        let rows = [
            row(1, "user:ann", 1, None),              // history: older than `oldest`
            row(2, "agent:b", 50, None),              // not a person
            row(3, "user:ann", 60, Some("user:ann")), // a reply to Ann's own message
            row(4, "user:bob", 70, Some("agent:a")),  // a reply to someone else's: a request
            row(5, "user:ann", 95, None),             // not settled: kept, cursor stops before it
            row(6, "user:bob", 80, None),             // settled, but after an unsettled row
        ];
        let s = scan(&rows, 0, &k, 10);
        assert_eq!(s.cursor, 4);
        let ids: Vec<&str> = s.requests.iter().map(|(_, m, _)| m.as_str()).collect();
        assert_eq!(ids, ["m4", "m5", "m6"]);
    }
}
