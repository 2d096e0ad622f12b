//! The records the store takes and gives: plain data, validated by the server before it
//! reaches the store.

use switchboard_core::api::{Capability, DeliveryState, Priority};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

/// A stored agent card.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub tenant: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub version: Option<String>,
    pub endpoint: Option<String>,
    pub capabilities: Vec<Capability>,
    pub metadata: Option<serde_json::Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_seen_at: Option<Millis>,
}

/// Filters for listing agents.
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    pub capability: Option<String>,
    /// Only ids greater than this (the cursor of the previous page).
    pub after: Option<String>,
    pub limit: usize,
}

/// A message to accept, already validated and routed by the server.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub tenant: String,
    pub id: String,
    pub sender: String,
    pub to: String,
    /// Resolved recipients (`agent:<id>`), one delivery each.
    pub recipients: Vec<String>,
    /// The recipients among them that have a push endpoint.
    pub push_recipients: Vec<String>,
    /// The parts as JSON text.
    pub parts: String,
    pub metadata: Option<String>,
    pub conversation_id: Option<String>,
    pub correlation_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub idempotency_key: Option<String>,
    /// Hash of the request, to tell a retry from a different request reusing the key.
    pub request_hash: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    /// Orders each delivery in its recipient's queue (`created_at` + the priority's offset).
    pub priority: Priority,
    /// `conversation_id` names a stored conversation of the tenant: the accept gives the
    /// message that conversation's next `seq`, in its transaction (see `conversations`).
    pub in_history: bool,
    /// The `message.send` audit entry, where the tenant audits sends: written in the same
    /// transaction, only if the message is accepted (not for a duplicate or a reused key).
    pub audit: Option<NewAuditEvent>,
    /// How an `auto` message was routed (JSON text), stored with it.
    pub routing: Option<String>,
    /// The sender's signature (JSON text), checked by the server before it gets here.
    pub signature: Option<String>,
}

/// What happened to a message offered for acceptance.
#[derive(Debug, Clone, PartialEq)]
pub enum AcceptOutcome {
    /// Committed now.
    Accepted { id: String, recipients: Vec<String>, created_at: Millis },
    /// The sender already sent this idempotency key with the same request: the first answer.
    Duplicate { id: String, recipients: Vec<String>, created_at: Millis },
    /// The sender already used this idempotency key for a different request.
    KeyReused { id: String },
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub tenant: String,
    pub id: String,
    pub sender: String,
    pub to: String,
    pub parts: String,
    pub metadata: Option<String>,
    pub conversation_id: Option<String>,
    pub correlation_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub priority: Priority,
    /// The sender's signature (JSON text), as sent.
    pub signature: Option<String>,
}

/// One recipient's delivery of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub updated_at: Millis,
    pub delivered_at: Option<Millis>,
    pub acked_at: Option<Millis>,
    pub lease_expires_at: Option<Millis>,
    pub last_error: Option<String>,
}

/// A message handed to its recipient under a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Leased {
    pub message: MessageRecord,
    pub attempt: u32,
    pub lease_expires_at: Millis,
}

/// Take up to `limit` due deliveries of `recipient` in accept order.
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    pub tenant: String,
    pub recipient: String,
    pub limit: usize,
    pub now: Millis,
    /// How long the recipient has to acknowledge before redelivery.
    pub lease_ms: i64,
    /// A delivery already attempted this many times goes to `dead` instead.
    pub max_attempts: u32,
}

/// An acknowledged delivery, with its message's accept time (for the latency histogram).
#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    pub id: String,
    pub created_at: Millis,
}

/// A delivery of an anycast (`capability:<name>`) message that time made due again: its
/// lease ran out unacknowledged, or a push retry or nack delay came due. A candidate to move
/// to another agent with the capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapsed {
    pub tenant: String,
    pub message_id: String,
    /// The agent that had it (`agent:<id>`).
    pub recipient: String,
    /// The message's address as sent (`capability:<name>`).
    pub to: String,
}

/// Moves an anycast delivery from one recipient to another (see [`Lapsed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassign {
    pub tenant: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    /// The new recipient has a push endpoint.
    pub push: bool,
    pub now: Millis,
}

/// Counts of deliveries by state, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub in_flight: i64,
}

/// An agent's subscription to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub tenant: String,
    pub topic: String,
    pub agent_id: String,
    pub created_at: Millis,
}

/// A subscriber as routing needs it: who, and whether its delivery goes out by push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecipient {
    pub agent_id: String,
    /// The agent has a push endpoint.
    pub push: bool,
}

/// A topic and how many agents subscribe to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    pub name: String,
    pub subscribers: u64,
}

/// A delivery in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub message_id: String,
    pub sender: String,
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_error: Option<String>,
}

/// Which deliveries a listing, replay or purge applies to.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub recipient: Option<String>,
    pub message_ids: Vec<String>,
    /// Only deliveries of messages accepted at or after this time.
    pub since: Option<Millis>,
    /// Listing: only deliveries with a sequence after this cursor.
    pub after: Option<i64>,
    pub limit: usize,
}

/// One API key of an agent, as listed (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKeyRecord {
    /// The key's public id (`key_<uuid>`).
    pub id: String,
    pub created_at: Millis,
    /// When the key stops working: `None` while live, set by a revocation (now, or the end of
    /// its grace period).
    pub expires_at: Option<Millis>,
    /// When the key last authenticated a request, as recorded by the last flush.
    pub last_used_at: Option<Millis>,
}

/// What a token's hash names: who holds it and, for an agent key, which key it is and when
/// it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub principal: switchboard_core::principal::Principal,
    /// The agent key's id; `None` for admin and operator tokens.
    pub key_id: Option<String>,
    pub expires_at: Option<Millis>,
}

impl TokenRecord {
    /// Whether the token still works at `now`.
    pub fn live_at(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}
