//! The node's background tasks: the reaper (wakes consumers when time makes work due, expires
//! messages past their TTL) and the presence flusher.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::time::now_ms;
use switchboard_store::Store;
use tokio::sync::watch;

use super::poke::Poke;
use super::presence::Presence;
use super::routing::Routing;
use crate::metrics::Metrics;

/// What the reaper needs to move lapsed anycast deliveries to another capable agent.
pub struct Reassigning {
    pub routing: Arc<Routing>,
    /// Rung when a delivery moved to an agent with a push endpoint.
    pub poke: Poke,
}

/// Wakes consumers whose leases ran out or whose retries came due, moves lapsed anycast
/// deliveries to another capable agent (before the wake-ups, so the agent that let the
/// lease lapse does not take it back first), and expires messages whose TTL passed. Runs
/// until shutdown.
pub async fn reaper(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    reassigning: Reassigning,
    reaper_interval_ms: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let tick = Duration::from_millis(reaper_interval_ms);
    let mut last = now_ms();
    let mut last_expire = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
        let now = now_ms();
        if now - last_expire >= 1000 {
            match store.expire(now).await {
                Ok(n) if n > 0 => metrics.delivery("expired", n),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not expire messages"),
            }
            last_expire = now;
        }
        match reassigning.routing.reassign_lapsed(store.as_ref(), last, now).await {
            Ok(moved) if moved.iter().any(|r| r.push) => reassigning.poke.poke(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not move lapsed anycast deliveries"),
        }
        match store.due_recipients(last, now).await {
            Ok(keys) => {
                store.wakeups().wake(keys.iter());
                last = now;
            }
            Err(e) => tracing::warn!(error = %e, "could not look for expired leases"),
        }
    }
}

/// Writes agent presence once a second, and once more at shutdown.
pub async fn presence_flusher(presence: Arc<Presence>, store: Arc<dyn Store>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => presence.flush(store.as_ref()).await,
            _ = crate::shutdown::stopped(&mut shutdown) => {
                presence.flush(store.as_ref()).await;
                return;
            }
        }
    }
}
