//! Routing: which recipients an address reaches, and whether each has a push endpoint.
//!
//! Direct (`agent:<id>`), capability anycast (the active agent with the fewest outstanding
//! deliveries, ties taken in turn; an inactive one when none is active; moved to another when
//! its lease runs out) and broadcast (`?all`), topics (every subscriber, by name or by a
//! matching wildcard pattern, once, but the sender), groups of people (each member), and
//! conversations (every participant but the sender). Recently routed direct recipients are
//! cached to save a store read per send.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::api::AgentStatus;
use switchboard_core::time::{Millis, now_ms};
use switchboard_core::{Address, AgentId, Recipient, TenantId};
use switchboard_store::conversations::ConversationRecord;
use switchboard_store::push::PushSettings;
use switchboard_store::{AgentFilter, AgentRecord, Reassign, Store};

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
                Ok(self.capable(store, tenant, name, *all, false).await?.into_iter().map(|a| routed(&a)).collect())
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
            // Sends go through `accept`, which checks that the sender may send to it first;
            // this is the route as such (for a sender that is an agent, or none).
            Address::Conversation(id) => match store.get_conversation(tenant, id.as_str()).await? {
                Some(c) => self.conversation(store, &c, &sender.map(Recipient::agent_text).unwrap_or_default()).await,
                None => Err(ApiError::UnknownRecipient(format!(
                    "conversation {id} is not in this tenant; list yours with `switchboard conversation list`"
                ))),
            },
        }
    }

    /// The agents a `capability:<name>` address reaches, as records (for their schemas): the
    /// anycast pick, or with `all` every active one.
    ///
    /// Anycast never strands work: it picks among the active agents (`error` ones, whose push
    /// circuit is open or endpoint disabled, are not active); when none is, among the inactive
    /// ones (the message waits in that agent's queue), and only when every capable agent is in
    /// `error`, among those. Within the chosen group: fewest open deliveries, ties in turn.
    /// `require_active` refuses instead (`unknown_recipient`) when no agent is active, as
    /// `?all` does. No agent with the capability at all is `no_capable_agent`.
    pub async fn capable(
        &self,
        store: &dyn Store,
        tenant: &str,
        name: &str,
        all: bool,
        require_active: bool,
    ) -> Result<Vec<AgentRecord>, ApiError> {
        let candidates = self.candidates(store, tenant, name).await?;
        if candidates.is_empty() {
            return Err(ApiError::NoCapableAgent(format!(
                "no agent in this tenant offers capability `{name}`; register one with it, or see `switchboard agent list`"
            )));
        }
        let active = candidates.iter().any(|(_, s)| *s == AgentStatus::Active);
        if !active && (all || require_active) {
            return Err(ApiError::UnknownRecipient(format!(
                "no active agent offers capability `{name}`; see `switchboard agent list --capability {name}`"
            )));
        }
        if all {
            return Ok(candidates.into_iter().filter(|(_, s)| *s == AgentStatus::Active).map(|(a, _)| a).collect());
        }
        Ok(self.pick(store, tenant, candidates, None).await?.into_iter().collect())
    }

    /// Every agent of the tenant with capability `name`, with its status now.
    async fn candidates(
        &self,
        store: &dyn Store,
        tenant: &str,
        name: &str,
    ) -> Result<Vec<(AgentRecord, AgentStatus)>, ApiError> {
        let filter = AgentFilter { capability: Some(name.to_owned()), after: None, limit: 10_000 };
        let agents = store.list_agents(tenant, filter).await?;
        // Push health only matters for agents with an endpoint; most sends read none.
        let pushed: Vec<String> = agents.iter().filter(|a| a.endpoint.is_some()).map(|a| a.id.clone()).collect();
        let health: HashMap<String, PushSettings> = if pushed.is_empty() {
            HashMap::new()
        } else {
            store.push_settings(tenant, &pushed).await?.into_iter().collect()
        };
        let now = now_ms();
        Ok(agents
            .into_iter()
            .map(|a| {
                let s = super::presence::status(&a, self.heartbeat_window_ms, health.get(&a.id), now);
                (a, s)
            })
            .collect())
    }

    /// The anycast pick among `candidates` but `except`: the best status group (active, then
    /// inactive, then error), and in it the fewest open deliveries, ties taken in turn.
    async fn pick(
        &self,
        store: &dyn Store,
        tenant: &str,
        candidates: Vec<(AgentRecord, AgentStatus)>,
        except: Option<&str>,
    ) -> Result<Option<AgentRecord>, ApiError> {
        let candidates: Vec<_> = candidates.into_iter().filter(|(a, _)| Some(a.id.as_str()) != except).collect();
        let Some(best) = [AgentStatus::Active, AgentStatus::Inactive, AgentStatus::Error]
            .into_iter()
            .find(|s| candidates.iter().any(|(_, c)| c == s))
        else {
            return Ok(None);
        };
        let group: Vec<AgentRecord> = candidates.into_iter().filter(|(_, s)| *s == best).map(|(a, _)| a).collect();
        if group.len() == 1 {
            return Ok(group.into_iter().next());
        }
        // Least outstanding deliveries; ties rotate so equal agents share work.
        let names: Vec<String> = group.iter().map(|a| routed(a).0).collect();
        let counts = store.outstanding(tenant, &names).await?;
        let least = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
        let tied: Vec<&String> = counts.iter().filter(|(_, n)| *n == least).map(|(r, _)| r).collect();
        if tied.is_empty() {
            return Ok(group.into_iter().next());
        }
        let pick = tied[self.rr.fetch_add(1, Ordering::Relaxed) % tied.len()];
        Ok(group.into_iter().find(|a| &routed(a).0 == pick))
    }

    /// Moves the anycast deliveries whose lease ran out in `(after, upto]` (see
    /// `DeliveryStore::lapsed_anycast`) to another agent with the capability, unless the agent
    /// holding it turned `reassign_on_timeout` off for that capability or no other agent has
    /// it. Returns those moved. Every node's reaper runs this; the store moves each at most
    /// once (`DeliveryStore::reassign` re-checks the delivery in its transaction).
    pub async fn reassign_lapsed(
        &self,
        store: &dyn Store,
        after: Millis,
        upto: Millis,
    ) -> Result<Vec<Reassign>, ApiError> {
        let lapsed = store.lapsed_anycast(after, upto).await?;
        let mut moved = Vec::new();
        for l in lapsed {
            let Ok(Address::Capability { name, all: false }) = l.to.parse::<Address>() else { continue };
            let Ok(Recipient::Agent(holder)) = l.recipient.parse::<Recipient>() else { continue };
            let candidates = self.candidates(store, &l.tenant, &name).await?;
            let allowed = candidates
                .iter()
                .find(|(a, _)| a.id == holder.as_str())
                .and_then(|(a, _)| a.capabilities.iter().find(|c| c.name == name))
                .is_none_or(|c| c.reassign_on_timeout.unwrap_or(true));
            if !allowed {
                continue;
            }
            let Some(next) = self.pick(store, &l.tenant, candidates, Some(holder.as_str())).await? else { continue };
            let (to, push) = routed(&next);
            let r = Reassign { tenant: l.tenant, message_id: l.message_id, from: l.recipient, to, push, now: now_ms() };
            if store.reassign(r.clone()).await? {
                tracing::info!(tenant = %r.tenant, message = %r.message_id, from = %r.from, to = %r.to,
                    "anycast delivery moved to another agent after its lease ran out");
                moved.push(r);
            }
        }
        Ok(moved)
    }

    /// Every participant of a conversation but `sender` (the text of its `from`), whether or
    /// not it is active, like a topic's subscribers: a participant that is away finds the
    /// message in its inbox. People are never pushed to.
    pub async fn conversation(
        &self,
        store: &dyn Store,
        c: &ConversationRecord,
        sender: &str,
    ) -> Result<Vec<Routed>, ApiError> {
        let mut routed = Vec::with_capacity(c.participants.len());
        for p in c.participants.iter().filter(|p| p.address != sender) {
            match p.address.parse::<Recipient>() {
                Ok(Recipient::Agent(id)) => {
                    // An agent deleted since it was listed has left (its delete removed it).
                    if let Some(push) = self.push_of(store, &c.tenant, &id).await? {
                        routed.push((p.address.clone(), push));
                    }
                }
                Ok(Recipient::User(_)) => routed.push((p.address.clone(), false)),
                Err(_) => {
                    tracing::warn!(conversation = %c.id, participant = %p.address, "unreadable participant skipped")
                }
            }
        }
        Ok(routed)
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
