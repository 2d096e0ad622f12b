//! Per-endpoint concurrency and the circuit breaker, as a state machine over an explicit
//! clock: the dispatcher asks how many requests may start, each attempt reports how it ended.
//! Kept free of I/O so tests can walk it through a 30 s cooldown without waiting.

use switchboard_core::time::Millis;

/// When a failing endpoint is rested, from the node's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures in a row that open the circuit.
    pub failures: u32,
    /// How long an open circuit holds requests back before one probe is let through.
    pub cooldown_ms: u64,
    /// Requests in flight at once to one endpoint while the circuit is closed.
    pub per_endpoint: usize,
}

impl Policy {
    /// The policy the node's configuration sets.
    pub fn of(config: &crate::cfg::Config) -> Policy {
        Policy {
            failures: config.circuit_failures,
            cooldown_ms: config.circuit_cooldown_ms,
            per_endpoint: config.push_concurrency_per_endpoint,
        }
    }
}

/// How an attempt ended, as far as the circuit cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Success,
    Failure,
    /// 410 Gone disables the endpoint by itself; it says nothing about the endpoint's health.
    Gone,
}

/// What an attempt's end changed, for events and agent health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    /// The circuit opened (or a half-open probe failed and it opened again) after this many
    /// failures in a row.
    Opened(u32),
    /// A success after failures: the endpoint is healthy again.
    Recovered,
}

/// One endpoint's state on this node.
#[derive(Debug, Default)]
pub struct Circuit {
    consecutive_failures: u32,
    open_until: Option<Millis>,
    /// Requests started and not yet ended.
    pub in_flight: usize,
}

impl Circuit {
    /// Requests that may start now: the concurrency limit while closed, none while open, one
    /// probe once the cooldown is over (half-open).
    pub fn room(&self, now: Millis, policy: &Policy) -> usize {
        match self.open_until {
            Some(until) if until > now => 0,
            Some(_) => 1usize.saturating_sub(self.in_flight),
            None => policy.per_endpoint.saturating_sub(self.in_flight),
        }
    }

    /// Takes a slot for a request about to start, if [`Circuit::room`] has one. Asked again
    /// after each claim from the store, because the circuit may have opened meanwhile.
    pub fn start(&mut self, now: Millis, policy: &Policy) -> bool {
        let ok = self.room(now, policy) > 0;
        if ok {
            self.in_flight += 1;
        }
        ok
    }

    /// Records the end of a request; returns what changed and whether this was the first
    /// failure of a run (the `delivery.failing` event).
    pub fn end(&mut self, ended: Ended, now: Millis, policy: &Policy) -> (Change, bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match ended {
            Ended::Success => {
                let was_unhealthy = self.consecutive_failures > 0 || self.open_until.is_some();
                self.consecutive_failures = 0;
                self.open_until = None;
                (if was_unhealthy { Change::Recovered } else { Change::None }, false)
            }
            Ended::Gone => (Change::None, false),
            Ended::Failure => {
                self.consecutive_failures += 1;
                let first = self.consecutive_failures == 1;
                let probe_failed = self.open_until.is_some_and(|u| u <= now);
                if self.consecutive_failures >= policy.failures && (self.open_until.is_none() || probe_failed) {
                    self.open_until = Some(now + policy.cooldown_ms as i64);
                    (Change::Opened(self.consecutive_failures), first)
                } else {
                    (Change::None, first)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's defaults: 4 in flight per endpoint; 5 failures in a row open the circuit
    /// for 30 s, then one probe decides.
    fn defaults() -> Policy {
        Policy::of(&crate::cfg::Config::default())
    }

    fn fail(c: &mut Circuit, now: Millis, p: &Policy) -> Change {
        assert!(c.start(now, p), "a request may start at {now}");
        c.end(Ended::Failure, now, p).0
    }

    #[test]
    fn four_requests_fly_at_once_to_one_endpoint_by_default() {
        let p = defaults();
        let mut c = Circuit::default();
        assert_eq!(c.room(0, &p), 4);
        for _ in 0..4 {
            assert!(c.start(0, &p));
        }
        assert_eq!(c.room(0, &p), 0);
        assert!(!c.start(0, &p), "a fifth waits");
        assert_eq!(c.end(Ended::Success, 0, &p), (Change::None, false), "a healthy endpoint does not `recover`");
        assert_eq!(c.room(0, &p), 1);
    }

    #[test]
    fn five_failures_in_a_row_open_the_circuit_for_thirty_seconds_by_default() {
        let p = defaults();
        let mut c = Circuit::default();
        for t in 0..4 {
            assert_eq!(fail(&mut c, t, &p), Change::None, "failure {} keeps it closed", t + 1);
            assert_eq!(c.room(t, &p), 4);
        }
        let opened = 1_000;
        assert_eq!(fail(&mut c, opened, &p), Change::Opened(5));
        assert_eq!(c.room(opened, &p), 0);
        assert!(!c.start(opened, &p), "a request claimed while it is open does not start");
        assert_eq!(c.room(opened + 29_999, &p), 0, "still open a millisecond before 30 s");
        assert_eq!(c.room(opened + 30_000, &p), 1, "half-open at 30 s: one probe");
        assert!(c.start(opened + 30_000, &p));
        assert_eq!(c.room(opened + 30_000, &p), 0, "only one probe at a time");
        assert!(!c.start(opened + 30_000, &p));
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown_and_a_success_closes() {
        let p = defaults();
        let mut c = Circuit::default();
        for t in 0..5 {
            fail(&mut c, t, &p);
        }
        let probe = 4 + 30_000;
        assert_eq!(fail(&mut c, probe, &p), Change::Opened(6));
        assert_eq!(c.room(probe + 29_999, &p), 0);
        assert_eq!(c.room(probe + 30_000, &p), 1);
        assert!(c.start(probe + 30_000, &p));
        assert_eq!(c.end(Ended::Success, probe + 30_000, &p), (Change::Recovered, false));
        assert_eq!(c.room(probe + 30_000, &p), 4, "closed again: the full limit");
    }

    #[test]
    fn a_success_resets_the_count_and_gone_is_not_a_failure() {
        let p = defaults();
        let mut c = Circuit::default();
        assert!(c.start(0, &p));
        assert_eq!(c.end(Ended::Failure, 0, &p), (Change::None, true), "the first failure of a run");
        for t in 1..4 {
            fail(&mut c, t, &p);
        }
        assert!(c.start(5, &p));
        assert_eq!(c.end(Ended::Success, 5, &p).0, Change::Recovered);
        for t in 0..4 {
            fail(&mut c, 10 + t, &p);
        }
        assert!(c.start(20, &p));
        assert_eq!(c.end(Ended::Gone, 20, &p).0, Change::None);
        assert_eq!(c.room(20, &p), 4, "four failures and a 410: still closed");
        assert_eq!(fail(&mut c, 21, &p), Change::Opened(5), "the 410 did not reset the count either");
    }
}
