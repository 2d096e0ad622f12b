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
//! - **TLS** when the node has a certificate ([`tls`]): each connection's handshake comes
//!   first and must finish within `header_read_timeout_ms` of the accept, else the connection
//!   closes (no 408: there is no session to send it over). The timeouts and limits above then
//!   apply to the decrypted bytes as they do to plain ones.
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

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::metrics::Metrics;

mod connection;
mod limits;
mod registry;
pub mod tls;

use connection::ConnectionTask;
pub use limits::{Limits, raise_open_file_limit};
use registry::{Registry, Shared};

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

/// The address a request came from, as the per-address limits count it (IPv4 by address,
/// IPv6 by /64), in every request's extensions: sign-in throttling counts failures by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(registry::IpKey);

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
/// Connections looked at, at most, to find one idle to close at a limit. A sample keeps a
/// flood of new connections from costing a scan of every open one each.
const EVICTION_SAMPLE: usize = 256;
/// Idle candidates compared before picking the one idle longest.
const EVICTION_CANDIDATES: usize = 8;
/// How long the listener tries to hand a 408 to a client that stopped sending.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` (over TLS when `tls` is set) until `shutdown` turns true,
/// then waits for every connection's requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    tls: Option<tls::TlsAcceptor>,
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
        tls,
    });
    let (alive, mut drained) = mpsc::channel::<()>(1);
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = crate::shutdown::stopped(&mut shutdown) => break,
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
                    _ = crate::shutdown::stopped(&mut shutdown) => break,
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
    tls_handshake: Throttle,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
