//! Access control on the hot path: each tenant's policy and limits, kept compiled in memory,
//! and the checks a send, a subscription, a stream or any API request passes.
//!
//! The store is read for a tenant the first time this node needs it; after that, never on a
//! request. A change made here replaces the node's copy at once; [`refresher`] polls the
//! store's versions every [`REFRESH`] and reloads what another node changed, so a change
//! reaches every node within that bound (plus the poll's own read).
//!
//! The admin token and the operator are never refused by a policy or a limit: they set them,
//! and must always be able to undo a mistake. Agents and people are held to both.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use switchboard_core::api::FieldError;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::limits::TenantLimits;
use switchboard_core::policy::{Action, Policy, PolicyDecision, PolicyRules, Subject, Verdict};
use switchboard_core::principal::Role;
use switchboard_core::time::now_ms;
use switchboard_core::{Address, AgentId, Principal, PrincipalKind, TenantId};
use switchboard_store::Store;
use tokio::sync::watch;

use super::limits::{Limiter, StreamSlot};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// How often each node looks for policy and limit changes made on other nodes: the bound
/// on how long another node keeps enforcing the old ones. Also how often stored-message
/// counts are re-read.
pub const REFRESH: Duration = Duration::from_secs(1);

/// How long an agent's capabilities and tags are used before being read again (in the
/// background: the stale ones decide meanwhile). Only policies with `tag:` or
/// `capability:` selectors read them.
const TRAITS_TTL: Duration = Duration::from_secs(5);

/// A tenant's policy and limits as this node enforces them.
#[derive(Debug, Default)]
pub struct TenantAccess {
    pub version: i64,
    pub policy: Option<Policy>,
    pub limits: TenantLimits,
}

/// What policies may select an agent by: its capabilities' names and tags.
#[derive(Debug, Default)]
struct Traits {
    capabilities: Vec<String>,
    tags: Vec<String>,
}

type TraitCache = RwLock<HashMap<(String, String), (Arc<Traits>, Instant)>>;

/// The node's access control: the tenants' policies and limits, and the limiter.
pub struct Access {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    tenants: RwLock<HashMap<String, Arc<TenantAccess>>>,
    traits: Arc<TraitCache>,
    limiter: Limiter,
}

/// Whether `by` is held to policies and limits (agents and people are; admins are not).
fn governed(by: &Principal) -> bool {
    matches!(by.kind, PrincipalKind::Agent(_) | PrincipalKind::User { .. })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

impl Access {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Access {
        Access {
            store,
            metrics,
            tenants: RwLock::new(HashMap::new()),
            traits: Arc::new(RwLock::new(HashMap::new())),
            limiter: Limiter::default(),
        }
    }

    /// The tenant's policy and limits: from memory, or read once from the store.
    pub async fn tenant(&self, tenant: &TenantId) -> Result<Arc<TenantAccess>, ApiError> {
        if let Some(t) = self.tenants.read().expect("access cache poisoned").get(tenant.as_str()) {
            return Ok(t.clone());
        }
        let loaded = Arc::new(self.load(tenant.as_str()).await?);
        let mut map = self.tenants.write().expect("access cache poisoned");
        // A refresh may have raced the read: keep the newer.
        let t = map.entry(tenant.to_string()).or_insert_with(|| loaded.clone());
        if t.version < loaded.version {
            *t = loaded;
        }
        Ok(t.clone())
    }

    async fn load(&self, tenant: &str) -> Result<TenantAccess, ApiError> {
        let r = self.store.access(tenant).await?;
        let policy = match r.policy {
            Some(text) => {
                let rules: Vec<_> = serde_json::from_str(&text).map_err(internal)?;
                Some(Policy::compile(rules).map_err(|e| internal(format!("stored policy of {tenant}: {e:?}")))?)
            }
            None => None,
        };
        let limits = match r.limits {
            Some(text) => serde_json::from_str(&text).map_err(internal)?,
            None => TenantLimits::default(),
        };
        if limits.max_messages_stored.is_some() {
            if self.limiter.stored(tenant).is_none() {
                let n = self.store.count_messages(tenant).await?;
                self.limiter.set_stored(tenant, n);
            }
        } else {
            self.limiter.forget_stored(tenant);
        }
        Ok(TenantAccess { version: r.version, policy, limits })
    }

    fn install(&self, tenant: &str, t: TenantAccess) {
        let mut map = self.tenants.write().expect("access cache poisoned");
        match map.get(tenant) {
            Some(old) if old.version > t.version => {}
            _ => {
                map.insert(tenant.to_owned(), Arc::new(t));
            }
        }
    }

    fn refused(&self, kind: &'static str) {
        self.metrics.limit_refusal(kind);
    }

    // ---- policies ----

    /// The capabilities and tags of agent `id`, from memory when recent enough.
    async fn traits(&self, tenant: &str, id: &AgentId) -> Result<Arc<Traits>, ApiError> {
        let key = (tenant.to_owned(), id.to_string());
        let cached = self.traits.read().expect("traits cache poisoned").get(&key).cloned();
        match cached {
            Some((t, at)) if at.elapsed() < TRAITS_TTL => Ok(t),
            Some((t, _)) => {
                // Stale: decide with it, and read the new ones for the next send.
                self.traits.write().expect("traits cache poisoned").insert(key.clone(), (t.clone(), Instant::now()));
                let (store, cache) = (self.store.clone(), self.traits.clone());
                tokio::spawn(async move {
                    if let Ok(fresh) = read_traits(store.as_ref(), &key.0, &key.1).await {
                        cache.write().expect("traits cache poisoned").insert(key, (Arc::new(fresh), Instant::now()));
                    }
                });
                Ok(t)
            }
            None => {
                let t = Arc::new(read_traits(self.store.as_ref(), tenant, id.as_str()).await?);
                self.traits.write().expect("traits cache poisoned").insert(key, (t.clone(), Instant::now()));
                Ok(t)
            }
        }
    }

    /// Forgets what is cached of an agent (it was updated or deleted on this node).
    pub fn forget_agent(&self, tenant: &str, id: &str) {
        self.traits.write().expect("traits cache poisoned").remove(&(tenant.to_owned(), id.to_owned()));
    }

    async fn verdict(
        &self,
        p: &Policy,
        by: &Principal,
        role: Option<Role>,
        action: Action,
        to: &Address,
    ) -> Result<Verdict, ApiError> {
        let traits = match by.agent() {
            Some(id) if p.needs_traits() => self.traits(by.tenant.as_str(), id).await?,
            _ => Arc::new(Traits::default()),
        };
        let who = Subject { principal: by, role, capabilities: &traits.capabilities, tags: &traits.tags };
        Ok(p.decide(&who, action, to))
    }

    /// Refuses `action` on `to` if the tenant's policy denies it to `by`.
    pub async fn authorize(
        &self,
        t: &TenantAccess,
        by: &Principal,
        action: Action,
        to: &Address,
    ) -> Result<(), ApiError> {
        let Some(p) = t.policy.as_ref().filter(|_| governed(by)) else { return Ok(()) };
        let v = self.verdict(p, by, by.role(), action, to).await?;
        if v.allowed {
            return Ok(());
        }
        self.metrics.policy_denial();
        let verb = match action {
            Action::Send => "send to",
            Action::Subscribe => "subscribe to",
        };
        let why = match v.rule {
            Some(i) => format!("{} denies it", p.rule_name(i)),
            None => "no rule allows it (a tenant with a policy denies what no rule allows)".to_owned(),
        };
        Err(ApiError::PolicyDenied(format!(
            "the tenant's policy does not let {} {verb} `{to}`: {why}; see `switchboard policy show`, or ask the \
             tenant's admin",
            by.sender()
        )))
    }

    /// Refuses to subscribe agent `agent_id` to `topic` if the policy denies it to that
    /// agent (whoever asks: the subscription is what lets the agent hear the topic).
    pub async fn authorize_subscribe(&self, tenant: &TenantId, agent_id: &str, topic: &str) -> Result<(), ApiError> {
        let t = self.tenant(tenant).await?;
        let agent = Principal { tenant: tenant.clone(), kind: PrincipalKind::Agent(AgentId::from(agent_id)) };
        self.authorize(&t, &agent, Action::Subscribe, &Address::Topic(topic.to_owned())).await
    }

    /// The answer of `POST /v1/policies:check`: what the policy decides for `from` (an
    /// agent or a person, or the admin, who is never denied).
    pub async fn check(
        &self,
        tenant: &TenantId,
        from: &str,
        action: Action,
        to: &Address,
    ) -> Result<PolicyDecision, ApiError> {
        let t = self.tenant(tenant).await?;
        let bad = |path: &str, message: String| ApiError::fields(vec![FieldError { path: path.into(), message }]);
        // A person's role is read from its row, as when it authenticates; for a person who
        // is not (or no longer) a user of the tenant, `role:` rules are passed over.
        let (kind, role) = match from {
            "admin" => (PrincipalKind::Admin, None),
            _ => match from.parse::<switchboard_core::Recipient>() {
                Ok(switchboard_core::Recipient::Agent(id)) => (PrincipalKind::Agent(id), None),
                Ok(switchboard_core::Recipient::User(id)) => {
                    let role = self.store.get_user(tenant.as_str(), id.as_str()).await?.map(|u| u.role);
                    (PrincipalKind::User { id, role: role.unwrap_or(Role::Viewer) }, role)
                }
                Err(e) => return Err(bad("from", format!("{e}; or `admin`"))),
            },
        };
        if action == Action::Subscribe && !matches!(to, Address::Topic(_)) {
            return Err(bad("to", "`subscribe` applies to topics: use `topic:<name>`".into()));
        }
        let by = Principal { tenant: tenant.clone(), kind };
        match t.policy.as_ref().filter(|_| governed(&by)) {
            None => Ok(PolicyDecision { allowed: true, rule: None }),
            Some(p) => {
                let v = self.verdict(p, &by, role, action, to).await?;
                Ok(PolicyDecision { allowed: v.allowed, rule: p.deciding(v) })
            }
        }
    }

    /// Replaces the tenant's policy (validated: every bad rule named by its path), audited
    /// as `policy.set`. Takes effect on this node at once.
    pub async fn set_policy(&self, by: &Principal, rules: PolicyRules) -> Result<(), ApiError> {
        let tenant = by.tenant.as_str();
        let text = match &rules.rules {
            Some(r) => {
                Policy::compile(r.clone()).map_err(ApiError::fields)?;
                Some(serde_json::to_string(r).map_err(internal)?)
            }
            None => None,
        };
        let detail = serde_json::json!({ "rules": rules.rules.as_ref().map(Vec::len) });
        let audit =
            NewAuditEvent::by(by, AuditAction::PolicySet, format!("tenant:{tenant}"), now_ms()).with_detail(detail);
        self.store.put_policy(tenant, text, Some(audit)).await?;
        self.reload(tenant).await?;
        tracing::info!(tenant = %tenant, "policy set");
        Ok(())
    }

    /// Replaces the tenant's limits (validated), audited as `limits.set`.
    pub async fn set_limits(&self, by: &Principal, limits: &TenantLimits) -> Result<(), ApiError> {
        limits.validate().map_err(ApiError::fields)?;
        let tenant = by.tenant.as_str();
        let value = serde_json::to_value(limits).map_err(internal)?;
        let audit =
            NewAuditEvent::by(by, AuditAction::LimitsSet, format!("tenant:{tenant}"), now_ms()).with_detail(value);
        self.store.put_limits(tenant, serde_json::to_string(limits).map_err(internal)?, Some(audit)).await?;
        self.reload(tenant).await?;
        tracing::info!(tenant = %tenant, "limits set");
        Ok(())
    }

    async fn reload(&self, tenant: &str) -> Result<(), ApiError> {
        let t = self.load(tenant).await?;
        self.install(tenant, t);
        Ok(())
    }

    /// Reloads every tenant whose stored version differs from the one in memory, and
    /// re-reads the stored-message counts. Run by [`refresher`].
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let versions: HashMap<String, i64> = self.store.access_versions().await?.into_iter().collect();
        let stale: Vec<String> = {
            let map = self.tenants.read().expect("access cache poisoned");
            map.iter()
                .filter(|(k, t)| versions.get(*k).copied().unwrap_or(0) != t.version)
                .map(|(k, _)| k.clone())
                .collect()
        };
        for tenant in stale {
            self.reload(&tenant).await?;
        }
        for tenant in self.limiter.stored_tenants() {
            let n = self.store.count_messages(&tenant).await?;
            self.limiter.set_stored(&tenant, n);
        }
        self.limiter.prune(Instant::now());
        Ok(())
    }

    // ---- limits ----

    fn key(by: &Principal, what: &str) -> String {
        format!("{what}\t{}\t{}", by.tenant, by.sender())
    }

    fn rate_limited(&self, kind: &'static str, what: &str, wait: super::limits::RetryAfter) -> ApiError {
        self.refused(kind);
        let secs = wait.seconds();
        ApiError::RateLimited {
            detail: format!(
                "you are over the tenant's {what} rate limit; retry in {secs} s (`Retry-After`), or ask the tenant's \
                 admin to raise it (`GET /v1/limits`)"
            ),
            retry_after: secs,
        }
    }

    /// Counts one API request of `by` against the tenant's `api_rate`.
    pub async fn api_request(&self, by: &Principal) -> Result<(), ApiError> {
        if !governed(by) {
            return Ok(());
        }
        let t = self.tenant(&by.tenant).await?;
        let Some(rate) = t.limits.api_rate else { return Ok(()) };
        self.limiter
            .take(&Self::key(by, "api"), rate, Instant::now())
            .map_err(|w| self.rate_limited("api_rate", "API request", w))
    }

    /// Counts one message sent by `by` against the tenant's `send_rate`.
    pub fn send(&self, t: &TenantAccess, by: &Principal) -> Result<(), ApiError> {
        let Some(rate) = t.limits.send_rate.filter(|_| governed(by)) else { return Ok(()) };
        self.limiter
            .take(&Self::key(by, "send"), rate, Instant::now())
            .map_err(|w| self.rate_limited("send_rate", "send", w))
    }

    /// Refuses a message that would reach more recipients than the tenant allows, or be
    /// stored over its quota.
    pub fn store_message(&self, t: &TenantAccess, by: &Principal, recipients: usize) -> Result<(), ApiError> {
        if !governed(by) {
            return Ok(());
        }
        if let Some(max) = t.limits.max_recipients
            && recipients as u64 > max
        {
            self.refused("recipients");
            return Err(ApiError::QuotaExceeded(format!(
                "this message would reach {recipients} recipients, over the tenant's limit of {max} per message \
                 (`max_recipients`); address fewer (a narrower topic or capability)"
            )));
        }
        if let Some(max) = t.limits.max_messages_stored
            && self.limiter.stored(by.tenant.as_str()).is_some_and(|n| n >= max)
        {
            self.refused("messages_stored");
            return Err(ApiError::QuotaExceeded(format!(
                "the tenant stores {max} messages, its quota (`max_messages_stored`); ask the tenant's admin to raise it"
            )));
        }
        Ok(())
    }

    /// Adds messages accepted on this node to the tenant's stored count.
    pub fn accepted(&self, tenant: &str, n: u64) {
        self.limiter.add_stored(tenant, n);
    }

    /// Opens a stream (WebSocket, SSE, long-poll) for `by` within the tenant's `max_streams`.
    pub async fn open_stream(&self, by: &Principal) -> Result<StreamSlot, ApiError> {
        let t = self.tenant(&by.tenant).await?;
        let Some(max) = t.limits.max_streams.filter(|_| governed(by)) else { return Ok(StreamSlot::unlimited()) };
        self.limiter.open_stream(&Self::key(by, "streams"), max).ok_or_else(|| {
            self.refused("streams");
            ApiError::QuotaExceeded(format!(
                "{} has {max} streams open on this node, the tenant's limit (`max_streams`); close one (WebSocket, \
                 SSE or long-poll) first",
                by.sender()
            ))
        })
    }

    /// Refuses registering an agent when the tenant has `max_agents` already. Checked before
    /// the write, so registrations racing on several nodes may pass it together.
    pub async fn register_agent(&self, by: &Principal) -> Result<(), ApiError> {
        let t = self.tenant(&by.tenant).await?;
        let Some(max) = t.limits.max_agents else { return Ok(()) };
        if self.store.count_agents(by.tenant.as_str()).await? >= max {
            self.refused("agents");
            return Err(ApiError::QuotaExceeded(format!(
                "the tenant has {max} agents, its quota (`max_agents`); delete one or raise the quota with `PUT /v1/limits`"
            )));
        }
        Ok(())
    }
}

async fn read_traits(store: &dyn Store, tenant: &str, id: &str) -> Result<Traits, ApiError> {
    let Some(a) = store.get_agent(tenant, id).await? else { return Ok(Traits::default()) };
    let tags = a.capabilities.iter().flat_map(|c| c.tags.iter().cloned()).collect();
    Ok(Traits { capabilities: a.capabilities.into_iter().map(|c| c.name).collect(), tags })
}

/// Every [`REFRESH`], picks up policy and limit changes made on other nodes and re-reads the
/// stored-message counts, until the node shuts down.
pub async fn refresher(access: Arc<Access>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = access.refresh().await {
            tracing::warn!(error = %e, "could not refresh policies and limits; trying again");
        }
    }
}
