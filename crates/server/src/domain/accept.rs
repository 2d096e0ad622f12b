//! Accepting messages: the one place a `NewMessage` is built, whether a client sends it, a
//! webhook answers with a reply, or the push engine reports an event; and the commit that
//! stores it with its deliveries.
//!
//! Sends and webhook replies pass the same checks (`core::validate::send_message`, the size
//! limit, routing); events are written by the hub itself to the tenant's `events_to` agent.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use switchboard_core::api::{OutputSchemaMode, Part, SendMessage};
use switchboard_core::policy::Action;
use switchboard_core::time::now_ms;
use switchboard_core::{Address, Principal, Recipient, TenantId, validate};
use switchboard_store::{AcceptOutcome, MessageRecord, NewMessage, Store};

use super::access::Access;
use super::audit::SendAudit;
use super::autoroute::AutoRouter;
use super::conversations;
use super::keys;
use super::poke::Poke;
use super::routing::{self, Routed, Routing};
use super::schemas::{self, Direction, Schemas};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// What messages from the hub itself (push events) carry in `from`.
pub const HUB_SENDER: &str = "switchboard";

/// The accept path of one node.
pub struct Acceptor {
    store: Arc<dyn Store>,
    routing: Arc<Routing>,
    access: Arc<Access>,
    metrics: Arc<Metrics>,
    poke: Poke,
    max_message_bytes: usize,
    audit: Arc<SendAudit>,
    /// Compiled capability input schemas.
    schemas: Schemas,
    /// Routes `auto` messages by their text.
    auto: Arc<AutoRouter>,
}

impl Acceptor {
    pub fn new(
        store: Arc<dyn Store>,
        routing: Arc<Routing>,
        access: Arc<Access>,
        metrics: Arc<Metrics>,
        poke: Poke,
        max_message_bytes: usize,
        audit: Arc<SendAudit>,
    ) -> Acceptor {
        let auto = Arc::new(AutoRouter::new(store.clone(), routing.clone(), poke.clone()));
        Acceptor { store, routing, access, metrics, poke, max_message_bytes, audit, schemas: Schemas::default(), auto }
    }

    /// The auto-router (for its settings and for re-routing out of triage).
    pub fn auto(&self) -> &Arc<AutoRouter> {
        &self.auto
    }

    /// The router (for callers that change what it caches).
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Validates and routes one message sent by `by`; nothing is written. Applies the
    /// string rule (`validate::send_message` walks every string), the sender's send rate,
    /// the tenant's policy (on the address as the sender wrote it) and its quotas.
    pub async fn prepare(&self, by: &Principal, m: SendMessage) -> Result<NewMessage, ApiError> {
        if !by.may_send() {
            return Err(ApiError::Forbidden(
                "your role `viewer` only reads; sending needs the role member, admin or owner".into(),
            ));
        }
        if m.kind.is_some() {
            return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
                path: "kind".into(),
                message: "an `approval_request` is sent alone, with `POST /v1/messages` (or `POST /v1/approvals`)"
                    .into(),
            }]));
        }
        let access = self.access.tenant(&by.tenant).await?;
        self.access.send(&access, by)?;
        let to = validate::send_message(&m).map_err(ApiError::fields)?;
        self.access.authorize(&access, by, Action::Send, &to).await?;
        let data = schemas::has_data(&m.parts);
        // Only a keyed send can be repeated, so only it pays for hashing the request (as
        // sent: a send to `conversation:<id>` gets its `conversation_id` filled in below).
        let hash = if m.idempotency_key.is_some() { request_hash(&m) } else { String::new() };
        let mut m = m;
        let conversation = conversations::joins(self.store.as_ref(), by, &to, &mut m.conversation_id).await?;
        // Signed and sealed messages only: the plain send skips this with one test.
        let signature =
            if keys::needs_check(&m) { keys::check_send(self.store.as_ref(), by, &to, &m).await? } else { None };
        let mut decision = None;
        let routed = if let (Address::Conversation(_), Some(c)) = (&to, &conversation) {
            self.routing.conversation(self.store.as_ref(), c, &by.sender()).await?
        } else if to == Address::Auto {
            let auto = self.auto.route(&by.tenant, &m.parts).await?;
            if let Some(capability) = &auto.decision.chosen
                && data
            {
                self.schemas.check(&auto.agents, capability, &m.parts)?;
            }
            decision = Some(serde_json::to_string(&auto.decision).map_err(|e| ApiError::Internal(e.to_string()))?);
            auto.routed
        } else if let Address::Capability { name, all } = &to {
            let require_active = m.require_active.unwrap_or(false);
            let agents =
                self.routing.capable(self.store.as_ref(), by.tenant.as_str(), name, *all, require_active).await?;
            if data {
                self.schemas.check(&agents, name, &m.parts)?;
            }
            agents.iter().map(routing::routed).collect()
        } else if data {
            self.route_checked(by, &to, &m).await?
        } else {
            self.routing.route(self.store.as_ref(), &by.tenant, by.agent(), &to).await?
        };
        self.access.store_message(&access, by, routed.len())?;
        if data && m.in_reply_to.is_some() {
            self.check_output(by, &mut m).await?;
        }
        let mut built = build(&by.tenant, by.sender(), &to, routed, m, hash)?;
        built.routing = decision;
        built.signature = signature;
        built.in_history = conversation.is_some();
        Ok(built)
    }

    /// Holds a reply with `data` parts to the `output_schema` of the capability it answers
    /// for, when that capability's `output_schema_mode` asks: the original message went to
    /// `capability:<name>` (or named it in `metadata.capability`) and the replying agent has
    /// that capability. `enforce`: 422 `schema_violation` naming every failing location.
    /// `warn`: accepted, with the failures in `metadata.schema_warnings` (`[{path, message}]`)
    /// and a warning in the log. A reply to an unknown message is not checked.
    async fn check_output(&self, by: &Principal, m: &mut SendMessage) -> Result<(), ApiError> {
        let (Some(agent_id), Some(original)) = (by.agent(), m.in_reply_to.as_deref()) else { return Ok(()) };
        let tenant = by.tenant.as_str();
        let Some((original, _)) = self.store.get_message(tenant, original).await? else { return Ok(()) };
        let capability = match original.to.parse::<Address>() {
            Ok(Address::Capability { name, .. }) => Some(name),
            _ => original
                .metadata
                .as_deref()
                .and_then(|md| serde_json::from_str::<serde_json::Value>(md).ok())
                .and_then(|md| md.get("capability").and_then(|c| c.as_str()).map(str::to_owned)),
        };
        let Some(capability) = capability else { return Ok(()) };
        let Some(agent) = self.store.get_agent(tenant, agent_id.as_str()).await? else { return Ok(()) };
        let Some(mode) = agent.capabilities.iter().find(|c| c.name == capability).and_then(|c| c.output_schema_mode)
        else {
            return Ok(());
        };
        let agents = std::slice::from_ref(&agent);
        match mode {
            OutputSchemaMode::Enforce => self.schemas.check_as(agents, &capability, &m.parts, Direction::Output),
            OutputSchemaMode::Warn => {
                let failures = self.schemas.failures(agents, &capability, &m.parts, Direction::Output);
                if failures.is_empty() {
                    return Ok(());
                }
                tracing::warn!(agent = %agent_id, capability, failures = failures.len(),
                    "a reply does not match the capability's output schema; accepted (output_schema_mode warn)");
                let warnings = serde_json::to_value(&failures).map_err(|e| ApiError::Internal(e.to_string()))?;
                // Metadata is an object (`validate::send_message`); the warnings sit beside the
                // sender's own keys.
                if let serde_json::Value::Object(md) = m.metadata.get_or_insert_with(|| serde_json::json!({})) {
                    md.insert("schema_warnings".into(), warnings);
                }
                Ok(())
            }
        }
    }

    /// Whom a message from `by` to `to` would reach now, as a send routes it (a capability:
    /// every agent with it, since any one of them may be chosen): whose keys a sender seals
    /// for. Nothing is written; the tenant's policy is not consulted (keys are public).
    pub async fn recipients(&self, by: &Principal, to: &Address) -> Result<Vec<String>, ApiError> {
        let store = self.store.as_ref();
        let routed = match to {
            Address::Auto => {
                return Err(ApiError::UnsupportedAddress(
                    "`auto` is routed by the message's text, so its recipients are not known before it is sent".into(),
                ));
            }
            Address::Conversation(_) => {
                let mut id = None;
                let Some(c) = conversations::joins(store, by, to, &mut id).await? else { return Ok(Vec::new()) };
                self.routing.conversation(store, &c, &by.sender()).await?
            }
            Address::Capability { name, .. } => {
                let agents = self.routing.capable(store, by.tenant.as_str(), name, true, false).await?;
                agents.iter().map(routing::routed).collect()
            }
            _ => self.routing.route(store, &by.tenant, by.agent(), to).await?,
        };
        Ok(routed.into_iter().map(|(r, _)| r).collect())
    }

    /// Routes a message that has `data` parts to an `agent:` address, and checks them against
    /// the agent's capability `input_schema` (see `schemas`) when `metadata.capability` names
    /// one of the agent's capabilities.
    async fn route_checked(&self, by: &Principal, to: &Address, m: &SendMessage) -> Result<Vec<Routed>, ApiError> {
        let store = self.store.as_ref();
        let routed = self.routing.route(store, &by.tenant, by.agent(), to).await?;
        let capability = m.metadata.as_ref().and_then(|md| md.get("capability")).and_then(|c| c.as_str());
        if let (Address::Agent(id), Some(capability)) = (to, capability)
            && let Some(agent) = store.get_agent(by.tenant.as_str(), id.as_str()).await?
        {
            self.schemas.check(std::slice::from_ref(&agent), capability, &m.parts)?;
        }
        Ok(routed)
    }

    /// [`prepare`](Self::prepare) with the size limit a batch applies to each of its
    /// messages (a single send's body is held to it while it is read).
    pub async fn prepare_sized(&self, by: &Principal, m: SendMessage, index: usize) -> Result<NewMessage, ApiError> {
        let size = serde_json::to_vec(&m).map(|v| v.len()).unwrap_or(0);
        if size > self.max_message_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "message {index} is {size} bytes, over the limit of {} bytes",
                self.max_message_bytes
            )));
        }
        self.prepare(by, m).await
    }

    /// Commits prepared messages, sent by `by`, in one store call: each is accepted (with one
    /// delivery per recipient), a duplicate of an earlier send, or refused for reusing its
    /// key. Pokes the push engine when a recipient has an endpoint.
    pub async fn commit(&self, by: &Principal, mut ready: Vec<NewMessage>) -> Result<Vec<AcceptOutcome>, ApiError> {
        debug_assert!(ready.iter().all(|m| m.tenant == by.tenant.as_str()));
        if self.audit.on(&by.tenant).await? {
            for m in &mut ready {
                m.audit = Some(super::audit::send_event(by, m));
            }
        }
        let pushes = ready.iter().any(|m| !m.push_recipients.is_empty());
        let outcomes = self.store.accept(ready).await?;
        if pushes {
            self.poke.poke();
        }
        let accepted = outcomes.iter().filter(|o| matches!(o, AcceptOutcome::Accepted { .. })).count();
        self.metrics.accepted.inc_by(accepted as u64);
        self.access.accepted(by.tenant.as_str(), accepted as u64);
        Ok(outcomes)
    }

    /// Stores a reply found in a webhook's 2xx answer as a message from the agent `by` to
    /// the original message's sender (or to its conversation, when the agent takes part in
    /// a stored one), in its conversation, `in_reply_to` it. The reply passes
    /// the checks of a send (`validate::send_message`, the size limit, routing): one that
    /// fails them is not stored, and the error says why. The idempotency key `reply:<id>`
    /// makes a repeated push (at-least-once) store its reply once.
    pub async fn reply(
        &self,
        by: &Principal,
        original: &MessageRecord,
        parts: Vec<Part>,
        metadata: Option<serde_json::Value>,
    ) -> Result<AcceptOutcome, ApiError> {
        // A reply to a message of a conversation the replier takes part in goes to the
        // whole conversation, in its order; otherwise to the original's sender.
        let conversation = match &original.conversation_id {
            Some(id) => self.store.get_conversation(by.tenant.as_str(), id).await?,
            None => None,
        };
        let to = match conversation {
            Some(c) if conversations::may_enter(by, &c) => Address::Conversation(c.id.into()).to_string(),
            // Only agents and people have an inbox; a message from the admin cannot be answered.
            _ if original.sender.parse::<Recipient>().is_err() => {
                return Err(ApiError::UnknownRecipient(format!(
                    "the message was sent by `{}`, which has no inbox to reply to",
                    original.sender
                )));
            }
            _ => original.sender.clone(),
        };
        let m = SendMessage {
            to,
            parts,
            conversation_id: original.conversation_id.clone(),
            correlation_id: original.correlation_id.clone(),
            in_reply_to: Some(original.id.clone()),
            idempotency_key: Some(format!("reply:{}", original.id)),
            ttl_seconds: None,
            metadata,
            ..Default::default()
        };
        let prepared = self.prepare_sized(by, m, 0).await?;
        let mut outcomes = self.commit(by, vec![prepared]).await?;
        outcomes.pop().ok_or_else(|| ApiError::Internal("the store answered no outcome".into()))
    }

    /// Checks that `by` may send to each of `to` (rate and policy), as a send would: the
    /// approvals' request is a send from its requester to its deciders.
    pub async fn authorize_sends(&self, by: &Principal, to: &[Address]) -> Result<(), ApiError> {
        if !by.may_send() {
            return Err(ApiError::Forbidden(
                "your role `viewer` only reads; asking for an approval needs the role member, admin or owner".into(),
            ));
        }
        let access = self.access.tenant(&by.tenant).await?;
        self.access.send(&access, by)?;
        for a in to {
            self.access.authorize(&access, by, Action::Send, a).await?;
        }
        Ok(())
    }

    /// The people `to` reaches (`user:`/`group:` addresses), each once: 422 naming the address
    /// that reaches nobody.
    pub async fn people(&self, tenant: &TenantId, to: &[Address]) -> Result<Vec<Routed>, ApiError> {
        let mut out: Vec<Routed> = Vec::new();
        for a in to {
            for r in self.routing.route(self.store.as_ref(), tenant, None, a).await? {
                if !out.iter().any(|(x, _)| *x == r.0) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Stores a message the hub composes on someone's behalf (an approval's request or
    /// outcome) with the id `id` and the idempotency key `key`, so that sending it again (a
    /// retry after a crash) finds the first one instead of storing a second. Answers its
    /// recipients.
    pub async fn compose(&self, tenant: &TenantId, sender: String, c: Composed) -> Result<Vec<String>, ApiError> {
        let first =
            c.to.first().cloned().ok_or_else(|| ApiError::Internal("a composed message needs an address".into()))?;
        let routed = self.people(tenant, &c.to).await?;
        let m = SendMessage {
            to: first.to_string(),
            parts: c.parts,
            in_reply_to: c.in_reply_to,
            idempotency_key: Some(c.key),
            metadata: Some(c.metadata),
            ..Default::default()
        };
        let mut built = build(tenant, sender, &first, routed, m, "composed".into())?;
        built.id = c.id;
        let pushes = !built.push_recipients.is_empty();
        let outcome = self.store.accept(vec![built]).await?.pop();
        if pushes {
            self.poke.poke();
        }
        match outcome {
            Some(AcceptOutcome::Accepted { recipients, .. } | AcceptOutcome::Duplicate { recipients, .. }) => {
                Ok(recipients)
            }
            Some(AcceptOutcome::KeyReused { id }) => {
                Err(ApiError::Internal(format!("the key of a composed message names message {id}")))
            }
            None => Err(ApiError::Internal("the store answered no outcome".into())),
        }
    }

    /// Sends a push health event to `to` (the tenant's `events_to` agent) as a CloudEvent in a
    /// `data` part, from the hub itself: a durable message like any other. Events about `to`
    /// itself are not sent to it, so a failing ops endpoint cannot feed itself.
    pub async fn event(
        &self,
        tenant: &TenantId,
        to: &Recipient,
        subject: &Recipient,
        event: &'static str,
        data: serde_json::Value,
    ) -> Result<(), ApiError> {
        if to == subject {
            return Ok(());
        }
        let to = Address::from(to.clone());
        let routed = self.routing.route(self.store.as_ref(), tenant, None, &to).await?;
        let now = now_ms();
        let id = switchboard_core::new_id().to_string();
        let cloud_event = serde_json::json!({
            "specversion": "1.0",
            "id": id,
            "source": HUB_SENDER,
            "type": format!("dev.switchboard.{event}"),
            "subject": subject.to_string(),
            "time": switchboard_core::time::rfc3339(now),
            "datacontenttype": "application/json",
            "data": data,
        });
        let m = SendMessage {
            to: to.to_string(),
            parts: vec![Part::Data { data: cloud_event }],
            metadata: Some(serde_json::json!({ "event": event })),
            ..Default::default()
        };
        let mut built = build(tenant, HUB_SENDER.to_owned(), &to, routed, m, String::new())?;
        built.id = id;
        built.created_at = now;
        let pushes = !built.push_recipients.is_empty();
        self.store.accept(vec![built]).await?;
        if pushes {
            self.poke.poke();
        }
        Ok(())
    }
}

/// A message for [`Acceptor::compose`].
pub struct Composed {
    pub id: String,
    pub key: String,
    /// People and groups, or for an outcome the requester (the first is the message's `to`).
    pub to: Vec<Address>,
    pub parts: Vec<Part>,
    pub metadata: serde_json::Value,
    pub in_reply_to: Option<String>,
}

fn request_hash(m: &SendMessage) -> String {
    let bytes = serde_json::to_vec(m).unwrap_or_default();
    crate::token::hex(&Sha256::digest(&bytes))
}

/// The one builder of a [`NewMessage`]: `m` from `sender` to `to`, delivered to `routed`.
fn build(
    tenant: &TenantId,
    sender: String,
    to: &Address,
    routed: Vec<Routed>,
    m: SendMessage,
    request_hash: String,
) -> Result<NewMessage, ApiError> {
    let push_recipients = routed.iter().filter(|(_, p)| *p).map(|(r, _)| r.clone()).collect();
    let recipients = routed.into_iter().map(|(r, _)| r).collect();
    let now = now_ms();
    let parts = serde_json::to_string(&m.parts).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(NewMessage {
        tenant: tenant.to_string(),
        id: switchboard_core::new_id().to_string(),
        sender,
        to: to.to_string(),
        recipients,
        push_recipients,
        parts,
        metadata: m.metadata.as_ref().map(|v| v.to_string()),
        request_hash,
        conversation_id: m.conversation_id,
        correlation_id: m.correlation_id,
        in_reply_to: m.in_reply_to,
        idempotency_key: m.idempotency_key,
        created_at: now,
        expires_at: m.ttl_seconds.map(|t| now + (t as i64) * 1000),
        priority: m.priority.unwrap_or_default(),
        in_history: false,
        audit: None,
        routing: None,
        signature: None,
    })
}
