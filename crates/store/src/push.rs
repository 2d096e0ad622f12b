//! Storage for push delivery: webhook secrets, endpoint health, claims and the attempt log,
//! the tenant's push settings and the hub's signing key. One area of [`Store`](crate::Store).

use async_trait::async_trait;
use switchboard_core::time::Millis;

use switchboard_core::audit::NewAuditEvent;

use crate::error::Result;
use crate::records::MessageRecord;

/// An agent's push settings and health.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushSettings {
    /// Current signing secret (`whsec_…`).
    pub secret: String,
    /// The secret before the last rotation, still signed with until `previous_until`.
    pub previous: Option<String>,
    pub previous_until: Option<Millis>,
    /// Why the endpoint is failing (circuit open), if it is.
    pub health_error: Option<String>,
    /// The endpoint answered 410 Gone: nothing is pushed until the card is updated.
    pub disabled: bool,
    /// Per-agent retry schedule, milliseconds between attempts.
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// For an agent imported from an A2A Agent Card: the interface its messages are forwarded
    /// to (URL, binding, protocol version, credentials), as JSON the server reads. `None`
    /// for a webhook agent.
    pub a2a: Option<String>,
}

/// Take up to `limit` due push deliveries for this node.
#[derive(Debug, Clone)]
pub struct PushClaim {
    pub now: Millis,
    pub limit: usize,
    /// How long the claim holds before another node may take the delivery (longer than the
    /// request timeout).
    pub hold_ms: i64,
    pub node: String,
    /// Most deliveries claimed per agent (its endpoint's concurrency limit).
    pub per_agent: usize,
    /// (tenant, agent, room) for agents with attempts in flight or an open circuit on this
    /// node: at most `room` more are claimed for them (0: none).
    pub agent_room: Vec<(String, String, usize)>,
}

/// A delivery claimed for a push attempt.
#[derive(Debug, Clone)]
pub struct PushJob {
    pub message: MessageRecord,
    pub tenant: String,
    pub agent_id: String,
    pub endpoint: String,
    pub settings: PushSettings,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How one attempt went, as stored in the attempt log.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub recipient: String,
    pub attempt: u32,
    pub at: Millis,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    /// `ok`, `http_status`, `timeout`, `connect`, `closed`, `refused_address`, `circuit_open`, …
    pub error_kind: Option<String>,
    /// The first bytes of the response body.
    pub excerpt: Option<String>,
}

/// What happens to the delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    Acked,
    Retry { due_at: Millis, error: String },
    Dead { error: String },
}

/// Push delivery: what the dispatcher claims and records, and what signs its requests.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// Creates or replaces a registered agent's push settings; does nothing for an agent that
    /// is not (or no longer) registered, so a deleted agent's secret is never written back.
    /// `audit` (a webhook secret rotation) is written with them, if they were.
    async fn put_push_settings(
        &self,
        tenant: &str,
        agent_id: &str,
        s: PushSettings,
        audit: Option<NewAuditEvent>,
    ) -> Result<()>;
    /// The settings of those of `agent_ids` that are registered and have some, in that order:
    /// a deleted agent has none, like any other trace of it.
    async fn push_settings(&self, tenant: &str, agent_ids: &[String]) -> Result<Vec<(String, PushSettings)>>;
    /// Claims due deliveries of agents with an enabled endpoint, oldest first.
    async fn claim_push(&self, claim: PushClaim) -> Result<Vec<PushJob>>;
    /// Records an attempt and moves the delivery on.
    async fn finish_push(
        &self,
        tenant: &str,
        message_id: &str,
        attempt: AttemptRecord,
        outcome: PushOutcome,
    ) -> Result<()>;
    /// Gives a claimed delivery back untried (its endpoint's circuit is open).
    async fn release_push(&self, tenant: &str, message_id: &str, recipient: &str, due_at: Millis) -> Result<()>;
    /// Sets or clears an agent's health error and disabled flag.
    async fn set_push_health(&self, tenant: &str, agent_id: &str, error: Option<String>, disabled: bool) -> Result<()>;
    /// The attempt log of a message, oldest first.
    async fn attempts(&self, tenant: &str, message_id: &str) -> Result<Vec<AttemptRecord>>;
    /// The tenant's push settings (JSON text), if it set any.
    async fn tenant_push_settings(&self, tenant: &str) -> Result<Option<String>>;
    /// Replaces the tenant's push settings, with the audit entry recording it.
    async fn put_tenant_push_settings(
        &self,
        tenant: &str,
        settings: String,
        audit: Option<NewAuditEvent>,
    ) -> Result<()>;
    /// The task an imported A2A agent is still working on for a message (its remote id), so
    /// the next attempt reads it (`GetTask`) instead of sending the message again.
    async fn a2a_task(&self, tenant: &str, message_id: &str) -> Result<Option<String>>;
    /// Records (`Some`) or forgets (`None`) that task.
    async fn set_a2a_task(&self, tenant: &str, message_id: &str, task_id: Option<String>) -> Result<()>;
    /// The hub's Ed25519 signing key (32 secret bytes), shared by every node: stores
    /// `candidate` if there is none yet and returns whichever is stored.
    async fn signing_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>>;
}
