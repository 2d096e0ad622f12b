//! What every handler shares, and the presence layer around the router.

use std::sync::Arc;

use switchboard_store::Store;
use tokio::sync::watch;

use crate::api::auth::TokenCache;
use crate::cfg::Config;
use crate::domain::accept::Acceptor;
use crate::domain::access::Access;
use crate::domain::agents::Agents;
use crate::domain::audit::SendAudit;
use crate::domain::conversations::Conversations;
use crate::domain::delivery::Deliveries;
use crate::domain::oauth::OAuth;
use crate::domain::people::sessions::Sessions;
use crate::domain::people::users::Users;
use crate::domain::presence::Presence;
use crate::domain::push::Pusher;
use crate::metrics::Metrics;

/// What every handler shares: the domain's services and the HTTP layer's own caches.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<TokenCache>,
    pub presence: Arc<Presence>,
    /// Validates, routes and commits sends (and holds the router and its cache).
    pub acceptor: Arc<Acceptor>,
    /// The tenants' policies and limits, and the checks against them.
    pub access: Arc<Access>,
    /// Changes to the agent registry.
    pub agents: Arc<Agents>,
    /// The wildcard subscriptions (pattern tries) routing matches publishes against.
    pub patterns: Arc<crate::domain::wildcards::Patterns>,
    /// Changes to users and personal access tokens.
    pub users: Arc<Users>,
    /// Changes to groups of people.
    pub groups: Arc<crate::domain::groups::Groups>,
    /// Auto-routing: settings, and re-routing out of triage.
    pub auto: Arc<crate::domain::autoroute::AutoRouter>,
    /// Conversations: participants, histories, read markers.
    pub conversations: Arc<Conversations>,
    /// Approvals: create, decide, cancel (their clock runs as a task of its own).
    pub approvals: Arc<crate::domain::approvals::Approvals>,
    /// Sign-in, sessions and sign-out.
    pub sessions: Arc<Sessions>,
    /// Leases, acks and nacks; consumers' wait loop.
    pub deliveries: Deliveries,
    /// The push engine (webhook client, circuits, tenant push settings).
    pub pusher: Arc<Pusher>,
    /// Each tenant's switch for auditing sends and acks.
    pub send_audit: Arc<SendAudit>,
    /// OAuth2: token issuance, signing keys, bearer JWTs, identity providers.
    pub oauth: Arc<OAuth>,
    /// Notification preferences and the signed links of notification e-mails.
    pub notifications: Arc<crate::domain::notify::Notifications>,
    /// A2A push notifications: configs and the notifiers of their tasks.
    pub a2a_push: Arc<crate::domain::a2a::push::A2aPush>,
    /// Changes to `true` when the node shuts down; streams close on it.
    pub shutdown: watch::Receiver<bool>,
}

/// The agent a request authenticated as, left by the [`Auth`](super::auth::Auth) extractor for
/// [`note_presence`]: the extractor runs before the handler has decided, so it cannot tell
/// whether the request will be refused.
#[derive(Clone, Default)]
pub struct Caller(Arc<std::sync::OnceLock<CallerIds>>);

/// The tenant, the agent id (none for a person) and the hash of the key or token used.
type CallerIds = (String, Option<String>, Option<String>);

impl Caller {
    /// Records the tenant and agent id the request authenticated as (no agent for a person),
    /// and the hash of the agent key or personal access token it used.
    pub fn set(&self, tenant: &str, agent: Option<&str>, key_hash: Option<String>) {
        let _ = self.0.set((tenant.to_owned(), agent.map(str::to_owned), key_hash));
    }
}

/// Marks the calling agent as seen, and its key as used, once its request has succeeded. A refused request (any
/// 4xx or 5xx) says nothing about the agent being alive and at work: an agent whose only
/// request was a 422 stays `inactive`, and anycast does not pick it.
pub async fn note_presence(
    axum::extract::State(presence): axum::extract::State<Arc<Presence>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let caller = Caller::default();
    req.extensions_mut().insert(caller.clone());
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error())
        && let Some((tenant, id, key_hash)) = caller.0.get()
    {
        if let Some(id) = id {
            presence.seen(tenant, id);
        }
        if let Some(h) = key_hash {
            presence.key_used(h, switchboard_core::time::now_ms());
        }
    }
    res
}
