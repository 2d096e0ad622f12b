//! Retention: each tenant's setting, and the purge task that applies it on every node.
//!
//! The task wakes every [`TICK`], reads the tenants that set a retention, and for each runs
//! purge batches of [`BATCH`] messages (oldest first, from a cursor it keeps in memory), each
//! one short transaction. A full batch is followed by the next at once, up to
//! [`BATCHES_PER_TICK`]; a batch that reaches messages too young to touch ends the pass, and
//! the next pass starts again from the oldest (messages held by an open delivery are looked at
//! again then). On PostgreSQL the batches of several nodes exclude each other (an advisory
//! lock taken without waiting), so one node purges at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use switchboard_core::api::{FieldError, TenantRetention};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::principal::Principal;
use switchboard_core::time::{Millis, now_ms};
use switchboard_store::Store;
use switchboard_store::retention::{PurgeRequest, RetentionSettings};
use tokio::sync::watch;

use crate::error::ApiError;

/// How often the purge task looks.
pub const TICK: Duration = Duration::from_secs(1);
/// Messages one batch looks at.
pub const BATCH: usize = 500;
/// Most batches one tenant gets per tick, so one tenant's backlog does not starve the others
/// and a tick's work stays bounded (10,000 messages a second at most, per tenant).
const BATCHES_PER_TICK: usize = 20;
/// The longest retention taken: 100 years.
const MAX_SECONDS: u64 = 3_153_600_000;

/// The tenant's retention, as the API shows it.
pub async fn get(store: &dyn Store, tenant: &str) -> Result<TenantRetention, ApiError> {
    let s = store.retention(tenant).await?;
    let secs = |ms: Option<i64>| ms.map(|ms| (ms / 1000) as u64);
    Ok(TenantRetention {
        messages_max_age_seconds: secs(s.messages_max_age_ms),
        dead_letters_max_age_seconds: secs(s.dead_letters_max_age_ms),
    })
}

/// Replaces the tenant's retention (admins), audited.
pub async fn put(store: &dyn Store, by: &Principal, r: &TenantRetention) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (path, v) in [
        ("messages_max_age_seconds", r.messages_max_age_seconds),
        ("dead_letters_max_age_seconds", r.dead_letters_max_age_seconds),
    ] {
        if v.is_some_and(|s| !(1..=MAX_SECONDS).contains(&s)) {
            errors.push(FieldError {
                path: path.into(),
                message: format!(
                    "give a number of seconds from 1 to {MAX_SECONDS} (100 years), or null to keep for ever"
                ),
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let ms = |s: Option<u64>| s.map(|s| s as i64 * 1000);
    let settings = RetentionSettings {
        messages_max_age_ms: ms(r.messages_max_age_seconds),
        dead_letters_max_age_ms: ms(r.dead_letters_max_age_seconds),
    };
    let tenant = by.tenant.as_str();
    let audit = NewAuditEvent::by(by, AuditAction::RetentionSet, format!("tenant:{tenant}"), now_ms())
        .with_detail(serde_json::to_value(r).map_err(|e| ApiError::Internal(e.to_string()))?);
    store.put_retention(tenant, settings, Some(audit)).await?;
    tracing::info!(tenant, ?settings, "tenant retention changed");
    Ok(())
}

/// What the purge task counts (registered in the node's metrics).
#[derive(Clone, Default)]
pub struct PurgeMetrics {
    pub messages: Counter,
    pub deliveries: Counter,
}

/// The purge task (see the module).
pub async fn purger(store: Arc<dyn Store>, metrics: PurgeMetrics, mut shutdown: watch::Receiver<bool>) {
    let mut cursors: HashMap<String, String> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let tenants = match store.retention_tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "retention: cannot read the tenants' settings");
                continue;
            }
        };
        cursors.retain(|t, _| tenants.iter().any(|(id, _)| id == t));
        for (tenant, settings) in tenants {
            if let Err(e) = purge_tenant(store.as_ref(), &tenant, settings, &mut cursors, &metrics, &shutdown).await {
                tracing::warn!(tenant, error = %e, "retention: a purge batch failed; it runs again next tick");
            }
        }
    }
}

/// Up to [`BATCHES_PER_TICK`] batches of one tenant.
async fn purge_tenant(
    store: &dyn Store,
    tenant: &str,
    s: RetentionSettings,
    cursors: &mut HashMap<String, String>,
    metrics: &PurgeMetrics,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), switchboard_store::StoreError> {
    for _ in 0..BATCHES_PER_TICK {
        if *shutdown.borrow() {
            break;
        }
        let now = now_ms();
        let before = |age: Option<i64>| age.map(|a| now.saturating_sub(a as Millis));
        let req = PurgeRequest {
            tenant: tenant.to_owned(),
            after: cursors.get(tenant).cloned(),
            messages_before: before(s.messages_max_age_ms),
            dead_before: before(s.dead_letters_max_age_ms),
            limit: BATCH,
        };
        let out = store.purge(req, now).await?;
        metrics.messages.inc_by(out.messages as u64);
        metrics.deliveries.inc_by(out.deliveries as u64);
        if out.messages > 0 || out.deliveries > 0 {
            tracing::debug!(tenant, messages = out.messages, deliveries = out.deliveries, "retention: purged");
        }
        match out.last_id {
            Some(id) if !out.busy => {
                cursors.insert(tenant.to_owned(), id);
            }
            _ => {
                cursors.remove(tenant);
                break;
            }
        }
    }
    Ok(())
}
