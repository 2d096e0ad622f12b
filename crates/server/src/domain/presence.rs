//! Presence: agents seen recently, written to the store in batches, and the status it gives
//! an agent.

use std::collections::HashMap;

use switchboard_core::api::AgentStatus;
use switchboard_core::time::{Millis, now_ms};
use switchboard_store::push::PushSettings;
use switchboard_store::{AgentRecord, Store};

/// Agents seen since the last flush; written to the store in one batch each second, so that
/// successful requests keep an agent `active` without a write per request. Agent keys' last
/// use is batched the same way.
#[derive(Default)]
pub struct Presence {
    pending: std::sync::Mutex<HashMap<(String, String), Millis>>,
    /// Agent keys (by hash) that authenticated a request since the last flush, and when.
    keys_used: std::sync::Mutex<HashMap<String, Millis>>,
    /// Held across a flush's drain and write, so that a flush that returns has also waited
    /// for one running beside it: after it, everything seen before it is in the store.
    flushing: tokio::sync::Mutex<()>,
}

impl Presence {
    /// Notes that an agent made a successful request now.
    pub fn seen(&self, tenant: &str, id: &str) {
        let mut map = self.pending.lock().expect("presence lock poisoned");
        map.insert((tenant.to_owned(), id.to_owned()), now_ms());
    }

    /// Notes that the agent key with this hash authenticated a request at `at`.
    pub fn key_used(&self, hash: &str, at: Millis) {
        let mut map = self.keys_used.lock().expect("presence lock poisoned");
        match map.get_mut(hash) {
            Some(t) => *t = (*t).max(at),
            None => {
                map.insert(hash.to_owned(), at);
            }
        }
    }

    /// Writes what was seen (agents, and the last use of their keys) since the last flush.
    pub async fn flush(&self, store: &dyn Store) {
        let _one_at_a_time = self.flushing.lock().await;
        let seen: Vec<_> = {
            let mut map = self.pending.lock().expect("presence lock poisoned");
            map.drain().map(|((t, id), at)| (t, id, at)).collect()
        };
        if !seen.is_empty()
            && let Err(e) = store.touch_agents(seen).await
        {
            tracing::warn!(error = %e, "could not record agent presence");
        }
        let used: Vec<_> = {
            let mut map = self.keys_used.lock().expect("presence lock poisoned");
            map.drain().collect()
        };
        if !used.is_empty()
            && let Err(e) = store.touch_agent_keys(used).await
        {
            tracing::warn!(error = %e, "could not record when agent keys were last used");
        }
    }
}

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
