//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that owns the only write connection. It takes every job
//! waiting in its queue (up to `writer::MAX_GROUP`), runs each in its own savepoint inside one
//! transaction, commits once (one fsync of the WAL, `synchronous = FULL`), and only then
//! answers each caller and wakes consumers. That is group commit: under load, hundreds of
//! sends share a single fsync, and a caller never hears `Ok` before its data is on disk.
//! Reads use a few separate connections, which WAL lets run beside the writer.
//!
//! This file opens the database; `writer.rs` is the group commit, `rows.rs` the column lists
//! and row readers, and `agents.rs`, `messages.rs`, `deliveries.rs`, `topics.rs`, `push.rs`
//! and `audit.rs` implement one area of the store each.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::ids::TenantId;
use switchboard_core::principal::{Principal, PrincipalKind};
use switchboard_core::time::Millis;
use tokio::sync::mpsc;

use crate::health::WriteHealth;
use crate::{Result, Store, StoreError, TokenRecord, Wakeups, WriteStatus};
use writer::{QUEUE, Queued, writer_loop};

mod a2a;
mod access;
mod agents;
mod approvals;
mod audit;
pub mod backup;
mod conversations;
mod deliveries;
mod groups;
mod inbox;
mod keys;
mod messages;
mod notify;
mod oauth;
mod push;
mod retention;
mod rows;
mod tenants;
mod topics;
mod users;
mod writer;

const READERS: usize = 4;

/// An open delivery, as the partial indexes over open deliveries spell it (a query uses such
/// an index only if its condition matches). Written with `OR`, not `IN (…)`: SQLite builds a
/// temporary table for an `IN` list of three, and it evaluated those conditions on every
/// insert and update of a delivery — about 17 temporary b-trees per message, a fifth of the
/// hub's instructions in the `throughput` workload (callgrind; docs/bench/IMPROVEMENTS.md).
pub(super) const OPEN: &str = "(state = 'pending' OR state = 'leased' OR state = 'delivered')";

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Queued>>>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Vec<std::sync::Mutex<Connection>>>,
    next_reader: AtomicUsize,
    wake: Arc<Wakeups>,
    /// How the writer's commits went, for `/ready`.
    health: Arc<WriteHealth>,
    /// The writer's queue order keys (used only on the writer thread).
    order: Arc<crate::sql::OrderBase>,
}

pub(super) fn internal(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, ref msg)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DatabaseBusy
            ) =>
        {
            StoreError::unavailable(msg.clone().unwrap_or_else(|| f.to_string()))
        }
        e => StoreError::Internal(e.to_string()),
    }
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| StoreError::unavailable(format!("{}: {e}", path.display())))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -32000;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(internal)?;
    // The writer alone runs more than rusqlite's default 16 distinct statements on the hot
    // path (accept, lease, ack, push claims, savepoints); an evicted one is parsed again.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) `switchboard.db` in `dir` and applies the schema.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::unavailable(format!("cannot create data dir {}: {e}", dir.display())))?;
        let path = dir.join("switchboard.db");
        let writer_conn = open(&path)?;
        migrate(&writer_conn)?;
        writer_conn.execute_batch(include_str!("schema.sql")).map_err(internal)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(std::sync::Mutex::new(open(&path)?));
        }
        let wake = Arc::new(Wakeups::default());
        let (tx, rx) = mpsc::channel::<Queued>(QUEUE);
        let wake2 = wake.clone();
        let health = Arc::new(WriteHealth::default());
        let health2 = health.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, &wake2, &health2))
            .map_err(|e| StoreError::Internal(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore {
            jobs: std::sync::Mutex::new(Some(tx)),
            writer: std::sync::Mutex::new(Some(handle)),
            readers: Arc::new(readers),
            next_reader: AtomicUsize::new(0),
            wake,
            health,
            order: Arc::default(),
        })
    }

    /// Runs a read on one of the reader connections, off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        tokio::task::spawn_blocking(move || {
            let conn = readers[i].lock().expect("reader lock poisoned");
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

/// Brings an existing database up to what `schema.sql` creates, before it runs (its
/// `CREATE … IF NOT EXISTS` would keep an old definition). Version 2 respells the partial
/// indexes' open-delivery condition (see [`OPEN`]): they are dropped here and rebuilt by
/// `schema.sql`. A crash in between leaves version 1, so the next start does it again.
/// Version 3 only adds the audit tables, which `schema.sql` creates where they are missing.
/// Version 4 adds the unique index on tenant names (`schema.sql`) and names the bootstrap
/// token's principal `operator`: until then the only admin token of the default tenant was
/// the bootstrap one, stored as `admin`. Version 5 adds the agent keys' columns to `tokens`
/// (`key_id`, `expires_at`, `last_used_at`) and gives every existing agent key an id.
/// Version 6 adds `users` and `sessions` (`schema.sql`) and the personal tokens' `name` to
/// `tokens`. Version 7 adds the conversation tables (`schema.sql`). Version 8 adds
/// priorities: `messages.priority` and `deliveries.order_key` (existing deliveries keep accept
/// order: their key is their accept time), and the open-delivery index is rebuilt on
/// (recipient, order_key, seq) by `schema.sql`. Version 9 adds `messages.routing` (an `auto`
/// message's decision) beside the groups and routing settings tables (`schema.sql`). Version 11
/// adds `agent_push.a2a` (the A2A interface of an agent imported from its Agent Card).
/// Version 12 adds `messages.signature` beside the `principal_keys` table (`schema.sql`).
/// Version 13 adds `messages.erased_at` (erasure) beside the retention table (`schema.sql`).
/// Idempotent, so a crash before the version is set only runs it again.
fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(internal)?;
    if (1..13).contains(&version) {
        tracing::info!("migrating the SQLite store to version 13: messages can be erased");
        add_column(conn, "messages", "erased_at", "INTEGER")?;
    }
    if (1..12).contains(&version) {
        tracing::info!("migrating the SQLite store to version 12: messages keep their sender's signature");
        add_column(conn, "messages", "signature", "TEXT")?;
    }
    if (1..11).contains(&version) {
        tracing::info!("migrating the SQLite store to version 11: agents imported from A2A Agent Cards");
        add_column(conn, "agent_push", "a2a", "TEXT")?;
    }
    if (1..9).contains(&version) {
        tracing::info!("migrating the SQLite store to version 9: messages keep their routing decision");
        add_column(conn, "messages", "routing", "TEXT")?;
    }
    if (1..8).contains(&version) {
        tracing::info!("migrating the SQLite store to version 8: message priorities");
        add_column(conn, "messages", "priority", "TEXT")?;
        add_column(conn, "deliveries", "order_key", "INTEGER")?;
        conn.execute_batch(
            "UPDATE deliveries SET order_key = created_at WHERE order_key IS NULL; \
             DROP INDEX IF EXISTS deliveries_open;",
        )
        .map_err(internal)?;
    }
    if (1..6).contains(&version) {
        tracing::info!("migrating the SQLite store to version 6: users, sessions and personal access tokens");
        add_column(conn, "tokens", "name", "TEXT")?;
    }
    if (1..5).contains(&version) {
        tracing::info!("migrating the SQLite store to version 5: agent keys get ids, expiry and last use");
        // Column by column: a crash between two of them leaves the rest to the next start.
        for (column, ty) in [("key_id", "TEXT"), ("expires_at", "INTEGER"), ("last_used_at", "INTEGER")] {
            add_column(conn, "tokens", column, ty)?;
        }
        conn.execute(
            "UPDATE tokens SET key_id = 'key_' || lower(hex(randomblob(16))) \
             WHERE key_id IS NULL AND principal LIKE 'agent:%'",
            [],
        )
        .map_err(internal)?;
    }
    if (1..4).contains(&version) {
        tracing::info!("migrating the SQLite store to version 4: the bootstrap token becomes the operator's");
        conn.execute(
            "UPDATE tokens SET principal = 'operator' WHERE tenant_id = ?1 AND principal = 'admin'",
            [switchboard_core::DEFAULT_TENANT],
        )
        .map_err(internal)?;
    }
    if version == 1 {
        tracing::info!("migrating the SQLite store to version 2: rebuilding the open-delivery indexes");
        conn.execute_batch(
            "DROP INDEX IF EXISTS deliveries_open; DROP INDEX IF EXISTS deliveries_due; \
             DROP INDEX IF EXISTS deliveries_expiry; DROP INDEX IF EXISTS deliveries_push_due;",
        )
        .map_err(internal)?;
    }
    Ok(())
}

/// Adds `column` to `table` unless it has it (a crash between two of them leaves the rest to
/// the next start).
fn add_column(conn: &Connection, table: &str, column: &str, ty: &str) -> Result<()> {
    let has: bool = conn
        .query_row(&format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"), [column], |r| {
            r.get(0)
        })
        .map_err(internal)?;
    if !has {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}")).map_err(internal)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(internal)).await
    }

    fn write_status(&self) -> WriteStatus {
        self.health.status()
    }

    async fn probe_write(&self) {
        // Setting `user_version` to the value it has always dirties the header page, so the
        // commit appends a WAL frame and fsyncs it, like any real write. (An UPDATE that
        // changes no bytes would not: SQLite skips writing a page whose content is equal.)
        let probe = self.write(|c, _| {
            let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(internal)?;
            c.execute_batch(&format!("PRAGMA user_version = {version}")).map_err(internal)
        });
        self.health.probe(probe).await;
    }

    async fn bootstrap(&self, admin_token_hash: String, always: bool, now: Millis) -> Result<bool> {
        self.write(move |c, _| {
            let exists: bool = c
                .query_row("SELECT 1 FROM tenants WHERE id = ?1", [switchboard_core::DEFAULT_TENANT], |_| Ok(true))
                .optional()
                .map_err(internal)?
                .unwrap_or(false);
            if !exists {
                c.execute(
                    "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?1, ?2)",
                    params![switchboard_core::DEFAULT_TENANT, now],
                )
                .map_err(internal)?;
            }
            if always || !exists {
                c.execute(
                    "INSERT OR IGNORE INTO tokens (hash, tenant_id, principal, created_at) VALUES (?1, ?2, 'operator', ?3)",
                    params![admin_token_hash, switchboard_core::DEFAULT_TENANT, now],
                )
                .map_err(internal)?;
            }
            Ok(!exists)
        })
        .await
    }

    async fn token_for_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let hash = token_hash.to_owned();
        self.read(move |c| {
            // A person's role is read from the user's row, so a changed role holds at once.
            let mut st = c.prepare_cached(crate::sql::TOKEN_LOOKUP).map_err(internal)?;
            type Row = (String, String, Option<String>, Option<Millis>, Option<String>);
            let row: Option<Row> = st
                .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()
                .map_err(internal)?;
            Ok(row.and_then(|(tenant, p, key_id, expires_at, role)| {
                let role = role.and_then(|r| r.parse().ok());
                let principal =
                    Principal { tenant: TenantId::from(tenant), kind: PrincipalKind::from_stored(&p, role)? };
                Some(TokenRecord { principal, key_id, expires_at })
            }))
        })
        .await
    }

    fn wakeups(&self) -> &Wakeups {
        &self.wake
    }

    async fn close(&self) {
        self.jobs.lock().expect("jobs lock poisoned").take();
        let handle = self.writer.lock().expect("writer lock poisoned").take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_sql(conn: &Connection, name: &str) -> String {
        conn.query_row("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1", [name], |r| r.get(0))
            .expect("index exists")
    }

    /// A version-1 database (open-delivery indexes spelled with `IN`) is rebuilt at open.
    #[test]
    fn version_1_indexes_are_respelled_at_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(SqliteStore::open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "DROP INDEX deliveries_open;
             CREATE INDEX deliveries_open ON deliveries(tenant_id, recipient, seq)
                 WHERE state IN ('pending', 'leased', 'delivered');
             PRAGMA user_version = 1;",
        )
        .expect("make a version-1 database");
        drop(SqliteStore::open(dir.path()).expect("reopen"));
        assert!(index_sql(&conn, "deliveries_open").contains(OPEN), "{}", index_sql(&conn, "deliveries_open"));
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 13);
    }

    /// A version-2 database (before the audit log) gets the audit tables at open.
    #[tokio::test]
    async fn version_2_gets_the_audit_tables_at_open() {
        use crate::audit::AuditStore;
        use switchboard_core::audit::{AuditAction, NewAuditEvent};

        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.close().await;
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "DROP TABLE audit_events; DROP TABLE audit_heads; DROP TABLE audit_settings; PRAGMA user_version = 2;",
        )
        .expect("make a version-2 database");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let e = NewAuditEvent {
            tenant: "t".into(),
            at: 1,
            actor: "admin".into(),
            action: AuditAction::Login,
            target: "user:ann".into(),
            detail: serde_json::json!({}),
        };
        assert_eq!(store.append_audit(e).await.expect("append").seq, 1);
        store.close().await;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 13);
    }

    /// A version-3 database's bootstrap token (stored as `admin` in the default tenant)
    /// becomes the platform operator's at open; another tenant's admin token stays `admin`.
    #[tokio::test]
    async fn version_3_bootstrap_token_becomes_the_operator() {
        use switchboard_core::principal::PrincipalKind;

        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        assert!(store.bootstrap("h-op".into(), false, 1).await.expect("bootstrap"));
        store.close().await;
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "UPDATE tokens SET principal = 'admin'; \
             INSERT INTO tokens (hash, tenant_id, principal, created_at) VALUES ('h-b', 'b', 'admin', 1); \
             DROP INDEX tenants_name; PRAGMA user_version = 3;",
        )
        .expect("make a version-3 database");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let op = store.principal_for_token("h-op").await.expect("look up").expect("known");
        assert_eq!(op.kind, PrincipalKind::Operator);
        let b = store.principal_for_token("h-b").await.expect("look up").expect("known");
        assert_eq!(b.kind, PrincipalKind::Admin);
        store.close().await;
        assert!(index_sql(&conn, "tenants_name").contains("UNIQUE"));
    }

    /// A version-4 database (one key per agent, without an id) gets the agent keys' columns
    /// at open, and every agent key an id.
    #[tokio::test]
    async fn version_4_gives_agent_keys_ids() {
        use crate::AgentStore;

        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.close().await;
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "DROP INDEX tokens_key; ALTER TABLE tokens DROP COLUMN key_id; ALTER TABLE tokens DROP COLUMN expires_at; \
             ALTER TABLE tokens DROP COLUMN last_used_at; \
             INSERT INTO tokens (hash, tenant_id, principal, created_at) VALUES ('h-a', 't', 'agent:a1', 1); \
             INSERT INTO tokens (hash, tenant_id, principal, created_at) VALUES ('h-b', 't', 'admin', 1); \
             PRAGMA user_version = 4;",
        )
        .expect("make a version-4 database");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let a = store.token_for_hash("h-a").await.expect("look up").expect("known");
        let key_id = a.key_id.expect("the agent key has an id");
        assert!(key_id.starts_with("key_") && key_id.len() == 36, "{key_id}");
        assert_eq!(store.token_for_hash("h-b").await.expect("look up").expect("known").key_id, None);
        assert!(store.revoke_agent_key("t", "a1", &key_id, 5, 0, None).await.expect("revoke").is_some());
        assert!(store.principal_for_token("h-a").await.expect("look up").is_none());
        store.close().await;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 13);
    }

    /// A version-6 database (messages without `routing`, no groups) gets both at open, and
    /// its messages read as before.
    #[tokio::test]
    async fn version_6_gets_message_routing_and_groups() {
        use crate::autoroute::AutoRouteStore;
        use crate::groups::GroupStore;

        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.close().await;
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "ALTER TABLE messages DROP COLUMN routing; DROP TABLE groups; DROP TABLE group_members; \
             DROP TABLE routing_settings; \
             INSERT INTO messages (tenant_id, id, sender, recipient, parts, request_hash, created_at) \
             VALUES ('t', 'm1', 'admin', 'agent:a', '[]', '', 1); \
             PRAGMA user_version = 6;",
        )
        .expect("make a version-6 database");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        assert_eq!(store.message_routing("t", "m1").await.expect("read"), None);
        assert!(store.list_groups("t", None, 10).await.expect("groups").is_empty());
        store.close().await;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 13);
    }

    /// A version-6 database (before priorities) gets `messages.priority` and
    /// `deliveries.order_key` at open; its open deliveries keep accept order (key = accept
    /// time), and the open-delivery index is rebuilt over the key.
    #[tokio::test]
    async fn version_6_gets_priorities_and_keeps_accept_order() {
        use crate::{DeliveryStore, LeaseRequest};

        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.close().await;
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "DROP INDEX deliveries_open; ALTER TABLE deliveries DROP COLUMN order_key; \
             ALTER TABLE messages DROP COLUMN priority; \
             CREATE INDEX deliveries_open ON deliveries(tenant_id, recipient, seq) \
                 WHERE (state = 'pending' OR state = 'leased' OR state = 'delivered'); \
             INSERT INTO messages (tenant_id, id, sender, recipient, parts, request_hash, created_at) \
                 VALUES ('t', 'm1', 'admin', 'agent:b', '[]', '', 2000), ('t', 'm2', 'admin', 'agent:b', '[]', '', 1000); \
             INSERT INTO deliveries (tenant_id, message_id, recipient, state, due_at, created_at, updated_at) \
                 VALUES ('t', 'm1', 'agent:b', 'pending', 0, 2000, 2000), ('t', 'm2', 'agent:b', 'pending', 0, 1000, 1000); \
             PRAGMA user_version = 6;",
        )
        .expect("make a version-6 database");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let req = LeaseRequest {
            tenant: "t".into(),
            recipient: "agent:b".into(),
            limit: 10,
            now: 5000,
            lease_ms: 100,
            max_attempts: 5,
        };
        let ids: Vec<String> = store.lease(req).await.expect("lease").into_iter().map(|l| l.message.id).collect();
        assert_eq!(ids, ["m2", "m1"], "by accept time");
        store.close().await;
        assert!(index_sql(&conn, "deliveries_open").contains("order_key"), "{}", index_sql(&conn, "deliveries_open"));
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 13);
    }

    /// A version-9 database (before the A2A gateway) gets `agent_push.a2a` at open, and a
    /// webhook agent's settings read back without one.
    #[tokio::test]
    async fn version_9_gets_the_a2a_interface_column() {
        use crate::push::{PushSettings, PushStore};

        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.close().await;
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "ALTER TABLE agent_push DROP COLUMN a2a; \
             INSERT INTO agents (tenant_id, id, name, capabilities, created_at, updated_at) \
                 VALUES ('t', 'a1', 'hook', '[]', 1, 1); \
             INSERT INTO agent_push (tenant_id, agent_id, secret) VALUES ('t', 'a1', 'whsec_x'); \
             PRAGMA user_version = 9;",
        )
        .expect("make a version-9 database");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let got = store.push_settings("t", &["a1".into()]).await.expect("read");
        assert_eq!(got[0].1, PushSettings { secret: "whsec_x".into(), ..Default::default() });
        let s = PushSettings { secret: "whsec_x".into(), a2a: Some("{}".into()), ..Default::default() };
        store.put_push_settings("t", "a1", s.clone(), None).await.expect("write");
        assert_eq!(store.push_settings("t", &["a1".into()]).await.expect("read")[0].1, s);
        store.close().await;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 13);
    }

    /// A version-9 database (before end-to-end trust) gets `messages.signature` and the
    /// `principal_keys` table at open, and its messages read as unsigned.
    #[tokio::test]
    async fn version_9_messages_get_a_signature_column() {
        use crate::MessageStore;
        use crate::keys::KeyStore;

        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.close().await;
        let conn = Connection::open(dir.path().join("switchboard.db")).expect("connect");
        conn.execute_batch(
            "ALTER TABLE messages DROP COLUMN signature; DROP TABLE principal_keys; \
             INSERT INTO messages (tenant_id, id, sender, recipient, parts, request_hash, created_at) \
                 VALUES ('t', 'm1', 'admin', 'agent:b', '[]', '', 1000); \
             PRAGMA user_version = 9;",
        )
        .expect("make a version-9 database");
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let (m, _) = store.get_message("t", "m1").await.expect("read").expect("m1 kept");
        assert_eq!(m.signature, None);
        assert!(store.keys_of("t", vec!["agent:b".into()], true).await.expect("keys table").is_empty());
        store.close().await;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(version, 13);
    }
}
