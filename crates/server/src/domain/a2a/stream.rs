//! `SendStreamingMessage` and `SubscribeToTask`: the task's events as they happen, written to
//! a channel the door turns into Server-Sent Events. Woken by the owner's inbox (the agent's
//! replies land there, on this node or, through the store's wake-ups, any other), and looks
//! again every [`RECHECK`] for what wakes no one (the agent taking the message). A send's
//! stream ends when the task stops or pauses (completed, failed, canceled, rejected, input or
//! auth required: section 11.7), a subscription's only when it stops (section 3.1.6); both
//! end when the client goes or the node shuts down.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_store::Store;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::tasks::RECHECK;
use super::view::Facts;
use super::{A2aError, Dialect};

/// How long a new stream waits for the agent's first answer before it sends the task: an
/// agent that answers at once with a direct message makes a message-only stream.
pub const FIRST_ANSWER: Duration = Duration::from_secs(1);

/// What opens the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A new message: a direct answer within [`FIRST_ANSWER`] is the whole stream.
    Sent,
    /// A subscription to a task as it is.
    Subscribed,
}

async fn load(store: &dyn Store, tenant: &str, task: &str) -> Result<Facts, A2aError> {
    let (m, d) = store.get_message(tenant, task).await?.ok_or_else(|| A2aError::TaskNotFound(task.into()))?;
    Facts::read(store, m, d).await
}

/// Writes the task's stream to `out` (each item a 1.0 `StreamResponse`, or a 0.3 event).
pub async fn follow(
    store: Arc<dyn Store>,
    first: Facts,
    opening: Opening,
    dialect: Dialect,
    mut shutdown: watch::Receiver<bool>,
    out: mpsc::Sender<Value>,
) {
    let (tenant, task) = (first.original.tenant.clone(), first.original.id.clone());
    let mut woken = store.wakeups().subscribe((tenant.clone(), first.original.sender.clone()));
    let mut facts = first.clone();
    if opening == Opening::Sent {
        let deadline = Instant::now() + FIRST_ANSWER;
        while facts.later.is_empty() && Instant::now() < deadline {
            woken.borrow_and_update();
            let pause = deadline.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = woken.changed() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = crate::shutdown::stopped(&mut shutdown) => return,
            }
            match load(store.as_ref(), &tenant, &task).await {
                Ok(f) => facts = f,
                Err(_) => return,
            }
        }
        if let Some(m) = facts.direct_answer() {
            let msg = facts.message(m, false, dialect);
            let _ = out.send(if dialect == Dialect::V10 { json!({ "message": msg }) } else { msg }).await;
            return;
        }
    }
    let opening_task = first.task(None, true, dialect);
    let ev = if dialect == Dialect::V10 { json!({ "task": opening_task }) } else { opening_task };
    if out.send(ev).await.is_err() {
        return;
    }
    let (mut seen, mut was) = (first.later.len(), first.state());
    loop {
        for ev in facts.events_since(seen, was, dialect) {
            if out.send(ev).await.is_err() {
                return;
            }
        }
        (seen, was) = (facts.later.len(), facts.state());
        let over = match opening {
            Opening::Sent => was.settled(),
            Opening::Subscribed => was.terminal(),
        };
        if over {
            return;
        }
        woken.borrow_and_update();
        tokio::select! {
            changed = woken.changed() => if changed.is_err() { tokio::time::sleep(RECHECK).await },
            _ = tokio::time::sleep(RECHECK) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
            _ = out.closed() => return,
        }
        match load(store.as_ref(), &tenant, &task).await {
            Ok(f) => facts = f,
            Err(e) => {
                tracing::debug!(error = ?e, %task, "an A2A stream could not read its task");
                return;
            }
        }
    }
}
