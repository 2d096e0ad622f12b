//! The Switchboard node: HTTP API, streams, the delivery engine and its background tasks.
//!
//! [`Hub::start`] opens the store, makes sure the default tenant exists, binds the listener
//! and spawns the tasks it owns (the HTTP server, the reaper, the presence flusher, the approvals' ticker, the retention purge). Each task
//! watches one shutdown channel; [`Hub::shutdown`] signals it, waits for in-flight requests
//! and streams to finish, then closes the store so every queued write is committed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use switchboard_core::time::now_ms;
use switchboard_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod a2a;
pub mod api;
pub mod cfg;
pub mod domain;
pub mod error;
pub mod listener;
pub mod mcp;
pub mod metrics;
pub mod shutdown;
pub mod token;
pub mod web;

pub use cfg::{Config, ConfigError, Settings};
pub use shutdown::stopped;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] switchboard_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot write the admin token to {path}: {source}")]
    TokenFile { path: String, source: std::io::Error },
    /// The certificate or key cannot be read or used; the text names the file.
    #[error(transparent)]
    Tls(#[from] listener::tls::TlsError),
}

/// A running node.
pub struct Hub {
    /// The address the node listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// The admin token, when this start created the store and generated it.
    pub generated_admin_token: Option<String>,
    /// Whether the node serves HTTPS.
    tls: bool,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
    store: Arc<dyn Store>,
    presence: Arc<domain::presence::Presence>,
}

/// Opens the configured backend (the store crate chooses it from the URL).
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    Ok(switchboard_store::open(config.database_url.as_deref(), &config.data_dir, node_id()).await?)
}

/// Names this node in the shared store (`deliveries.leased_by`) so operators can tell which
/// node holds a lease: host and process, plus a random suffix because containers often run
/// every node as pid 1 and a restarted node is not the one whose leases are still out.
fn node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "switchboard".to_owned());
    let random = switchboard_core::new_id().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[random.len() - 8..])
}

#[cfg(unix)]
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Creates the default tenant on an empty store. A generated token is written to
/// `admin.token.new` first and renamed once the store has committed it, so a crash in between
/// leaves a usable token behind rather than a store nobody can administer.
async fn bootstrap(store: &dyn Store, config: &Config) -> Result<Option<String>, StartError> {
    let now = now_ms();
    if let Some(t) = &config.admin_token {
        store.bootstrap(token::token_hash(t), true, now).await?;
        return Ok(None);
    }
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| StartError::TokenFile { path: dir.display().to_string(), source: e })?;
    let file = dir.join("admin.token");
    let pending = dir.join("admin.token.new");
    if pending.exists() && !file.exists() {
        let _ = std::fs::rename(&pending, &file);
    }
    let token = token::new_token(switchboard_core::ADMIN_TOKEN_PREFIX);
    let err = |source| StartError::TokenFile { path: file.display().to_string(), source };
    write_secret(&pending, &format!("{token}\n")).map_err(err)?;
    let created = store.bootstrap(token::token_hash(&token), false, now).await;
    match created {
        Ok(true) => {
            std::fs::rename(&pending, &file).map_err(err)?;
            Ok(Some(token))
        }
        Ok(false) => {
            let _ = std::fs::remove_file(&pending);
            Ok(None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&pending);
            Err(e.into())
        }
    }
}

/// Applies pending schema migrations to the configured store and returns, without serving
/// (`switchboard migrate`): lets an operator migrate once before rolling out new nodes.
pub async fn migrate(config: &Config) -> Result<(), StartError> {
    let store = open_store(config).await?;
    store.ping().await?;
    store.close().await;
    Ok(())
}

impl Hub {
    /// Opens the store, binds the listener and starts serving.
    pub async fn start(config: Config) -> Result<Hub, StartError> {
        // A certificate that cannot be used stops the start before anything is opened.
        let tls = match config.tls_files()? {
            Some((cert, key)) => Some(listener::tls::acceptor(cert, key)?),
            None => None,
        };
        let store = open_store(&config).await?;
        let generated_admin_token = bootstrap(store.as_ref(), &config).await?;
        let limits = listener::Limits::new(&config, listener::raise_open_file_limit());
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| StartError::Listen { addr: config.listen.clone(), source: e })?;
        let addr = listener.local_addr().map_err(|e| StartError::Listen { addr: config.listen.clone(), source: e })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let config = Arc::new(config);
        let metrics = Arc::new(metrics::Metrics::new());
        let poke = domain::poke::Poke::default();
        let patterns = Arc::new(domain::wildcards::Patterns::new(store.clone()));
        let routing = Arc::new(domain::routing::Routing::new(config.heartbeat_window_ms, patterns.clone()));
        let send_audit = Arc::new(domain::audit::SendAudit::new(store.clone()));
        let access = Arc::new(domain::access::Access::new(store.clone(), metrics.clone()));
        let acceptor = Arc::new(domain::accept::Acceptor::new(
            store.clone(),
            routing.clone(),
            access.clone(),
            metrics.clone(),
            poke.clone(),
            config.max_message_bytes,
            send_audit.clone(),
        ));
        let auto = acceptor.auto().clone();
        let pusher = Arc::new(domain::push::Pusher::new(
            store.clone(),
            config.clone(),
            metrics.clone(),
            acceptor.clone(),
            poke.clone(),
        ));
        let presence = Arc::new(domain::presence::Presence::default());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = config.public_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
        if config.public_url.is_none() && addr.ip().is_unspecified() {
            tracing::warn!(
                %issuer,
                "public_url is not set and the node listens on every address: its OAuth2 tokens name this as their \
                 issuer; set public_url (SWITCHBOARD_PUBLIC_URL) to the URL clients reach the hub at"
            );
        }
        let oauth = Arc::new(domain::oauth::OAuth::open(store.clone(), issuer.clone(), &config).await?);
        let approvals = Arc::new(domain::approvals::Approvals::new(store.clone(), acceptor.clone()));
        let notifications = Arc::new(domain::notify::Notifications::open(store.clone()).await?);
        // No SMTP server configured: no e-mail, and no error.
        let notifier = match &config.smtp {
            None => None,
            Some(smtp) => {
                let helo = domain::notify::mail::host_of(&issuer);
                Some(domain::notify::Notifier {
                    store: store.clone(),
                    notifications: notifications.clone(),
                    mailer: domain::notify::mail::Mailer::new(smtp, &helo)?,
                    base_url: issuer.clone(),
                    node: node_id(),
                    interval_ms: config.notify_interval_ms,
                })
            }
        };
        let a2a_push =
            Arc::new(domain::a2a::push::A2aPush::new(store.clone(), pusher.clone(), &config, shutdown_rx.clone()));
        tokio::spawn(a2a_push.clone().resume());
        let state = api::AppState {
            store: store.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
            tokens: Arc::new(api::auth::TokenCache::default()),
            presence: presence.clone(),
            acceptor,
            access: access.clone(),
            agents: Arc::new(domain::agents::Agents::new(
                store.clone(),
                routing.clone(),
                pusher.clone(),
                config.clone(),
            )),
            patterns: patterns.clone(),
            users: Arc::new(domain::people::users::Users::new(store.clone())),
            groups: Arc::new(domain::groups::Groups::new(store.clone())),
            auto,
            conversations: Arc::new(domain::conversations::Conversations::new(store.clone())),
            approvals: approvals.clone(),
            sessions: Arc::new(domain::people::sessions::Sessions::new(store.clone())),
            deliveries: domain::delivery::Deliveries::new(
                store.clone(),
                metrics.clone(),
                poke.clone(),
                config.max_attempts,
                send_audit.clone(),
            ),
            send_audit,
            pusher: pusher.clone(),
            oauth,
            notifications,
            a2a_push,
            shutdown: shutdown_rx.clone(),
        };
        let mut tasks = vec![
            tokio::spawn(domain::tasks::reaper(
                store.clone(),
                metrics.clone(),
                domain::tasks::Reassigning { routing, poke: poke.clone() },
                config.reaper_interval_ms,
                shutdown_rx.clone(),
            )),
            tokio::spawn(domain::tasks::presence_flusher(presence.clone(), store.clone(), shutdown_rx.clone())),
            tokio::spawn(domain::push::dispatcher(pusher, shutdown_rx.clone())),
            tokio::spawn(domain::access::refresher(access, shutdown_rx.clone())),
            tokio::spawn(domain::wildcards::refresher(patterns, shutdown_rx.clone())),
            tokio::spawn(domain::retention::purger(store.clone(), metrics.purged.clone(), shutdown_rx.clone())),
            tokio::spawn(domain::approvals::ticker::ticker(
                approvals,
                std::time::Duration::from_secs(1),
                shutdown_rx.clone(),
            )),
        ];
        if let Some(n) = notifier {
            tasks.push(tokio::spawn(domain::notify::notifier(n, shutdown_rx.clone())));
        }
        let mcp = mcp::router(&state);
        let app = api::router(state, web::router().merge(a2a::router()).merge(mcp))
            .layer(axum::middleware::from_fn_with_state(presence.clone(), api::note_presence));
        tracing::info!(
            %addr,
            tls = tls.is_some(),
            max_connections = limits.max_connections,
            max_connections_per_ip = limits.max_connections_per_ip,
            "switchboard listening"
        );
        let serves_tls = tls.is_some();
        let server = tokio::spawn(listener::serve(listener, app, limits, metrics, tls, shutdown_rx));
        Ok(Hub { addr, generated_admin_token, tls: serves_tls, shutdown, tasks, server, store, presence })
    }

    /// The base URL of the node, e.g. `http://127.0.0.1:7777` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Writes the agents seen so far now instead of at the flusher's next tick. For tests
    /// that compare the store before and after a request: presence is the one write a
    /// request leaves behind to happen later.
    #[doc(hidden)]
    pub async fn flush_presence(&self) {
        self.presence.flush(self.store.as_ref()).await;
    }

    /// Stops accepting connections, lets in-flight requests finish, closes streams, and
    /// commits every queued write before returning.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        match self.server.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "server stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "server task failed"),
            Ok(Ok(())) => {}
        }
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
        tracing::info!("switchboard stopped");
    }
}
