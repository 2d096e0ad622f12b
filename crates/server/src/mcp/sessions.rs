//! Who opened each 2025-11-25 session on this node: a session answers only the caller that
//! opened it (the MCP spec asks servers to bind session ids to the user). Every request still
//! authenticates on its own; this only stops a session id, seen by someone else, from being
//! used with another caller's token. Stateless (2026-07-28) requests carry no session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_core::Principal;

/// Forgotten after this long unused: rmcp ends a session idle for 5 minutes.
const IDLE: Duration = Duration::from_secs(600);

/// The caller of each live session, and when it was last used.
#[derive(Default)]
pub struct SessionOwners {
    owners: Mutex<HashMap<String, (String, Instant)>>,
}

/// A caller as one string: tenant and sender address.
fn who(p: &Principal) -> String {
    format!("{}/{}", p.tenant.as_str(), p.sender())
}

impl SessionOwners {
    /// Records that `by` opened session `id`.
    pub fn opened(&self, id: &str, by: &Principal) {
        let mut map = self.owners.lock().expect("session owners poisoned");
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, (_, at)| at.elapsed() < IDLE);
        }
        map.insert(id.to_owned(), (who(by), Instant::now()));
    }

    /// Whether `by` may use session `id`: it opened it, or the session is not known here
    /// (rmcp then answers 404 for an id it does not know either).
    pub fn may_use(&self, id: &str, by: &Principal) -> bool {
        let mut map = self.owners.lock().expect("session owners poisoned");
        match map.get_mut(id) {
            Some((owner, at)) if at.elapsed() < IDLE => {
                *at = Instant::now();
                *owner == who(by)
            }
            _ => true,
        }
    }
}
