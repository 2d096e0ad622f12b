//! Errors (problem details), who the caller is, health.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
