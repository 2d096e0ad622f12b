//! Open connections and what their tasks share: the registry the limits count, eviction of
//! the connection idle longest, and the per-connection state.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::metrics::Metrics;

use super::tls::TlsAcceptor;

use super::*;

/// What every connection task shares.
pub(super) struct Shared {
    pub(super) router: Router,
    pub(super) http: hyper::server::conn::http1::Builder,
    pub(super) registry: Mutex<Registry>,
    /// Connection times are milliseconds since this, in atomics.
    pub(super) epoch: Instant,
    pub(super) metrics: Arc<Metrics>,
    pub(super) warnings: Warnings,
    pub(super) limits: Limits,
    /// Set when the node serves TLS: every connection's handshake goes through it first.
    pub(super) tls: Option<TlsAcceptor>,
}

/// Open connections, for the limits: slots to sample for eviction and connections by address.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) slots: Vec<Option<Arc<Conn>>>,
    pub(super) free: Vec<usize>,
    pub(super) open: usize,
    pub(super) by_ip: HashMap<IpKey, Vec<usize>>,
    /// Where the next eviction sample starts, so that samples cover every slot in turn.
    pub(super) cursor: usize,
}

/// A client address as the per-address limit counts it: IPv4 by address, IPv6 by /64 (what
/// one host is usually given), IPv4-mapped IPv6 as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum IpKey {
    V4(Ipv4Addr),
    V6Net(u64),
}

impl IpKey {
    pub(super) fn of(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(a) => IpKey::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(v4),
                None => IpKey::V6Net((u128::from(a) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for IpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpKey::V4(a) => write!(f, "{a}"),
            IpKey::V6Net(net) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*net) << 64)),
        }
    }
}

/// One connection's state, shared by its task, its socket, its requests' guards and the
/// registry.
pub(super) struct Conn {
    pub(super) slot: usize,
    pub(super) ip: IpKey,
    /// Requests passed to the router whose response body has not finished.
    pub(super) busy: AtomicUsize,
    /// Answered 101: the socket belongs to a WebSocket now, which is never idle here.
    pub(super) upgraded: AtomicBool,
    /// Milliseconds since the epoch at which the connection last had nothing in progress.
    pub(super) idle_since: AtomicU64,
    /// Milliseconds since the epoch (0: none) at which the first byte of a request not yet
    /// passed to the router arrived.
    pub(super) head_started: AtomicU64,
    /// Still counted in the registry (false once released or evicted).
    pub(super) counted: AtomicBool,
    /// Asks the connection's task to close it if it is still idle.
    pub(super) evict: Notify,
    pub(super) epoch: Instant,
}

impl Conn {
    pub(super) fn now_ms(&self) -> u64 {
        ms_since(self.epoch)
    }

    pub(super) fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Idle (no request in progress) since when, if idle.
    pub(super) fn idle_since(&self) -> Option<u64> {
        if self.busy.load(Ordering::Acquire) > 0 || self.upgraded.load(Ordering::Relaxed) {
            None
        } else {
            Some(self.idle_since.load(Ordering::Relaxed))
        }
    }

    /// Bytes arrived. With nothing in progress they start a request's headers.
    pub(super) fn bytes_arrived(&self) {
        if self.busy.load(Ordering::Relaxed) == 0 && self.head_started.load(Ordering::Relaxed) == 0 {
            self.head_started.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// A request's headers are complete and go to the router.
    pub(super) fn begin(self: &Arc<Self>) -> BusyGuard {
        self.head_started.store(0, Ordering::Relaxed);
        self.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(self.clone())
    }

    /// When the task should look at the connection next: the deadline of what can expire,
    /// or, while something is in progress, after the shorter timeout (so that the end of a
    /// request and a new request's first byte are noticed in time, without a wake-up per
    /// request).
    pub(super) fn next_check(&self, limits: &Limits) -> Instant {
        let period = limits.header_read_timeout.min(limits.idle_timeout);
        let Some(idle) = self.idle_since() else {
            return Instant::now() + period;
        };
        match self.head_started.load(Ordering::Relaxed) {
            0 => (self.at(idle) + limits.idle_timeout).min(Instant::now() + limits.header_read_timeout),
            started => self.at(started) + limits.header_read_timeout,
        }
    }

    /// Which timeout, if any, has run out.
    pub(super) fn expired(&self, limits: &Limits) -> Option<Expiry> {
        let idle = self.idle_since()?;
        let now = Instant::now();
        match self.head_started.load(Ordering::Relaxed) {
            0 => (now >= self.at(idle) + limits.idle_timeout).then_some(Expiry::Idle),
            started => (now >= self.at(started) + limits.header_read_timeout).then_some(Expiry::Headers),
        }
    }
}

/// Milliseconds since `epoch`, rounded up: never 0 (which means "none"), and a deadline
/// computed from it is never early.
pub(super) fn ms_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64 + 1
}

pub(super) enum Expiry {
    Headers,
    Idle,
}

/// Held by a request from the router's call until its response body is finished or dropped.
pub(super) struct BusyGuard(pub(super) Arc<Conn>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    pub(super) fn insert(&mut self, ip: IpKey, epoch: Instant) -> Arc<Conn> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let conn = Arc::new(Conn {
            slot,
            ip,
            busy: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
            idle_since: AtomicU64::new(ms_since(epoch)),
            head_started: AtomicU64::new(0),
            counted: AtomicBool::new(true),
            evict: Notify::new(),
            epoch,
        });
        self.slots[slot] = Some(conn.clone());
        self.by_ip.entry(ip).or_default().push(slot);
        self.open += 1;
        conn
    }

    /// Stops counting `conn` (idempotent).
    pub(super) fn remove(&mut self, conn: &Conn) {
        if !conn.counted.swap(false, Ordering::AcqRel) {
            return;
        }
        self.slots[conn.slot] = None;
        self.free.push(conn.slot);
        self.open -= 1;
        if let Some(slots) = self.by_ip.get_mut(&conn.ip) {
            if let Some(i) = slots.iter().position(|s| *s == conn.slot) {
                slots.swap_remove(i);
            }
            if slots.is_empty() {
                self.by_ip.remove(&conn.ip);
            }
        }
    }

    /// The connection of `ip` idle longest, if any is idle.
    pub(super) fn idle_of(&self, ip: IpKey) -> Option<Arc<Conn>> {
        let slots = self.by_ip.get(&ip)?;
        let idle = slots.iter().filter_map(|s| self.slots[*s].as_ref()).filter_map(|c| Some((c.idle_since()?, c)));
        idle.min_by_key(|(since, _)| *since).map(|(_, c)| c.clone())
    }

    /// An idle connection, the one idle longest among a sample, if the sample finds one.
    pub(super) fn idle_any(&mut self) -> Option<Arc<Conn>> {
        let len = self.slots.len();
        let mut best: Option<(u64, Arc<Conn>)> = None;
        let (mut looked, mut found) = (0, 0);
        while looked < len.min(EVICTION_SAMPLE) && found < EVICTION_CANDIDATES {
            self.cursor = (self.cursor + 1) % len;
            looked += 1;
            let Some(c) = &self.slots[self.cursor] else { continue };
            let Some(since) = c.idle_since() else { continue };
            found += 1;
            if best.as_ref().is_none_or(|(b, _)| since < *b) {
                best = Some((since, c.clone()));
            }
        }
        best.map(|(_, c)| c)
    }
}

/// Takes `victim` out of the counts and asks its task to close it. If it turned busy in the
/// meantime its task keeps it until its request is done, uncounted: a brief overshoot of the
/// limit by the connections caught in that race.
pub(super) fn evict(registry: &mut Registry, victim: &Conn) {
    registry.remove(victim);
    victim.evict.notify_one();
}

impl Shared {
    /// Counts a new connection in, making room at a limit, and starts serving it; or refuses it.
    pub(super) fn admit(
        self: &Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        shutdown: &watch::Receiver<bool>,
        alive: &mpsc::Sender<()>,
    ) {
        let ip = IpKey::of(peer.ip());
        let limits = &self.limits;
        let (admitted, evicted) = {
            let mut reg = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            let mut evicted = 0;
            let mut refused = None;
            let at_ip_limit = limits.max_connections_per_ip > 0
                && reg.by_ip.get(&ip).is_some_and(|s| s.len() >= limits.max_connections_per_ip);
            if at_ip_limit {
                match reg.idle_of(ip) {
                    Some(victim) => {
                        evict(&mut reg, &victim);
                        evicted += 1;
                    }
                    None => refused = Some("ip_limit"),
                }
            }
            if refused.is_none() && reg.open >= limits.max_connections {
                match reg.idle_any() {
                    Some(victim) => {
                        evict(&mut reg, &victim);
                        evicted += 1;
                    }
                    None => refused = Some("node_limit"),
                }
            }
            let admitted = match refused {
                None => Ok(reg.insert(ip, self.epoch)),
                Some(reason) => Err(reason),
            };
            (admitted, evicted)
        };
        if evicted > 0 {
            self.metrics
                .connections_closed
                .get_or_create(&crate::metrics::ReasonLabels { reason: "evicted" })
                .inc_by(evicted);
            if let Some(n) = self.warnings.evicted.hit_by(evicted) {
                tracing::warn!(
                    closed = n,
                    max_connections = limits.max_connections,
                    max_connections_per_ip = limits.max_connections_per_ip,
                    "a connection limit is reached: closed idle connections to make room for new ones (count since the last report)"
                );
            }
        }
        match admitted {
            Ok(conn) => {
                // Counted until the socket closes (see `Socket`'s drop), evicted or not.
                self.metrics.connections.inc();
                let task =
                    ConnectionTask { shared: self.clone(), conn, shutdown: shutdown.clone(), _alive: alive.clone() };
                tokio::spawn(task.run(tcp));
            }
            Err(reason) => {
                // Dropping the socket closes it: the client sees the connection end at once
                // and can try another node, rather than wait in the accept queue.
                drop(tcp);
                self.metrics.connection_refused(reason);
                let throttle = if reason == "ip_limit" { &self.warnings.ip_limit } else { &self.warnings.node_limit };
                if let Some(n) = throttle.hit() {
                    tracing::warn!(
                        refused = n,
                        reason,
                        client = %ip,
                        max_connections = limits.max_connections,
                        max_connections_per_ip = limits.max_connections_per_ip,
                        "refusing connections: the limit is reached and every connection under it is busy (count since the last report)"
                    );
                }
            }
        }
    }

    /// Closes one idle connection anywhere (to free a descriptor); whether one was found.
    pub(super) fn evict_any_idle(&self) -> bool {
        let mut reg = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        match reg.idle_any() {
            Some(victim) => {
                evict(&mut reg, &victim);
                drop(reg);
                self.metrics.connection_closed("evicted");
                true
            }
            None => false,
        }
    }

    pub(super) fn release(&self, conn: &Conn) {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner).remove(conn);
        self.metrics.connections.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_per_host() {
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(IpKey::of(v4), IpKey::of(mapped));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(IpKey::of(a), IpKey::of(b));
        assert_ne!(IpKey::of(a), IpKey::of(c));
        assert_eq!(IpKey::of(a).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn eviction_takes_the_connection_idle_longest_and_skips_busy_ones() {
        let epoch = Instant::now() - Duration::from_secs(100);
        let mut reg = Registry::default();
        let ip = IpKey::of("10.0.0.1".parse().unwrap());
        let a = reg.insert(ip, epoch);
        let b = reg.insert(ip, epoch);
        let c = reg.insert(ip, epoch);
        a.idle_since.store(50_000, Ordering::Relaxed);
        b.idle_since.store(10_000, Ordering::Relaxed);
        c.idle_since.store(1_000, Ordering::Relaxed);
        let _busy = c.begin();
        assert_eq!(reg.idle_of(ip).map(|v| v.slot), Some(b.slot));
        assert_eq!(reg.idle_any().map(|v| v.slot), Some(b.slot));
        evict(&mut reg, &b);
        evict(&mut reg, &b);
        assert_eq!(reg.open, 2);
        assert_eq!(reg.idle_of(ip).map(|v| v.slot), Some(a.slot));
        reg.remove(&a);
        assert_eq!(reg.idle_of(ip).map(|v| v.slot), None, "only the busy one is left");
        assert_eq!(reg.by_ip[&ip], vec![c.slot]);
    }
}
