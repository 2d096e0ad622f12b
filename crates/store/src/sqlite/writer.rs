//! Group commit: one writer thread owns the only write connection and commits everything
//! queued as one transaction.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{SqliteStore, internal};
use crate::health::WriteHealth;
use crate::{Result, StoreError, WakeKey, Wakeups};

/// Most jobs committed in one transaction. Bounds the latency a single commit adds to the
/// first job in it; at 1 KiB messages a group of 1,024 is about one megabyte of WAL.
const MAX_GROUP: usize = 1024;
/// Jobs waiting for the writer; senders wait when it is full (back-pressure, not memory).
pub(super) const QUEUE: usize = 8192;

type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// A job returns its error (a copy; its caller hears the original) and how to answer it.
type Job = Box<dyn FnOnce(&Connection, &mut Vec<WakeKey>) -> (Option<StoreError>, Completion) + Send>;

/// How a write joins its group.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mode {
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
pub(super) const GUARDED: Mode = Mode { durable: true, savepoint: true };
/// Accepts and acks: fsync'd before the answer, no savepoint.
pub(super) const HOT: Mode = Mode { durable: true, savepoint: false };
/// Leases and unanswered acks: done after the commit, fsync'd by the next durable commit; no
/// savepoint.
pub(super) const LAZY: Mode = Mode { durable: false, savepoint: false };

/// A job waiting for the writer.
pub(super) struct Queued {
    mode: Mode,
    job: Job,
}

impl SqliteStore {
    /// Runs `f` inside the next group transaction; answers once the commit is on disk.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<WakeKey>) -> Result<T> + Send + 'static,
    {
        self.queue(GUARDED, f).await
    }

    /// Runs `f` inside the next group transaction as `mode` says (see [`Mode`]).
    pub(super) async fn queue<T, F>(&self, mode: Mode, f: F) -> Result<T>
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
        let sender = sender.ok_or_else(|| StoreError::unavailable("the store is shutting down"))?;
        sender.send(Queued { mode, job }).await.map_err(|_| StoreError::unavailable("the store writer stopped"))?;
        rx.await.map_err(|_| StoreError::unavailable("the write could not be committed"))?
    }
}

pub(super) fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Queued>, wake: &Wakeups, health: &WriteHealth) {
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
                    health.failed(&StoreError::unavailable(format!("cannot restore synchronous = FULL: {e}")));
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
            if matches!(e, StoreError::Unavailable { .. }) {
                tracing::debug!(error = %e, "a write without a savepoint failed; rolling back its whole group");
            } else {
                tracing::error!(error = %e, "a write without a savepoint failed; rolling back its whole group");
            }
            failure = Some(StoreError::unavailable("the write could not be committed; retry"));
        }
        if let Some(e @ StoreError::Unavailable { .. }) = err
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

#[cfg(test)]
mod tests {
    //! What a group commit promises its callers, with jobs that fail on purpose: a job in a
    //! savepoint that fails changes nothing and its group still commits; a job without one
    //! that fails takes its whole group down, and no caller in it hears "committed" (a 202
    //! answered for a write that was rolled back would be a lie). Found missing by
    //! `cargo mutants` (docs/testing.md).

    use std::time::Duration;

    use super::*;
    use crate::Store;

    /// Rows of the scratch table, read on a reader connection (what other requests see).
    async fn rows(s: &SqliteStore) -> Vec<i64> {
        s.read(|c| {
            let mut st = c.prepare("SELECT x FROM scratch ORDER BY x").map_err(internal)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<i64>>>().map_err(internal)
        })
        .await
        .unwrap()
    }

    fn insert(x: i64, fail: bool) -> impl FnOnce(&Connection, &mut Vec<WakeKey>) -> Result<i64> + Send + 'static {
        move |c, _| {
            c.execute("INSERT INTO scratch (x) VALUES (?1)", [x]).map_err(internal)?;
            if fail { Err(StoreError::Internal(format!("job {x} fails after its write"))) } else { Ok(x) }
        }
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.write(|c, _| c.execute_batch("CREATE TABLE scratch (x INTEGER PRIMARY KEY)").map_err(internal))
            .await
            .unwrap();
        (dir, s)
    }

    /// A job that keeps the writer busy: it says when it runs, then waits for `go`.
    fn hold(
        running: oneshot::Sender<()>,
        go: std::sync::mpsc::Receiver<()>,
    ) -> impl FnOnce(&Connection, &mut Vec<WakeKey>) -> Result<()> + Send + 'static {
        move |_, _| {
            let _ = running.send(());
            go.recv_timeout(Duration::from_secs(10)).map_err(|_| StoreError::Internal("never let go".into()))
        }
    }

    /// Lets the holding job go once `n` jobs wait behind it: those form the next group.
    async fn release_when_queued(s: &SqliteStore, n: usize, go: std::sync::mpsc::Sender<()>) {
        let sender = s.jobs.lock().unwrap().clone().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while QUEUE - sender.capacity() < n {
            assert!(tokio::time::Instant::now() < deadline, "the jobs were not queued");
            tokio::task::yield_now().await;
        }
        go.send(()).unwrap();
    }

    /// `/ready` is 200 only while writes commit: a commit that changed nothing (an expiry pass
    /// with nothing to expire) writes nothing to disk, so it must not count as proof that the
    /// disk takes writes (issue 9: a full disk, every send failing, `/ready` 200).
    #[tokio::test]
    async fn only_a_commit_that_changed_a_row_counts_for_ready() {
        let (_dir, s) = store().await;
        assert_eq!(s.health.status().last_ok, None, "no row written yet");
        s.write(|_, _| Ok(())).await.unwrap();
        s.write(|c, _| c.execute("DELETE FROM scratch WHERE x = 42", []).map_err(internal)).await.unwrap();
        assert_eq!(s.health.status().last_ok, None, "commits that changed nothing prove nothing");
        s.queue(HOT, insert(1, false)).await.unwrap();
        assert!(s.health.status().last_ok.is_some(), "a commit that wrote a row counts");
        s.close().await;
    }

    #[tokio::test]
    async fn a_failed_job_in_a_savepoint_changes_nothing_and_its_group_commits() {
        let (_dir, s) = store().await;
        let ((running, running_rx), (go, go_rx)) = (oneshot::channel(), std::sync::mpsc::channel());
        // The others are queued only once the holding job runs, so they cannot join its group.
        let (held, (a, b, c, ())) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(s.write(hold(running, go_rx)), async {
                running_rx.await.unwrap();
                tokio::join!(
                    s.queue(GUARDED, insert(1, false)),
                    s.queue(GUARDED, insert(2, true)),
                    s.queue(GUARDED, insert(3, false)),
                    release_when_queued(&s, 3, go),
                )
            })
        })
        .await
        .expect("every caller is answered");
        held.unwrap();
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(StoreError::Internal(_))), "{b:?}");
        assert_eq!(c.unwrap(), 3);
        assert_eq!(rows(&s).await, [1, 3], "the failed job's own insert was undone, the others' kept");
        s.close().await;
    }

    #[tokio::test]
    async fn a_failed_job_without_a_savepoint_rolls_back_its_group_and_no_caller_hears_committed() {
        let (_dir, s) = store().await;
        let ((running, running_rx), (go, go_rx)) = (oneshot::channel(), std::sync::mpsc::channel());
        let (held, (a, b, c, d, ())) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(s.write(hold(running, go_rx)), async {
                running_rx.await.unwrap();
                tokio::join!(
                    s.queue(GUARDED, insert(1, false)),
                    s.queue(HOT, insert(2, false)),
                    s.queue(HOT, insert(3, true)),
                    s.queue(LAZY, insert(4, false)),
                    release_when_queued(&s, 4, go),
                )
            })
        })
        .await
        .expect("every caller is answered");
        held.unwrap();
        for (x, r) in [(1, &a), (2, &b), (4, &d)] {
            assert!(matches!(r, Err(StoreError::Unavailable { .. })), "job {x} was rolled back: {r:?}");
        }
        assert!(c.is_err(), "{c:?}");
        assert_eq!(rows(&s).await, Vec::<i64>::new(), "nothing of the group was committed");
        // The writer goes on: the next group commits.
        assert_eq!(s.queue(HOT, insert(5, false)).await.unwrap(), 5);
        assert_eq!(rows(&s).await, [5]);
        s.close().await;
    }
}
