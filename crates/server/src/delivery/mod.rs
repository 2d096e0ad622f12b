//! The delivery engine: leasing messages to consumers and the background tasks that keep
//! deliveries moving (lease expiry, TTL expiry, presence).
//!
//! Consumers (long-poll, WebSocket, SSE) never poll the store in a loop: they wait on the
//! store's [`Wakeups`](switchboard_store::Wakeups), which a commit triggers. The one thing a
//! commit cannot announce is time passing (a lease running out, a nack's retry coming due),
//! so the reaper asks the store once per tick which recipients have something newly due and
//! wakes those.

pub mod push;

use std::time::Duration;

use switchboard_core::api::{InboxMessage, Message, Part};
use switchboard_core::time::{Millis, now_ms, rfc3339};
use switchboard_store::{LeaseRequest, MessageRecord};

use crate::AppState;
use crate::error::ApiError;

/// The API view of a stored message.
pub fn message_view(m: MessageRecord) -> Result<Message, ApiError> {
    let parts: Vec<Part> = serde_json::from_str(&m.parts)
        .map_err(|e| ApiError::Internal(format!("stored parts of message {} do not parse: {e}", m.id)))?;
    let metadata = match m.metadata {
        Some(s) => Some(
            serde_json::from_str(&s)
                .map_err(|e| ApiError::Internal(format!("stored metadata of message {} do not parse: {e}", m.id)))?,
        ),
        None => None,
    };
    Ok(Message {
        id: m.id,
        from: m.sender,
        to: m.to,
        parts,
        conversation_id: m.conversation_id,
        correlation_id: m.correlation_id,
        in_reply_to: m.in_reply_to,
        idempotency_key: m.idempotency_key,
        metadata,
        created_at: rfc3339(m.created_at),
        expires_at: m.expires_at.map(rfc3339),
    })
}

/// Leases up to `limit` due messages to agent `agent_id` for `lease_ms`.
pub async fn lease(
    state: &AppState,
    tenant: &str,
    agent_id: &str,
    limit: usize,
    lease_ms: u64,
) -> Result<Vec<InboxMessage>, ApiError> {
    let leased = state
        .store
        .lease(LeaseRequest {
            tenant: tenant.to_owned(),
            recipient: format!("agent:{agent_id}"),
            limit,
            now: now_ms(),
            lease_ms: lease_ms as i64,
            max_attempts: state.config.max_attempts,
        })
        .await?;
    let mut out = Vec::with_capacity(leased.len());
    let mut redelivered = 0;
    for l in leased {
        if l.attempt > 1 {
            redelivered += 1;
        }
        out.push(InboxMessage {
            message: message_view(l.message)?,
            attempt: l.attempt,
            lease_expires_at: rfc3339(l.lease_expires_at),
        });
    }
    if !out.is_empty() {
        state.metrics.delivery("delivered", (out.len() - redelivered) as u64);
        state.metrics.delivery("redelivered", redelivered as u64);
    }
    Ok(out)
}

/// Acknowledges messages for an agent, recording latency; returns (acked, ignored) ids.
pub async fn ack(
    state: &AppState,
    tenant: &str,
    agent_id: &str,
    ids: Vec<String>,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let now = now_ms();
    let asked = ids.clone();
    let acked = state.store.ack(tenant, &format!("agent:{agent_id}"), ids, now).await?;
    state.metrics.delivery("acked", acked.len() as u64);
    for a in &acked {
        state.metrics.delivery_latency.observe((now - a.created_at).max(0) as f64 / 1000.0);
    }
    let acked: Vec<String> = acked.into_iter().map(|a| a.id).collect();
    let ignored = asked.into_iter().filter(|id| !acked.contains(id)).collect();
    Ok((acked, ignored))
}

/// Gives messages back for redelivery after `retry_in_ms`.
pub async fn nack(
    state: &AppState,
    tenant: &str,
    agent_id: &str,
    ids: Vec<String>,
    retry_in_ms: u64,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let now = now_ms();
    let asked = ids.clone();
    let done = state.store.nack(tenant, &format!("agent:{agent_id}"), ids, now + retry_in_ms as Millis, now).await?;
    state.metrics.delivery("nacked", done.len() as u64);
    let ignored = asked.into_iter().filter(|id| !done.contains(id)).collect();
    Ok((done, ignored))
}

/// Wakes consumers whose leases ran out or whose retries came due, and expires messages whose
/// TTL passed. Runs until shutdown.
pub async fn reaper(state: AppState) {
    let tick = Duration::from_millis(state.config.reaper_interval_ms);
    let mut shutdown = state.shutdown.clone();
    let mut last = now_ms();
    let mut last_expire = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
        let now = now_ms();
        if now - last_expire >= 1000 {
            match state.store.expire(now).await {
                Ok(n) if n > 0 => state.metrics.delivery("expired", n),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not expire messages"),
            }
            last_expire = now;
        }
        match state.store.due_recipients(last, now).await {
            Ok(keys) => {
                state.store.wakeups().wake(keys.iter());
                last = now;
            }
            Err(e) => tracing::warn!(error = %e, "could not look for expired leases"),
        }
    }
}

/// Writes agent presence once a second, and once more at shutdown.
pub async fn presence_flusher(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => state.presence.flush(state.store.as_ref()).await,
            _ = crate::stopped(&mut shutdown) => {
                state.presence.flush(state.store.as_ref()).await;
                return;
            }
        }
    }
}
