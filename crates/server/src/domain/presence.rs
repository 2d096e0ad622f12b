//! Presence: agents seen recently, written to the store in batches.

use std::collections::HashMap;

use switchboard_core::time::{Millis, now_ms};
use switchboard_store::Store;

/// Agents seen since the last flush; written to the store in one batch each second, so that
/// successful requests keep an agent `active` without a write per request.
#[derive(Default)]
pub struct Presence {
    pending: std::sync::Mutex<HashMap<(String, String), Millis>>,
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

    /// Writes what was seen since the last flush.
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
    }
}
