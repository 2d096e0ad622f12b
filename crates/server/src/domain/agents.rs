//! Agents: their status (a domain decision: routing picks only `active` agents for anycast),
//! and the changes to the registry.

use std::sync::Arc;

use switchboard_core::api::{FieldError, RegisterAgent, UpdateAgent};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::now_ms;
use switchboard_core::{API_KEY_PREFIX, AgentId, Principal, Recipient, validate};
use switchboard_store::push::PushSettings;
use switchboard_store::{AgentKeyRecord, AgentRecord, Store};

use super::push::Pusher;
use super::routing::Routing;
use crate::cfg::Config;
use crate::error::ApiError;
use crate::token::{new_token, token_hash};

/// Changes to the agent registry: registration, card updates, deletion, heartbeats and
/// webhook secret rotation. Authorization is the caller's (the API checks who may do what);
/// each change receives the acting principal.
pub struct Agents {
    store: Arc<dyn Store>,
    routing: Arc<Routing>,
    pusher: Arc<Pusher>,
    config: Arc<Config>,
}

/// A registered agent and the secrets shown to its registrar once.
pub struct Registered {
    pub record: AgentRecord,
    pub api_key: String,
    pub webhook_secret: String,
}

/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;

/// The answer for an agent id that names no agent of the tenant.
pub fn not_registered(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "agent {id} is not registered in this tenant; list agents with `switchboard agent list`"
    ))
}

impl Agents {
    pub fn new(store: Arc<dyn Store>, routing: Arc<Routing>, pusher: Arc<Pusher>, config: Arc<Config>) -> Agents {
        Agents { store, routing, pusher, config }
    }

    /// Whether the tenant's pushes (and cards fetched for it) may reach private addresses: the
    /// node allows them, or the tenant does.
    pub async fn allow_private(&self, tenant: &str) -> Result<bool, ApiError> {
        Ok(self.config.allow_private_endpoints || self.pusher.tenant_settings(tenant).await?.allow_private_endpoints)
    }

    /// Checks a card: its fields, its endpoint (SSRF guard, unless the node or the tenant
    /// allows private endpoints) and its retry schedule.
    async fn check_card(&self, tenant: &str, req: &RegisterAgent) -> Result<(), ApiError> {
        let mut errors = validate::register_agent(req).err().unwrap_or_default();
        if errors.is_empty() {
            errors = super::schemas::check_card(req);
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        if let Some(e) = &req.endpoint {
            let allow = self.allow_private(tenant).await?;
            super::push::check_endpoint(e, allow)
                .await
                .map_err(|message| ApiError::fields(vec![FieldError { path: "endpoint".into(), message }]))?;
        }
        if req.retry_schedule_ms.as_ref().is_some_and(|s| s.len() > 50 || s.iter().any(|&ms| ms > 7 * 24 * 3_600_000)) {
            return Err(ApiError::fields(vec![FieldError {
                path: "retry_schedule_ms".into(),
                message: "use at most 50 steps of at most 7 days each".into(),
            }]));
        }
        Ok(())
    }

    /// Registers an agent from its card, with a new API key and webhook secret.
    pub async fn register(&self, by: &Principal, req: RegisterAgent) -> Result<Registered, ApiError> {
        self.check_card(by.tenant.as_str(), &req).await?;
        let detail = serde_json::json!({ "name": req.name });
        self.create(by, req, AuditAction::AgentRegister, detail, None).await
    }

    /// Registers an external A2A agent read from its Agent Card (`req`, already checked by
    /// the caller against the card): messages to it are forwarded to the interface `a2a`
    /// (the JSON of `a2a::remote::Remote`). Audited as `agent.import`, `detail` saying from where.
    pub async fn register_imported(
        &self,
        by: &Principal,
        req: RegisterAgent,
        a2a: String,
        detail: serde_json::Value,
    ) -> Result<Registered, ApiError> {
        self.check_card(by.tenant.as_str(), &req).await?;
        self.create(by, req, AuditAction::AgentImport, detail, Some(a2a)).await
    }

    async fn create(
        &self,
        by: &Principal,
        req: RegisterAgent,
        action: AuditAction,
        detail: serde_json::Value,
        a2a: Option<String>,
    ) -> Result<Registered, ApiError> {
        let now = now_ms();
        let retry_schedule_ms = req.retry_schedule_ms.clone();
        let record = AgentRecord {
            tenant: by.tenant.to_string(),
            id: switchboard_core::new_id().to_string(),
            name: req.name,
            description: req.description,
            version: req.version,
            endpoint: req.endpoint,
            capabilities: req.capabilities,
            metadata: req.metadata,
            created_at: now,
            updated_at: now,
            last_seen_at: None,
        };
        let api_key = new_token(API_KEY_PREFIX);
        let audit = NewAuditEvent::by(by, action, agent_target(&record.id), now).with_detail(detail);
        self.store.create_agent(record.clone(), token_hash(&api_key), Some(audit)).await?;
        let settings = PushSettings { secret: super::push::new_secret(), retry_schedule_ms, a2a, ..Default::default() };
        let webhook_secret = settings.secret.clone();
        self.store.put_push_settings(&record.tenant, &record.id, settings, None).await?;
        tracing::info!(agent = %record.id, name = %record.name, action = action.as_str(), "agent registered");
        Ok(Registered { record, api_key, webhook_secret })
    }

    /// Replaces agent `id`'s card; a new endpoint starts healthy.
    pub async fn update(&self, by: &Principal, id: &str, req: UpdateAgent) -> Result<AgentRecord, ApiError> {
        let tenant = by.tenant.as_str();
        self.check_card(tenant, &req).await?;
        let retry_schedule_ms = req.retry_schedule_ms.clone();
        let existing = self.store.get_agent(tenant, id).await?.ok_or_else(|| not_registered(id))?;
        let existing_endpoint = existing.endpoint.clone();
        let record = AgentRecord {
            name: req.name,
            description: req.description,
            version: req.version,
            endpoint: req.endpoint,
            capabilities: req.capabilities,
            metadata: req.metadata,
            updated_at: now_ms(),
            ..existing
        };
        let endpoint_changed = record.endpoint != existing_endpoint;
        self.routing.forget(tenant, id);
        let audit = NewAuditEvent::by(by, AuditAction::AgentUpdate, agent_target(id), record.updated_at)
            .with_detail(serde_json::json!({ "name": record.name, "endpoint_changed": endpoint_changed }));
        let updated = self.store.update_agent(record, Some(audit)).await?.ok_or_else(|| not_registered(id))?;
        let current = self.store.push_settings(tenant, &[id.to_owned()]).await?.pop().map(|(_, s)| s);
        let mut s = current.unwrap_or_else(|| PushSettings { secret: super::push::new_secret(), ..Default::default() });
        s.retry_schedule_ms = retry_schedule_ms;
        if endpoint_changed {
            // A new endpoint starts healthy: a 410 from the old one no longer applies.
            s.disabled = false;
            s.health_error = None;
        }
        self.store.put_push_settings(tenant, id, s, None).await?;
        self.pusher.poke();
        Ok(updated)
    }

    /// Deletes agent `id`: its key stops working and its open deliveries go to `dead`.
    /// With `erase`, the payloads of the agent's messages are erased first (see
    /// `RetentionStore::erase_messages`); an erasure cut short by a crash is finished by
    /// asking again, since the agent is deleted only after it.
    pub async fn remove(&self, by: &Principal, id: &str, erase: bool) -> Result<(), ApiError> {
        let tenant = by.tenant.as_str();
        let now = now_ms();
        let mut audit = NewAuditEvent::by(by, AuditAction::AgentDelete, agent_target(id), now);
        if erase {
            if self.store.get_agent(tenant, id).await?.is_none() {
                return Err(not_registered(id));
            }
            let address = switchboard_core::Recipient::agent_text(&id.into());
            let erased = self.store.erase_messages(tenant, &address, now).await?;
            audit = audit.with_detail(serde_json::json!({ "erase": true, "messages_erased": erased.messages }));
        }
        if !self.store.delete_agent(tenant, id, now, Some(audit)).await? {
            return Err(not_registered(id));
        }
        self.routing.forget(tenant, id);
        tracing::info!(agent = %id, "agent deleted");
        Ok(())
    }

    /// Marks agent `id` seen now and returns it.
    pub async fn heartbeat(&self, by: &Principal, id: &str) -> Result<AgentRecord, ApiError> {
        let tenant = by.tenant.as_str();
        self.store.touch_agents(vec![(tenant.to_owned(), id.to_owned(), now_ms())]).await?;
        self.store.get_agent(tenant, id).await?.ok_or_else(|| not_registered(id))
    }

    /// Agent `id`'s push settings (its webhook secrets among them).
    pub async fn push_settings(&self, by: &Principal, id: &str) -> Result<PushSettings, ApiError> {
        self.store
            .push_settings(by.tenant.as_str(), &[id.to_owned()])
            .await?
            .pop()
            .map(|(_, s)| s)
            .ok_or_else(|| not_registered(id))
    }

    /// Rotates agent `id`'s webhook secret; the previous one keeps signing for 24 hours.
    pub async fn rotate_secret(&self, by: &Principal, id: &str) -> Result<PushSettings, ApiError> {
        let mut s = self.push_settings(by, id).await?;
        s.previous = Some(std::mem::replace(&mut s.secret, super::push::new_secret()));
        let now = now_ms();
        s.previous_until = Some(now + ROTATION_OVERLAP_MS);
        let audit = NewAuditEvent::by(by, AuditAction::WebhookSecretRotate, agent_target(id), now);
        self.store.put_push_settings(by.tenant.as_str(), id, s.clone(), Some(audit)).await?;
        tracing::info!(agent = %id, "webhook secret rotated");
        Ok(s)
    }
}

/// The longest grace period a revoked agent key may keep working for: 7 days.
pub const MAX_KEY_GRACE_SECONDS: u64 = 7 * 24 * 3600;

/// Who may manage agent `id`'s keys: the tenant's admin, or the agent itself.
fn may_manage_keys(by: &Principal, id: &str) -> Result<(), ApiError> {
    if by.is_admin() || by.agent().is_some_and(|me| me == id) {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "an agent may manage only its own keys; use the admin token to manage another agent's keys".into(),
    ))
}

fn no_such_key(id: &str, key_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "agent {id} has no working key {key_id}; list its keys with `switchboard agent key list {id}`"
    ))
}

impl Agents {
    /// Gives agent `id` one more live key; its earlier keys keep working.
    pub async fn create_key(&self, by: &Principal, id: &str) -> Result<(AgentKeyRecord, String), ApiError> {
        may_manage_keys(by, id)?;
        let key = new_token(API_KEY_PREFIX);
        let key_id = switchboard_core::new_key_id();
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::AgentKeyCreate, agent_target(id), now)
            .with_detail(serde_json::json!({ "key_id": key_id }));
        let record = self
            .store
            .create_agent_key(by.tenant.as_str(), id, key_id, token_hash(&key), now, Some(audit))
            .await?
            .ok_or_else(|| not_registered(id))?;
        tracing::info!(agent = %id, key_id = %record.id, "agent key created");
        Ok((record, key))
    }

    /// Agent `id`'s keys that still work (live, or revoked and in their grace period).
    pub async fn list_keys(&self, by: &Principal, id: &str) -> Result<Vec<AgentKeyRecord>, ApiError> {
        may_manage_keys(by, id)?;
        let tenant = by.tenant.as_str();
        self.store.get_agent(tenant, id).await?.ok_or_else(|| not_registered(id))?;
        Ok(self.store.list_agent_keys(tenant, id, now_ms()).await?)
    }

    /// Revokes agent `id`'s key `key_id`: it stops working after `grace_seconds` (at once
    /// for 0), so that its holder can switch to a new key without a failed request.
    pub async fn revoke_key(
        &self,
        by: &Principal,
        id: &str,
        key_id: &str,
        grace_seconds: u64,
    ) -> Result<AgentKeyRecord, ApiError> {
        may_manage_keys(by, id)?;
        let grace_seconds = grace_seconds.min(MAX_KEY_GRACE_SECONDS);
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::AgentKeyRevoke, agent_target(id), now)
            .with_detail(serde_json::json!({ "key_id": key_id, "grace_seconds": grace_seconds }));
        let grace_ms = grace_seconds as i64 * 1000;
        let record = self
            .store
            .revoke_agent_key(by.tenant.as_str(), id, key_id, now, grace_ms, Some(audit))
            .await?
            .ok_or_else(|| no_such_key(id, key_id))?;
        tracing::info!(agent = %id, key_id = %key_id, grace_seconds, "agent key revoked");
        Ok(record)
    }
}

/// How the audit log names an agent it acted on: its address.
fn agent_target(id: &str) -> String {
    Recipient::Agent(AgentId::from(id)).to_string()
}
