//! Agents: cards, capabilities, keys, webhook secrets.

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
    /// JSON Schema of the `data` parts of replies to this capability (see
    /// `output_schema_mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::json_schema)]
    pub output_schema: Option<Value>,
    /// Whether replies are checked against `output_schema`: `enforce` refuses a reply that
    /// does not match (422 `schema_violation`), `warn` accepts it and records the failures in
    /// its `metadata.schema_warnings`. Absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema_mode: Option<OutputSchemaMode>,
    /// Anycast: when this agent's lease on a message runs out unacknowledged (or its push
    /// attempts keep failing), the next attempt may go to another agent with the capability.
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassign_on_timeout: Option<bool>,
}

impl Capability {
    /// A capability with only a name.
    pub fn named(name: impl Into<String>) -> Capability {
        Capability {
            name: name.into(),
            description: None,
            tags: vec![],
            examples: vec![],
            input_schema: None,
            output_schema: None,
            output_schema_mode: None,
            reassign_on_timeout: None,
        }
    }
}

/// How replies are held to a capability's `output_schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputSchemaMode {
    /// Accept, and list the failing locations in the reply's `metadata.schema_warnings`.
    Warn,
    /// Refuse with 422 `schema_violation`.
    Enforce,
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

/// `GET /v1/agents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<Agent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/agents:import`: registers an external A2A agent from its Agent Card. Messages to
/// it are forwarded with the A2A client binding by the push engine (retries, circuit breaker,
/// policies and audit as for webhooks); its answers come back as replies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportAgent {
    /// Where the Agent Card is, e.g. `https://agent.example/.well-known/agent-card.json`.
    /// Fetched by the hub under the push engine's SSRF guard.
    #[schema(pattern = "^https?://")]
    pub card_url: String,
    /// The name in the registry; default: the card's name (characters outside `[A-Za-z0-9._-]`
    /// become `-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The credentials the hub sends with every call to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<A2aCredentials>,
    /// Retry schedule for forwards to this agent, as for a webhook agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::retry_schedule)]
    pub retry_schedule_ms: Option<Vec<u64>>,
}

/// Credentials the hub sends to an imported A2A agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum A2aCredentials {
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// An API key in a header: `header`, else the one the card's API-key security scheme
    /// names, else `X-API-Key`.
    ApiKey {
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
    },
}

/// The A2A interface the hub forwards an imported agent's messages to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct A2aInterface {
    pub card_url: String,
    pub url: String,
    /// `JSONRPC` or `HTTP+JSON`.
    pub binding: String,
    /// `1.0` or `0.3…`.
    pub protocol_version: String,
    /// The kind of credentials sent (`bearer`, `api_key`), never their value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// Answer to `POST /v1/agents:import`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentImported {
    pub agent: Agent,
    pub a2a: A2aInterface,
}
