//! Switchboard's domain: addresses, messages, agents and the wire types of the public API.
//!
//! This crate does no I/O. The store, the server, the client and the CLI all speak in these
//! types, so a field added here appears everywhere at once and the OpenAPI document (generated
//! from the `utoipa` derives below) cannot drift from what the server parses.

pub mod address;
pub mod api;
pub mod audit;
pub mod e2e;
pub mod ids;
pub mod limits;
pub mod oauth;
pub mod people;
pub mod policy;
pub mod principal;
pub mod schema;
pub mod subject;
pub mod time;
pub mod validate;

pub use address::{Address, Recipient};
pub use ids::{AgentId, ConversationId, MessageId, TenantId, UserId};
pub use principal::{Principal, PrincipalKind};

/// A new time-ordered identifier (UUIDv7), used for messages and agents.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// A new public id for an agent key (`key_<uuid>`): what lists and revocations name it by,
/// never the key or its hash.
pub fn new_key_id() -> String {
    format!("key_{}", new_id().simple())
}

/// The default tenant created on first start of an empty store.
pub const DEFAULT_TENANT: &str = "default";

/// Prefix of agent API keys, so a leaked key is recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "sbk_";
/// Prefix of admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "sba_";
