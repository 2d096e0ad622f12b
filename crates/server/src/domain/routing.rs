//! Routing: which recipients an address reaches, and whether each has a push endpoint.
//!
//! Direct (`agent:<id>`), capability anycast (the active agent with the fewest outstanding
//! deliveries, ties taken in turn) and broadcast (`?all`), and topics (every subscriber, by
//! name or by a matching wildcard pattern, once, but the sender), and groups of people (each
//! member). Recently routed direct recipients are cached to save a store read per send.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::api::AgentStatus;
use switchboard_core::time::now_ms;
use switchboard_core::{Address, AgentId, Recipient, TenantId};
use switchboard_store::{AgentFilter, AgentRecord, Store};

use super::wildcards::Patterns;
use crate::error::ApiError;

/// One recipient of a routed message: its text (`agent:<id>`) and whether it has a push
/// endpoint.
pub type Routed = (String, bool);

/// An agent as a routed recipient.
pub fn routed(a: &AgentRecord) -> Routed {
    (Recipient::Agent(a.id.clone().into()).to_string(), a.endpoint.is_some())
}

/// The members of group `name`, one delivery each (people pull; no push endpoint). An
/// unknown group, or one without members, is refused: a send nobody can read is a mistake.
pub async fn group_members(store: &dyn Store, tenant: &str, name: &str) -> Result<Vec<Routed>, ApiError> {
    let Some(group) = store.get_group(tenant, name).await? else {
        return Err(ApiError::UnknownRecipient(format!(
            "there is no group `{name}` in this tenant; create it with `switchboard group set {name} --member <user id>`"
        )));
    };
    if group.members.is_empty() {
        return Err(ApiError::UnknownRecipient(format!(
            "group `{name}` has no members, so nobody would read this; add one with `switchboard group add {name} <user id>`"
        )));
    }
    Ok(group.members.iter().map(|m| (Recipient::user_text(&m.as_str().into()), false)).collect())
}

/// Recently routed direct recipients: (tenant, agent id) → has a push endpoint. Saves a store
/// read per send (measured: the read's thread hop was the largest single cost of a send on
/// one core). Entries live a few seconds; this node forgets an agent at once when it is
/// updated or deleted, other nodes within the TTL.
#[derive(Default)]
pub struct RecipientCache {
    entries: Mutex<HashMap<(String, String), (bool, Instant)>>,
}

impl RecipientCache {
    const TTL: Duration = Duration::from_secs(5);

    /// Whether the agent has a push endpoint, if it was seen recently.
    pub fn get(&self, tenant: &str, id: &str) -> Option<bool> {
        let map = self.entries.lock().expect("recipient cache poisoned");
        map.get(&(tenant.to_owned(), id.to_owned())).filter(|(_, at)| at.elapsed() < Self::TTL).map(|(p, _)| *p)
    }

    pub fn put(&self, tenant: &str, id: &str, push: bool) {
        let mut map = self.entries.lock().expect("recipient cache poisoned");
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < Self::TTL);
        }
        map.insert((tenant.to_owned(), id.to_owned()), (push, Instant::now()));
    }

    pub fn forget(&self, tenant: &str, id: &str) {
        self.entries.lock().expect("recipient cache poisoned").remove(&(tenant.to_owned(), id.to_owned()));
    }
}

/// The router of one node: the recipient cache and the anycast turn.
pub struct Routing {
    recipients: RecipientCache,
    /// Round-robin position for anycast ties.
    rr: AtomicUsize,
    /// How recently an agent must have been seen to be `active` (anycast picks only those).
    heartbeat_window_ms: u64,
    /// The tenants' wildcard subscriptions.
    patterns: Arc<Patterns>,
}

impl Routing {
    pub fn new(heartbeat_window_ms: u64, patterns: Arc<Patterns>) -> Routing {
        Routing { recipients: RecipientCache::default(), rr: AtomicUsize::new(0), heartbeat_window_ms, patterns }
    }

    /// Forgets what is cached of an agent (it was just updated or deleted on this node).
    pub fn forget(&self, tenant: &str, id: &str) {
        self.recipients.forget(tenant, id);
    }

    /// Resolves an address to the agents that get a delivery, each with whether it has a push
    /// endpoint. `sender` is the sending agent, if one sends: topics do not echo to it.
    pub async fn route(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        sender: Option<&AgentId>,
        to: &Address,
    ) -> Result<Vec<Routed>, ApiError> {
        let tenant = tenant.as_str();
        match to {
            Address::Agent(id) => Ok(vec![(Recipient::agent_text(id), self.direct(store, tenant, id).await?)]),
            Address::Capability { name, all } => {
                Ok(self.capable(store, tenant, name, *all).await?.into_iter().map(|a| routed(&a)).collect())
            }
            Address::Topic(name) => {
                // Every subscriber but the sender (publishers do not hear themselves, as with
                // NATS `no_echo`), whether or not it is active: a subscription is durable, and
                // an absent subscriber finds the message in its inbox. No subscribers is not an
                // error: the message is stored and auditable, like a NATS publish nobody hears.
                let sender = sender.map(|id| id.as_str());
                let mut routed: Vec<Routed> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for r in store.topic_recipients(tenant, name).await? {
                    if Some(r.agent_id.as_str()) != sender {
                        seen.insert(r.agent_id.clone());
                        routed.push((Recipient::agent_text(&AgentId::from(r.agent_id)), r.push));
                    }
                }
                // Subscribers by pattern, once each: an agent subscribed by name too already
                // has its delivery; one deleted since the index last heard is passed over.
                for id in self.patterns.matching(tenant, name).await? {
                    if Some(id.as_str()) == sender || seen.contains(&id) {
                        continue;
                    }
                    let id = AgentId::from(id);
                    if let Some(push) = self.push_of(store, tenant, &id).await? {
                        routed.push((Recipient::agent_text(&id), push));
                    }
                }
                Ok(routed)
            }
            // A person reads its inbox by pulling; it has no push endpoint.
            Address::User(id) => match store.get_user(tenant, id.as_str()).await? {
                Some(_) => Ok(vec![(Recipient::user_text(id), false)]),
                None => Err(ApiError::UnknownRecipient(format!(
                    "user {id} is not in this tenant; list users with `switchboard user list`"
                ))),
            },
            Address::Group(name) => group_members(store, tenant, name).await,
            // `auto` needs the message's text: `Acceptor::prepare` routes it (domain::autoroute).
            Address::Auto => Err(ApiError::Internal("an `auto` address reached the router without its message".into())),
            Address::Conversation(_) => Err(ApiError::UnsupportedAddress(format!(
                "`{to}` addresses are not served by this version yet; address an agent (`agent:<id>`), a person (`user:<id>`), a capability (`capability:<name>`) or a topic (`topic:<name>`)"
            ))),
        }
    }

    /// The agents a `capability:<name>` address reaches, as records (for their schemas): the
    /// anycast pick, or with `all` every active one.
    pub async fn capable(
        &self,
        store: &dyn Store,
        tenant: &str,
        name: &str,
        all: bool,
    ) -> Result<Vec<AgentRecord>, ApiError> {
        let filter = AgentFilter { capability: Some(name.to_owned()), after: None, limit: 10_000 };
        let now = now_ms();
        let active: Vec<AgentRecord> = store
            .list_agents(tenant, filter)
            .await?
            .into_iter()
            .filter(|a| super::presence::status(a, self.heartbeat_window_ms, None, now) == AgentStatus::Active)
            .collect();
        if active.is_empty() {
            return Err(ApiError::UnknownRecipient(format!(
                "no active agent offers capability `{name}`; see `switchboard agent list --capability {name}`"
            )));
        }
        if all {
            return Ok(active);
        }
        // Anycast: least outstanding deliveries; ties rotate so equal agents share work.
        let names: Vec<String> = active.iter().map(|a| routed(a).0).collect();
        let counts = store.outstanding(tenant, &names).await?;
        let least = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
        let tied: Vec<&String> = counts.iter().filter(|(_, n)| *n == least).map(|(r, _)| r).collect();
        let pick = tied[self.rr.fetch_add(1, Ordering::Relaxed) % tied.len()];
        Ok(active.into_iter().filter(|a| &routed(a).0 == pick).collect())
    }

    /// Whether a registered agent has a push endpoint, from the cache or the store.
    async fn direct(&self, store: &dyn Store, tenant: &str, id: &AgentId) -> Result<bool, ApiError> {
        self.push_of(store, tenant, id).await?.ok_or_else(|| {
            ApiError::UnknownRecipient(format!(
                "agent {id} is not registered in this tenant; list agents with `switchboard agent list`"
            ))
        })
    }

    /// Whether agent `id` has a push endpoint, from the cache or the store; `None` when it is
    /// not registered.
    async fn push_of(&self, store: &dyn Store, tenant: &str, id: &AgentId) -> Result<Option<bool>, ApiError> {
        if let Some(push) = self.recipients.get(tenant, id.as_str()) {
            return Ok(Some(push));
        }
        let Some(a) = store.get_agent(tenant, id.as_str()).await? else { return Ok(None) };
        self.recipients.put(tenant, id.as_str(), a.endpoint.is_some());
        Ok(Some(a.endpoint.is_some()))
    }
}
