//! PostgreSQL failures and what they mean to callers: a lost connection or a database that
//! cannot take writes is `Unavailable`, a lost deadlock is run again, the rest is `Internal`.

use std::future::Future;

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::{Conflict, Result, StoreError};

/// A transaction that lost a deadlock is run again this many times in all.
pub(super) const ATTEMPTS: u32 = 3;

/// A failure inside this module: the driver's error is kept until the end so that deadlocks
/// can be retried and the rest classified once, in [`Fail::into_store`].
#[derive(Debug)]
pub(super) enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<PoolError> for Fail {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => Fail::Db(e),
            PoolError::Timeout(_) => Fail::Store(StoreError::unavailable(
                "timed out getting a database connection; is PostgreSQL up and reachable?",
            )),
            PoolError::Closed => Fail::Store(StoreError::unavailable("the store is shutting down")),
            e => Fail::Store(StoreError::unavailable(e.to_string())),
        }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    /// Lost a deadlock or a serialization conflict: running the transaction again may work.
    pub(super) fn retryable(&self) -> bool {
        matches!(self, Fail::Db(e) if e.code().is_some_and(|c|
            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE))
    }

    pub(super) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => classify(&e),
        }
    }
}

/// A bug or corrupt data, found in this module.
pub(super) fn internal(what: String) -> Fail {
    Fail::Store(StoreError::Internal(what))
}

/// Maps a driver error to the store's error kinds: anything that says "the database cannot
/// be reached or cannot take writes now" is `Unavailable` (503, retry later), a broken
/// uniqueness rule is `Conflict`, the rest is `Internal`.
pub(super) fn classify(e: &tokio_postgres::Error) -> StoreError {
    if e.is_closed() {
        return StoreError::unavailable("the connection to PostgreSQL was lost");
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            let constraint = db.constraint().unwrap_or("unknown").to_owned();
            return StoreError::Conflict(Conflict::Unique { constraint });
        }
        let class = &code.code()[..2];
        // 08 connection, 53 resources (disk full, too many connections), 57 operator
        // intervention (shutdown), 28 authorization, 3D unknown database, 25006 read-only
        // (a standby), 40 deadlock / serialization after our retries: all mean "not now".
        if matches!(class, "08" | "53" | "57" | "28" | "3D" | "40") || *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            return StoreError::unavailable(db.message().to_owned());
        }
        return StoreError::Internal(db.message().to_owned());
    }
    // No SQLSTATE: either the server could not be talked to (I/O, connect, timeout) or a
    // value did not convert. Only the latter is our bug.
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let text = e.to_string();
    if io || text.contains("timeout") || text.contains("connect") || text.contains("closed") {
        StoreError::unavailable(describe(e))
    } else {
        StoreError::Internal(describe(e))
    }
}

/// The driver's error with its cause: its own `Display` says only "db error" or "error
/// connecting to server", which tells an operator nothing.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// Runs `op` again while it loses deadlocks (the other transaction went through, so a retry
/// usually succeeds), at most [`ATTEMPTS`] times.
pub(super) async fn retrying<T, F, Fut>(op: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, Fail>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.retryable() && attempt < ATTEMPTS => attempt += 1,
            r => return r.map_err(Fail::into_store),
        }
    }
}
