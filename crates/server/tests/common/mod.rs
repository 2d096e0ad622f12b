//! `TestHub`: the real server on an ephemeral port with a temporary store, and helpers that
//! make each test read like a user story.
//!
//! The store is SQLite in a temporary directory, or, when `SWITCHBOARD_TEST_HUB_DATABASE_URL`
//! names a PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432/test`), a fresh
//! database on it per hub, dropped with the hub: the same stories then run on PostgreSQL.

#![allow(dead_code)]

pub mod jwt;
pub mod receiver;
pub mod smtp;
pub mod web;

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

    /// A second node on this hub's PostgreSQL database, or `None` (said on stderr) when the hub
    /// runs on SQLite: a test of two nodes runs in CI's PostgreSQL pass.
    #[allow(dead_code)]
    pub async fn second_node(&self) -> Option<TestHub> {
        let Some(db) = self.database.as_ref() else {
            eprintln!("two nodes need a shared PostgreSQL database (set {HUB_DATABASE_VAR}); skipped");
            return None;
        };
        let url = db.url.clone();
        Some(TestHub::start_with(|c| c.database_url = Some(url)).await)
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
                    output_schema_mode: None,
                    reassign_on_timeout: None,
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

// ---- the store as it is on disk, for "a refused request changes nothing" ----

/// Every table of the hub's store, read straight from the database (not through the API,
/// which shows only what one caller may see): its rows, each as one line of text, sorted.
/// Two snapshots are equal only if no row was added, removed or changed anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tables: std::collections::BTreeMap<String, Vec<String>>,
}

impl Snapshot {
    /// How many rows `table` holds (0 for a table that does not exist).
    pub fn rows(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, Vec::len)
    }

    /// Rows of `after` not in `self`, and rows of `self` not in `after`, per changed table.
    fn changes(&self, after: &Snapshot) -> Vec<String> {
        let empty = Vec::new();
        let names: std::collections::BTreeSet<&String> = self.tables.keys().chain(after.tables.keys()).collect();
        let mut out = Vec::new();
        for name in names {
            let (b, a) = (self.tables.get(name).unwrap_or(&empty), after.tables.get(name).unwrap_or(&empty));
            if a == b {
                continue;
            }
            let added: Vec<&String> = a.iter().filter(|r| !b.contains(r)).collect();
            let removed: Vec<&String> = b.iter().filter(|r| !a.contains(r)).collect();
            out.push(format!(
                "{name}: {} → {} rows\n    added:   {added:?}\n    removed: {removed:?}",
                b.len(),
                a.len()
            ));
        }
        out
    }
}

/// Fails the test, naming each changed table with its added and removed rows, if the store
/// differs between `before` and `after`.
#[track_caller]
pub fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    let changes = before.changes(after);
    assert!(changes.is_empty(), "{what} changed the store:\n  {}", changes.join("\n  "));
}

/// Fails the test unless the only change between `before` and `after` is rows added to
/// `tables`: every other table as it was, and no row of `tables` changed or removed.
#[track_caller]
pub fn assert_only_added(before: &Snapshot, after: &Snapshot, tables: &[&str], what: &str) {
    let empty = Vec::new();
    let mut changes = Vec::new();
    for (name, rows) in &before.tables {
        let now = after.tables.get(name).unwrap_or(&empty);
        let gone: Vec<&String> = rows.iter().filter(|r| !now.contains(r)).collect();
        if !gone.is_empty() {
            changes.push(format!("{name}: changed or removed {gone:?}"));
        }
    }
    for (name, rows) in &after.tables {
        let was = before.tables.get(name).unwrap_or(&empty);
        if !tables.contains(&name.as_str()) && rows != was {
            changes.push(format!("{name}: {} → {} rows", was.len(), rows.len()));
        }
    }
    assert!(changes.is_empty(), "{what} did more than add rows to {tables:?}:\n  {}", changes.join("\n  "));
}

/// One SQLite value as text, the way `psql` would print it.
fn sqlite_text(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

fn sqlite_snapshot(path: &std::path::Path) -> Snapshot {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {} read-only: {e}", path.display()));
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%'")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .expect("list the store's tables");
    let mut tables = std::collections::BTreeMap::new();
    for name in names {
        let mut st = conn.prepare(&format!("SELECT * FROM \"{name}\"")).expect("read a table");
        let width = st.column_count();
        let mut rows: Vec<String> = st
            .query_map([], |r| (0..width).map(|i| r.get_ref(i).map(sqlite_text)).collect::<rusqlite::Result<Vec<_>>>())
            .and_then(|rows| rows.map(|r| r.map(|cols| cols.join(" | "))).collect())
            .expect("read a table's rows");
        rows.sort();
        tables.insert(name, rows);
    }
    Snapshot { tables }
}

async fn postgres_snapshot(url: &str) -> Snapshot {
    let client = postgres_client(url).await;
    let names: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .expect("list the store's tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut tables = std::collections::BTreeMap::new();
    for name in names {
        let mut rows: Vec<String> = client
            .query(&format!("SELECT t::text FROM \"{name}\" t"), &[])
            .await
            .expect("read a table's rows")
            .iter()
            .map(|r| r.get(0))
            .collect();
        rows.sort();
        tables.insert(name, rows);
    }
    Snapshot { tables }
}

async fn postgres_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to the hub's database");
    tokio::spawn(conn);
    client
}

impl TestHub {
    /// The whole store as it is on disk now. Presence is written first (it is the one write
    /// a request leaves for later), so that a request's every effect is in the snapshot.
    pub async fn snapshot(&self) -> Snapshot {
        self.hub.as_ref().expect("hub running").flush_presence().await;
        match &self.database {
            Some(db) => postgres_snapshot(&db.url).await,
            None => {
                let path = self.dir.path().join("switchboard.db");
                tokio::task::spawn_blocking(move || sqlite_snapshot(&path)).await.expect("snapshot task")
            }
        }
    }

    /// The store's `seq` of each delivery to `recipient` (`agent:<id>`), by message id: the
    /// commit order that delivery order per recipient follows.
    pub async fn delivery_seqs(&self, recipient: &str) -> std::collections::HashMap<String, i64> {
        const SQL: &str = "SELECT message_id, seq FROM deliveries WHERE recipient = $1";
        match &self.database {
            Some(db) => {
                let client = postgres_client(&db.url).await;
                let rows = client.query(SQL, &[&recipient]).await.expect("read delivery seqs");
                rows.iter().map(|r| (r.get(0), r.get(1))).collect()
            }
            None => {
                let path = self.dir.path().join("switchboard.db");
                let recipient = recipient.to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                        .expect("open the store read-only");
                    let mut st = conn.prepare(&SQL.replace("$1", "?1")).expect("prepare");
                    st.query_map([recipient], |r| Ok((r.get(0)?, r.get(1)?)))
                        .and_then(|rows| rows.collect())
                        .expect("read delivery seqs")
                })
                .await
                .expect("seq task")
            }
        }
    }
}

// ---- raw HTTP, for what the client would not send ----

/// Sends a request as written, returning (status, content type, JSON body or null).
pub async fn raw(
    hub: &TestHub,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, String, serde_json::Value) {
    let http = reqwest::Client::new();
    let mut req = http.request(method.parse().expect("an HTTP method"), format!("{}{}", hub.url(), path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let res = req.send().await.expect("the hub answers");
    let status = res.status().as_u16();
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = res.text().await.expect("a readable body");
    (status, ctype, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// Checks that an answer is a problem document with this status and code; returns its body.
#[track_caller]
pub fn assert_problem(got: (u16, String, serde_json::Value), status: u16, code: &str) -> serde_json::Value {
    assert_eq!(got.0, status, "status for {code}: {}", got.2);
    assert_eq!(got.1, "application/problem+json");
    assert_eq!(got.2["code"], code, "{}", got.2);
    assert_eq!(got.2["status"], status);
    assert!(got.2["detail"].as_str().is_some_and(|d| !d.is_empty()));
    got.2
}

/// The address (and recipient text) of agent `id`, spelled by the one address type.
pub fn agent_addr(id: &str) -> String {
    switchboard_core::Recipient::agent_text(&switchboard_core::AgentId::from(id))
}
