//! The node's one shutdown signal, as the tasks that watch it wait on it.

use tokio::sync::watch;

/// Resolves when the node is shutting down. (Holding `watch::Ref` across an await would make
/// the caller's future `!Send`; this drops it inside.)
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
