//! Whether the store can commit writes now, for `/ready`.
//!
//! A node whose disk is full, or whose database has turned read-only, still answers reads,
//! so a ping alone calls it ready while every send fails. The writers record the outcome of
//! each commit here (on success a clock read and two relaxed atomics: the hot path's only
//! cost). `/ready` reads the result and, when the node has not written lately or its last
//! write failed, commits a small probe write to find out ([`WriteStatus::needs_probe`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use switchboard_core::time::{Millis, now_ms};

use crate::error::{Result, StoreError};

/// A node that last wrote this long ago probes before it answers `/ready`: a disk can fill,
/// or a database turn read-only, while nothing is sent.
pub const PROBE_WHEN_IDLE_MS: Millis = 10_000;
/// A failed write keeps `/ready` at 503 this long before a probe may clear it, so that a
/// probe small enough to fit does not hide the failure of a real write that just happened.
pub const FAILURE_HOLD_MS: Millis = 1_000;
/// At most one probe write in this interval, however often `/ready` is asked (it answers
/// anyone, so it must not turn into a write amplifier).
pub const PROBE_INTERVAL_MS: Millis = 1_000;

/// The latest failure to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// When writes started failing (the first failure since the last success).
    pub since: Millis,
    /// When the latest write failed.
    pub last: Millis,
    /// What the store said, e.g. "database or disk is full".
    pub reason: String,
}

/// What the store knows about its ability to commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStatus {
    /// When a write last committed, if one has since the store opened.
    pub last_ok: Option<Millis>,
    /// Set while the latest write failed; cleared by the next write that commits.
    pub failure: Option<WriteFailure>,
}

impl WriteStatus {
    /// Whether `/ready` should commit a probe write before it answers: the node has not
    /// written for [`PROBE_WHEN_IDLE_MS`], or its last write failed more than
    /// [`FAILURE_HOLD_MS`] ago (so a node that receives no traffic because it is not ready
    /// still notices when writes work again).
    pub fn needs_probe(&self, now: Millis) -> bool {
        match &self.failure {
            Some(f) => now - f.last >= FAILURE_HOLD_MS,
            None => self.last_ok.is_none_or(|at| now - at >= PROBE_WHEN_IDLE_MS),
        }
    }
}

/// The record a backend keeps of its commits. Shared between its writers and `/ready`.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// Mirrors `failure.is_some()`, so that a successful commit need not take the lock.
    failing: AtomicBool,
    /// When a write last committed; 0 before the first.
    last_ok: AtomicI64,
    failure: Mutex<Option<WriteFailure>>,
    /// When the last probe ran; the lock also makes concurrent probes wait for one.
    last_probe: tokio::sync::Mutex<Option<Millis>>,
}

impl WriteHealth {
    /// Records a commit that succeeded.
    pub fn committed(&self) {
        self.last_ok.store(now_ms(), Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) {
            self.recovered();
        }
    }

    #[cold]
    fn recovered(&self) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = failure.take() {
            self.failing.store(false, Ordering::Relaxed);
            tracing::warn!(failing_for_ms = now_ms() - f.since, "the store commits writes again; /ready answers 200");
        }
    }

    /// Records a write that could not be committed. Logs at WARN when writes start failing,
    /// not for every failure after that.
    pub fn failed(&self, error: &StoreError) {
        let text;
        let reason = match error {
            StoreError::Unavailable { reason } | StoreError::Internal(reason) => reason.as_str(),
            other => {
                text = other.to_string();
                text.as_str()
            }
        };
        let now = now_ms();
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match failure.as_mut() {
            Some(f) => {
                f.last = now;
                if f.reason != reason {
                    reason.clone_into(&mut f.reason);
                }
            }
            None => {
                tracing::warn!(reason, "the store cannot commit writes; /ready answers 503 until a write succeeds");
                *failure = Some(WriteFailure { since: now, last: now, reason: reason.to_owned() });
                self.failing.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The current status.
    pub fn status(&self) -> WriteStatus {
        let last_ok = self.last_ok.load(Ordering::Relaxed);
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone();
        WriteStatus { last_ok: (last_ok > 0).then_some(last_ok), failure }
    }

    /// Runs `write` as a probe and records its outcome, unless a probe ran within
    /// [`PROBE_INTERVAL_MS`] (then returns at once; concurrent callers wait for the one
    /// running and share its outcome).
    pub async fn probe(&self, write: impl Future<Output = Result<()>>) {
        let mut last = self.last_probe.lock().await;
        let now = now_ms();
        if last.is_some_and(|at| now - at < PROBE_INTERVAL_MS) {
            return;
        }
        *last = Some(now);
        match write.await {
            Ok(()) => self.committed(),
            Err(e) => self.failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_holds_until_a_commit_clears_it() {
        let h = WriteHealth::default();
        h.committed();
        assert!(h.status().failure.is_none());
        h.failed(&StoreError::unavailable("disk full"));
        h.failed(&StoreError::unavailable("disk still full"));
        let f = h.status().failure.expect("failing");
        assert_eq!(f.reason, "disk still full");
        assert!(f.since <= f.last);
        h.committed();
        assert!(h.status().failure.is_none());
    }

    #[test]
    fn probes_when_idle_or_after_the_hold() {
        let now = 1_000_000;
        let idle = WriteStatus { last_ok: Some(now - PROBE_WHEN_IDLE_MS), failure: None };
        assert!(idle.needs_probe(now));
        let busy = WriteStatus { last_ok: Some(now - 10), failure: None };
        assert!(!busy.needs_probe(now));
        assert!(WriteStatus::default().needs_probe(now));
        let fresh = WriteFailure { since: now - 5_000, last: now - 10, reason: "x".into() };
        let failing = WriteStatus { last_ok: Some(now - 5_000), failure: Some(fresh) };
        assert!(!failing.needs_probe(now));
        assert!(failing.needs_probe(now + FAILURE_HOLD_MS));
    }
}
