//! Online backup and restore of the embedded store.
//!
//! [`backup`] runs `VACUUM INTO` on a connection of its own to the live database: SQLite
//! writes a consistent snapshot (one read transaction, as of its start) to a new file while
//! the hub goes on committing beside it (WAL readers do not block the writer). Every commit
//! that finished before the backup began is in the copy; nothing of a later one is. The copy
//! is compact (no free pages) and carries no WAL: it is a complete database file by itself.
//!
//! [`restore`] checks that a file is a Switchboard database that SQLite finds intact, and
//! installs it as `switchboard.db` of a data directory, atomically (a rename), refusing to
//! replace a database that is there unless told to.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// Why a backup or restore failed, said for the person running it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackupError(pub String);

type Result<T> = std::result::Result<T, BackupError>;

fn fail(s: impl Into<String>) -> BackupError {
    BackupError(s.into())
}

/// The database file's name in a data directory.
pub const DB_FILE: &str = "switchboard.db";

/// What a backup or a restore found in the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub path: PathBuf,
    pub bytes: u64,
    /// The schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    pub messages: i64,
    pub deliveries: i64,
    pub elapsed: Duration,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> BackupError {
    fail(format!("{what} {}: {e}", path.display()))
}

/// Copies the live database of `data_dir` to `dest`, which must not exist. `progress` is
/// called about once a second with the bytes written so far and the source's size.
pub fn backup(data_dir: &Path, dest: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Summary> {
    let started = Instant::now();
    let src = data_dir.join(DB_FILE);
    if !src.is_file() {
        return Err(fail(format!(
            "no database at {}: give the --data-dir that `switchboard serve` uses",
            src.display()
        )));
    }
    if dest.exists() {
        return Err(fail(format!("{} exists; choose a new file name (a backup never overwrites)", dest.display())));
    }
    let total = fs::metadata(&src).map(|m| m.len()).unwrap_or(0)
        + fs::metadata(data_dir.join(format!("{DB_FILE}-wal"))).map(|m| m.len()).unwrap_or(0);
    let conn = Connection::open_with_flags(&src, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| fail(format!("{}: {e}", src.display())))?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(|e| fail(e.to_string()))?;
    let dest_text = dest.to_str().ok_or_else(|| fail("the backup path is not UTF-8"))?.to_owned();
    // The copy runs on a thread of its own; this one reports the file growing.
    let copied = std::thread::scope(|s| {
        let copy = s.spawn(move || conn.execute("VACUUM INTO ?1", [dest_text]));
        let mut last = Instant::now();
        while !copy.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= Duration::from_secs(1) {
                last = Instant::now();
                progress(fs::metadata(dest).map(|m| m.len()).unwrap_or(0), total);
            }
        }
        copy.join()
    });
    match copied {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(fail(format!("backup to {} failed: {e}", dest.display()))),
        Err(_) => return Err(fail("the backup thread panicked")),
    }
    sync(dest)?;
    let summary = inspect(dest, started)?;
    progress(summary.bytes, total);
    Ok(summary)
}

/// Flushes a file and its directory to disk.
fn sync(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).map_err(|e| io("cannot sync", path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|f| f.sync_all()).map_err(|e| io("cannot sync", dir, e))?;
    }
    Ok(())
}

/// Checks that `path` is an intact Switchboard database and counts what it holds.
pub fn inspect(path: &Path, started: Instant) -> Result<Summary> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| fail(format!("{} is not a readable SQLite database: {e}", path.display())))?;
    if check != "ok" {
        return Err(fail(format!("{} is damaged: {check}", path.display())));
    }
    let count = |table: &str| -> Result<i64> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|_| fail(format!("{} is not a Switchboard database (it has no `{table}` table)", path.display())))
    };
    let (messages, deliveries) = (count("messages")?, count("deliveries")?);
    let schema_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
    let bytes = fs::metadata(path).map_err(|e| io("cannot read", path, e))?.len();
    Ok(Summary { path: path.to_owned(), bytes, schema_version, messages, deliveries, elapsed: started.elapsed() })
}

/// Installs the backup `src` as the database of `data_dir` (created if needed). An existing
/// database there is replaced only with `force` (the hub on it must be stopped first).
pub fn restore(src: &Path, data_dir: &Path, force: bool) -> Result<Summary> {
    let started = Instant::now();
    let checked = inspect(src, started)?;
    fs::create_dir_all(data_dir).map_err(|e| io("cannot create", data_dir, e))?;
    let dest = data_dir.join(DB_FILE);
    if dest.exists() && !force {
        return Err(fail(format!(
            "{} already holds a database; restore into an empty data dir, or stop its hub and add --force to replace it",
            dest.display()
        )));
    }
    let tmp = data_dir.join(format!("{DB_FILE}.restoring"));
    fs::copy(src, &tmp).map_err(|e| io("cannot copy to", &tmp, e))?;
    sync(&tmp)?;
    // The old database's WAL and shared memory belong to it, not to the copy.
    for suffix in ["-wal", "-shm"] {
        let stale = data_dir.join(format!("{DB_FILE}{suffix}"));
        if stale.exists() {
            fs::remove_file(&stale).map_err(|e| io("cannot remove", &stale, e))?;
        }
    }
    fs::rename(&tmp, &dest).map_err(|e| io("cannot install", &dest, e))?;
    sync(&dest)?;
    Ok(Summary { path: dest, elapsed: started.elapsed(), ..checked })
}
