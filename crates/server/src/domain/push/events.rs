//! Push health events: what an attempt changed, told to the agent's health, the log, the
//! metrics and (when the tenant names one) the `events_to` agent.

use switchboard_core::{AgentId, Recipient, TenantId};

use super::Pusher;
use super::circuit::Change;

/// Tells the agent's health, the events agent and the log what an attempt changed.
pub(super) async fn report_circuit(
    p: &Pusher,
    key: &(String, String),
    change: Change,
    first_failure: bool,
    kind: Option<&str>,
) {
    if first_failure {
        emit(p, &key.0, &key.1, "delivery.failing", serde_json::json!({ "kind": kind })).await;
    }
    match change {
        Change::None => {}
        Change::Opened(n) => {
            tracing::warn!(agent = %key.1, failures = n, "endpoint failing: circuit open");
            let error = format!("{n} consecutive push failures; retrying after a cooldown");
            let _ = p.store.set_push_health(&key.0, &key.1, Some(error), false).await;
            let cooldown = p.config.circuit_cooldown_ms;
            let data = serde_json::json!({ "failures": n, "cooldown_ms": cooldown });
            emit(p, &key.0, &key.1, "circuit.opened", data).await;
        }
        Change::Recovered => {
            tracing::info!(agent = %key.1, "endpoint recovered");
            let _ = p.store.set_push_health(&key.0, &key.1, None, false).await;
            emit(p, &key.0, &key.1, "delivery.recovered", serde_json::json!({})).await;
        }
    }
}

/// Counts a push health event and, when the tenant names an `events_to` agent, sends it
/// there as a CloudEvent (built and stored by [`Acceptor::event`](crate::domain::accept::Acceptor::event)):
/// a durable message like any other, so an ops agent gets it by pull or push, on whichever
/// node it is connected to.
pub(super) async fn emit(p: &Pusher, tenant: &str, agent_id: &str, event: &'static str, data: serde_json::Value) {
    p.metrics.push_event(event);
    let Ok(settings) = p.tenant_settings(tenant).await else { return };
    let Some(to) = settings.events_to else { return };
    // Only an agent can be named (checked when the settings are put).
    let Ok(to) = to.parse::<Recipient>() else { return };
    let subject = Recipient::Agent(AgentId::from(agent_id));
    let tenant = TenantId::from(tenant);
    if let Err(e) = p.acceptor.event(&tenant, &to, &subject, event, data).await {
        // E.g. the events agent is gone: metrics and logs still have the event.
        tracing::warn!(error = %e, event, "could not send a push event to {to}");
    }
}
