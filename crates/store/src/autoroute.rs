//! Auto-routing: each tenant's settings (with its model's key, which is stored but never
//! read back by the API), the decision stored with a message, and a person's re-routing of a
//! message out of triage. One area of [`Store`](crate::Store).

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::error::Result;

/// A tenant's stored auto-routing settings: the settings as JSON text (without the key) and
/// the model's key, if one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingSettingsRecord {
    pub settings: String,
    pub api_key: Option<String>,
    pub updated_at: Millis,
}

/// A message taken out of triage: its open deliveries are closed as acked, new ones made
/// for `add`, and its routing decision replaced, all only if the decision is still
/// `expected` (so two people choosing at once cannot both route it).
#[derive(Debug, Clone)]
pub struct Reroute {
    pub tenant: String,
    pub message_id: String,
    /// The stored decision as read before (JSON text).
    pub expected: String,
    /// The new decision (JSON text).
    pub routing: String,
    /// New recipients, each with whether it has a push endpoint.
    pub add: Vec<(String, bool)>,
    pub now: Millis,
}

/// What became of a [`Reroute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RerouteOutcome {
    /// Done; the recipients whose open deliveries were closed.
    Rerouted { closed: Vec<String> },
    /// The decision is no longer the one expected (someone routed it first); nothing written.
    Changed,
    /// No such message in the tenant.
    NoMessage,
}

/// Auto-routing's storage.
#[async_trait]
pub trait AutoRouteStore: Send + Sync {
    async fn routing_settings(&self, tenant: &str) -> Result<Option<RoutingSettingsRecord>>;
    /// Replaces the tenant's settings and key.
    async fn put_routing_settings(
        &self,
        tenant: &str,
        settings: RoutingSettingsRecord,
        audit: Option<NewAuditEvent>,
    ) -> Result<()>;
    /// The routing decision stored with a message (JSON text), if it has one.
    async fn message_routing(&self, tenant: &str, message_id: &str) -> Result<Option<String>>;
    /// Re-routes a message out of triage (see [`Reroute`]).
    async fn reroute(&self, r: Reroute, audit: Option<NewAuditEvent>) -> Result<RerouteOutcome>;
}
