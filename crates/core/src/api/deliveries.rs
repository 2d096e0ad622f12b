//! Push settings, deliveries, dead letters.

use super::DeliveryState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
