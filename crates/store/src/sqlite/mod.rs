//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that owns the only write connection. It takes every job
//! waiting in its queue (up to [`MAX_GROUP`]), runs each in its own savepoint inside one
//! transaction, commits once (one fsync of the WAL, `synchronous = FULL`), and only then
//! answers each caller and wakes consumers. That is group commit: under load, hundreds of
//! sends share a single fsync, and a caller never hears `Ok` before its data is on disk.
//! Reads use a few separate connections, which WAL lets run beside the writer.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::api::DeliveryState;
use switchboard_core::time::Millis;
use tokio::sync::{mpsc, oneshot};

use crate::health::WriteHealth;
use crate::{
    AcceptOutcome, Acked, AgentFilter, AgentRecord, DeliveryCounts, DeliveryRecord, LeaseRequest, Leased,
    MessageRecord, NewMessage, Principal, PrincipalKind, Result, Store, StoreError, SubscriptionRecord, TopicRecipient,
    TopicSummary, WakeKey, Wakeups, WriteStatus,
};

/// Most jobs committed in one transaction. Bounds the latency a single commit adds to the
/// first job in it; at 1 KiB messages a group of 1,024 is about one megabyte of WAL.
const MAX_GROUP: usize = 1024;
/// Jobs waiting for the writer; senders wait when it is full (back-pressure, not memory).
const QUEUE: usize = 8192;
const READERS: usize = 4;

/// An open delivery, as the partial indexes over open deliveries spell it (a query uses such
/// an index only if its condition matches). Written with `OR`, not `IN (…)`: SQLite builds a
/// temporary table for an `IN` list of three, and it evaluated those conditions on every
/// insert and update of a delivery — about 17 temporary b-trees per message, a fifth of the
/// hub's instructions in the `throughput` workload (callgrind; docs/bench/IMPROVEMENTS.md).
const OPEN: &str = "(state = 'pending' OR state = 'leased' OR state = 'delivered')";

type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// A job returns its error (a copy; its caller hears the original) and how to answer it.
type Job = Box<dyn FnOnce(&Connection, &mut Vec<WakeKey>) -> (Option<StoreError>, Completion) + Send>;

/// How a write joins its group.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// `false` for writes whose loss in a crash only repeats work (a lease: the message is
    /// delivered again). A group made only of those commits without an fsync; the next
    /// durable commit's fsync covers them, since the WAL is one append-only file.
    durable: bool,
    /// Run in a savepoint of its own, so that its failure undoes only its own changes. A
    /// savepoint costs a copy of every page the job first touches (the hot path spent a
    /// fifth of the writer's instructions on them, callgrind), so the hot writes that can
    /// fail only when the whole transaction does (accept, lease, ack: inserts of fresh ids,
    /// updates by key) go without; if one fails anyway, the whole group rolls back and
    /// every caller in it hears its write was not committed.
    savepoint: bool,
}

/// Any write: fsync'd before the answer, in its own savepoint.
const GUARDED: Mode = Mode { durable: true, savepoint: true };
/// Accepts and acks: fsync'd before the answer, no savepoint.
const HOT: Mode = Mode { durable: true, savepoint: false };
/// Leases and unanswered acks: done after the commit, fsync'd by the next durable commit; no
/// savepoint.
const LAZY: Mode = Mode { durable: false, savepoint: false };

/// A job waiting for the writer.
struct Queued {
    mode: Mode,
    job: Job,
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Queued>>>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Vec<std::sync::Mutex<Connection>>>,
    next_reader: AtomicUsize,
    wake: Arc<Wakeups>,
    /// How the writer's commits went, for `/ready`.
    health: Arc<WriteHealth>,
}

fn internal(e: rusqlite::Error) -> StoreError {
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
            StoreError::Unavailable(msg.clone().unwrap_or_else(|| f.to_string()))
        }
        e => StoreError::Internal(e.to_string()),
    }
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
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
            .map_err(|e| StoreError::Unavailable(format!("cannot create data dir {}: {e}", dir.display())))?;
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
        })
    }

    /// Runs `f` inside the next group transaction; answers once the commit is on disk.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<WakeKey>) -> Result<T> + Send + 'static,
    {
        self.queue(GUARDED, f).await
    }

    /// Runs `f` inside the next group transaction as `mode` says (see [`Mode`]).
    async fn queue<T, F>(&self, mode: Mode, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<WakeKey>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn, wake| {
            let res = f(conn, wake);
            let err = res.as_ref().err().cloned();
            let done: Completion = Box::new(move |commit_err| {
                let _ = tx.send(match commit_err {
                    None => res,
                    Some(e) => Err(e.clone()),
                });
            });
            (err, done)
        });
        let sender = self.jobs.lock().expect("jobs lock poisoned").clone();
        let sender = sender.ok_or_else(|| StoreError::Unavailable("the store is shutting down".into()))?;
        sender
            .send(Queued { mode, job })
            .await
            .map_err(|_| StoreError::Unavailable("the store writer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the write could not be committed".into()))?
    }

    /// Acks in the given write mode (durable when answered, lazy when not).
    async fn ack_in(
        &self,
        mode: Mode,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        now: Millis,
    ) -> Result<Vec<Acked>> {
        let (tenant, recipient) = (tenant.to_owned(), recipient.to_owned());
        self.queue(mode, move |c, _| {
            let mut st = c
                .prepare_cached(&format!(
                    "UPDATE deliveries SET state = 'acked', acked_at = ?4, updated_at = ?4, due_at = NULL, \
                     lease_expires_at = NULL WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 \
                     AND {OPEN} RETURNING created_at"
                ))
                .map_err(internal)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let created: Option<i64> =
                    st.query_row(params![tenant, id, recipient, now], |r| r.get(0)).optional().map_err(internal)?;
                if let Some(created_at) = created {
                    out.push(Acked { id, created_at });
                }
            }
            Ok(out)
        })
        .await
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
fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(internal)?;
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

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Queued>, wake: &Wakeups, health: &WriteHealth) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_GROUP);
    // `open` leaves the connection at `synchronous = FULL`.
    let mut synced = true;
    let mut keys: Vec<WakeKey> = Vec::new();
    let mut done: Vec<Completion> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        // A group with any durable job fsyncs at commit (FULL); a group of leases alone does
        // not (NORMAL: WAL frames written, synced by the next FULL commit or checkpoint).
        // Measured on the `latency` workload: a lease no longer waits for a second fsync
        // after the send's own (see docs/bench/IMPROVEMENTS.md).
        let durable = batch.iter().any(|q| q.mode.durable);
        if durable != synced {
            let pragma = if durable { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" };
            match conn.execute_batch(pragma) {
                Ok(()) => synced = durable,
                // Stay safe: if FULL cannot be set back, the group is not run (its callers
                // hear the write was not committed) rather than committed without fsync.
                Err(e) if durable => {
                    tracing::error!(error = %e, "cannot restore synchronous = FULL; refusing the group");
                    health.failed(&StoreError::Unavailable(format!("cannot restore synchronous = FULL: {e}")));
                    batch.clear();
                    continue;
                }
                Err(_) => {}
            }
        }
        let mut unavailable = None;
        let changes = conn.total_changes();
        let commit = run_group(&conn, &mut batch, &mut keys, &mut done, &mut unavailable);
        // A job the disk refused (full, read-only, I/O error) counts even if the rest of its
        // group committed: the next write of that size will fail too. A commit that changed
        // no row (an expiry pass with nothing to expire) wrote nothing, so proves nothing.
        match unavailable.as_ref().or(commit.as_ref().err()) {
            Some(e) => health.failed(e),
            None if conn.total_changes() > changes => health.committed(),
            None => {}
        }
        // Wake before answering: a caller that has its answer may rely on consumers having
        // been signalled (the suite's `a_commit_wakes_the_recipient` does).
        if commit.is_ok() && !keys.is_empty() {
            keys.sort_unstable();
            keys.dedup();
            wake.wake(keys.iter());
        }
        keys.clear();
        for c in done.drain(..) {
            c(commit.as_ref().err());
        }
    }
    // The channel closed: every queued job has run. Checkpoint so the WAL does not linger.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// Runs one statement through the connection's statement cache. The writer's savepoints go
/// through it: rusqlite's `Savepoint` parses its SQL anew for every job.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs and commits one group. `unavailable` receives the first error of a job that failed
/// because the store could not write (as opposed to, say, a name already taken).
fn run_group(
    conn: &Connection,
    batch: &mut Vec<Queued>,
    keys: &mut Vec<WakeKey>,
    done: &mut Vec<Completion>,
    unavailable: &mut Option<StoreError>,
) -> Result<()> {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        // Dropping the jobs drops their answer channels: each caller hears that its write
        // was not committed.
        batch.clear();
        return Err(internal(e));
    }
    let mut failure = None;
    for Queued { mode, job } in batch.drain(..) {
        if failure.is_some() {
            continue; // dropped unanswered: the caller hears the write was not committed
        }
        let mut job_keys = Vec::new();
        if mode.savepoint
            && let Err(e) = exec(conn, "SAVEPOINT job")
        {
            failure = Some(internal(e));
            continue;
        }
        let (err, completion) = job(conn, &mut job_keys);
        done.push(completion);
        let ok = err.is_none();
        if !mode.savepoint
            && let Some(e) = &err
        {
            // Its partial changes cannot be undone alone: nothing in the group commits. A
            // store that cannot write is logged once, as a change of its health (below).
            if matches!(e, StoreError::Unavailable(_)) {
                tracing::debug!(error = %e, "a write without a savepoint failed; rolling back its whole group");
            } else {
                tracing::error!(error = %e, "a write without a savepoint failed; rolling back its whole group");
            }
            failure = Some(StoreError::Unavailable("the write could not be committed; retry".into()));
        }
        if let Some(e @ StoreError::Unavailable(_)) = err
            && unavailable.is_none()
        {
            *unavailable = Some(e);
        }
        if !mode.savepoint {
            if ok {
                keys.extend(job_keys);
            }
            continue;
        }
        // A failed job's savepoint is rolled back: it changes nothing.
        let end = if ok {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        match end {
            Ok(()) if ok => keys.extend(job_keys),
            Ok(()) => {}
            Err(e) => failure = Some(internal(e)),
        }
    }
    if let Some(e) = failure {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    exec(conn, "COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        internal(e)
    })
}

fn agent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRecord> {
    let caps: String = r.get(6)?;
    let metadata: Option<String> = r.get(7)?;
    Ok(AgentRecord {
        tenant: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        version: r.get(4)?,
        endpoint: r.get(5)?,
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        metadata: metadata.and_then(|m| serde_json::from_str(&m).ok()),
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        last_seen_at: r.get(10)?,
    })
}

/// The due deliveries of one recipient with their messages, in accept order.
///
/// `LIMIT ?4 + 0`, not `LIMIT ?4`: SQLite plans with a bound LIMIT's value, so a new value
/// (a stream's room changes from lease to lease) re-prepares the statement on every run,
/// which callgrind showed as 8% of the hub's instructions.
fn lease_due_sql() -> String {
    format!(
        "SELECT d.seq, d.attempts, d.expires_at, {m_cols} FROM deliveries d \
         JOIN messages m ON m.tenant_id = d.tenant_id AND m.id = d.message_id \
         WHERE d.tenant_id = ?1 AND d.recipient = ?2 AND {OPEN} AND d.due_at <= ?3 \
         ORDER BY d.seq LIMIT ?4 + 0",
        m_cols = MESSAGE_COLS.split(", ").map(|col| format!("m.{col}")).collect::<Vec<_>>().join(", "),
    )
}

const AGENT_COLS: &str =
    "tenant_id, id, name, description, version, endpoint, capabilities, metadata, created_at, updated_at, last_seen_at";
const MESSAGE_COLS: &str = "tenant_id, id, sender, recipient, parts, metadata, conversation_id, correlation_id, \
     in_reply_to, idempotency_key, created_at, expires_at";

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRecord> {
    message_from_row_at(r, 0)
}

/// A message whose [`MESSAGE_COLS`] start at column `at`.
fn message_from_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        tenant: r.get(at)?,
        id: r.get(at + 1)?,
        sender: r.get(at + 2)?,
        to: r.get(at + 3)?,
        parts: r.get(at + 4)?,
        metadata: r.get(at + 5)?,
        conversation_id: r.get(at + 6)?,
        correlation_id: r.get(at + 7)?,
        in_reply_to: r.get(at + 8)?,
        idempotency_key: r.get(at + 9)?,
        created_at: r.get(at + 10)?,
        expires_at: r.get(at + 11)?,
    })
}

fn subscription_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRecord> {
    Ok(SubscriptionRecord { tenant: r.get(0)?, topic: r.get(1)?, agent_id: r.get(2)?, created_at: r.get(3)? })
}

fn state_of(s: &str) -> rusqlite::Result<DeliveryState> {
    DeliveryState::parse(s)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, format!("state {s}"), rusqlite::types::Type::Text))
}

fn recipients_of(conn: &Connection, tenant: &str, id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st =
        conn.prepare_cached("SELECT recipient FROM deliveries WHERE tenant_id = ?1 AND message_id = ?2 ORDER BY seq")?;
    let rows = st.query_map(params![tenant, id], |r| r.get(0))?;
    rows.collect()
}

fn to_json(v: &serde_json::Value) -> String {
    v.to_string()
}

fn accept_one(conn: &Connection, m: &NewMessage, keys: &mut Vec<WakeKey>) -> rusqlite::Result<AcceptOutcome> {
    if let Some(key) = &m.idempotency_key {
        let mut st = conn.prepare_cached(
            "SELECT id, request_hash, created_at FROM messages WHERE tenant_id = ?1 AND sender = ?2 AND idempotency_key = ?3",
        )?;
        let found: Option<(String, String, i64)> =
            st.query_row(params![m.tenant, m.sender, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
        if let Some((id, hash, created_at)) = found {
            if hash != m.request_hash {
                return Ok(AcceptOutcome::KeyReused { id });
            }
            let recipients = recipients_of(conn, &m.tenant, &id)?;
            return Ok(AcceptOutcome::Duplicate { id, recipients, created_at });
        }
    }
    let mut st = conn.prepare_cached(
        "INSERT INTO messages (tenant_id, id, sender, recipient, parts, metadata, conversation_id, correlation_id, \
         in_reply_to, idempotency_key, request_hash, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    st.execute(params![
        m.tenant,
        m.id,
        m.sender,
        m.to,
        m.parts,
        m.metadata,
        m.conversation_id,
        m.correlation_id,
        m.in_reply_to,
        m.idempotency_key,
        m.request_hash,
        m.created_at,
        m.expires_at
    ])?;
    let mut st = conn.prepare_cached(
        "INSERT INTO deliveries (tenant_id, message_id, recipient, state, attempts, due_at, created_at, updated_at, expires_at, push) \
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4, ?5, ?6)",
    )?;
    for r in &m.recipients {
        st.execute(params![m.tenant, m.id, r, m.created_at, m.expires_at, m.push_recipients.contains(r)])?;
        keys.push((m.tenant.clone(), r.clone()));
    }
    Ok(AcceptOutcome::Accepted { id: m.id.clone(), recipients: m.recipients.clone(), created_at: m.created_at })
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
                    "INSERT OR IGNORE INTO tokens (hash, tenant_id, principal, created_at) VALUES (?1, ?2, 'admin', ?3)",
                    params![admin_token_hash, switchboard_core::DEFAULT_TENANT, now],
                )
                .map_err(internal)?;
            }
            Ok(!exists)
        })
        .await
    }

    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        let hash = token_hash.to_owned();
        self.read(move |c| {
            let mut st =
                c.prepare_cached("SELECT tenant_id, principal FROM tokens WHERE hash = ?1").map_err(internal)?;
            let row: Option<(String, String)> =
                st.query_row([hash], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(internal)?;
            Ok(row.and_then(|(tenant, p)| {
                let kind = if p == "admin" {
                    PrincipalKind::Admin
                } else {
                    PrincipalKind::Agent(p.strip_prefix("agent:")?.to_owned())
                };
                Some(Principal { tenant, kind })
            }))
        })
        .await
    }

    async fn create_agent(&self, a: AgentRecord, key_hash: String) -> Result<()> {
        self.write(move |c, _| {
            let caps = serde_json::to_string(&a.capabilities).map_err(|e| StoreError::Internal(e.to_string()))?;
            let res = c.execute(
                &format!("INSERT INTO agents ({AGENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    a.tenant,
                    a.id,
                    a.name,
                    a.description,
                    a.version,
                    a.endpoint,
                    caps,
                    a.metadata.as_ref().map(to_json),
                    a.created_at,
                    a.updated_at,
                    a.last_seen_at
                ],
            );
            match res {
                Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(StoreError::Conflict(format!(
                        "an agent named `{}` already exists in this tenant",
                        a.name
                    )));
                }
                r => r.map_err(internal)?,
            };
            for cap in &a.capabilities {
                c.execute(
                    "INSERT INTO agent_capabilities (tenant_id, name, agent_id) VALUES (?1, ?2, ?3)",
                    params![a.tenant, cap.name, a.id],
                )
                .map_err(internal)?;
            }
            c.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key_hash, a.tenant, format!("agent:{}", a.id), a.created_at],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn get_agent(&self, tenant: &str, id: &str) -> Result<Option<AgentRecord>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE tenant_id = ?1 AND id = ?2"))
                .map_err(internal)?;
            st.query_row(params![tenant, id], agent_from_row).optional().map_err(internal)
        })
        .await
    }

    async fn list_agents(&self, tenant: &str, f: AgentFilter) -> Result<Vec<AgentRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let after = f.after.unwrap_or_default();
            let limit = f.limit.max(1) as i64;
            let (sql, cap) = match f.capability {
                Some(cap) => (
                    format!(
                        "SELECT {} FROM agents a JOIN agent_capabilities k ON k.tenant_id = a.tenant_id AND k.agent_id = a.id \
                         WHERE a.tenant_id = ?1 AND a.id > ?2 AND k.name = ?4 ORDER BY a.id LIMIT ?3",
                        AGENT_COLS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
                    ),
                    cap,
                ),
                None => (
                    format!("SELECT {AGENT_COLS} FROM agents WHERE tenant_id = ?1 AND id > ?2 AND ?4 = '' ORDER BY id LIMIT ?3"),
                    String::new(),
                ),
            };
            let mut st = c.prepare_cached(&sql).map_err(internal)?;
            let rows = st.query_map(params![tenant, after, limit, cap], agent_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn update_agent(&self, a: AgentRecord) -> Result<Option<AgentRecord>> {
        self.write(move |c, _| {
            let caps = serde_json::to_string(&a.capabilities).map_err(|e| StoreError::Internal(e.to_string()))?;
            let n = c
                .execute(
                    "UPDATE agents SET name = ?3, description = ?4, version = ?5, endpoint = ?6, capabilities = ?7, \
                     metadata = ?8, updated_at = ?9 WHERE tenant_id = ?1 AND id = ?2",
                    params![
                        a.tenant,
                        a.id,
                        a.name,
                        a.description,
                        a.version,
                        a.endpoint,
                        caps,
                        a.metadata.as_ref().map(to_json),
                        a.updated_at
                    ],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        StoreError::Conflict(format!("an agent named `{}` already exists in this tenant", a.name))
                    }
                    e => internal(e),
                })?;
            if n == 0 {
                return Ok(None);
            }
            c.execute("DELETE FROM agent_capabilities WHERE tenant_id = ?1 AND agent_id = ?2", params![a.tenant, a.id])
                .map_err(internal)?;
            for cap in &a.capabilities {
                c.execute(
                    "INSERT INTO agent_capabilities (tenant_id, name, agent_id) VALUES (?1, ?2, ?3)",
                    params![a.tenant, cap.name, a.id],
                )
                .map_err(internal)?;
            }
            c.query_row(
                &format!("SELECT {AGENT_COLS} FROM agents WHERE tenant_id = ?1 AND id = ?2"),
                params![a.tenant, a.id],
                agent_from_row,
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn delete_agent(&self, tenant: &str, id: &str, now: Millis) -> Result<bool> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute("DELETE FROM agents WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])
                .map_err(internal)?;
            if n == 0 {
                return Ok(false);
            }
            let principal = format!("agent:{id}");
            c.execute("DELETE FROM agent_capabilities WHERE tenant_id = ?1 AND agent_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute("DELETE FROM tokens WHERE tenant_id = ?1 AND principal = ?2", params![tenant, principal])
                .map_err(internal)?;
            c.execute("DELETE FROM topic_subscriptions WHERE tenant_id = ?1 AND agent_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute("DELETE FROM agent_push WHERE tenant_id = ?1 AND agent_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute(
                &format!(
                    "UPDATE deliveries SET state = 'dead', due_at = NULL, updated_at = ?3, \
                     last_error = 'the recipient agent was deleted' \
                     WHERE tenant_id = ?1 AND recipient = ?2 AND {OPEN}"
                ),
                params![tenant, principal, now],
            )
            .map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn touch_agents(&self, seen: Vec<(String, String, Millis)>) -> Result<()> {
        self.write(move |c, _| {
            let mut st = c
                .prepare_cached(
                    "UPDATE agents SET last_seen_at = max(coalesce(last_seen_at, 0), ?3) WHERE tenant_id = ?1 AND id = ?2",
                )
                .map_err(internal)?;
            for (t, id, at) in seen {
                st.execute(params![t, id, at]).map_err(internal)?;
            }
            Ok(())
        })
        .await
    }

    async fn outstanding(&self, tenant: &str, recipients: &[String]) -> Result<Vec<(String, i64)>> {
        let tenant = tenant.to_owned();
        let recipients = recipients.to_vec();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT count(*) FROM deliveries WHERE tenant_id = ?1 AND recipient = ?2 AND {OPEN}"
                ))
                .map_err(internal)?;
            recipients
                .into_iter()
                .map(|r| {
                    let n: i64 = st.query_row(params![tenant, r], |row| row.get(0)).map_err(internal)?;
                    Ok((r, n))
                })
                .collect()
        })
        .await
    }

    async fn subscribe(
        &self,
        tenant: &str,
        topic: &str,
        agent_id: &str,
        now: Millis,
    ) -> Result<Option<(SubscriptionRecord, bool)>> {
        let (tenant, topic, agent_id) = (tenant.to_owned(), topic.to_owned(), agent_id.to_owned());
        // One writer: the agent cannot be deleted between the check and the insert.
        self.write(move |c, _| {
            let registered = c
                .prepare_cached("SELECT 1 FROM agents WHERE tenant_id = ?1 AND id = ?2")
                .and_then(|mut st| st.query_row(params![tenant, agent_id], |_| Ok(())).optional())
                .map_err(internal)?
                .is_some();
            if !registered {
                return Ok(None);
            }
            let created = c
                .prepare_cached(
                    "INSERT INTO topic_subscriptions (tenant_id, topic, agent_id, created_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO NOTHING",
                )
                .and_then(|mut st| st.execute(params![tenant, topic, agent_id, now]))
                .map_err(internal)?
                == 1;
            let record = c
                .prepare_cached(
                    "SELECT tenant_id, topic, agent_id, created_at FROM topic_subscriptions \
                     WHERE tenant_id = ?1 AND topic = ?2 AND agent_id = ?3",
                )
                .and_then(|mut st| st.query_row(params![tenant, topic, agent_id], subscription_from_row))
                .map_err(internal)?;
            Ok(Some((record, created)))
        })
        .await
    }

    async fn unsubscribe(&self, tenant: &str, topic: &str, agent_id: &str) -> Result<bool> {
        let (tenant, topic, agent_id) = (tenant.to_owned(), topic.to_owned(), agent_id.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute(
                    "DELETE FROM topic_subscriptions WHERE tenant_id = ?1 AND topic = ?2 AND agent_id = ?3",
                    params![tenant, topic, agent_id],
                )
                .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn topic_subscribers(
        &self,
        tenant: &str,
        topic: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>> {
        let (tenant, topic) = (tenant.to_owned(), topic.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT tenant_id, topic, agent_id, created_at FROM topic_subscriptions \
                     WHERE tenant_id = ?1 AND topic = ?2 AND agent_id > ?3 ORDER BY agent_id LIMIT ?4",
                )
                .map_err(internal)?;
            let after = after.unwrap_or_default();
            let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
            let rows = st.query_map(params![tenant, topic, after, limit], subscription_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn topic_recipients(&self, tenant: &str, topic: &str) -> Result<Vec<TopicRecipient>> {
        let (tenant, topic) = (tenant.to_owned(), topic.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT s.agent_id, a.endpoint IS NOT NULL FROM topic_subscriptions s \
                     JOIN agents a ON a.tenant_id = s.tenant_id AND a.id = s.agent_id \
                     WHERE s.tenant_id = ?1 AND s.topic = ?2 ORDER BY s.agent_id",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![tenant, topic], |r| Ok(TopicRecipient { agent_id: r.get(0)?, push: r.get(1)? }))
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn topics(&self, tenant: &str) -> Result<Vec<TopicSummary>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT topic, count(*) FROM topic_subscriptions WHERE tenant_id = ?1 GROUP BY topic ORDER BY topic",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![tenant], |r| Ok(TopicSummary { name: r.get(0)?, subscribers: r.get(1)? }))
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn accept(&self, messages: Vec<NewMessage>) -> Result<Vec<AcceptOutcome>> {
        self.queue(HOT, move |c, keys| {
            let mut out = Vec::with_capacity(messages.len());
            for m in &messages {
                out.push(accept_one(c, m, keys).map_err(internal)?);
            }
            Ok(out)
        })
        .await
    }

    async fn get_message(&self, tenant: &str, id: &str) -> Result<Option<(MessageRecord, Vec<DeliveryRecord>)>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {MESSAGE_COLS} FROM messages WHERE tenant_id = ?1 AND id = ?2"))
                .map_err(internal)?;
            let Some(m) = st.query_row(params![tenant, id], message_from_row).optional().map_err(internal)? else {
                return Ok(None);
            };
            let mut st = c
                .prepare_cached(
                    "SELECT recipient, state, attempts, updated_at, delivered_at, acked_at, lease_expires_at, last_error \
                     FROM deliveries WHERE tenant_id = ?1 AND message_id = ?2 ORDER BY seq",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![tenant, id], |r| {
                    let state: String = r.get(1)?;
                    Ok(DeliveryRecord {
                        recipient: r.get(0)?,
                        state: state_of(&state)?,
                        attempts: r.get(2)?,
                        updated_at: r.get(3)?,
                        delivered_at: r.get(4)?,
                        acked_at: r.get(5)?,
                        lease_expires_at: r.get(6)?,
                        last_error: r.get(7)?,
                    })
                })
                .map_err(internal)?;
            let d = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)?;
            Ok(Some((m, d)))
        })
        .await
    }

    async fn lease(&self, req: LeaseRequest) -> Result<Vec<Leased>> {
        // Lazy: a lease lost in a crash only means the message is delivered again, which
        // at-least-once allows; the consumer need not wait for a second fsync after the send's.
        self.queue(LAZY, move |c, _| {
            // The due deliveries and their messages in one statement, not one read per message.
            let mut st = c.prepare_cached(&lease_due_sql()).map_err(internal)?;
            let due: Vec<(i64, u32, Option<i64>, MessageRecord)> = st
                .query_map(params![req.tenant, req.recipient, req.now, req.limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, message_from_row_at(r, 3)?))
                })
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)?;
            let lease_until = req.now + req.lease_ms;
            let mut out = Vec::with_capacity(due.len());
            for (seq, attempts, expires_at, message) in due {
                if expires_at.is_some_and(|e| e <= req.now) {
                    c.prepare_cached("UPDATE deliveries SET state = 'expired', due_at = NULL, updated_at = ?2 WHERE seq = ?1")
                        .and_then(|mut s| s.execute(params![seq, req.now]))
                        .map_err(internal)?;
                    continue;
                }
                if attempts >= req.max_attempts {
                    c.prepare_cached(
                        "UPDATE deliveries SET state = 'dead', due_at = NULL, updated_at = ?2, \
                         last_error = 'not acknowledged after the maximum number of attempts' WHERE seq = ?1",
                    )
                    .and_then(|mut s| s.execute(params![seq, req.now]))
                    .map_err(internal)?;
                    continue;
                }
                c.prepare_cached(
                    "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, due_at = ?2, lease_expires_at = ?2, \
                     delivered_at = coalesce(delivered_at, ?3), updated_at = ?3 WHERE seq = ?1",
                )
                .and_then(|mut s| s.execute(params![seq, lease_until, req.now]))
                .map_err(internal)?;
                out.push(Leased { message, attempt: attempts + 1, lease_expires_at: lease_until });
            }
            Ok(out)
        })
        .await
    }

    async fn ack(&self, tenant: &str, recipient: &str, ids: Vec<String>, now: Millis) -> Result<Vec<Acked>> {
        self.ack_in(HOT, tenant, recipient, ids, now).await
    }

    async fn ack_unanswered(&self, tenant: &str, recipient: &str, ids: Vec<String>, now: Millis) -> Result<Vec<Acked>> {
        self.ack_in(LAZY, tenant, recipient, ids, now).await
    }

    async fn nack(
        &self,
        tenant: &str,
        recipient: &str,
        ids: Vec<String>,
        due_at: Millis,
        now: Millis,
    ) -> Result<Vec<String>> {
        let (tenant, recipient) = (tenant.to_owned(), recipient.to_owned());
        self.write(move |c, keys| {
            let mut st = c
                .prepare_cached(&format!(
                    "UPDATE deliveries SET state = 'pending', due_at = ?4, lease_expires_at = NULL, updated_at = ?5 \
                     WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 AND {OPEN}"
                ))
                .map_err(internal)?;
            let mut out = Vec::new();
            for id in ids {
                if st.execute(params![tenant, id, recipient, due_at, now]).map_err(internal)? > 0 {
                    out.push(id);
                }
            }
            if !out.is_empty() && due_at <= now {
                keys.push((tenant, recipient));
            }
            Ok(out)
        })
        .await
    }

    async fn expire(&self, now: Millis) -> Result<u64> {
        self.write(move |c, _| {
            let n = c
                .execute(
                    &format!(
                        "UPDATE deliveries SET state = 'expired', due_at = NULL, lease_expires_at = NULL, updated_at = ?1 \
                         WHERE {OPEN} AND expires_at IS NOT NULL AND expires_at <= ?1"
                    ),
                    params![now],
                )
                .map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }

    async fn due_recipients(&self, after: Millis, upto: Millis) -> Result<Vec<WakeKey>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT DISTINCT tenant_id, recipient FROM deliveries \
                     WHERE {OPEN} AND due_at > ?1 AND due_at <= ?2"
                ))
                .map_err(internal)?;
            let rows = st.query_map(params![after, upto], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts> {
        self.read(|c| {
            c.query_row(
                &format!(
                    "SELECT coalesce(sum(state = 'pending'), 0), coalesce(sum(state != 'pending'), 0) \
                     FROM deliveries WHERE {OPEN}"
                ),
                [],
                |r| Ok(DeliveryCounts { pending: r.get(0)?, in_flight: r.get(1)? }),
            )
            .map_err(internal)
        })
        .await
    }

    fn wakeups(&self) -> &Wakeups {
        &self.wake
    }

    fn push(&self) -> Option<&dyn crate::push::PushStore> {
        Some(self)
    }

    async fn close(&self) {
        self.jobs.lock().expect("jobs lock poisoned").take();
        let handle = self.writer.lock().expect("writer lock poisoned").take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

mod push;

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
        assert_eq!(version, 2);
    }

    /// Leasing with a different limit each time must not re-prepare the statement.
    #[test]
    fn lease_statement_is_prepared_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open(&dir.path().join("x.db")).expect("open");
        conn.execute_batch(include_str!("schema.sql")).expect("schema");
        for limit in 1..20_i64 {
            let mut st = conn.prepare_cached(&lease_due_sql()).expect("prepare");
            let rows =
                st.query_map(params!["t", "agent:a", limit * 1000, limit], |r| r.get::<_, i64>(0)).expect("query");
            assert_eq!(rows.count(), 0);
        }
        let st = conn.prepare_cached(&lease_due_sql()).expect("prepare");
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
        assert_eq!(st.get_status(rusqlite::StatementStatus::Run), 19);
    }
}
