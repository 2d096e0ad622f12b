//! Agent status: a domain decision (routing picks only `active` agents for anycast), kept
//! apart from the API view that shows it.

use switchboard_core::api::AgentStatus;
use switchboard_core::time::Millis;
use switchboard_store::AgentRecord;
use switchboard_store::push::PushSettings;

/// An agent's status at `now`: `error` while its push endpoint is failing or disabled,
/// otherwise `active` when seen within the heartbeat window, else `inactive`.
pub fn status(a: &AgentRecord, heartbeat_window_ms: u64, push: Option<&PushSettings>, now: Millis) -> AgentStatus {
    let failing = a.endpoint.is_some() && push.is_some_and(|p| p.health_error.is_some() || p.disabled);
    match a.last_seen_at {
        _ if failing => AgentStatus::Error,
        Some(t) if now - t <= heartbeat_window_ms as i64 => AgentStatus::Active,
        _ => AgentStatus::Inactive,
    }
}
