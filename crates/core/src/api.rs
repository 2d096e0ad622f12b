//! Wire types of the `/v1` HTTP API, shared by the server (which parses them and generates the
//! OpenAPI document from them) and the client (which sends them).
//!
//! Requests deny unknown fields: a misspelt optional field (`ttl_secs`) would otherwise be
//! silently ignored, which is the kind of mistake a user wants to hear about.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A capability (A2A: skill) an agent offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    /// 1 to 200 letters, digits or `-_.`, unique within the agent.
    #[schema(min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9._-]{1,200}$")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// JSON Schema that `data` parts sent to this capability must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::json_schema)]
    pub input_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::json_schema)]
    pub output_schema: Option<Value>,
}

/// `POST /v1/agents`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    /// 1 to 200 letters, digits or `-_.`, unique within the tenant.
    #[schema(min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9._-]{1,200}$")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Push endpoint (https URL). Without one the agent pulls (inbox, WebSocket, SSE).
    /// Addresses that are not publicly routable are refused unless the node or tenant
    /// allows private endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^https?://")]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Push retry schedule for this agent: milliseconds to wait before each retry (the
    /// node's default when absent). After the last, the delivery is dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::retry_schedule)]
    pub retry_schedule_ms: Option<Vec<u64>>,
}

/// `PUT /v1/agents/{id}`: replaces the card's fields (the id and key stay).
pub type UpdateAgent = RegisterAgent;

/// Whether an agent is reachable, derived from heartbeats and delivery health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Inactive,
    Error,
}

impl AgentStatus {
    /// The lower-case name used in query strings and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Inactive => "inactive",
            AgentStatus::Error => "error",
        }
    }
}

/// A registered agent and its card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub status: AgentStatus,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_seen_at: Option<String>,
}

/// Answer to `POST /v1/agents`: the agent and its API key, shown only this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentRegistered {
    pub agent: Agent,
    pub api_key: String,
    /// The `whsec_` secret push requests to this agent are signed with (readable again at
    /// `GET /v1/agents/{id}/webhook-secret`).
    pub webhook_secret: String,
}

/// One of an agent's API keys, as listed: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentKey {
    /// The key's id (`key_…`), to revoke it by.
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the key stops working: `null` while live, the end of its grace period once revoked.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// When the key last authenticated a request (recorded about once a second); `null` if never.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

/// Answer to `GET /v1/agents/{id}/keys`: the agent's keys that still work, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentKeyList {
    pub keys: Vec<AgentKey>,
}

/// Answer to `POST /v1/agents/{id}/keys`: the new key, shown only this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentKeyCreated {
    /// The key's id (`key_…`), to list and revoke it by.
    pub id: String,
    /// The API key itself (`sbk_…`); only its hash is stored.
    pub key: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// An agent's webhook signing secret(s). During a rotation both are used to sign.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecret {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub previous_expires_at: Option<String>,
}

/// A tenant's push settings (`GET`/`PUT /v1/tenant/push-settings`, admin).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPushSettings {
    /// Also sign pushes with the hub's Ed25519 key (`v1a,` in `webhook-signature`); the public
    /// key is at `/.well-known/switchboard-keys.json`.
    #[serde(default)]
    pub sign_ed25519: bool,
    /// Retry schedule for this tenant's agents that set none (milliseconds before each retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::retry_schedule)]
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// Let this tenant's agents use endpoints on loopback, private and link-local addresses.
    #[serde(default)]
    pub allow_private_endpoints: bool,
    /// An agent (`agent:<id>`) that receives push health events (`delivery.failing`,
    /// `delivery.exhausted`, `delivery.recovered`, `circuit.opened`, `endpoint.disabled`) as
    /// CloudEvents in `data` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^agent:")]
    pub events_to: Option<String>,
}

/// One push attempt, from the attempt log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushAttempt {
    pub recipient: String,
    pub attempt: u32,
    #[schema(format = DateTime)]
    pub at: String,
    pub duration_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// `ok`, `http_status`, `timeout`, `connect`, `closed`, `redirect`, `refused_address`, `gone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
}

/// A delivery in a listing (`GET /v1/deliveries`, `GET /v1/dead-letters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryItem {
    pub message_id: String,
    pub from: String,
    pub recipient: String,
    pub state: DeliveryState,
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `GET /v1/deliveries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /v1/dead-letters`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeliveryItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/dead-letters:replay` and `:purge`: which dead deliveries. With no field set,
/// all of them (of the caller's scope).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSelection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_ids: Vec<String>,
    /// Only deliveries to this recipient (`agent:<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Only messages accepted at or after this time (RFC 3339 in UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub since: Option<String>,
}

/// How many deliveries a replay or purge changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterResult {
    pub count: u64,
}

/// `GET /v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<Agent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A topic subscription: `agent_id` receives every message sent to `topic:<topic>` (except
/// the ones it sends itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub topic: String,
    pub agent_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// Answer to `PUT /v1/topics/{topic}/subscribers/{agent_id}`: 201 when new, 200 with the
/// existing subscription when the agent was already subscribed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Subscribed {
    pub subscription: Subscription,
}

/// `GET /v1/topics/{topic}/subscribers`, in agent id order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriberList {
    pub subscribers: Vec<Subscription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A topic that has subscribers, in `GET /v1/topics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Topic {
    pub name: String,
    /// How many agents are subscribed.
    pub subscribers: u64,
}

/// `GET /v1/topics`: every topic of the tenant with at least one subscriber, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<Topic>,
}

/// `POST /v1/tenants` (platform operator only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1 to 100 letters, digits or `-_.`, unique on the platform.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]{1,100}$")]
    pub name: String,
}

/// A tenant: a separate space of agents, messages, topics and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /v1/tenants` answer: the tenant and its admin token, shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: Tenant,
    /// The new tenant's admin token (`sba_…`); the hub keeps only its hash.
    pub admin_token: String,
}

/// `GET /v1/tenants`: a page of tenants, by id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

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
    /// of 1 to 200 letters, digits or `-_./@` (`capability:<name>?all` for every agent with it).
    /// `agent:`, `capability:` and `topic:` are served; `user:`, `conversation:` and `auto` are
    /// refused as `unsupported_address`.
    #[schema(
        pattern = "^(auto|(agent|user|conversation):[A-Za-z0-9._/@-]{1,200}|topic:[A-Za-z0-9_/@-]+(\\.[A-Za-z0-9_/@-]+)*|capability:[A-Za-z0-9._/@-]{1,200}(\\?all)?)$"
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
}

/// `GET /v1/messages/{id}`: the message, its deliveries and its push attempts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageStatus {
    pub message: Message,
    pub deliveries: Vec<Delivery>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push_attempts: Vec<PushAttempt>,
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

/// One failing field of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `parts[1].file.bytes`.
    pub path: String,
    pub message: String,
}

/// RFC 9457 problem details, the body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid_body`, `unknown_recipient`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// `GET /v1/whoami`: who a token acts as, so that a tool holding only a key can act as
/// itself (`switchboard topic subscribe <topic>` without `--agent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Whoami {
    pub tenant: String,
    /// `agent:<id>`, `user:<id>` or `admin`.
    pub principal: String,
    /// The agent's id, when the token is an agent key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The person, when the caller is a user (a session or personal access token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<WhoamiUser>,
}

/// The person behind a session or personal access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoamiUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: crate::principal::Role,
}

/// `GET /health` and `/ready`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// One entry of a tenant's audit log (`GET /v1/audit`, `GET /v1/audit:export`). Entries form
/// a hash chain: see [`crate::audit`] for how `hash` is computed and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Position in the tenant's chain: 1, 2, 3, … without gaps.
    pub seq: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// Who acted: `operator`, `admin`, `agent:<id>` or `user:<id>`.
    pub actor: String,
    /// What was done, e.g. `agent.register`, `dead_letters.purge`, `login_failed`.
    pub action: String,
    /// What it was done to, e.g. `agent:<id>`.
    pub target: String,
    /// Ids and metadata of the change; never message payloads or secrets.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// Hex SHA-256 of `prev_hash` followed by this entry's canonical form.
    #[schema(min_length = 64, max_length = 64)]
    pub hash: String,
    /// The previous entry's `hash`; 64 zeros for the first.
    #[schema(min_length = 64, max_length = 64)]
    pub prev_hash: String,
}

/// `GET /v1/audit`: entries in `seq` order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET|PUT /v1/audit/settings`: what the tenant's audit log records beyond changes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Whether sends (`message.send`) and acks (`delivery.ack`) are audited, as ids and
    /// metadata, never payloads. Off by default: it adds an entry to every send and ack.
    pub sends: bool,
}
