//! SQL text both backends spell alike: the column lists the row readers depend on (their
//! order is the readers' column numbers) and the texts that rules write into rows. What must
//! differ stays with each backend: parameter syntax, and the open-delivery condition (`OR`
//! on SQLite, whose planner needs it to match its partial indexes; `IN` on PostgreSQL).

use switchboard_core::api::Priority;

/// The columns of `messages` a `MessageRecord` is read from.
pub(crate) const MESSAGE_COLS: &str = "tenant_id, id, sender, recipient, parts, metadata, conversation_id, \
     correlation_id, in_reply_to, idempotency_key, created_at, expires_at, priority";

/// The columns of `approvals` an `ApprovalRecord` is read from, in its fields' order.
pub(crate) const APPROVAL_COLS: &str = "tenant_id, id, message_id, requester, request, deadline, state, deciders, \
     escalated, decisions, outcome, outbox, due_at, version, created_at, updated_at";

/// Appended to a condition on messages `m`: the message was sent to one agent of a capability
/// (`capability:<name>`, not the `?all` broadcast). `?` and `%` cannot occur in a capability
/// name, so the patterns are exact.
pub(crate) const ANYCAST_CONDITION: &str = "AND m.recipient LIKE 'capability:%' AND m.recipient NOT LIKE '%?all'";

/// How a priority is stored in `messages.priority`: NULL for `normal`, the common case.
pub(crate) fn priority_text(p: Priority) -> Option<&'static str> {
    (p != Priority::Normal).then(|| p.as_str())
}

/// The queue order keys of one writer (`deliveries.order_key`): the accept time moved by the
/// priority's offset, with the accept times kept non-decreasing in insert order. Messages are
/// built (and timed) before they reach the writer, so two sends racing could reach it in the
/// other order; without the clamp a `normal` message could then be handed out before one
/// committed earlier, and (order_key, seq) would not be accept order for equal priorities.
#[derive(Debug, Default)]
pub(crate) struct OrderBase(std::sync::atomic::AtomicI64);

impl OrderBase {
    /// The order key of a message accepted now, built at `created_at` with priority `p`.
    pub(crate) fn key(&self, created_at: i64, p: Priority) -> i64 {
        let before = self.0.fetch_max(created_at, std::sync::atomic::Ordering::Relaxed);
        before.max(created_at) + p.offset_ms()
    }
}

/// The columns of `agents` an `AgentRecord` is read from (and written to).
pub(crate) const AGENT_COLS: &str = "tenant_id, id, name, description, version, endpoint, capabilities, metadata, \
     created_at, updated_at, last_seen_at";

/// The columns of `tokens` an `AgentKeyRecord` is read from.
pub(crate) const KEY_COLS: &str = "key_id, created_at, expires_at, last_used_at";

/// The columns of `topic_subscriptions` a `SubscriptionRecord` is read from.
pub(crate) const SUBSCRIPTION_COLS: &str = "tenant_id, topic, agent_id, created_at";

/// Every subscription of tenant `?1` to a wildcard pattern, as (pattern, agent id). Topic
/// names never hold `*` or `>`, so those characters mark a pattern.
pub(crate) const PATTERN_SUBSCRIPTIONS: &str = "SELECT topic, agent_id FROM topic_subscriptions \
     WHERE tenant_id = ?1 AND (topic LIKE '%*%' OR topic LIKE '%>%') ORDER BY topic, agent_id";

/// The columns of `deliveries` a `DeliveryRecord` is read from.
pub(crate) const DELIVERY_COLS: &str =
    "recipient, state, attempts, updated_at, delivered_at, acked_at, lease_expires_at, last_error";

/// A `DeliveryRow` with its sequence (the listing cursor) first: deliveries `d` joined with
/// their messages `m`, ready for the tenant condition.
pub(crate) const DELIVERY_LISTING: &str = "SELECT d.seq, d.message_id, m.sender, d.recipient, d.state, d.attempts, \
     d.created_at, d.updated_at, d.last_error \
     FROM deliveries d JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
     WHERE d.tenant_id = ";

/// The columns of `agent_push` (as `p`) a `PushSettings` is read from.
pub(crate) const PUSH_SETTINGS_COLS: &str =
    "p.secret, p.previous, p.previous_until, p.health_error, p.disabled, p.retry_schedule, p.a2a";

/// `last_error` of a delivery that went dead because it was handed out `max_attempts` times.
pub(crate) const OUT_OF_ATTEMPTS: &str = "not acknowledged after the maximum number of attempts";

/// `last_error` of the open deliveries of an agent that was deleted.
pub(crate) const RECIPIENT_DELETED: &str = "the recipient agent was deleted";

/// `cols` with each column qualified by the table alias `alias` (`m.id, m.sender, …`).
pub(crate) fn qualified(cols: &str, alias: &str) -> String {
    cols.split(", ").map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// The columns of `users u` a `UserRecord` is read from (whether it has a password, never
/// the hash).
pub(crate) const USER_COLS: &str = "u.tenant_id, u.id, u.email, u.name, u.role, u.password_hash IS NOT NULL, \
     u.created_at, u.updated_at";

/// The columns of `tokens` a `UserTokenRecord` is read from.
pub(crate) const USER_TOKEN_COLS: &str = "key_id, name, created_at, expires_at, last_used_at";

/// How `tokens.principal` names a user's personal access tokens: `user:<id>`.
pub(crate) fn user_principal(id: &str) -> String {
    switchboard_core::Recipient::user_text(&id.into())
}

/// The token look-up by hash: the one query not filtered by tenant (it is how the tenant is
/// found), with the role of the user a personal access token belongs to.
pub(crate) const TOKEN_LOOKUP: &str = "SELECT t.tenant_id, t.principal, t.key_id, t.expires_at, u.role \
     FROM tokens t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND t.principal = 'user:' || u.id \
     WHERE t.hash = $1";

#[cfg(test)]
mod tests {
    use super::*;

    /// Continuation lines must not leave doubled spaces or a column without its comma.
    #[test]
    fn column_lists_are_single_spaced() {
        for cols in [MESSAGE_COLS, AGENT_COLS, SUBSCRIPTION_COLS, DELIVERY_COLS, PUSH_SETTINGS_COLS] {
            assert!(!cols.contains("  "), "{cols}");
            assert!(cols.split(", ").all(|c| !c.is_empty() && !c.contains(' ')), "{cols}");
        }
        assert_eq!(qualified("a, b", "m"), "m.a, m.b");
    }
}
