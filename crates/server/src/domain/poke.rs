//! The push dispatcher's doorbell, rung by whoever makes push work due.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes the dispatcher: something became due for a push agent, look now rather than at the
/// next tick. Shared by the accept path and the push engine.
#[derive(Clone, Default)]
pub struct Poke(Arc<Notify>);

impl Poke {
    pub fn poke(&self) {
        self.0.notify_one();
    }

    pub(super) async fn notified(&self) {
        self.0.notified().await;
    }
}
