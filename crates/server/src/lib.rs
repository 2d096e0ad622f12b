//! The Switchboard node: HTTP API, streams, the delivery engine and its background tasks.
//!
//! [`Hub::start`] opens the store, makes sure the default tenant exists, binds the listener
//! and spawns the tasks it owns (the HTTP server, the reaper, the presence flusher). Each task
//! watches one shutdown channel; [`Hub::shutdown`] signals it, waits for in-flight requests
//! and streams to finish, then closes the store so every queued write is committed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use switchboard_core::time::{Millis, now_ms};
use switchboard_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod api;
pub mod auth;
pub mod cfg;
pub mod delivery;
pub mod error;
pub mod listener;
pub mod metrics;

pub use cfg::{Config, ConfigError, Settings};

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
}

/// Agents seen since the last flush; written to the store in one batch each second, so that
/// successful requests keep an agent `active` without a write per request.
#[derive(Default)]
pub struct Presence {
    pending: std::sync::Mutex<HashMap<(String, String), Millis>>,
    /// Held across a flush's drain and write, so that a flush that returns has also waited
    /// for one running beside it: after it, everything seen before it is in the store.
    flushing: tokio::sync::Mutex<()>,
}

impl Presence {
    /// Notes that an agent made a successful request now.
    pub fn seen(&self, tenant: &str, id: &str) {
        let mut map = self.pending.lock().expect("presence lock poisoned");
        map.insert((tenant.to_owned(), id.to_owned()), now_ms());
    }

    /// Writes what was seen since the last flush.
    pub async fn flush(&self, store: &dyn Store) {
        let _one_at_a_time = self.flushing.lock().await;
        let seen: Vec<_> = {
            let mut map = self.pending.lock().expect("presence lock poisoned");
            map.drain().map(|((t, id), at)| (t, id, at)).collect()
        };
        if !seen.is_empty()
            && let Err(e) = store.touch_agents(seen).await
        {
            tracing::warn!(error = %e, "could not record agent presence");
        }
    }
}

/// The agent a request authenticated as, left by the [`auth::Auth`] extractor for
/// [`note_presence`]: the extractor runs before the handler has decided, so it cannot tell
/// whether the request will be refused.
#[derive(Clone, Default)]
pub struct Caller(Arc<std::sync::OnceLock<(String, String)>>);

impl Caller {
    /// Records the (tenant, agent id) the request authenticated as.
    pub fn set(&self, tenant: &str, id: &str) {
        let _ = self.0.set((tenant.to_owned(), id.to_owned()));
    }
}

/// Marks the calling agent as seen once its request has succeeded. A refused request (any
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
        && let Some((tenant, id)) = caller.0.get()
    {
        presence.seen(tenant, id);
    }
    res
}

/// Recently routed direct recipients: (tenant, agent id) → has a push endpoint. Saves a store
/// read per send (measured: the read's thread hop was the largest single cost of a send on
/// one core). Entries live a few seconds; this node forgets an agent at once when it is
/// updated or deleted, other nodes within the TTL.
#[derive(Default)]
pub struct RecipientCache {
    entries: std::sync::Mutex<HashMap<(String, String), (bool, std::time::Instant)>>,
}

impl RecipientCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(5);

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
        map.insert((tenant.to_owned(), id.to_owned()), (push, std::time::Instant::now()));
    }

    pub fn forget(&self, tenant: &str, id: &str) {
        self.entries.lock().expect("recipient cache poisoned").remove(&(tenant.to_owned(), id.to_owned()));
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub metrics: Arc<metrics::Metrics>,
    pub tokens: Arc<auth::TokenCache>,
    pub presence: Arc<Presence>,
    /// Direct recipients seen recently.
    pub recipients: Arc<RecipientCache>,
    /// The push engine (webhook client, circuits).
    pub pusher: Arc<delivery::push::Pusher>,
    /// Round-robin position for anycast ties.
    pub rr: Arc<AtomicUsize>,
    /// Changes to `true` when the node shuts down; streams close on it.
    pub shutdown: watch::Receiver<bool>,
}

/// A running node.
pub struct Hub {
    /// The address the node listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// The admin token, when this start created the store and generated it.
    pub generated_admin_token: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
    store: Arc<dyn Store>,
    presence: Arc<Presence>,
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
        store.bootstrap(auth::token_hash(t), true, now).await?;
        return Ok(None);
    }
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| StartError::TokenFile { path: dir.display().to_string(), source: e })?;
    let file = dir.join("admin.token");
    let pending = dir.join("admin.token.new");
    if pending.exists() && !file.exists() {
        let _ = std::fs::rename(&pending, &file);
    }
    let token = auth::new_token(switchboard_core::ADMIN_TOKEN_PREFIX);
    let err = |source| StartError::TokenFile { path: file.display().to_string(), source };
    write_secret(&pending, &format!("{token}\n")).map_err(err)?;
    let created = store.bootstrap(auth::token_hash(&token), false, now).await;
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
        let store = open_store(&config).await?;
        let generated_admin_token = bootstrap(store.as_ref(), &config).await?;
        let limits = listener::Limits::new(&config, listener::raise_open_file_limit());
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| StartError::Listen { addr: config.listen.clone(), source: e })?;
        let addr = listener.local_addr().map_err(|e| StartError::Listen { addr: config.listen.clone(), source: e })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let pusher = Arc::new(delivery::push::Pusher::new(&config));
        let metrics = Arc::new(metrics::Metrics::new());
        let state = AppState {
            store: store.clone(),
            config: Arc::new(config),
            metrics: metrics.clone(),
            tokens: Arc::new(auth::TokenCache::default()),
            presence: Arc::new(Presence::default()),
            recipients: Arc::new(RecipientCache::default()),
            pusher,
            rr: Arc::new(AtomicUsize::new(0)),
            shutdown: shutdown_rx.clone(),
        };
        let tasks = vec![
            tokio::spawn(delivery::reaper(state.clone())),
            tokio::spawn(delivery::presence_flusher(state.clone())),
            tokio::spawn(delivery::push::dispatcher(state.clone())),
        ];
        let presence = state.presence.clone();
        let app = api::router(state).layer(axum::middleware::from_fn_with_state(presence.clone(), note_presence));
        tracing::info!(
            %addr,
            max_connections = limits.max_connections,
            max_connections_per_ip = limits.max_connections_per_ip,
            "switchboard listening"
        );
        let server = tokio::spawn(listener::serve(listener, app, limits, metrics, shutdown_rx));
        Ok(Hub { addr, generated_admin_token, shutdown, tasks, server, store, presence })
    }

    /// The base URL of the node, e.g. `http://127.0.0.1:7777`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

/// Resolves when the node is shutting down. (Holding `watch::Ref` across an await would make
/// the caller's future `!Send`; this drops it inside.)
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
