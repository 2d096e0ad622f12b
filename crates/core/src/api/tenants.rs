//! Tenants.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// A tenant's retention (`GET`/`PUT /v1/tenant/retention`, admin). A field left out or `null`
/// keeps that kind for ever. A message is deleted only once every one of its deliveries is
/// finished (acknowledged or expired); one still waiting for a recipient is kept however old.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantRetention {
    /// Delete messages this many seconds after they were accepted, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3_153_600_000_u64)]
    pub messages_max_age_seconds: Option<u64>,
    /// Delete dead letters this many seconds after they died (`replay` them before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3_153_600_000_u64)]
    pub dead_letters_max_age_seconds: Option<u64>,
}
