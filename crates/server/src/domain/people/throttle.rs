//! Sign-in throttling: after too many failed attempts for one key (a tenant and email, or a
//! client address) within a window, further attempts for it are refused until the window
//! that began with its first failure ends.
//!
//! In memory, per node: a cluster of N nodes lets N times the attempts through, which still
//! bounds password guessing to a handful a minute per account. Pure over an explicit clock
//! (`Instant` passed in), so the tests need not wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before stale ones are swept (each is a few dozen bytes).
const SWEEP_AT: usize = 10_000;

/// Failed attempts per key, each key within its own window.
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    /// At most `limit` failures per key within `window`.
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle { limit, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` if the key has used up its failures at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(key) {
            Some((first, n)) if *n >= self.limit && now < *first + self.window => {
                let left = (*first + self.window).saturating_duration_since(now);
                Err(left.as_secs() + u64::from(left.subsec_nanos() > 0))
            }
            _ => Ok(()),
        }
    }

    /// Records a failed attempt for the key at `now`.
    pub fn fail(&self, key: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, (first, _)| now < *first + window);
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Forgets the key's failures (it signed in).
    pub fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(t.check("k", start), Ok(()), "attempt {i}");
            t.fail("k", start + Duration::from_secs(i));
        }
        assert_eq!(t.check("k", start + Duration::from_secs(10)), Err(50));
        assert_eq!(t.check("other", start), Ok(()), "keys are apart");
        assert_eq!(t.check("k", start + Duration::from_secs(60)), Ok(()), "the window ended");
        t.fail("k", start + Duration::from_secs(61));
        assert_eq!(t.check("k", start + Duration::from_secs(61)), Ok(()), "a new window starts from one");
    }

    #[test]
    fn a_success_clears_the_key() {
        let t = Throttle::new(1, Duration::from_secs(60));
        let now = Instant::now();
        t.fail("k", now);
        assert!(t.check("k", now).is_err());
        t.clear("k");
        assert_eq!(t.check("k", now), Ok(()));
    }
}
