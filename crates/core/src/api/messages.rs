//! Messages: parts, sends, batches, deliveries' states, the inbox, acks, stream frames.

use super::{Problem, PushAttempt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A file carried in a message: inline base64 `bytes` or a `uri`, exactly one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Standard base64 of the file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// One part of a message, A2A style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Part {
    Text {
        text: String,
    },
    Data {
        #[schema(value_type = Value)]
        data: Value,
    },
    File {
        file: FilePart,
    },
    /// End-to-end encrypted parts (`docs/e2e.md`); a message carries it alone, signed.
    Sealed {
        sealed: super::Sealed,
    },
}

impl Part {
    /// A text part.
    pub fn text(s: impl Into<String>) -> Part {
        Part::Text { text: s.into() }
    }
}

/// `POST /v1/messages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// Recipient address, e.g. `agent:<id>` or `capability:translate`: a kind, `:`, and a name
    /// of 1 to 200 letters, digits or `-_./@` (`capability:<name>?all` for every agent with it;
    /// `group:<name>` 1 to 64 letters, digits or `-_.`), or `auto` (the hub picks the
    /// capability from the text, or sends it to the triage group), or `conversation:<id>`
    /// (every participant but the sender).
    #[schema(
        pattern = "^(auto|(agent|user|conversation):[A-Za-z0-9._/@-]{1,200}|group:[A-Za-z0-9][A-Za-z0-9._-]{0,63}|topic:[A-Za-z0-9_/@-]+(\\.[A-Za-z0-9_/@-]+)*|capability:[A-Za-z0-9._/@-]{1,200}(\\?all)?)$"
    )]
    pub to: String,
    /// At least one part.
    #[schema(min_items = 1)]
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub in_reply_to: Option<String>,
    /// Same key from the same sender → the first answer, and no second message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub idempotency_key: Option<String>,
    /// After this many seconds an undelivered message expires (1 to 2592000, 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2592000)]
    pub ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Delivery order within each recipient's queue (default `normal`); see [`Priority`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Anycast (`capability:<name>`): refuse (422 `unknown_recipient`) when no agent with the
    /// capability is active, instead of queueing the message for an inactive one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_active: Option<bool>,
    /// `approval_request`: the message asks for an approval. Its one `data` part holds a
    /// `CreateApproval` body (`deciders` default to `[to]`, which must then be a person or a
    /// group); the hub stores the approval and delivers the request as `POST /v1/approvals`
    /// would, and its outcome comes back as the reply (`?wait=reply` answers with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MessageKind>,
    /// The sender's Ed25519 signature (`docs/e2e.md`); required with a `sealed` part. A bad
    /// one is refused (422 `bad_signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<super::MessageSignature>,
}

/// What a send is, when it is more than a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    ApprovalRequest,
}

/// Where a message goes in its recipients' queues. Each delivery is ordered by
/// `created_at + offset` (high −30 s, normal 0, low +30 s), then accept order: a `high`
/// message overtakes `normal` ones sent up to 30 s before it and `low` ones up to 60 s
/// before it, and nothing waits behind messages sent more than 60 s after it, so `low` is
/// never starved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    /// How far the priority moves a delivery in its recipient's queue, milliseconds.
    pub const fn offset_ms(self) -> i64 {
        match self {
            Priority::High => -30_000,
            Priority::Normal => 0,
            Priority::Low => 30_000,
        }
    }

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// Parses a stored name; anything else (and no name) is `normal`.
    pub fn parse(s: Option<&str>) -> Priority {
        match s {
            Some("high") => Priority::High,
            Some("low") => Priority::Low,
            _ => Priority::Normal,
        }
    }
}

impl SendMessage {
    /// A message of one text part to `to`.
    pub fn text(to: impl Into<String>, text: impl Into<String>) -> SendMessage {
        SendMessage { to: to.into(), parts: vec![Part::text(text)], ..Default::default() }
    }
}

/// Answer to a send: 202 once the message and its deliveries are committed to disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageAccepted {
    pub id: String,
    /// Always `accepted`.
    pub status: String,
    pub recipients: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// True when this answer repeats an earlier send with the same idempotency key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// With `?wait=delivered`: the deliveries' states when the answer was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<Delivery>>,
}

/// `POST /v1/messages:batch`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBatch {
    /// 1 to 1000 messages.
    #[schema(min_items = 1, max_items = 1000)]
    pub messages: Vec<SendMessage>,
}

/// One entry of a batch answer: the acceptance, or the problem with that message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Accepted(MessageAccepted),
    Refused { error: Problem },
}

/// Answer to `POST /v1/messages:batch`, in the order of the request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchAccepted {
    pub results: Vec<BatchItem>,
}

/// Where a delivery stands. `pending` → `delivered` (handed out under a lease) → `acked`;
/// or `dead` after too many attempts, or `expired` when the TTL passes first. `leased` marks
/// a push attempt in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Leased,
    Delivered,
    Acked,
    Failed,
    Dead,
    Expired,
}

impl DeliveryState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Leased => "leased",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Acked => "acked",
            DeliveryState::Failed => "failed",
            DeliveryState::Dead => "dead",
            DeliveryState::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "leased" => DeliveryState::Leased,
            "delivered" => DeliveryState::Delivered,
            "acked" => DeliveryState::Acked,
            "failed" => DeliveryState::Failed,
            "dead" => DeliveryState::Dead,
            "expired" => DeliveryState::Expired,
            _ => return None,
        })
    }

    /// True once nothing more will happen to the delivery.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Acked | DeliveryState::Dead | DeliveryState::Expired)
    }
}

/// One recipient's delivery of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub acked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub lease_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A stored message as its sender or the admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub from: String,
    pub to: String,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Delivery order in the recipients' queues.
    #[serde(default)]
    pub priority: Priority,
    /// The sender's signature, as sent, for receivers to check against the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<super::MessageSignature>,
    /// True when the message was signed and the hub checked the signature against the
    /// sender's registered key when it accepted it (unsigned messages: false).
    #[serde(default)]
    pub verified: bool,
}

/// Answer to `POST /v1/messages?wait=reply`: the request as stored and the first reply to it
/// (a message with `in_reply_to` = its id).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageReply {
    pub message: Message,
    pub reply: Message,
}

/// `GET /v1/messages/{id}`: the message, its deliveries and its push attempts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageStatus {
    pub message: Message,
    pub deliveries: Vec<Delivery>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push_attempts: Vec<PushAttempt>,
    /// How an `auto` message was routed (absent for other addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<super::RoutingDecision>,
}

/// A message handed to its recipient under a lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboxMessage {
    #[serde(flatten)]
    pub message: Message,
    /// 1 on first delivery; more on redelivery (same id, so receivers can drop duplicates).
    pub attempt: u32,
    #[schema(format = DateTime)]
    pub lease_expires_at: String,
}

/// `GET /v1/inbox`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Inbox {
    pub messages: Vec<InboxMessage>,
}

/// `POST /v1/inbox/ack`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// 1 to 10000 message ids.
    #[schema(min_items = 1, max_items = 10000)]
    pub ids: Vec<String>,
}

/// `POST /v1/inbox/nack`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackRequest {
    /// 1 to 10000 message ids.
    #[schema(min_items = 1, max_items = 10000)]
    pub ids: Vec<String>,
    /// Redeliver after this many milliseconds (default: at once; more than 24 hours counts
    /// as 24 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::retry_in_ms)]
    pub retry_in_ms: Option<u64>,
}

/// Answer to ack and nack: which ids changed state. Ids that were not leased to the caller
/// (already acked, unknown, someone else's) are listed in `ignored`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AckResult {
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// A frame on the `/v1/stream` WebSocket, either way.
// Frames live only while being encoded or decoded; boxing the message would cost an
// allocation per frame to save stack space nobody holds.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamFrame {
    /// Server → client: a message, leased to this connection.
    Message(InboxMessage),
    /// Client → server: acknowledge a message.
    Ack { id: String },
    /// Client → server: give a message back for redelivery.
    Nack {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    /// Server → client: a frame the server could not take, and why.
    Error { code: String, detail: String },
}
