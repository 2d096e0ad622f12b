//! `TestHub`: the real server on an ephemeral port with a temporary store, and helpers that
//! make each test read like a user story.
//!
//! The store is SQLite in a temporary directory, or, when `SWITCHBOARD_TEST_HUB_DATABASE_URL`
//! names a PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432/test`), a fresh
//! database on it per hub, dropped with the hub: the same stories then run on PostgreSQL.

#![allow(dead_code)]

pub mod receiver;

use std::future::Future;
use std::time::Duration;

use switchboard_client::Client;
use switchboard_core::api::{AgentRegistered, Capability, RegisterAgent};
use switchboard_server::{Config, Hub};

pub const ADMIN: &str = "sba_test-admin-token-0123456789";

/// Names a PostgreSQL server to run the hubs on instead of SQLite.
pub const HUB_DATABASE_VAR: &str = "SWITCHBOARD_TEST_HUB_DATABASE_URL";

pub struct TestHub {
    pub hub: Option<Hub>,
    pub dir: tempfile::TempDir,
    pub config: Config,
    /// Declared after `hub` so that it is dropped after it.
    pub database: Option<TestDatabase>,
}

/// A PostgreSQL database created for one hub, dropped with it, also when the test panics
/// (the `TestHub` is dropped while unwinding).
pub struct TestDatabase {
    /// The server's maintenance database, which always exists, to create and drop from.
    admin: tokio_postgres::Config,
    name: String,
    /// What the hub is given as `database_url`.
    pub url: String,
}

impl TestDatabase {
    /// A fresh database on the server named by [`HUB_DATABASE_VAR`], or `None` if it is unset.
    pub async fn create() -> Option<TestDatabase> {
        let server = std::env::var(HUB_DATABASE_VAR).ok().filter(|u| !u.is_empty())?;
        let mut admin: tokio_postgres::Config =
            server.parse().unwrap_or_else(|e| panic!("{HUB_DATABASE_VAR}: not a PostgreSQL URL: {e}"));
        admin.dbname("postgres");
        let name = format!("sb_hub_{}", switchboard_core::new_id().simple());
        let (client, conn) = admin.connect(tokio_postgres::NoTls).await.expect("connect to the test PostgreSQL server");
        let conn = tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the hub's test database");
        drop(client);
        let _ = conn.await;
        Some(TestDatabase { admin, url: with_dbname(&server, &name), name })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside the test's runtime (which cannot be blocked
        // on), so the async driver runs on a thread of its own. FORCE: a hub that was not
        // stopped, or a panicking test, may still hold connections.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let (client, conn) = admin.connect(tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        // No panic here: this may run while a failed test unwinds, and a second panic aborts.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop test database {}: the dropping thread panicked", self.name),
        }
    }
}

/// `url` with its database name replaced by `db` (user, host, port and options kept).
fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}/{db}{query}", &base[..path])
}

impl TestHub {
    pub async fn start() -> TestHub {
        TestHub::start_with(|_| {}).await
    }

    /// Starts with the test defaults changed by `tweak` (e.g. a short visibility timeout).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestHub {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN.into()),
            reaper_interval_ms: 50,
            allow_private_endpoints: true,
            push_retry_schedule_ms: vec![50, 50],
            ..Config::default()
        };
        let database = TestDatabase::create().await;
        config.database_url = database.as_ref().map(|d| d.url.clone());
        tweak(&mut config);
        // The PostgreSQL run must not quietly test SQLite again: the backend follows
        // `database_url` alone, and a hub on SQLite would leave its file in the data dir.
        let on_postgres = config.database_url.as_deref().is_some_and(|u| u.starts_with("postgres"));
        assert!(
            database.is_none() || on_postgres,
            "{HUB_DATABASE_VAR} is set, but this hub's database_url is not PostgreSQL"
        );
        let hub = Hub::start(config.clone()).await.expect("hub starts");
        let sqlite_file = dir.path().join("switchboard.db");
        assert!(database.is_none() || !sqlite_file.exists(), "{HUB_DATABASE_VAR} is set, but the hub opened SQLite");
        TestHub { hub: Some(hub), dir, config, database }
    }

    pub fn url(&self) -> String {
        self.hub.as_ref().expect("hub running").url()
    }

    pub fn admin(&self) -> Client {
        Client::new(self.url(), Some(ADMIN.into()))
    }

    pub fn anonymous(&self) -> Client {
        Client::new(self.url(), None)
    }

    /// Registers an agent with these capabilities; returns its registration and a client
    /// acting as it.
    pub async fn agent(&self, name: &str, caps: &[&str]) -> (AgentRegistered, Client) {
        self.agent_at(name, caps, None).await
    }

    /// Registers an agent with a push endpoint.
    pub async fn agent_at(&self, name: &str, caps: &[&str], endpoint: Option<&str>) -> (AgentRegistered, Client) {
        let req = RegisterAgent {
            endpoint: endpoint.map(str::to_owned),
            name: name.into(),
            capabilities: caps
                .iter()
                .map(|c| Capability {
                    name: (*c).into(),
                    description: None,
                    tags: vec![],
                    examples: vec![],
                    input_schema: None,
                    output_schema: None,
                })
                .collect(),
            ..Default::default()
        };
        let r = self.admin().register_agent(&req).await.expect("register agent");
        let c = self.admin().with_token(r.api_key.clone());
        (r, c)
    }

    /// Graceful stop, then a new node on the same data directory (or database: `config`
    /// keeps its URL).
    pub async fn restart(&mut self) {
        self.hub.take().expect("hub running").shutdown().await;
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".into();
        self.hub = Some(Hub::start(config).await.expect("hub restarts"));
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.hub.take() {
            h.shutdown().await;
        }
    }
}

/// Polls `check` until it returns `Some`, failing the test after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `f` with a deadline, failing the test if it takes longer.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}
