//! Wire types of the `/v1` HTTP API, shared by the server (which parses them and generates the
//! OpenAPI document from them) and the client (which sends them).
//!
//! Requests deny unknown fields: a misspelt optional field (`ttl_secs`) would otherwise be
//! silently ignored, which is the kind of mistake a user wants to hear about.

mod agents;
mod approvals;
mod audit;
mod common;
mod conversations;
mod deliveries;
mod groups;
mod keys;
mod messages;
mod notifications;
mod routing;
mod tenants;
mod topics;

pub use agents::*;
pub use approvals::*;
pub use audit::*;
pub use common::*;
pub use conversations::*;
pub use deliveries::*;
pub use groups::*;
pub use keys::*;
pub use messages::*;
pub use notifications::*;
pub use routing::*;
pub use tenants::*;
pub use topics::*;
