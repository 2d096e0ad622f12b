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

use serde_json::value::RawValue;
use switchboard_core::api::{InboxMessage, Message, Part};
use switchboard_core::time::{Millis, now_ms, rfc3339};
use switchboard_core::{AgentId, Recipient};
use switchboard_store::{LeaseRequest, Leased, MessageRecord};

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
    agent_id: &AgentId,
    limit: usize,
    lease_ms: u64,
) -> Result<Vec<InboxMessage>, ApiError> {
    lease_records(state, tenant, agent_id, limit, lease_ms)
        .await?
        .into_iter()
        .map(|l| {
            Ok(InboxMessage {
                message: message_view(l.message)?,
                attempt: l.attempt,
                lease_expires_at: rfc3339(l.lease_expires_at),
            })
        })
        .collect()
}

/// [`lease`], as the store's records, for callers that write the stored JSON out as it is
/// (see [`message_frame`]).
pub async fn lease_records(
    state: &AppState,
    tenant: &str,
    agent_id: &AgentId,
    limit: usize,
    lease_ms: u64,
) -> Result<Vec<Leased>, ApiError> {
    let leased = state
        .store
        .lease(LeaseRequest {
            tenant: tenant.to_owned(),
            recipient: Recipient::agent_text(agent_id),
            limit,
            now: now_ms(),
            lease_ms: lease_ms as i64,
            max_attempts: state.config.max_attempts,
        })
        .await?;
    if !leased.is_empty() {
        let redelivered = leased.iter().filter(|l| l.attempt > 1).count();
        state.metrics.delivery("delivered", (leased.len() - redelivered) as u64);
        state.metrics.delivery("redelivered", redelivered as u64);
    }
    Ok(leased)
}

/// A stored message as JSON, with its parts and metadata written out as they are stored
/// instead of parsed and encoded again: the WebSocket frame and the push body. Measured on
/// the `throughput` workload (docs/bench/IMPROVEMENTS.md): the parse and re-encode of a 1 KiB
/// message was a visible share of the hub's CPU.
#[derive(serde::Serialize)]
pub struct StoredJson<'a> {
    /// `"message"` in a stream frame; absent in a push body.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    id: &'a str,
    from: &'a str,
    to: &'a str,
    parts: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_reply_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a RawValue>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    attempt: u32,
    /// Set in a stream frame; a push has no lease the receiver can see.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
}

impl<'a> StoredJson<'a> {
    /// The push body of `m` on attempt `attempt`; fails only if the stored JSON is corrupt.
    pub fn new(m: &'a MessageRecord, attempt: u32) -> Result<StoredJson<'a>, ApiError> {
        let stored = |what: &str, e: serde_json::Error| {
            ApiError::Internal(format!("stored {what} of message {} do not parse: {e}", m.id))
        };
        Ok(StoredJson {
            kind: None,
            id: &m.id,
            from: &m.sender,
            to: &m.to,
            parts: serde_json::from_str(&m.parts).map_err(|e| stored("parts", e))?,
            conversation_id: m.conversation_id.as_deref(),
            correlation_id: m.correlation_id.as_deref(),
            in_reply_to: m.in_reply_to.as_deref(),
            idempotency_key: m.idempotency_key.as_deref(),
            metadata: m.metadata.as_deref().map(serde_json::from_str).transpose().map_err(|e| stored("metadata", e))?,
            created_at: rfc3339(m.created_at),
            expires_at: m.expires_at.map(rfc3339),
            attempt,
            lease_expires_at: None,
        })
    }
}

/// The `{"type":"message", …}` stream frame of a leased message: the same JSON as
/// `StreamFrame::Message` of its [`InboxMessage`] (a unit test holds it to that).
pub fn message_frame(l: &Leased) -> Result<String, ApiError> {
    let frame = StoredJson {
        kind: Some("message"),
        lease_expires_at: Some(rfc3339(l.lease_expires_at)),
        ..StoredJson::new(&l.message, l.attempt)?
    };
    serde_json::to_string(&frame).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Acknowledges messages for an agent, recording latency; returns (acked, ignored) ids.
/// Durable before it returns: for callers that answer with the result.
pub async fn ack(
    state: &AppState,
    tenant: &str,
    agent_id: &AgentId,
    ids: Vec<String>,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let now = now_ms();
    let asked = ids.clone();
    let acked = state.store.ack(tenant, &Recipient::agent_text(agent_id), ids, now).await?;
    Ok(record_acks(state, now, asked, acked))
}

/// [`ack`] for acks that get no answer (WebSocket ack frames): it may reach the disk with the
/// next durable commit rather than its own (see `Store::ack_unanswered`). Measured on the
/// `latency` workload (docs/bench/IMPROVEMENTS.md).
pub async fn ack_unanswered(
    state: &AppState,
    tenant: &str,
    agent_id: &AgentId,
    ids: Vec<String>,
) -> Result<(), ApiError> {
    let now = now_ms();
    let acked = state.store.ack_unanswered(tenant, &Recipient::agent_text(agent_id), ids, now).await?;
    record_acks(state, now, Vec::new(), acked);
    Ok(())
}

/// Counts acks and their latency; returns (acked, ignored) ids of those `asked`.
fn record_acks(
    state: &AppState,
    now: Millis,
    asked: Vec<String>,
    acked: Vec<switchboard_store::Acked>,
) -> (Vec<String>, Vec<String>) {
    state.metrics.delivery("acked", acked.len() as u64);
    for a in &acked {
        state.metrics.delivery_latency.observe((now - a.created_at).max(0) as f64 / 1000.0);
    }
    let acked: Vec<String> = acked.into_iter().map(|a| a.id).collect();
    let done: std::collections::HashSet<&str> = acked.iter().map(String::as_str).collect();
    let ignored = asked.into_iter().filter(|id| !done.contains(id.as_str())).collect();
    (acked, ignored)
}

/// Longest a nack may hold a message back (24 hours), whoever asks (HTTP or WebSocket).
pub const MAX_RETRY_IN_MS: u64 = 24 * 3_600_000;

/// When a message nacked at `now` with `retry_in_ms` comes due: at most [`MAX_RETRY_IN_MS`]
/// later, so that no value parks a message for ever or wraps around into the past.
pub fn retry_due(now: Millis, retry_in_ms: u64) -> Millis {
    // The clamp fits in an i64, so the conversion cannot fail.
    now.saturating_add(Millis::try_from(retry_in_ms.min(MAX_RETRY_IN_MS)).unwrap_or(Millis::MAX))
}

/// Gives messages back for redelivery after `retry_in_ms` (clamped, see [`retry_due`]).
pub async fn nack(
    state: &AppState,
    tenant: &str,
    agent_id: &AgentId,
    ids: Vec<String>,
    retry_in_ms: u64,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let now = now_ms();
    let asked = ids.clone();
    let done =
        state.store.nack(tenant, &Recipient::agent_text(agent_id), ids, retry_due(now, retry_in_ms), now).await?;
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

#[cfg(test)]
mod tests {
    use switchboard_core::api::StreamFrame;

    use super::*;

    #[test]
    fn a_nack_holds_a_message_back_at_most_a_day_and_never_wraps() {
        let now = 1_700_000_000_000;
        assert_eq!(retry_due(now, 0), now);
        assert_eq!(retry_due(now, 5_000), now + 5_000);
        for huge in [MAX_RETRY_IN_MS + 1, 9_000_000_000_000_000_000, i64::MAX as u64, u64::MAX] {
            assert_eq!(retry_due(now, huge), now + MAX_RETRY_IN_MS as i64, "{huge}");
        }
    }

    /// The stream writes stored JSON straight out; a client must not be able to tell.
    #[test]
    fn message_frame_is_the_typed_frame() {
        let full = MessageRecord {
            tenant: "t".into(),
            id: "0192".into(),
            sender: "agent:a".into(),
            to: "agent:b".into(),
            parts: r#"[{"kind":"text","text":"hi \"there\""},{"kind":"data","data":{"n":[1,2.5,null]}}]"#.into(),
            metadata: Some(r#"{"trace":"x","nested":{"ok":true}}"#.into()),
            conversation_id: Some("c1".into()),
            correlation_id: Some("r1".into()),
            in_reply_to: Some("0191".into()),
            idempotency_key: Some("k".into()),
            created_at: 1_700_000_000_123,
            expires_at: Some(1_700_000_060_000),
        };
        let bare = MessageRecord {
            metadata: None,
            conversation_id: None,
            correlation_id: None,
            in_reply_to: None,
            idempotency_key: None,
            expires_at: None,
            ..full.clone()
        };
        for m in [full, bare] {
            let l = Leased { message: m.clone(), attempt: 2, lease_expires_at: 1_700_000_030_000 };
            let typed = StreamFrame::Message(InboxMessage {
                message: message_view(m).expect("valid stored message"),
                attempt: 2,
                lease_expires_at: rfc3339(1_700_000_030_000),
            });
            let raw: serde_json::Value =
                serde_json::from_str(&message_frame(&l).expect("frame")).expect("frame is JSON");
            assert_eq!(raw, serde_json::to_value(&typed).expect("typed frame"));
        }
    }
}
