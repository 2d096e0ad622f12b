//! Consuming: leasing an agent's due messages to it, acks and nacks, and the one wait loop
//! that long-poll (`/v1/inbox`), WebSocket (`/v1/stream`) and SSE (`/v1/events`) share.
//!
//! Consumers never poll the store in a loop: a [`Consumer`] waits on the store's
//! [`Wakeups`](switchboard_store::Wakeups), which a commit triggers (the reaper covers time
//! passing: leases running out, retries coming due).

use std::future::Future;
use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_core::api::{InboxMessage, Message, MessageSignature, Part, Priority};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::principal::PrincipalKind;
use switchboard_core::time::{Millis, now_ms, rfc3339};
use switchboard_core::{Principal, Recipient};
use switchboard_store::{DeliveryFilter, LeaseRequest, Leased, MessageRecord, Store};
use tokio::sync::watch;

use super::audit::SendAudit;
use super::poke::Poke;
use crate::error::ApiError;
use crate::metrics::Metrics;

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
    let signature: Option<MessageSignature> = match m.signature {
        Some(s) => Some(
            serde_json::from_str(&s)
                .map_err(|e| ApiError::Internal(format!("stored signature of message {} does not parse: {e}", m.id)))?,
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
        priority: m.priority,
        // Stored only once the hub checked it (`domain::keys`).
        verified: signature.is_some(),
        signature,
    })
}

/// The inbox a principal consumes: its recipient text. Only agents and people have one.
pub fn inbox_of(by: &Principal) -> Result<String, ApiError> {
    match &by.kind {
        PrincipalKind::Agent(id) => Ok(Recipient::agent_text(id)),
        PrincipalKind::User { id, .. } => Ok(Recipient::user_text(id)),
        PrincipalKind::Admin | PrincipalKind::Operator => Err(ApiError::Forbidden(
            "only agents have an inbox; use the API key returned when the agent was registered".into(),
        )),
    }
}

/// Leasing, acks and nacks of one node.
#[derive(Clone)]
pub struct Deliveries {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Replayed dead letters may be due for push.
    poke: Poke,
    /// Attempts before a delivery is dead.
    max_attempts: u32,
    audit: Arc<SendAudit>,
}

impl Deliveries {
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        poke: Poke,
        max_attempts: u32,
        audit: Arc<SendAudit>,
    ) -> Deliveries {
        Deliveries { store, metrics, poke, max_attempts, audit }
    }

    /// Makes the dead deliveries `filter` selects pending again, with a fresh attempt count;
    /// returns how many.
    pub async fn replay_dead(&self, by: &Principal, filter: DeliveryFilter) -> Result<u64, ApiError> {
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::DeadLettersReplay, "dead_letters", now);
        let count = self.store.replay_dead(by.tenant.as_str(), filter, now, Some(audit)).await?;
        self.poke.poke();
        tracing::info!(count, "dead letters replayed");
        Ok(count)
    }

    /// Deletes the dead deliveries `filter` selects; returns how many.
    pub async fn purge_dead(&self, by: &Principal, filter: DeliveryFilter) -> Result<u64, ApiError> {
        let audit = NewAuditEvent::by(by, AuditAction::DeadLettersPurge, "dead_letters", now_ms());
        let count = self.store.purge_dead(by.tenant.as_str(), filter, Some(audit)).await?;
        tracing::info!(count, "dead letters purged");
        Ok(count)
    }

    /// Leases up to `limit` of `by`'s due messages to it for `lease_ms`, in accept order.
    pub async fn lease(&self, by: &Principal, limit: usize, lease_ms: u64) -> Result<Vec<Leased>, ApiError> {
        let leased = self
            .store
            .lease(LeaseRequest {
                tenant: by.tenant.to_string(),
                recipient: inbox_of(by)?,
                limit,
                now: now_ms(),
                lease_ms: lease_ms as i64,
                max_attempts: self.max_attempts,
            })
            .await?;
        if !leased.is_empty() {
            let redelivered = leased.iter().filter(|l| l.attempt > 1).count();
            self.metrics.delivery("delivered", (leased.len() - redelivered) as u64);
            self.metrics.delivery("redelivered", redelivered as u64);
        }
        Ok(leased)
    }

    /// Acknowledges `by`'s messages, recording latency; returns (acked, ignored) ids.
    /// Durable before it returns: for callers that answer with the result.
    pub async fn ack(&self, by: &Principal, ids: Vec<String>) -> Result<(Vec<String>, Vec<String>), ApiError> {
        let now = now_ms();
        let asked = ids.clone();
        let audit = self.audit.on(&by.tenant).await?.then(|| super::audit::ack_event(by, now));
        let acked = self.store.ack(by.tenant.as_str(), &inbox_of(by)?, ids, now, audit).await?;
        Ok(self.record_acks(now, asked, acked))
    }

    /// [`ack`](Self::ack) for acks that get no answer (WebSocket ack frames): it may reach
    /// the disk with the next durable commit rather than its own (see
    /// `Store::ack_unanswered`). Measured on the `latency` workload
    /// (docs/bench/IMPROVEMENTS.md).
    pub async fn ack_unanswered(&self, by: &Principal, ids: Vec<String>) -> Result<(), ApiError> {
        let now = now_ms();
        let audit = self.audit.on(&by.tenant).await?.then(|| super::audit::ack_event(by, now));
        let acked = self.store.ack_unanswered(by.tenant.as_str(), &inbox_of(by)?, ids, now, audit).await?;
        self.record_acks(now, Vec::new(), acked);
        Ok(())
    }

    /// Counts acks and their latency; returns (acked, ignored) ids of those `asked`.
    fn record_acks(
        &self,
        now: Millis,
        asked: Vec<String>,
        acked: Vec<switchboard_store::Acked>,
    ) -> (Vec<String>, Vec<String>) {
        self.metrics.delivery("acked", acked.len() as u64);
        for a in &acked {
            self.metrics.delivery_latency.observe((now - a.created_at).max(0) as f64 / 1000.0);
        }
        let acked: Vec<String> = acked.into_iter().map(|a| a.id).collect();
        let done: std::collections::HashSet<&str> = acked.iter().map(String::as_str).collect();
        let ignored = asked.into_iter().filter(|id| !done.contains(id.as_str())).collect();
        (acked, ignored)
    }

    /// Gives `by`'s messages back for redelivery after `retry_in_ms` (clamped, see
    /// [`retry_due`]); returns (given back, ignored) ids.
    pub async fn nack(
        &self,
        by: &Principal,
        ids: Vec<String>,
        retry_in_ms: u64,
    ) -> Result<(Vec<String>, Vec<String>), ApiError> {
        let now = now_ms();
        let asked = ids.clone();
        let done = self.store.nack(by.tenant.as_str(), &inbox_of(by)?, ids, retry_due(now, retry_in_ms), now).await?;
        self.metrics.delivery("nacked", done.len() as u64);
        let ignored = asked.into_iter().filter(|id| !done.contains(id)).collect();
        Ok((done, ignored))
    }

    /// A consumer of `by`'s inbox, which stops when `shutdown` turns `true`.
    pub fn consumer(&self, by: Principal, shutdown: watch::Receiver<bool>) -> Result<Consumer, ApiError> {
        let wake = self.store.wakeups().subscribe((by.tenant.to_string(), inbox_of(&by)?));
        Ok(Consumer { deliveries: self.clone(), by, wake, shutdown, must_wait: false })
    }
}

/// What [`Consumer::next`] or [`Consumer::wait`] ended with.
pub enum Next<T> {
    /// Messages leased to the consumer (never empty).
    Leased(Vec<Leased>),
    /// The consumer's own event (its deadline, its client going away, a frame arriving).
    Other(T),
    /// A commit may have made something due (from [`Consumer::wait`] only).
    Woken,
    /// The node is shutting down.
    Stopped,
}

/// The one wait loop of every pull consumer: lease what is due; when nothing is, wait for a
/// commit that may have made something due, the consumer's own event, or shutdown.
///
/// No wake-up is lost: the wake-up counter is marked seen before each look in the store, so
/// a commit landing between the look and the wait still ends the wait.
pub struct Consumer {
    deliveries: Deliveries,
    by: Principal,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    /// The last lease was not full: nothing more was due then, so wait before looking again.
    must_wait: bool,
}

impl Consumer {
    /// The next messages, at most `limit`, leased for `lease_ms`; or `until`'s output if it
    /// ends first, or [`Next::Stopped`]. Looks in the store at once unless the previous lease
    /// came back short, in which case it waits first.
    pub async fn next<F: Future>(
        &mut self,
        limit: usize,
        lease_ms: u64,
        until: F,
    ) -> Result<Next<F::Output>, ApiError> {
        let mut until = std::pin::pin!(until);
        loop {
            if self.must_wait {
                match self.wait(until.as_mut()).await {
                    Next::Woken => {}
                    other => return Ok(other),
                }
            }
            self.wake.borrow_and_update();
            let batch = self.deliveries.lease(&self.by, limit, lease_ms).await?;
            self.must_wait = batch.len() < limit;
            if !batch.is_empty() {
                return Ok(Next::Leased(batch));
            }
        }
    }

    /// Waits, without leasing, for a commit that may have made something due
    /// ([`Next::Woken`]), `until`, or shutdown.
    pub async fn wait<F: Future>(&mut self, until: F) -> Next<F::Output> {
        tokio::select! {
            _ = self.wake.changed() => {
                self.must_wait = false;
                Next::Woken
            }
            out = until => Next::Other(out),
            _ = crate::shutdown::stopped(&mut self.shutdown) => Next::Stopped,
        }
    }
}

/// The API view of a leased message.
pub fn inbox_view(l: Leased) -> Result<InboxMessage, ApiError> {
    Ok(InboxMessage {
        message: message_view(l.message)?,
        attempt: l.attempt,
        lease_expires_at: rfc3339(l.lease_expires_at),
    })
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
    priority: Priority,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a RawValue>,
    verified: bool,
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
            priority: m.priority,
            signature: m
                .signature
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| stored("signature", e))?,
            verified: m.signature.is_some(),
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

/// Longest a nack may hold a message back (24 hours), whoever asks (HTTP or WebSocket).
pub const MAX_RETRY_IN_MS: u64 = 24 * 3_600_000;

/// When a message nacked at `now` with `retry_in_ms` comes due: at most [`MAX_RETRY_IN_MS`]
/// later, so that no value parks a message for ever or wraps around into the past.
pub fn retry_due(now: Millis, retry_in_ms: u64) -> Millis {
    // The clamp fits in an i64, so the conversion cannot fail.
    now.saturating_add(Millis::try_from(retry_in_ms.min(MAX_RETRY_IN_MS)).unwrap_or(Millis::MAX))
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
            priority: Priority::High,
            signature: Some(r#"{"key_id":"pk_1","sig":"c2ln"}"#.into()),
        };
        let bare = MessageRecord {
            metadata: None,
            conversation_id: None,
            correlation_id: None,
            in_reply_to: None,
            idempotency_key: None,
            expires_at: None,
            priority: Priority::Normal,
            signature: None,
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
