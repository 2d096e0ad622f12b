//! Auditing of sends and acks, a per-tenant switch (off by default: it adds an audit entry,
//! and on PostgreSQL a lock on the tenant's chain head, to every accept and ack).
//!
//! The switch is read from the store at most once per [`REFRESH`] per tenant on each node,
//! so the hot path does not read it: a node that did not make the change follows it within
//! that time. The node that makes it follows it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::now_ms;
use switchboard_core::{Principal, TenantId};
use switchboard_store::{NewMessage, Store};

use crate::error::ApiError;

/// How long a node trusts what it last read of a tenant's switch.
pub const REFRESH: Duration = Duration::from_secs(5);

/// Each tenant's switch as last read, and when.
pub struct SendAudit {
    store: Arc<dyn Store>,
    seen: Mutex<HashMap<String, (bool, Instant)>>,
}

impl SendAudit {
    pub fn new(store: Arc<dyn Store>) -> SendAudit {
        SendAudit { store, seen: Mutex::new(HashMap::new()) }
    }

    /// Whether `tenant` audits sends and acks (read from the store when the last reading is
    /// older than [`REFRESH`]).
    pub async fn on(&self, tenant: &TenantId) -> Result<bool, ApiError> {
        if let Some((on, at)) = self.seen.lock().expect("audit switch poisoned").get(tenant.as_str())
            && at.elapsed() < REFRESH
        {
            return Ok(*on);
        }
        let on = self.store.audit_sends(tenant.as_str()).await?;
        self.remember(tenant, on);
        Ok(on)
    }

    /// Sets `by`'s tenant's switch, recording who did it.
    pub async fn set(&self, by: &Principal, on: bool) -> Result<(), ApiError> {
        let audit = NewAuditEvent::by(by, AuditAction::AuditSettingsUpdate, "audit_settings", now_ms())
            .with_detail(json!({ "sends": on }));
        self.store.set_audit_sends(by.tenant.as_str(), on, Some(audit)).await?;
        self.remember(&by.tenant, on);
        Ok(())
    }

    fn remember(&self, tenant: &TenantId, on: bool) {
        self.seen.lock().expect("audit switch poisoned").insert(tenant.as_str().to_owned(), (on, Instant::now()));
    }
}

/// The `message.send` entry of `m`, sent by `by`: ids and routing metadata, never the parts
/// or the message's own metadata.
pub fn send_event(by: &Principal, m: &NewMessage) -> NewAuditEvent {
    NewAuditEvent::by(by, AuditAction::MessageSend, format!("message:{}", m.id), m.created_at).with_detail(json!({
        "to": m.to,
        "recipients": m.recipients.len(),
        "conversation_id": m.conversation_id,
        "correlation_id": m.correlation_id,
        "in_reply_to": m.in_reply_to,
    }))
}

/// The `delivery.ack` entry of an ack by `by`; the store adds the ids it acked.
pub fn ack_event(by: &Principal, now: i64) -> NewAuditEvent {
    NewAuditEvent::by(by, AuditAction::DeliveryAck, by.sender(), now)
}
