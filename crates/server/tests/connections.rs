//! Connection exhaustion: what idle, slow and greedy clients can hold, and what they cannot.
//! Each story opens real sockets against a real node with small limits.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{TestHub, agent_addr, eventually, within};
use serde_json::Value;
use switchboard_client::InboxOptions;
use switchboard_core::api::SendMessage;
use switchboard_server::listener::{MAX_HEADER_BYTES, MAX_URI_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Two addresses of this host: every 127.x address is loopback, so a test can be two clients.
const HERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn hub_addr(hub: &TestHub) -> SocketAddr {
    hub.hub.as_ref().expect("hub running").addr
}

/// A raw connection from `from`, for what no HTTP client does on purpose.
async fn connect_from(hub: &TestHub, from: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).expect("bind a loopback address");
    socket.connect(hub_addr(hub)).await.expect("connect")
}

/// A raw connection left open and idle, checked without blocking.
async fn idle_connection(hub: &TestHub) -> std::net::TcpStream {
    connect_from(hub, HERE).await.into_std().expect("std socket")
}

/// Whether the hub closed `s` (end of stream or reset); drains whatever it sent first.
fn is_closed(mut s: &std::net::TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// An HTTP client that opens a new connection for every request, from `from`.
fn fresh_client(from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).local_address(IpAddr::V4(from)).build().expect("http client")
}

/// The value of one metric sample (`name{labels}`), 0 if it is not there yet.
async fn metric(hub: &TestHub, sample: &str) -> f64 {
    let text = fresh_client(ELSEWHERE)
        .get(format!("{}/metrics", hub.url()))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn idle_and_half_sent_connections_over_the_limit_do_not_keep_a_new_client_out() {
    let hub = TestHub::start_with(|c| {
        c.max_connections = 20;
        c.max_connections_per_ip = 0;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..30 {
        held.push(idle_connection(&hub).await);
    }
    for _ in 0..10 {
        let mut s = connect_from(&hub, HERE).await;
        s.write_all(b"GET /health HTTP/1.1\r\nhost: switchboard\r\n").await.unwrap();
        held.push(s.into_std().unwrap());
    }
    // The node keeps 20 and closes the ones idle longest to make room for the rest.
    eventually(20, "the node to close the idle connections beyond its limit", || async {
        (held.iter().filter(|s| is_closed(s)).count() >= 20).then_some(())
    })
    .await;

    let res = within(10, "a new client's request", fresh_client(HERE).get(format!("{}/health", hub.url())).send())
        .await
        .expect("a new client is answered although 20 idle connections were open");
    assert_eq!(res.status(), 200);
    assert!(metric(&hub, "switchboard_http_connections_closed_total{reason=\"evicted\"}").await >= 21.0);
    assert!(metric(&hub, "switchboard_http_connections").await <= 20.0);
    assert_eq!(metric(&hub, "switchboard_http_connections_refused_total{reason=\"node_limit\"}").await, 0.0);
}

#[tokio::test]
async fn a_request_whose_headers_trickle_in_is_answered_408_at_the_header_timeout() {
    let hub = TestHub::start_with(|c| c.header_read_timeout_ms = 500).await;
    let mut s = connect_from(&hub, HERE).await;
    let started = Instant::now();
    s.write_all(b"GET /health HTTP/1.1\r\nhost: switchboard\r\n").await.unwrap();
    // A slow-loris client: one more header line every 100 ms, never the blank line.
    let mut answer = Vec::new();
    let mut trickle = tokio::time::interval(Duration::from_millis(100));
    within(10, "the node to answer the half-sent request and close", async {
        loop {
            tokio::select! {
                n = s.read_buf(&mut answer) => if n.unwrap_or(0) == 0 { break },
                _ = trickle.tick(), if answer.is_empty() => { let _ = s.write_all(b"x-slow: 1\r\n").await; }
            }
        }
    })
    .await;
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("content-type: application/problem+json"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "request_timeout");
    assert_eq!(body["status"], 408);
    assert!(waited >= Duration::from_millis(500), "answered after {waited:?}, before the timeout");
    assert_eq!(metric(&hub, "switchboard_http_connections_closed_total{reason=\"header_timeout\"}").await, 1.0);
}

#[tokio::test]
async fn the_idle_timeout_closes_idle_connections_but_not_long_polls_or_streams() {
    let hub = TestHub::start_with(|c| c.idle_timeout_ms = 300).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let (carol_reg, carol) = hub.agent("carol", &[]).await;
    let (dave_reg, dave) = hub.agent("dave", &[]).await;
    let poll =
        tokio::spawn(async move { bob.inbox(&InboxOptions { wait_ms: Some(30_000), ..Default::default() }).await });
    let mut ws = carol.stream().await.unwrap();
    let mut sse = dave.events().await.unwrap();

    // A connection with nothing in progress closes once the idle timeout has passed: the
    // long-poll and both streams have been open at least that long when it does.
    let idle = idle_connection(&hub).await;
    let opened = Instant::now();
    eventually(10, "the idle connection to be closed", || async { is_closed(&idle).then_some(()) }).await;
    assert!(opened.elapsed() >= Duration::from_millis(300));

    for reg in [&bob_reg, &carol_reg, &dave_reg] {
        alice.send(&SendMessage::text(agent_addr(&reg.agent.id), "still there?")).await.unwrap();
    }
    let polled = within(10, "the long-poll to return the message", poll).await.unwrap().unwrap();
    assert_eq!(polled.messages.len(), 1);
    assert!(within(10, "the WebSocket to deliver", ws.next_message()).await.unwrap().is_some());
    assert!(within(10, "the SSE stream to deliver", sse.next_message()).await.unwrap().is_some());
    assert!(metric(&hub, "switchboard_http_connections_closed_total{reason=\"idle_timeout\"}").await >= 1.0);
}

#[tokio::test]
async fn one_address_whose_connections_are_all_busy_is_refused_and_others_are_served() {
    let hub = TestHub::start_with(|c| c.max_connections_per_ip = 3).await;
    let (_, agent) = hub.agent("streamer", &[]).await;
    // Three streams from this address: its every connection is busy (the idle ones the
    // registration used made room for them).
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(agent.stream().await.unwrap());
    }
    let refused = within(10, "a fourth connection from the same address", async {
        fresh_client(HERE).get(format!("{}/health", hub.url())).send().await
    })
    .await;
    assert!(refused.is_err(), "a fourth connection was served: {refused:?}");
    let other = within(10, "a request from another address", async {
        fresh_client(ELSEWHERE).get(format!("{}/health", hub.url())).send().await
    })
    .await
    .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(metric(&hub, "switchboard_http_connections_refused_total{reason=\"ip_limit\"}").await, 1.0);
    drop(streams);
}

#[tokio::test]
async fn an_oversized_uri_or_header_section_is_a_problem() {
    let hub = TestHub::start().await;
    let http = reqwest::Client::new();
    let long = "a".repeat(MAX_URI_BYTES);
    let res = http.get(format!("{}/health?q={long}", hub.url())).send().await.unwrap();
    assert_eq!(res.status(), 414);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "uri_too_long");
    assert!(p["detail"].as_str().unwrap().contains("8192"), "{p}");

    let res =
        http.get(format!("{}/health", hub.url())).header("x-big", "b".repeat(MAX_HEADER_BYTES)).send().await.unwrap();
    assert_eq!(res.status(), 431);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "headers_too_large");

    // Under the limits the same requests are served, on the same connection.
    let res = http.get(format!("{}/health?q={}", hub.url(), &long[..MAX_URI_BYTES / 2])).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{}/health", hub.url()))
        .header("x-big", "b".repeat(MAX_HEADER_BYTES / 2))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_request_hyper_cannot_parse_is_answered_400_and_closed() {
    let hub = TestHub::start().await;
    let mut s = connect_from(&hub, HERE).await;
    s.write_all(b"GET /health HTTP/1.1\r\nthis line has no colon\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    within(10, "the node to answer and close", s.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    // FIXME: hyper answers a request it cannot parse itself, before the node sees it, with
    // an empty body; it should be a problem document like every other error. hyper has no
    // hook for that answer (see docs/operations.md).
    assert!(!answer.contains("problem+json"), "{answer}");
}

#[tokio::test]
async fn shutdown_lets_requests_in_progress_finish_and_closes_idle_and_half_sent_connections_at_once() {
    let hub = TestHub::start_with(|c| {
        c.header_read_timeout_ms = 60_000;
        c.idle_timeout_ms = 60_000;
    })
    .await;
    let (_, bob) = hub.agent("bob", &[]).await;
    let (_, carol) = hub.agent("carol", &[]).await;
    let poll =
        tokio::spawn(async move { bob.inbox(&InboxOptions { wait_ms: Some(30_000), ..Default::default() }).await });
    let mut ws = carol.stream().await.unwrap();
    let before = metric(&hub, "switchboard_http_connections").await;
    let idle = idle_connection(&hub).await;
    let mut half = connect_from(&hub, HERE).await;
    half.write_all(b"GET /health HTTP/1.1\r\nhost: switchboard\r\n").await.unwrap();
    let half = half.into_std().unwrap();
    // Wait until the node has taken both raw connections (they are then counted open).
    eventually(10, "the node to accept the raw connections", || async {
        (metric(&hub, "switchboard_http_connections").await >= before + 2.0).then_some(())
    })
    .await;

    within(10, "the node to shut down without waiting for the half-sent request", hub.stop()).await;
    let polled = within(10, "the long-poll to finish", poll).await.unwrap();
    assert!(polled.unwrap().messages.is_empty(), "the long-poll ends with an answer, not a broken connection");
    assert!(!matches!(within(10, "the stream to close", ws.next_message()).await, Ok(Some(_))));
    assert!(is_closed(&idle) && is_closed(&half));
}
