//! Rate limits and quotas, in memory: per-principal token buckets, open-stream counts and the
//! tenants' stored-message counts.
//!
//! Buckets and stream counts live on this node only: in a cluster each node enforces the
//! limits on what it serves, so a principal spread over N nodes may get up to N times the
//! rate. They are sharded maps (one short mutex per shard, chosen by the key's hash), so
//! principals do not contend with each other, and nothing is kept for a tenant without
//! limits.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use switchboard_core::limits::Rate;

/// Shards of each map: more than cores, so two requests rarely share one.
const SHARDS: usize = 64;

/// A bucket untouched this long is full again (for any rate it could have had) or nearly,
/// and is dropped by [`Limiter::prune`].
const IDLE: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Sharded<V> {
    shards: Box<[Mutex<HashMap<String, V>>]>,
    hasher: RandomState,
}

impl<V> Sharded<V> {
    fn new() -> Sharded<V> {
        Sharded { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), hasher: RandomState::new() }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, V>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i].lock().expect("limiter shard poisoned")
    }
}

/// The node's buckets and counters.
pub struct Limiter {
    buckets: Sharded<Bucket>,
    streams: Arc<Sharded<u64>>,
    /// Tenant → messages stored, for tenants with `max_messages_stored`: counted from the
    /// store (at first use and on each refresh) plus what this node accepted since. Sends
    /// only read the map (a shared lock) and add to an atomic.
    stored: RwLock<HashMap<String, Arc<AtomicU64>>>,
}

/// A refusal by a rate limit: how long until one more is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, at least 1 (what `Retry-After` says).
    pub fn seconds(self) -> u64 {
        self.0.as_secs_f64().ceil().max(1.0) as u64
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter { buckets: Sharded::new(), streams: Arc::new(Sharded::new()), stored: RwLock::new(HashMap::new()) }
    }
}

impl Limiter {
    /// Takes one token from `key`'s bucket at `rate`, or says how long until there is one.
    /// A new bucket starts full.
    pub fn take(&self, key: &str, rate: Rate, now: Instant) -> Result<(), RetryAfter> {
        let mut shard = self.buckets.shard(key);
        let burst = f64::from(rate.burst);
        let b = match shard.get_mut(key) {
            Some(b) => b,
            None => shard.entry(key.to_owned()).or_insert(Bucket { tokens: burst, at: now }),
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate.per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(RetryAfter(Duration::from_secs_f64((1.0 - b.tokens) / rate.per_second)))
        }
    }

    /// Opens a stream for `key` if fewer than `max` are open; the slot closes it when dropped.
    pub fn open_stream(&self, key: &str, max: u64) -> Option<StreamSlot> {
        let mut shard = self.streams.shard(key);
        let open = shard.entry(key.to_owned()).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(StreamSlot(Some((self.streams.clone(), key.to_owned()))))
    }

    /// Open streams of `key` on this node.
    pub fn open_streams(&self, key: &str) -> u64 {
        self.streams.shard(key).get(key).copied().unwrap_or(0)
    }

    /// The tenant's stored-message count, if it is kept.
    pub fn stored(&self, tenant: &str) -> Option<u64> {
        self.stored.read().expect("stored counts poisoned").get(tenant).map(|n| n.load(Ordering::Relaxed))
    }

    /// Sets the tenant's stored-message count (read from the store).
    pub fn set_stored(&self, tenant: &str, n: u64) {
        if let Some(c) = self.stored.read().expect("stored counts poisoned").get(tenant) {
            c.store(n, Ordering::Relaxed);
            return;
        }
        self.stored.write().expect("stored counts poisoned").insert(tenant.to_owned(), Arc::new(AtomicU64::new(n)));
    }

    /// Adds messages this node accepted to the tenant's count, if it is kept.
    pub fn add_stored(&self, tenant: &str, n: u64) {
        if let Some(c) = self.stored.read().expect("stored counts poisoned").get(tenant) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The tenants whose stored-message count is kept.
    pub fn stored_tenants(&self) -> Vec<String> {
        self.stored.read().expect("stored counts poisoned").keys().cloned().collect()
    }

    /// Stops keeping a tenant's stored-message count (its quota was lifted).
    pub fn forget_stored(&self, tenant: &str) {
        self.stored.write().expect("stored counts poisoned").remove(tenant);
    }

    /// Drops buckets idle for a long time (they would be full again) and closed streams'
    /// zero counts, so the maps hold only active principals.
    pub fn prune(&self, now: Instant) {
        for shard in self.buckets.shards.iter() {
            shard.lock().expect("limiter shard poisoned").retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
        }
        for shard in self.streams.shards.iter() {
            shard.lock().expect("limiter shard poisoned").retain(|_, n| *n > 0);
        }
    }
}

/// An open stream counted against its principal; dropping it closes it. Without a limit it
/// counts nothing.
pub struct StreamSlot(Option<(Arc<Sharded<u64>>, String)>);

impl StreamSlot {
    /// A slot for a tenant without a stream limit.
    pub fn unlimited() -> StreamSlot {
        StreamSlot(None)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some((streams, key)) = self.0.take()
            && let Some(n) = streams.shard(&key).get_mut(&key)
        {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let l = Limiter::default();
        let rate = Rate { per_second: 2.0, burst: 3 };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take("k", rate, t0).is_ok());
        }
        let wait = l.take("k", rate, t0).unwrap_err();
        assert_eq!(wait.0, Duration::from_millis(500));
        assert_eq!(wait.seconds(), 1);
        assert!(l.take("k", rate, t0 + Duration::from_millis(500)).is_ok());
        assert!(l.take("other", rate, t0).is_ok(), "buckets are per key");
        let slow = Rate { per_second: 0.1, burst: 1 };
        l.take("s", slow, t0).unwrap();
        assert_eq!(l.take("s", slow, t0).unwrap_err().seconds(), 10);
    }

    #[test]
    fn stream_slots_count_until_dropped() {
        let l = Limiter::default();
        let a = l.open_stream("k", 2).unwrap();
        let b = l.open_stream("k", 2).unwrap();
        assert!(l.open_stream("k", 2).is_none());
        drop(a);
        assert_eq!(l.open_streams("k"), 1);
        let _c = l.open_stream("k", 2).unwrap();
        drop(b);
        drop(StreamSlot::unlimited());
        assert_eq!(l.open_streams("k"), 1);
    }
}
