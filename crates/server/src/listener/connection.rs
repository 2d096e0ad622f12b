//! One connection: its task (timeouts, eviction, shutdown), its socket, and the service that
//! marks it busy while a request is in progress and answers the node's header limits.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use crate::error::ApiError;

use super::tls::TlsAcceptor;

use super::registry::*;
use super::*;

/// Serves one connection: hyper drives HTTP, the task watches timeouts, eviction and shutdown.
pub(super) struct ConnectionTask {
    pub(super) shared: Arc<Shared>,
    pub(super) conn: Arc<Conn>,
    pub(super) shutdown: watch::Receiver<bool>,
    /// Dropped when the task ends; the accept loop waits for all of them at shutdown.
    pub(super) _alive: mpsc::Sender<()>,
}

impl ConnectionTask {
    pub(super) async fn run(mut self, tcp: TcpStream) {
        let registered = Registered { conn: self.conn.clone(), shared: self.shared.clone() };
        let io = match self.shared.tls.clone() {
            None => Io::Plain(tcp),
            Some(acceptor) => match self.handshake(&acceptor, tcp).await {
                Some(tls) => Io::Tls(Box::new(tls)),
                // Dropping `registered` releases the connection's place in the limits.
                None => return,
            },
        };
        let socket = Socket { io, registered };
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

    /// Runs the TLS handshake, which must finish within the header timeout of the accept (a
    /// client that stalls in it is closed like one whose headers trickle in). Until it is
    /// done the connection is idle: at a limit a new one can take its place. `None`: closed.
    async fn handshake(&mut self, acceptor: &TlsAcceptor, tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
        let deadline = Instant::now() + self.shared.limits.header_read_timeout;
        let accept = acceptor.accept(tcp);
        tokio::pin!(accept);
        let shared = &self.shared;
        tokio::select! {
            done = &mut accept => match done {
                Ok(tls) => {
                    // Idle from now on, not from the accept.
                    self.conn.idle_since.store(self.conn.now_ms(), Ordering::Relaxed);
                    Some(tls)
                }
                Err(e) => {
                    shared.metrics.connection_closed("tls_handshake_failed");
                    if let Some(n) = shared.warnings.tls_handshake.hit() {
                        tracing::warn!(
                            failed = n,
                            client = %self.conn.ip,
                            error = %e,
                            "TLS handshakes failed (count since the last report; the error is the latest): a client that does not trust the certificate, speaks plain HTTP, or offers no common protocol version"
                        );
                    }
                    None
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                shared.metrics.connection_closed("header_timeout");
                if let Some(n) = shared.warnings.header_timeout.hit() {
                    tracing::warn!(
                        closed = n,
                        client = %self.conn.ip,
                        header_read_timeout_ms = shared.limits.header_read_timeout.as_millis() as u64,
                        "closed connections whose TLS handshake did not finish in time (count since the last report)"
                    );
                }
                None
            }
            _ = self.conn.evict.notified() => None,
            _ = crate::shutdown::stopped(&mut self.shutdown) => None,
        }
    }

    /// Answers 408 on a connection whose request headers did not arrive in time, and closes it.
    pub(super) async fn header_timeout(&self, http: HttpConnection) {
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
            socket.io.write_all(&bytes).await?;
            socket.io.shutdown().await?;
            let mut sink = [0u8; 1024];
            while socket.io.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
    }
}

type HttpConnection = hyper::server::conn::http1::UpgradeableConnection<TokioIo<Socket>, Tracked>;

/// A problem as a complete HTTP/1.1 response, for a connection hyper no longer drives.
pub(super) fn raw_response(e: &ApiError) -> Vec<u8> {
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
pub(super) struct Socket {
    pub(super) io: Io,
    pub(super) registered: Registered,
}

/// A connection's place in the registry, given up when dropped.
pub(super) struct Registered {
    pub(super) conn: Arc<Conn>,
    pub(super) shared: Arc<Shared>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.release(&self.conn);
    }
}

/// The bytes of a connection: plain TCP, or TLS over it.
pub(super) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Calls `$method` on the stream inside an [`Io`], whichever it is.
macro_rules! each_io {
    ($io:expr, $s:ident => $call:expr) => {
        match $io {
            Io::Plain($s) => $call,
            Io::Tls($s) => $call,
        }
    };
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        each_io!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        each_io!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each_io!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each_io!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_io!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_io!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

impl AsyncRead for Socket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.registered.conn.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Socket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The router, with each request marking its connection busy until its response body is
/// done, and the node's header limits checked first.
#[derive(Clone)]
pub(super) struct Tracked {
    pub(super) router: Router,
    pub(super) conn: Arc<Conn>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let guard = self.conn.begin();
        req.extensions_mut().insert(ClientAddr(self.conn.ip));
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
pub(super) fn guarded(res: Response<Body>, guard: BusyGuard) -> Response<Body> {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        guard.0.upgraded.store(true, Ordering::Relaxed);
    }
    res.map(|inner| Body::new(GuardedBody { inner, _guard: guard }))
}

pub(super) struct GuardedBody {
    pub(super) inner: Body,
    pub(super) _guard: BusyGuard,
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
pub(super) fn oversized<B>(req: &Request<B>) -> Option<ApiError> {
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
