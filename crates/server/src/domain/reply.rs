//! Request/reply: a sender that asked `?wait=reply` waits for the first reply to its message.
//!
//! The reply is delivered to the requester like any message, so the store wakes the
//! requester's inbox key when it is committed, on whichever node accepted it (PostgreSQL
//! nodes wake each other). The waiter looks the reply up by `in_reply_to`; a reply addressed
//! elsewhere (to a topic, say) wakes nobody here, so the look is also repeated every second.

use std::time::Duration;

use switchboard_core::Principal;
use switchboard_store::{MessageRecord, Store};
use tokio::sync::watch;
use tokio::time::Instant;

use super::delivery::{Deliveries, inbox_of};
use crate::error::ApiError;

/// Longest `timeout_ms` of `?wait=reply` (5 minutes), and its default (30 s).
pub const MAX_REPLY_WAIT_MS: u64 = 300_000;
pub const DEFAULT_REPLY_WAIT_MS: u64 = 30_000;

/// How often the waiter looks for a reply that woke nobody (one not addressed to the requester).
const RECHECK: Duration = Duration::from_secs(1);

/// Waits up to `timeout` for the first reply to message `id` sent by `by` (an agent or a
/// person: they have an inbox). The reply returned is acknowledged in `by`'s inbox, since
/// this answer hands it over; a reply that comes later stays in the inbox as any message
/// does. `None` when the time ran out or the node is shutting down.
pub async fn await_reply(
    store: &dyn Store,
    deliveries: &Deliveries,
    by: &Principal,
    id: &str,
    timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<MessageRecord>, ApiError> {
    let inbox = inbox_of(by)?;
    let tenant = by.tenant.as_str();
    let me = by.sender();
    let mut woken = store.wakeups().subscribe((tenant.to_owned(), inbox));
    let deadline = Instant::now() + timeout;
    loop {
        // Marked seen before the look: a reply committed after it still changes the value.
        woken.borrow_and_update();
        if let Some(reply) = store.first_reply(tenant, id, &me).await? {
            deliveries.ack(by, vec![reply.id.clone()]).await?;
            return Ok(Some(reply));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let pause = left.min(RECHECK);
        tokio::select! {
            changed = woken.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(pause).await;
                }
            }
            _ = tokio::time::sleep(pause) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return Ok(None),
        }
    }
}
