//! The domain layer: what the hub decides, between `api/` (HTTP: extract, authorize, map
//! errors) and the store.
//!
//! - [`routing`]: an address to its recipients (direct, capability anycast or broadcast,
//!   topic), the anycast choice and the recipient cache.
//! - [`autoroute`]: `to: "auto"`: BM25 over the capabilities (or the tenant's model), the
//!   triage group below the confidence rule, and a person's re-routing.
//! - [`accept`]: the one builder of `NewMessage`, for sends, webhook replies and push events,
//!   and the commit that follows.
//! - [`delivery`]: lease, ack and nack, and the one wait loop that long-poll, WebSocket and
//!   SSE consumers share; dead-letter replay and purge; the stored-message views.
//! - [`push`]: webhook delivery, one file per mechanism.
//! - [`reply`]: request/reply, the wait of `?wait=reply` for the first reply to a message.
//! - [`agents`]: the registry's changes (register, update, delete, heartbeat, webhook
//!   secret rotation); [`presence`]: last-seen times and the agent status they give.
//! - [`schemas`]: capability schemas, checked at registration and enforced on `data` parts.
//! - [`poke`]: the push dispatcher's doorbell, so that accept need not know the pusher.
//! - [`topics`]: topic subscriptions; [`wildcards`]: the index of pattern subscriptions
//!   (`orders.*`, `orders.>`) that routing matches a publish against.
//! - [`conversations`]: conversations, their participants, histories and read markers, and
//!   which messages join a history.
//! - [`tenants`]: tenants, created and listed by the platform operator.
//! - [`audit`]: the per-tenant switch that audits sends and acks, and their entries.
//! - [`people`]: users, their sessions and personal access tokens; [`groups`]: groups of
//!   them, what `group:<name>` reaches.
//! - [`access`]: the tenants' policies and limits, kept in memory, and the checks of
//!   sends, subscriptions, streams and requests; [`limits`]: the buckets and counters.
//! - [`approvals`]: approvals (create, decide, cancel) and their clock, the ticker that
//!   escalates and expires them on time on any node.
//! - [`tasks`]: the background tasks (reaper, presence flusher).
//! - [`a2a`]: A2A tasks over messages (state derived from deliveries and replies), parts
//!   between the two models, Agent Cards.
//!
//! Rule: nothing here imports `crate::api` or `AppState`. Each function takes the narrow
//! handles it needs (`&dyn Store`, a service of this layer, the config), and every mutating
//! call receives the acting [`Principal`](switchboard_core::Principal), so that the audit
//! record of a change can later be written in the same transaction.

pub mod a2a;
pub mod accept;
pub mod access;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod autoroute;
pub mod conversations;
pub mod delivery;
pub mod groups;
pub mod limits;
pub mod notify;
pub mod oauth;
pub mod people;
pub mod poke;
pub mod presence;
pub mod push;
pub mod reply;
pub mod retention;
pub mod routing;
pub mod schemas;
pub mod tasks;
pub mod tenants;
pub mod topics;
pub mod wildcards;
