//! The audit log.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

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
