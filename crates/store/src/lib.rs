//! The `Store` interface: everything Switchboard persists, behind one async trait.
//!
//! Backends are siblings under it (`sqlite/`, `postgres/`; [`open`] picks one) and are held
//! to the same behavioural suite (`tests/suite.rs`). The store owns durability: a method that returns
//! `Ok` has committed its writes to disk (fsync'd on the embedded store). It also owns the
//! wake-up of consumers ([`Wakeups`]), because only it knows when a commit has landed.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::principal::Principal;
use switchboard_core::time::Millis;

pub mod a2a;
pub mod access;
pub mod approvals;
pub mod audit;
pub mod autoroute;
pub mod conversations;
mod error;
pub mod groups;
pub mod health;
pub mod inbox;
pub mod keys;
pub mod notify;
pub mod oauth;
pub mod postgres;
pub mod push;
mod records;
pub mod retention;
mod sql;
pub mod sqlite;
pub mod users;
mod wake;

pub use error::{Conflict, Result, StoreError};
pub use health::{WriteFailure, WriteStatus};
pub use records::{
    AcceptOutcome, Acked, AgentFilter, AgentKeyRecord, AgentRecord, DeliveryCounts, DeliveryFilter, DeliveryRecord,
    DeliveryRow, Lapsed, LeaseRequest, Leased, MessageRecord, NewMessage, Reassign, SubscriptionRecord, TenantRecord,
    TokenRecord, TopicRecipient, TopicSummary,
};
pub use wake::{WakeKey, Wakeups};

use a2a::A2aStore;
use access::AccessStore;
use approvals::ApprovalStore;
use audit::AuditStore;
use autoroute::AutoRouteStore;
use conversations::ConversationStore;
use groups::GroupStore;
use inbox::InboxStore;
use keys::KeyStore;
use notify::NotifyStore;
use oauth::OAuthStore;
use push::PushStore;
use retention::RetentionStore;
use switchboard_core::audit::NewAuditEvent;
use users::UserStore;

/// Agents: their cards, their API keys and when they were last seen. The changes take the
/// audit entry that records them (see [`audit`]: written in the same transaction, only when
/// something changed).
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Stores a new agent and the hash of its API key (its first key, given a new id).
    /// `Conflict` if the name is taken.
    async fn create_agent(&self, agent: AgentRecord, key_hash: String, audit: Option<NewAuditEvent>) -> Result<()>;
    async fn get_agent(&self, tenant: &str, id: &str) -> Result<Option<AgentRecord>>;
    async fn list_agents(&self, tenant: &str, filter: AgentFilter) -> Result<Vec<AgentRecord>>;
    /// Replaces the card fields of an agent (not id, created_at, last_seen_at).
    async fn update_agent(&self, agent: AgentRecord, audit: Option<NewAuditEvent>) -> Result<Option<AgentRecord>>;
    /// Removes the agent, its keys, its topic subscriptions, its push settings (webhook
    /// secrets) and its places in conversations; its open deliveries become `dead`.
    async fn delete_agent(&self, tenant: &str, id: &str, now: Millis, audit: Option<NewAuditEvent>) -> Result<bool>;
    /// Records that agents were seen (heartbeat or authenticated request).
    async fn touch_agents(&self, seen: Vec<(String, String, Millis)>) -> Result<()>;
    /// Adds a live key (`key_id`, the hash of the key) to agent `agent_id`; `None` if the
    /// tenant has no such agent (then nothing is written).
    async fn create_agent_key(
        &self,
        tenant: &str,
        agent_id: &str,
        key_id: String,
        key_hash: String,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<AgentKeyRecord>>;
    /// The agent's keys that still work at `now` (live, or revoked but in their grace
    /// period), oldest first.
    async fn list_agent_keys(&self, tenant: &str, agent_id: &str, now: Millis) -> Result<Vec<AgentKeyRecord>>;
    /// Revokes one of the agent's keys: it stops working at `now + grace_ms` (at once for 0;
    /// a key already in grace keeps the earlier end). `None`, writing nothing, if the agent
    /// has no such key working at `now`.
    async fn revoke_agent_key(
        &self,
        tenant: &str,
        agent_id: &str,
        key_id: &str,
        now: Millis,
        grace_ms: i64,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<AgentKeyRecord>>;
    /// Records when keys (by hash) last authenticated a request; batched by the caller.
    async fn touch_agent_keys(&self, used: Vec<(String, Millis)>) -> Result<()>;
}

/// Messages: accepting them (with one delivery per recipient) and reading them back.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Commits messages and their deliveries. Each message succeeds or fails alone; the
    /// whole call is one transaction, so `Ok` means every accepted message is on disk.
    async fn accept(&self, messages: Vec<NewMessage>) -> Result<Vec<AcceptOutcome>>;
    async fn get_message(&self, tenant: &str, id: &str) -> Result<Option<(MessageRecord, Vec<DeliveryRecord>)>>;
    /// The first message accepted `in_reply_to` message `id` from a sender other than
    /// `not_from` (the requester's own follow-ups do not answer it), if any.
    async fn first_reply(&self, tenant: &str, id: &str, not_from: &str) -> Result<Option<MessageRecord>>;
}

/// Deliveries: handing messages to their recipients under a lease, and what becomes of them.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Leases due deliveries to their recipient (see [`LeaseRequest`]).
    async fn lease(&self, req: LeaseRequest) -> Result<Vec<Leased>>;
    /// Acknowledges deliveries of `recipient`; returns those that were open. `audit`, where
    /// the tenant audits acks, is written in the same transaction with the acked ids added to
    /// its detail, only if something was acked.
    async fn ack(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>>;
    /// [`DeliveryStore::ack`] for acks nobody is answered about (WebSocket ack frames). Like a
    /// lease, it may take effect before it is on disk: losing it in a crash only delivers the
    /// message again, which at-least-once allows, and no caller was told otherwise. The next
    /// durable commit makes it durable. A backend without a cheaper path acks durably.
    async fn ack_unanswered(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Vec<Acked>> {
        self.ack(tenant, recipient, ids, now, audit).await
    }
    /// Gives deliveries back, due again at `due_at`; returns those that were open.
    async fn nack(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        due_at: Millis,
        now: Millis,
    ) -> Result<Vec<String>>;
    /// Marks undelivered messages whose TTL passed as `expired`; returns how many.
    async fn expire(&self, now: Millis) -> Result<u64>;
    /// Recipients with a delivery that became due in `(after, upto]` (lease expiry, nack
    /// retry), so the node can wake their consumers.
    async fn due_recipients(&self, after: Millis, upto: Millis) -> Result<Vec<WakeKey>>;
    /// Delivery counts for metrics.
    async fn delivery_counts(&self) -> Result<DeliveryCounts>;
    /// Open (not final) deliveries per recipient, for least-outstanding anycast.
    async fn outstanding(&self, tenant: &str, recipients: &[String]) -> Result<Vec<(String, i64)>>;
    /// Open deliveries of `capability:<name>` anycast messages (not `?all`) that time made due
    /// in `(after, upto]`: attempted at least once, and due later than they were last changed
    /// (a lease that ran out, a push retry or a nack delay), not made due by a commit. The
    /// reaper offers them to another capable agent.
    async fn lapsed_anycast(&self, after: Millis, upto: Millis) -> Result<Vec<Lapsed>>;
    /// Moves an open anycast delivery to another recipient, due at once (`pending`, attempts
    /// kept, so `max_attempts` still ends a message nobody acknowledges), and wakes the new
    /// recipient. Only if it is still the lapsed one: `from` holds it, it is due, and nothing
    /// changed it since it lapsed (no new lease, no other node's reassignment); else `false`
    /// and nothing is written.
    async fn reassign(&self, r: Reassign) -> Result<bool>;
    /// Deliveries matching the filter, in sequence order, with their sequence (the cursor).
    async fn list_deliveries(&self, tenant: &str, filter: DeliveryFilter) -> Result<Vec<(i64, DeliveryRow)>>;
    /// Dead deliveries matching the filter become pending again (attempts start over). The
    /// audit entry, with `"count"` added, is written with them when there were any.
    async fn replay_dead(
        &self,
        tenant: &str,
        filter: DeliveryFilter,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<u64>;
    /// Deletes dead deliveries matching the filter; audited like [`DeliveryStore::replay_dead`].
    async fn purge_dead(&self, tenant: &str, filter: DeliveryFilter, audit: Option<NewAuditEvent>) -> Result<u64>;
}

/// Topic subscriptions: who hears a publish.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// Subscribes a registered agent to a topic. `None` if the agent is not registered in
    /// the tenant (checked in the same transaction, so a concurrent delete leaves no orphan);
    /// otherwise the subscription and whether it was created now (`false`: it existed and is
    /// returned unchanged).
    async fn subscribe(
        &self,
        tenant: &str,
        topic: &str,
        agent_id: &str,
        now: Millis,
    ) -> Result<Option<(SubscriptionRecord, bool)>>;
    /// Ends a subscription; `false` if there was none.
    async fn unsubscribe(&self, tenant: &str, topic: &str, agent_id: &str) -> Result<bool>;
    /// A page of a topic's subscriptions in agent id order, after the `after` agent id.
    async fn topic_subscribers(
        &self,
        tenant: &str,
        topic: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>>;
    /// Every subscriber of a topic with whether it is pushed to: one indexed read, for
    /// routing a publish.
    async fn topic_recipients(&self, tenant: &str, topic: &str) -> Result<Vec<TopicRecipient>>;
    /// The tenant's topics that have subscribers, by name.
    async fn topics(&self, tenant: &str) -> Result<Vec<TopicSummary>>;
    /// Every subscription of the tenant to a wildcard pattern (a topic with a `*` or `>`),
    /// as (pattern, agent id): what the router's pattern index is built from.
    async fn pattern_subscriptions(&self, tenant: &str) -> Result<Vec<(String, String)>>;
}

/// Tenants, the platform operator's area. The only calls besides the token look-up that are
/// not scoped to one tenant: they are answered to the operator alone (the domain checks).
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant with its admin token (hash only), and the audit entry recording it,
    /// in one transaction. A taken name is `Conflict::TenantNameTaken`, and nothing is written.
    async fn create_tenant(
        &self,
        tenant: TenantRecord,
        admin_token_hash: String,
        audit: Option<NewAuditEvent>,
    ) -> Result<()>;
    /// Up to `limit` tenants with ids after `after`, in id order.
    async fn list_tenants(&self, after: Option<String>, limit: usize) -> Result<Vec<TenantRecord>>;
}

/// Everything Switchboard persists, one trait per area so that a backend implements each
/// area in a file of its own and a new area slots in beside the others. Every method takes
/// the tenant it acts in (or returns it, for token look-up): no query crosses tenants.
///
/// Callers hold an `Arc<dyn Store>` and call any area's methods on it as they are (a trait
/// object has its supertraits' methods); code that holds a concrete backend brings them into
/// scope with `use switchboard_store::prelude::*`.
#[async_trait]
pub trait Store:
    AgentStore
    + MessageStore
    + DeliveryStore
    + TopicStore
    + TenantStore
    + PushStore
    + AuditStore
    + UserStore
    + AccessStore
    + OAuthStore
    + GroupStore
    + AutoRouteStore
    + ConversationStore
    + InboxStore
    + ApprovalStore
    + NotifyStore
    + RetentionStore
    + KeyStore
    + A2aStore
    + Send
    + Sync
    + 'static
{
    /// Answers when the store can serve (for `/ready`).
    async fn ping(&self) -> Result<()>;
    /// How the latest writes went (for `/ready`: a node that answers reads but cannot commit
    /// must not look ready). Cheap: no I/O.
    fn write_status(&self) -> WriteStatus;
    /// Commits a small write whose outcome lands in [`Store::write_status`], to learn whether
    /// the store can commit now. At most one runs a second; calls in between return at once.
    async fn probe_write(&self);

    /// Creates the default tenant if the store is empty, and returns whether it did. The
    /// bootstrap token's hash is recorded, as the platform operator's (`operator`), when the
    /// tenant is created, or `always` (a token set by the operator, which must work whatever
    /// the store holds).
    async fn bootstrap(&self, admin_token_hash: String, always: bool, now: Millis) -> Result<bool>;

    /// What the token with this hash names, if anything, whether or not it still works
    /// (see [`TokenRecord::live_at`]).
    async fn token_for_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>>;

    /// Who holds the token with this hash, if anyone and if it still works now.
    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        let now = switchboard_core::time::now_ms();
        Ok(self.token_for_hash(token_hash).await?.filter(|t| t.live_at(now)).map(|t| t.principal))
    }

    /// Consumers register here to be woken when a commit makes something due for them.
    fn wakeups(&self) -> &Wakeups;

    /// Finishes queued writes and closes the database.
    async fn close(&self);
}

/// Opens the configured backend: PostgreSQL for a `postgres://` or `postgresql://` URL (a
/// database several nodes can share; `node_id` names this node in it), SQLite in `data_dir`
/// when there is no URL, or in the directory a `sqlite:<dir>` URL names.
pub async fn open(url: Option<&str>, data_dir: &Path, node_id: String) -> Result<Arc<dyn Store>> {
    match url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::PostgresStore::connect(url, node_id).await?))
        }
        Some(url) if url.starts_with("sqlite:") => {
            Ok(Arc::new(sqlite::SqliteStore::open(Path::new(url.trim_start_matches("sqlite:")))?))
        }
        Some(_) => Err(StoreError::UnsupportedUrl),
        None => Ok(Arc::new(sqlite::SqliteStore::open(data_dir)?)),
    }
}

/// The store's traits, to bring every area's methods into scope on a concrete backend.
pub mod prelude {
    pub use crate::a2a::A2aStore;
    pub use crate::access::AccessStore;
    pub use crate::approvals::ApprovalStore;
    pub use crate::audit::AuditStore;
    pub use crate::autoroute::AutoRouteStore;
    pub use crate::conversations::ConversationStore;
    pub use crate::groups::GroupStore;
    pub use crate::inbox::InboxStore;
    pub use crate::keys::KeyStore;
    pub use crate::notify::NotifyStore;
    pub use crate::oauth::OAuthStore;
    pub use crate::push::PushStore;
    pub use crate::retention::RetentionStore;
    pub use crate::users::UserStore;
    pub use crate::{AgentStore, DeliveryStore, MessageStore, Store, TenantStore, TopicStore};
}
