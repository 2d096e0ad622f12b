//! Push delivery: signed webhooks (Standard Webhooks), retries with backoff and full jitter,
//! per-endpoint concurrency and circuit breaking, dead letters.
//!
//! One dispatcher task per node ([`dispatcher`]) claims due push deliveries from the store
//! (poked by sends to push agents, and once a tick for retries coming due), and runs each
//! attempt ([`attempt`]) in a task of its own. A claim holds the delivery for longer than the
//! request timeout, so no other node sends it inside the claim; if this node dies, the claim
//! runs out and another node takes it (at-least-once: the receiver sees the same
//! `webhook-id` again).
//!
//! One file per mechanism: `dispatcher` (claims, endpoint room), `attempt` (request, answer,
//! outcome, webhook replies), `signing` (HMAC and Ed25519), `endpoint` and `guard` (where a
//! push may go: SSRF), `retry` (schedule, `Retry-After`), `circuit` (per endpoint), `events`
//! (push health events).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use switchboard_core::api::{FieldError, TenantPushSettings};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::now_ms;
use switchboard_core::{Principal, Recipient};
use switchboard_store::Store;
use tokio::sync::Semaphore;

use super::accept::Acceptor;
use super::poke::Poke;
use crate::cfg::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;

mod a2a;
mod attempt;
mod circuit;
mod dispatcher;
pub(crate) mod endpoint;
mod events;
mod guard;
mod retry;
mod signing;

use circuit::Circuit;
pub use dispatcher::dispatcher;
pub use endpoint::check_endpoint;
pub use signing::{SECRET_PREFIX, new_secret, sign, sign_ed25519};

/// The node's push engine: the HTTP client, per-endpoint circuits and concurrency, and the
/// handles an attempt needs.
pub struct Pusher {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    /// Stores webhook replies and push events.
    acceptor: Arc<Acceptor>,
    /// Refuses private addresses at connect time (unless the node allows them).
    http: reqwest::Client,
    /// For tenants that allow private endpoints.
    http_private: reqwest::Client,
    circuits: Mutex<HashMap<(String, String), Circuit>>,
    slots: Arc<Semaphore>,
    poke: Poke,
    /// Tenant push settings, cached briefly: read on every attempt.
    tenants: Mutex<HashMap<String, (TenantPushSettings, Instant)>>,
    /// The hub's Ed25519 key, loaded (or created) once from the store.
    signer: tokio::sync::OnceCell<ed25519_dalek::SigningKey>,
}

const TENANT_TTL: Duration = Duration::from_secs(5);

impl Pusher {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        acceptor: Arc<Acceptor>,
        poke: Poke,
    ) -> Pusher {
        Pusher {
            http: endpoint::http_client(&config, config.allow_private_endpoints),
            http_private: endpoint::http_client(&config, true),
            circuits: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(config.push_concurrency)),
            poke,
            tenants: Mutex::new(HashMap::new()),
            signer: tokio::sync::OnceCell::new(),
            store,
            config,
            metrics,
            acceptor,
        }
    }

    /// Forgets cached tenant settings (they were just changed on this node).
    pub fn forget_tenant(&self, tenant: &str) {
        self.tenants.lock().expect("tenant cache poisoned").remove(tenant);
    }

    /// Something became due for a push agent: look now rather than at the next tick.
    pub fn poke(&self) {
        self.poke.poke();
    }

    /// A tenant's push settings (defaults when it set none).
    pub async fn tenant_settings(&self, tenant: &str) -> switchboard_store::Result<TenantPushSettings> {
        if let Some((s, at)) = self.tenants.lock().expect("tenant cache poisoned").get(tenant)
            && at.elapsed() < TENANT_TTL
        {
            return Ok(s.clone());
        }
        let settings = match self.store.tenant_push_settings(tenant).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => TenantPushSettings::default(),
        };
        self.tenants
            .lock()
            .expect("tenant cache poisoned")
            .insert(tenant.to_owned(), (settings.clone(), Instant::now()));
        Ok(settings)
    }

    /// The hub's Ed25519 signing key, the same on every node (kept in the store).
    pub async fn signing_key(&self) -> switchboard_store::Result<&ed25519_dalek::SigningKey> {
        self.signer
            .get_or_try_init(|| async {
                let mut candidate = [0u8; 32];
                rand::rng().fill(&mut candidate);
                let stored = self.store.signing_key(candidate.to_vec()).await?;
                let bytes: [u8; 32] = stored.as_slice().try_into().map_err(|_| {
                    switchboard_store::StoreError::Internal("stored signing key is not 32 bytes".into())
                })?;
                Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
            })
            .await
    }

    /// Replaces the tenant's push settings, after checking them: the retry schedule's bounds,
    /// and that `events_to` names a registered agent of the tenant.
    pub async fn put_tenant_settings(&self, by: &Principal, s: &TenantPushSettings) -> Result<(), ApiError> {
        let tenant = by.tenant.as_str();
        if s.retry_schedule_ms.as_ref().is_some_and(|v| v.len() > 50 || v.iter().any(|&ms| ms > 7 * 24 * 3_600_000)) {
            return Err(ApiError::fields(vec![FieldError {
                path: "retry_schedule_ms".into(),
                message: "use at most 50 steps of at most 7 days each".into(),
            }]));
        }
        if let Some(to) = &s.events_to {
            let known = match to.parse::<Recipient>() {
                Ok(Recipient::Agent(id)) => self.store.get_agent(tenant, id.as_str()).await?.is_some(),
                _ => false,
            };
            if !known {
                return Err(ApiError::fields(vec![FieldError {
                    path: "events_to".into(),
                    message: format!("`{to}` is not a registered agent of this tenant; use agent:<id>"),
                }]));
            }
        }
        let text = serde_json::to_string(s).map_err(|e| ApiError::Internal(e.to_string()))?;
        let audit = NewAuditEvent::by(by, AuditAction::PushSettingsUpdate, format!("tenant:{tenant}"), now_ms())
            .with_detail(serde_json::to_value(s).map_err(|e| ApiError::Internal(e.to_string()))?);
        self.store.put_tenant_push_settings(tenant, text, Some(audit)).await?;
        self.forget_tenant(tenant);
        tracing::info!(tenant = %by.tenant, "tenant push settings changed");
        Ok(())
    }
}
