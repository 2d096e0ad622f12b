//! The HTTP listener: accepts connections and bounds what any client can hold.
//!
//! `axum::serve` kept a connection for as long as the client liked: an idle keep-alive
//! connection, or one sending a header line every few seconds, held a descriptor forever, and
//! a few hundred of them made the node answer nobody (issue 9). This loop serves HTTP/1.1 with
//! hyper directly (as `axum::serve` did, without HTTP/2) and adds:
//!
//! - **Timeouts.** A request's headers must arrive within `header_read_timeout_ms` of their
//!   first byte, else the client gets a 408 problem and the connection closes. A connection
//!   with no request in progress closes after `idle_timeout_ms`. A request in progress (a
//!   long-poll, an SSE stream, a WebSocket after its upgrade) is never timed out here.
//! - **Limits.** At most `max_connections` open connections (lowered to fit the open-file
//!   limit, which [`raise_open_file_limit`] lifts to its hard maximum at start, keeping a
//!   reserve for the store and push), and `max_connections_per_ip` per client address. At a
//!   limit a new connection takes the place of an idle one (the one idle longest among a
//!   sample); only when every candidate is busy is it refused. So idle or half-sent sockets
//!   cannot keep a new client out, and one address cannot take the whole node.
//! - **Accept errors back off** (10 ms, doubling to 1 s) and close an idle connection to free
//!   a descriptor, instead of failing again every second.
//! - **Header limits answered as problems.** The node's own limits on the URI and the header
//!   section, lower than hyper's, answer 414 and 431 as `application/problem+json`.
//!
//! Every refusal and early close is counted (`switchboard_http_connections_*`) and logged at
//! WARN at most once per [`WARN_EVERY`] per kind, with how many happened meanwhile.
//!
//! Ownership and shutdown, as in mini-redis: the accept loop spawns one task per connection,
//! each holding a clone of an mpsc sender (`alive`); after the shutdown signal the loop stops
//! accepting, asks every connection to finish gracefully, and waits until the channel reports
//! every sender gone. A WebSocket leaves its connection task at the upgrade; its socket (and
//! its place in the limits) lives on in the stream task, which closes on the same signal.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Longest request URI (path and query) the node reads; longer ones answer 414. Query
/// parameters of this API are short; 8 KiB is what common proxies allow per request line.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section (names, values and separators) the node reads; larger ones
/// answer 431. Leaves room for large bearer JWTs and cookies. hyper's own limits are higher
/// (a 64 KiB URI, a ~400 KiB head, 100 header fields) and answer without a body.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Descriptors kept out of `max_connections` for everything else the node opens: the store's
/// files or pool, the push client's connections (plus `push_concurrency`), logs.
pub const FD_RESERVE: usize = 128;
/// A limit that bites is logged at most this often (per kind), with a count.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// Connections looked at, at most, to find one idle to close at a limit. A sample keeps a
/// flood of new connections from costing a scan of every open one each.
const EVICTION_SAMPLE: usize = 256;
/// Idle candidates compared before picking the one idle longest.
const EVICTION_CANDIDATES: usize = 8;
/// How long the listener tries to hand a 408 to a client that stopped sending.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the listener enforces: `Config`'s connection settings, fitted to the open-file limit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most: `max_connections`, or less if the open-file limit says so.
    pub max_connections: usize,
    /// Open connections per client address at most; 0: no per-address limit.
    pub max_connections_per_ip: usize,
    /// From a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress lives this long.
    pub idle_timeout: Duration,
}

impl Limits {
    /// The configured limits, with `max_connections` lowered to what `open_files` (the soft
    /// open-file limit, if known) leaves after the reserve.
    pub fn new(config: &Config, open_files: Option<u64>) -> Limits {
        let mut max_connections = config.max_connections;
        if let Some(files) = open_files {
            let files = usize::try_from(files).unwrap_or(usize::MAX);
            let room = files.saturating_sub(FD_RESERVE + config.push_concurrency).max(16);
            if room < max_connections {
                tracing::warn!(
                    max_connections,
                    open_file_limit = files,
                    serving_at_most = room,
                    "the open-file limit leaves room for fewer connections than max_connections; raise it (ulimit -n, LimitNOFILE=) to serve more"
                );
                max_connections = room;
            }
        }
        Limits {
            max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms),
        }
    }
}

/// Raises the soft open-file limit to the hard one, so that the node's connection limit, not
/// a distribution's default of 1024 descriptors, decides how many clients it serves. Returns
/// the soft limit in force afterwards (`None` where it cannot be read).
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only into the struct it is given, which lives on this frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let before = limit.rlim_cur;
    // An unlimited hard limit is refused by Linux above `fs.nr_open` (default 2^20).
    for target in [limit.rlim_max, limit.rlim_max.min(1 << 20)] {
        if limit.rlim_cur >= target {
            break;
        }
        let raised = libc::rlimit { rlim_cur: target, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct it is given; it changes a process attribute only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = target;
        }
    }
    // `rlim_t` is u64 on Linux but not on every Unix.
    #[allow(clippy::useless_conversion)]
    let now = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
    if limit.rlim_cur > before {
        tracing::info!(open_file_limit = now, raised_from = before, "raised the open-file limit");
    } else {
        tracing::debug!(open_file_limit = now, "open-file limit");
    }
    Some(now)
}

/// Where there is no `RLIMIT_NOFILE`, the limit is left alone and unknown.
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}

/// Serves `router` on `listener` until `shutdown` turns true, then waits for every
/// connection's requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // The listener times headers and idleness itself (hyper's header timer also runs while a
    // keep-alive connection is idle, which would make the two one setting).
    http.header_read_timeout(None);
    let shared = Arc::new(Shared {
        router,
        http,
        registry: Mutex::new(Registry::default()),
        epoch: Instant::now(),
        metrics,
        warnings: Warnings::default(),
        limits,
    });
    let (alive, mut drained) = mpsc::channel::<()>(1);
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = crate::stopped(&mut shutdown) => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = None;
                shared.admit(tcp, peer, &shutdown, &alive);
            }
            // The client gave up between connect and accept: nothing to do about it.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                // Out of descriptors or memory: accepting again at once fails again. Free a
                // descriptor (an idle connection) and wait a little longer each time.
                shared.metrics.accept_errors.inc();
                let wait = next_backoff(backoff);
                backoff = Some(wait);
                let freed = shared.evict_any_idle();
                if let Some(n) = shared.warnings.accept_error.hit() {
                    tracing::warn!(
                        error = %e,
                        errors = n,
                        closed_an_idle_connection = freed,
                        retry_in_ms = wait.as_millis() as u64,
                        "cannot accept connections (count since the last report); if out of descriptors, raise the open-file limit or lower max_connections"
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = crate::stopped(&mut shutdown) => break,
                }
            }
        }
    }
    drop(listener);
    drop(alive);
    // `None` once every connection task has dropped its sender.
    let _ = drained.recv().await;
    Ok(())
}

/// How long to wait after a failed accept, given the previous wait in this run of failures:
/// 10 ms, doubling to 1 s, so that a node out of descriptors neither spins nor waits long
/// once one is free.
fn next_backoff(previous: Option<Duration>) -> Duration {
    previous.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX))
}

/// What every connection task shares.
struct Shared {
    router: Router,
    http: hyper::server::conn::http1::Builder,
    registry: Mutex<Registry>,
    /// Connection times are milliseconds since this, in atomics.
    epoch: Instant,
    metrics: Arc<Metrics>,
    warnings: Warnings,
    limits: Limits,
}

/// Open connections, for the limits: slots to sample for eviction and connections by address.
#[derive(Default)]
struct Registry {
    slots: Vec<Option<Arc<Conn>>>,
    free: Vec<usize>,
    open: usize,
    by_ip: HashMap<IpKey, Vec<usize>>,
    /// Where the next eviction sample starts, so that samples cover every slot in turn.
    cursor: usize,
}

/// A client address as the per-address limit counts it: IPv4 by address, IPv6 by /64 (what
/// one host is usually given), IPv4-mapped IPv6 as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4(Ipv4Addr),
    V6Net(u64),
}

impl IpKey {
    fn of(ip: IpAddr) -> IpKey {
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
struct Conn {
    slot: usize,
    ip: IpKey,
    /// Requests passed to the router whose response body has not finished.
    busy: AtomicUsize,
    /// Answered 101: the socket belongs to a WebSocket now, which is never idle here.
    upgraded: AtomicBool,
    /// Milliseconds since the epoch at which the connection last had nothing in progress.
    idle_since: AtomicU64,
    /// Milliseconds since the epoch (0: none) at which the first byte of a request not yet
    /// passed to the router arrived.
    head_started: AtomicU64,
    /// Still counted in the registry (false once released or evicted).
    counted: AtomicBool,
    /// Asks the connection's task to close it if it is still idle.
    evict: Notify,
    epoch: Instant,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        ms_since(self.epoch)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Idle (no request in progress) since when, if idle.
    fn idle_since(&self) -> Option<u64> {
        if self.busy.load(Ordering::Acquire) > 0 || self.upgraded.load(Ordering::Relaxed) {
            None
        } else {
            Some(self.idle_since.load(Ordering::Relaxed))
        }
    }

    /// Bytes arrived. With nothing in progress they start a request's headers.
    fn bytes_arrived(&self) {
        if self.busy.load(Ordering::Relaxed) == 0 && self.head_started.load(Ordering::Relaxed) == 0 {
            self.head_started.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// A request's headers are complete and go to the router.
    fn begin(self: &Arc<Self>) -> BusyGuard {
        self.head_started.store(0, Ordering::Relaxed);
        self.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(self.clone())
    }

    /// When the task should look at the connection next: the deadline of what can expire,
    /// or, while something is in progress, after the shorter timeout (so that the end of a
    /// request and a new request's first byte are noticed in time, without a wake-up per
    /// request).
    fn next_check(&self, limits: &Limits) -> Instant {
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
    fn expired(&self, limits: &Limits) -> Option<Expiry> {
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
fn ms_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64 + 1
}

enum Expiry {
    Headers,
    Idle,
}

/// Held by a request from the router's call until its response body is finished or dropped.
struct BusyGuard(Arc<Conn>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    fn insert(&mut self, ip: IpKey, epoch: Instant) -> Arc<Conn> {
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
    fn remove(&mut self, conn: &Conn) {
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
    fn idle_of(&self, ip: IpKey) -> Option<Arc<Conn>> {
        let slots = self.by_ip.get(&ip)?;
        let idle = slots.iter().filter_map(|s| self.slots[*s].as_ref()).filter_map(|c| Some((c.idle_since()?, c)));
        idle.min_by_key(|(since, _)| *since).map(|(_, c)| c.clone())
    }

    /// An idle connection, the one idle longest among a sample, if the sample finds one.
    fn idle_any(&mut self) -> Option<Arc<Conn>> {
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
fn evict(registry: &mut Registry, victim: &Conn) {
    registry.remove(victim);
    victim.evict.notify_one();
}

impl Shared {
    /// Counts a new connection in, making room at a limit, and starts serving it; or refuses it.
    fn admit(
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
    fn evict_any_idle(&self) -> bool {
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

    fn release(&self, conn: &Conn) {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner).remove(conn);
        self.metrics.connections.dec();
    }
}

/// Serves one connection: hyper drives HTTP, the task watches timeouts, eviction and shutdown.
struct ConnectionTask {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    shutdown: watch::Receiver<bool>,
    /// Dropped when the task ends; the accept loop waits for all of them at shutdown.
    _alive: mpsc::Sender<()>,
}

impl ConnectionTask {
    async fn run(mut self, tcp: TcpStream) {
        let socket = Socket { tcp, conn: self.conn.clone(), shared: self.shared.clone() };
        let service = Tracked { router: self.shared.router.clone(), conn: self.conn.clone() };
        let mut http = self.shared.http.serve_connection(TokioIo::new(socket), service).with_upgrades();
        let limits = self.shared.limits.clone();
        let mut draining = false;
        loop {
            if !draining && *self.shutdown.borrow() {
                // A connection with a request in progress closes after it.
                draining = true;
                Pin::new(&mut http).graceful_shutdown();
            }
            // One with none closes now, even halfway through a request's headers (hyper
            // would wait for the rest of them).
            if draining && self.conn.idle_since().is_some() {
                return;
            }
            let check = self.conn.next_check(&limits);
            tokio::select! {
                done = &mut http => {
                    if let Err(e) = done {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = tokio::time::sleep_until(check) => match self.conn.expired(&limits) {
                    Some(Expiry::Headers) => {
                        self.header_timeout(http).await;
                        return;
                    }
                    // Nothing in progress: dropping the connection just closes the socket.
                    Some(Expiry::Idle) => {
                        self.shared.metrics.connection_closed("idle_timeout");
                        return;
                    }
                    None => {}
                },
                _ = self.conn.evict.notified() => {
                    if self.conn.idle_since().is_some() {
                        return;
                    }
                }
                changed = self.shutdown.changed(), if !draining => {
                    if changed.is_err() {
                        draining = true;
                        Pin::new(&mut http).graceful_shutdown();
                    }
                }
            }
        }
    }

    /// Answers 408 on a connection whose request headers did not arrive in time, and closes it.
    async fn header_timeout(&self, http: HttpConnection) {
        let shared = &self.shared;
        shared.metrics.connection_closed("header_timeout");
        let ms = shared.limits.header_read_timeout.as_millis() as u64;
        if let Some(n) = shared.warnings.header_timeout.hit() {
            tracing::warn!(
                closed = n,
                client = %self.conn.ip,
                header_read_timeout_ms = ms,
                "closed connections whose request headers did not arrive in time (count since the last report)"
            );
        }
        let Some(parts) = http.into_parts() else { return };
        let mut socket = parts.io.into_inner();
        let problem = ApiError::RequestTimeout(format!(
            "the request headers did not arrive within {ms} ms of their first byte; send the whole request without pausing, then retry"
        ));
        let bytes = raw_response(&problem);
        // The client may have stopped reading too: give up after a moment. After the answer,
        // read what it still sends until it closes (a lingering close): closing a socket with
        // unread input resets the connection, which can destroy the answer in flight.
        let _ = tokio::time::timeout(ANSWER_TIMEOUT, async {
            socket.tcp.write_all(&bytes).await?;
            socket.tcp.shutdown().await?;
            let mut sink = [0u8; 1024];
            while socket.tcp.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
    }
}

type HttpConnection = hyper::server::conn::http1::UpgradeableConnection<TokioIo<Socket>, Tracked>;

/// A problem as a complete HTTP/1.1 response, for a connection hyper no longer drives.
fn raw_response(e: &ApiError) -> Vec<u8> {
    let p = e.problem();
    let body = serde_json::to_vec(&p).unwrap_or_default();
    let reason = StatusCode::from_u16(p.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        p.status,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The connection's socket: notes when request bytes arrive, and leaves the registry when it
/// closes (after the connection task, when a WebSocket took it over).
struct Socket {
    tcp: TcpStream,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.shared.release(&self.conn);
    }
}

impl AsyncRead for Socket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Socket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The router, with each request marking its connection busy until its response body is
/// done, and the node's header limits checked first.
#[derive(Clone)]
struct Tracked {
    router: Router,
    conn: Arc<Conn>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = self.conn.begin();
        if let Some(refused) = oversized(&req) {
            return Box::pin(std::future::ready(Ok(guarded(refused.into_response(), guard))));
        }
        let mut router = self.router.clone();
        let response = tower_service::Service::call(&mut router, req);
        Box::pin(async move {
            let Ok(res) = response.await;
            Ok(guarded(res, guard))
        })
    }
}

/// `res` with the guard riding in its body, released when the body is finished or dropped.
fn guarded(res: Response<Body>, guard: BusyGuard) -> Response<Body> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        guard.0.upgraded.store(true, Ordering::Relaxed);
    }
    res.map(|inner| Body::new(GuardedBody { inner, _guard: guard }))
}

struct GuardedBody {
    inner: Body,
    _guard: BusyGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The node's limits on the request line and headers, as a problem to answer.
fn oversized<B>(req: &Request<B>) -> Option<ApiError> {
    let uri = req.uri();
    let uri_bytes =
        uri.path_and_query().map_or(0, |p| p.as_str().len()) + uri.authority().map_or(0, |a| a.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong(format!(
            "the request URI is {uri_bytes} bytes, over the limit of {MAX_URI_BYTES}; send long values in a request body"
        )));
    }
    // Each field as on the wire: name, ": ", value, CRLF.
    let header_bytes: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::HeadersTooLarge(format!(
            "the request headers are {header_bytes} bytes, over the limit of {MAX_HEADER_BYTES}; send fewer or shorter headers (a large cookie or token?)"
        )));
    }
    None
}

/// Counts events of one kind and says when to log them: at most once per [`WARN_EVERY`].
#[derive(Default)]
struct Throttle {
    count: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    fn hit(&self) -> Option<u64> {
        self.hit_by(1)
    }

    /// Adds `n` events; returns how many there were since the last report if one is due.
    fn hit_by(&self, n: u64) -> Option<u64> {
        self.count.fetch_add(n, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return None;
        }
        *last = Some(Instant::now());
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

#[derive(Default)]
struct Warnings {
    node_limit: Throttle,
    ip_limit: Throttle,
    evicted: Throttle,
    header_timeout: Throttle,
    accept_error: Throttle,
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
    fn failed_accepts_back_off_from_10_ms_to_1_s() {
        let mut waits = vec![next_backoff(None)];
        for _ in 0..10 {
            waits.push(next_backoff(waits.last().copied()));
        }
        assert_eq!(waits[..3], [Duration::from_millis(10), Duration::from_millis(20), Duration::from_millis(40)]);
        assert_eq!(waits.last(), Some(&Duration::from_secs(1)));
        // At that pace a node out of descriptors fails about 12 accepts in its first 5 s.
        let in_5s = waits
            .iter()
            .scan(Duration::ZERO, |t, w| {
                *t += *w;
                Some(*t)
            })
            .take_while(|t| *t <= Duration::from_secs(5))
            .count();
        assert!(in_5s < 15, "{in_5s}");
    }

    #[test]
    fn a_throttle_reports_once_per_interval_with_the_count() {
        let t = Throttle::default();
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), None);
        assert_eq!(t.hit_by(3), None);
        *t.last.lock().unwrap() = Some(Instant::now() - WARN_EVERY);
        assert_eq!(t.hit(), Some(5));
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
