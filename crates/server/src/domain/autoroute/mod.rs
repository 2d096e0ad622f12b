//! Auto-routing (`to: "auto"`): the hub picks the capability from the message's text, or
//! hands the message to people (the tenant's triage group) when it cannot tell.
//!
//! - [`bm25`]: the embedded ranker, needing no model: BM25 over the capabilities' names,
//!   descriptions, tags and examples, and the confidence rule (score and margin).
//! - [`model`]: an optional OpenAI-compatible model per tenant (chat or embeddings); on any
//!   failure BM25 decides, and the decision says why.
//!
//! The decision (method, ranked scores, chosen, reason) is stored with the message. A message
//! in triage is delivered to each member of the group; one of them (or the admin) routes it
//! with [`AutoRouter::reroute`], which closes the triage deliveries and delivers it to an agent
//! of the chosen capability, once (a second choice finds the decision changed: 409).
//!
//! Each tenant's index and settings are cached on the node and read again from the store when
//! older than [`FRESH`] (agents and settings change rarely; a send must not pay a scan of
//! every agent); a settings change on this node takes effect at once.

pub mod bm25;
pub mod model;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::api::{
    CapabilityScore, DEFAULT_MARGIN, DEFAULT_MIN_SIMILARITY, DEFAULT_MODEL_TIMEOUT_MS, DEFAULT_THRESHOLD,
    DEFAULT_TRIAGE_GROUP, MessageRouted, ModelKind, ModelView, Part, PutRoutingSettings, RouteMethod, RoutingDecision,
    RoutingSettings, check_routing_settings,
};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::now_ms;
use switchboard_core::{Principal, TenantId, address::check_name};
use switchboard_store::autoroute::{Reroute, RerouteOutcome, RoutingSettingsRecord};
use switchboard_store::{AgentFilter, AgentRecord, Store};

use self::bm25::Index;
use self::model::{EmbeddingCache, Model};
use super::poke::Poke;
use super::routing::{self, Routed, Routing};
use crate::error::ApiError;

/// How long a tenant's index and settings are used before they are read again.
pub const FRESH: Duration = Duration::from_secs(1);
/// Candidates kept in a decision.
const TOP: usize = 5;

/// A tenant's settings, defaults filled in, with the model's key.
#[derive(Clone)]
struct Settings {
    threshold: f64,
    margin: f64,
    triage_group: String,
    model: Option<Model>,
}

impl Settings {
    fn from_put(p: PutRoutingSettings, api_key: Option<String>) -> Settings {
        Settings {
            threshold: p.threshold.unwrap_or(DEFAULT_THRESHOLD),
            margin: p.margin.unwrap_or(DEFAULT_MARGIN),
            triage_group: p.triage_group.unwrap_or_else(|| DEFAULT_TRIAGE_GROUP.to_owned()),
            model: p.model.map(|m| Model {
                kind: m.kind,
                base_url: m.base_url,
                model: m.model,
                api_key,
                timeout_ms: m.timeout_ms.unwrap_or(DEFAULT_MODEL_TIMEOUT_MS),
                min_similarity: m.min_similarity.unwrap_or(DEFAULT_MIN_SIMILARITY),
            }),
        }
    }

    fn view(&self) -> RoutingSettings {
        RoutingSettings {
            threshold: self.threshold,
            margin: self.margin,
            triage_group: self.triage_group.clone(),
            model: self.model.as_ref().map(|m| ModelView {
                kind: m.kind,
                base_url: m.base_url.clone(),
                model: m.model.clone(),
                timeout_ms: m.timeout_ms,
                min_similarity: (m.kind == ModelKind::Embeddings).then_some(m.min_similarity),
                api_key_set: m.api_key.is_some(),
            }),
        }
    }
}

/// Where an `auto` message goes: its recipients, the agents among them (for the schema
/// check of the chosen capability), and the decision to store.
pub struct AutoRouted {
    pub routed: Vec<Routed>,
    pub agents: Vec<AgentRecord>,
    pub decision: RoutingDecision,
}

/// The decision stored with a message, if it was auto-routed.
pub async fn stored_decision(store: &dyn Store, tenant: &str, id: &str) -> Result<Option<RoutingDecision>, ApiError> {
    match store.message_routing(tenant, id).await? {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ApiError::Internal(format!("stored routing of message {id} does not parse: {e}"))),
        None => Ok(None),
    }
}

fn scores(ranked: &[(String, f64)]) -> Vec<CapabilityScore> {
    ranked
        .iter()
        .take(TOP)
        .map(|(c, s)| CapabilityScore { capability: c.clone(), score: (s * 1000.0).round() / 1000.0 })
        .collect()
}

/// The auto-router of one node.
pub struct AutoRouter {
    store: Arc<dyn Store>,
    routing: Arc<Routing>,
    poke: Poke,
    http: reqwest::Client,
    indexes: Mutex<HashMap<String, (Instant, Arc<Index>)>>,
    settings: Mutex<HashMap<String, (Instant, Arc<Settings>)>>,
    embeddings: EmbeddingCache,
}

impl AutoRouter {
    pub fn new(store: Arc<dyn Store>, routing: Arc<Routing>, poke: Poke) -> AutoRouter {
        AutoRouter {
            store,
            routing,
            poke,
            http: reqwest::Client::new(),
            indexes: Mutex::new(HashMap::new()),
            settings: Mutex::new(HashMap::new()),
            embeddings: EmbeddingCache::default(),
        }
    }

    async fn settings(&self, tenant: &str) -> Result<Arc<Settings>, ApiError> {
        if let Some((at, s)) = self.settings.lock().expect("routing settings poisoned").get(tenant)
            && at.elapsed() < FRESH
        {
            return Ok(s.clone());
        }
        let s = Arc::new(match self.store.routing_settings(tenant).await? {
            Some(rec) => {
                let put: PutRoutingSettings = serde_json::from_str(&rec.settings)
                    .map_err(|e| ApiError::Internal(format!("stored routing settings do not parse: {e}")))?;
                Settings::from_put(put, rec.api_key)
            }
            None => Settings::from_put(PutRoutingSettings::default(), None),
        });
        self.settings.lock().expect("routing settings poisoned").insert(tenant.to_owned(), (Instant::now(), s.clone()));
        Ok(s)
    }

    async fn index(&self, tenant: &str) -> Result<Arc<Index>, ApiError> {
        if let Some((at, i)) = self.indexes.lock().expect("routing index poisoned").get(tenant)
            && at.elapsed() < FRESH
        {
            return Ok(i.clone());
        }
        let agents =
            self.store.list_agents(tenant, AgentFilter { capability: None, after: None, limit: 100_000 }).await?;
        let index = Arc::new(Index::build(agents.iter().flat_map(|a| a.capabilities.iter())));
        self.indexes.lock().expect("routing index poisoned").insert(tenant.to_owned(), (Instant::now(), index.clone()));
        Ok(index)
    }

    /// The tenant's settings as shown (admin).
    pub async fn show_settings(&self, tenant: &TenantId) -> Result<RoutingSettings, ApiError> {
        Ok(self.settings(tenant.as_str()).await?.view())
    }

    /// Replaces the tenant's settings (admin). A model given without `api_key` keeps the
    /// stored key; no model drops it.
    pub async fn put_settings(&self, by: &Principal, mut put: PutRoutingSettings) -> Result<RoutingSettings, ApiError> {
        if !by.is_admin() {
            return Err(ApiError::Forbidden("only the tenant's admins change its routing settings".into()));
        }
        check_routing_settings(&put).map_err(ApiError::fields)?;
        let tenant = by.tenant.as_str();
        let api_key = match put.model.as_mut() {
            Some(m) => match m.api_key.take() {
                Some(k) => Some(k),
                None => self.store.routing_settings(tenant).await?.and_then(|r| r.api_key),
            },
            None => None,
        };
        let now = now_ms();
        let text = serde_json::to_string(&put).map_err(|e| ApiError::Internal(e.to_string()))?;
        let settings = Settings::from_put(put, api_key.clone());
        let audit = NewAuditEvent::by(by, AuditAction::RoutingSettingsUpdate, "routing_settings", now).with_detail(
            serde_json::json!({
                "threshold": settings.threshold,
                "margin": settings.margin,
                "triage_group": settings.triage_group,
                "model": settings.model.as_ref().map(|m| &m.model),
                "api_key_set": api_key.is_some(),
            }),
        );
        let rec = RoutingSettingsRecord { settings: text, api_key, updated_at: now };
        self.store.put_routing_settings(tenant, rec, Some(audit)).await?;
        let view = settings.view();
        self.settings
            .lock()
            .expect("routing settings poisoned")
            .insert(tenant.to_owned(), (Instant::now(), Arc::new(settings)));
        tracing::info!(
            threshold = view.threshold,
            margin = view.margin,
            model = view.model.is_some(),
            "routing settings set"
        );
        Ok(view)
    }

    /// Decides where an `auto` message goes (see the module's doc). Nothing is written.
    pub async fn route(&self, tenant: &TenantId, parts: &[Part]) -> Result<AutoRouted, ApiError> {
        let tenant = tenant.as_str();
        let settings = self.settings(tenant).await?;
        let index = self.index(tenant).await?;
        if index.docs.is_empty() {
            let reason = "no agent of this tenant offers a capability".to_owned();
            return self.triage(tenant, &settings, RouteMethod::Bm25, Vec::new(), reason).await;
        }
        let query = bm25::message_text(parts);
        let ranked = index.rank(&query);
        let (method, chosen, ranked_scores, reason) = match &settings.model {
            Some(m) => {
                let asked = match m.kind {
                    ModelKind::Chat => model::chat(&self.http, m, &index.docs, &query).await,
                    ModelKind::Embeddings => {
                        model::embeddings(&self.http, &self.embeddings, m, &index.docs, &query, settings.margin).await
                    }
                };
                match asked {
                    Ok(a) => {
                        let s = if a.scores.is_empty() { scores(&ranked) } else { scores(&a.scores) };
                        (RouteMethod::Model, a.chosen, s, a.reason)
                    }
                    Err(why) => {
                        tracing::warn!(tenant, reason = %why, "routing model failed; BM25 decides");
                        let (chosen, reason) = bm25_choice(&ranked, &settings);
                        (RouteMethod::Bm25, chosen, scores(&ranked), format!("{why}, so BM25 decided: {reason}"))
                    }
                }
            }
            None => {
                let (chosen, reason) = bm25_choice(&ranked, &settings);
                (RouteMethod::Bm25, chosen, scores(&ranked), reason)
            }
        };
        let Some(chosen) = chosen else { return self.triage(tenant, &settings, method, ranked_scores, reason).await };
        match self.routing.capable(self.store.as_ref(), tenant, &chosen, false, false).await {
            Ok(agents) => {
                let decision = RoutingDecision {
                    method,
                    scores: ranked_scores,
                    chosen: Some(chosen),
                    reason,
                    triage: None,
                    decided_by: None,
                };
                Ok(AutoRouted { routed: agents.iter().map(routing::routed).collect(), agents, decision })
            }
            Err(ApiError::UnknownRecipient(why) | ApiError::NoCapableAgent(why)) => {
                let reason = format!("{reason}, but {why}");
                self.triage(tenant, &settings, method, ranked_scores, reason).await
            }
            Err(e) => Err(e),
        }
    }

    /// The message goes to the triage group's members, or is refused when nobody is there.
    async fn triage(
        &self,
        tenant: &str,
        settings: &Settings,
        method: RouteMethod,
        scores: Vec<CapabilityScore>,
        reason: String,
    ) -> Result<AutoRouted, ApiError> {
        let group = &settings.triage_group;
        let routed = routing::group_members(self.store.as_ref(), tenant, group).await.map_err(|e| match e {
            ApiError::UnknownRecipient(why) => ApiError::NoTriage(format!(
                "the hub cannot route this message ({reason}) and has nobody to hand it to: {why}. \
                 Create the triage group (`switchboard group set {group} --member <user id>`), or address a capability"
            )),
            e => e,
        })?;
        let decision = RoutingDecision {
            method,
            scores,
            chosen: None,
            reason: format!("{reason}; sent to `group:{group}` for a person to route"),
            triage: Some(group.clone()),
            decided_by: None,
        };
        Ok(AutoRouted { routed, agents: Vec::new(), decision })
    }

    /// A person's choice for a message waiting in triage: its triage deliveries are closed,
    /// it is delivered to one agent of `capability`, and the decision records who chose.
    /// Triage recipients of the message and the tenant's admins may choose.
    pub async fn reroute(&self, by: &Principal, id: &str, capability: &str) -> Result<MessageRouted, ApiError> {
        check_name("capability", capability).map_err(|e| {
            ApiError::fields(vec![switchboard_core::api::FieldError {
                path: "capability".into(),
                message: e.to_string(),
            }])
        })?;
        let tenant = by.tenant.as_str();
        let not_found = || ApiError::NotFound(format!("message {id} does not exist, or is not visible to you"));
        let (m, deliveries) = self.store.get_message(tenant, id).await?.ok_or_else(not_found)?;
        let me = by.sender();
        let recipient = deliveries.iter().any(|d| d.recipient == me);
        if !by.is_admin() && !recipient {
            if m.sender == me {
                return Err(ApiError::Forbidden(
                    "only the people the message was sent to for triage, or an admin, may route it".into(),
                ));
            }
            return Err(not_found());
        }
        let expected = self.store.message_routing(tenant, id).await?.ok_or_else(|| {
            ApiError::Conflict(format!("message {id} was not sent to `auto`, so it has no triage to leave"))
        })?;
        let old: RoutingDecision = serde_json::from_str(&expected)
            .map_err(|e| ApiError::Internal(format!("stored routing of message {id} does not parse: {e}")))?;
        if let Some(chosen) = &old.chosen {
            return Err(ApiError::Conflict(format!(
                "message {id} was already routed to `{chosen}` ({}); see `switchboard message {id}`",
                old.decided_by.as_deref().unwrap_or("by the hub")
            )));
        }
        let agents = self.routing.capable(self.store.as_ref(), tenant, capability, false, false).await?;
        let routed: Vec<Routed> = agents.iter().map(routing::routed).collect();
        let decision = RoutingDecision {
            method: RouteMethod::Triage,
            scores: old.scores,
            chosen: Some(capability.to_owned()),
            reason: format!("chosen by {me}"),
            triage: old.triage,
            decided_by: Some(me.clone()),
        };
        let now = now_ms();
        let text = serde_json::to_string(&decision).map_err(|e| ApiError::Internal(e.to_string()))?;
        let recipients: Vec<String> = routed.iter().map(|(r, _)| r.clone()).collect();
        let audit = NewAuditEvent::by(by, AuditAction::MessageRoute, format!("message:{id}"), now)
            .with_detail(serde_json::json!({ "capability": capability, "recipients": recipients }));
        let r = Reroute {
            tenant: tenant.to_owned(),
            message_id: id.to_owned(),
            expected,
            routing: text,
            add: routed.clone(),
            now,
        };
        match self.store.reroute(r, Some(audit)).await? {
            RerouteOutcome::Rerouted { .. } => {}
            RerouteOutcome::Changed => {
                return Err(ApiError::Conflict(format!(
                    "message {id} was routed by someone else meanwhile; see `switchboard message {id}`"
                )));
            }
            RerouteOutcome::NoMessage => return Err(not_found()),
        }
        if routed.iter().any(|(_, push)| *push) {
            self.poke.poke();
        }
        tracing::info!(message = %id, capability, by = %me, "message routed out of triage");
        Ok(MessageRouted { id: id.to_owned(), recipients, routing: decision })
    }
}

/// BM25's choice under the tenant's confidence rule, and why.
fn bm25_choice(ranked: &[(String, f64)], s: &Settings) -> (Option<String>, String) {
    let top = ranked.first().cloned().unwrap_or_default();
    let second = ranked.get(1).cloned();
    if bm25::confident(ranked, s.threshold, s.margin) {
        return (Some(top.0.clone()), format!("`{}` is the clear best by BM25 ({:.2})", top.0, top.1));
    }
    let why = if top.1 <= 0.0 {
        "no capability matches the message's words".to_owned()
    } else if top.1 < s.threshold {
        format!("the best, `{}`, scores {:.2}, below the threshold {:.2}", top.0, top.1, s.threshold)
    } else {
        let (name2, score2) = second.unwrap_or_default();
        format!(
            "`{}` ({:.2}) is too close to `{name2}` ({score2:.2}): a lead of {:.0}% where {:.0}% is needed",
            top.0,
            top.1,
            (top.1 - score2) / top.1 * 100.0,
            s.margin * 100.0
        )
    };
    (None, why)
}
