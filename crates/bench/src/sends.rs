//! The `http` and `connections` workloads: the front door alone (single-message sends with
//! keep-alive, no consumer), and what idle WebSocket consumers cost the hub in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_client::Client;
use switchboard_core::api::{Capability, Part, RegisterAgent, SendMessage};
use tokio::sync::Mutex;

use super::{BenchConfig, BenchError, DEADLINE, Memory, Payload, Receipts, Report, new_hist, run_id};

/// Closed loop of `POST /v1/messages`, one message each; latency is the request's (until the
/// 202, i.e. committed). Messages pile up for one agent nobody reads during the run; after
/// it (not timed) that agent reads them all back, so that `lost` is counted as for every
/// other workload.
pub(crate) async fn http(
    admin: &Client,
    cfg: &BenchConfig,
    progress: impl Fn(usize, usize),
) -> Result<Report, BenchError> {
    let run = run_id();
    // A data payload goes to a capability the sink offers (with a small input schema for
    // `schema`); the sink says it is alive so that anycast can pick it.
    let capability = (cfg.payload != Payload::Text).then(|| Capability {
        name: format!("bench-{run}"),
        description: None,
        tags: vec![],
        examples: vec![],
        input_schema: (cfg.payload == Payload::Schema).then(|| {
            serde_json::json!({"type": "object", "required": ["n", "body"], "additionalProperties": false,
                "properties": {"n": {"type": "integer", "minimum": 0}, "body": {"type": "string", "maxLength": 1_000_000}}})
        }),
        output_schema: None,
        output_schema_mode: None,
        reassign_on_timeout: None,
    });
    let sink = admin
        .register_agent(&RegisterAgent {
            name: format!("bench-{run}-sink"),
            capabilities: capability.iter().cloned().collect(),
            ..Default::default()
        })
        .await?;
    if capability.is_some() {
        admin.with_token(sink.api_key.clone()).heartbeat(&sink.agent.id).await?;
    }
    let mut producers = Vec::new();
    for i in 0..cfg.producers.max(1) {
        let r =
            admin.register_agent(&RegisterAgent { name: format!("bench-{run}-p{i}"), ..Default::default() }).await?;
        producers.push(admin.with_token(r.api_key));
    }
    let to = match &capability {
        Some(c) => format!("capability:{}", c.name),
        None => switchboard_core::Recipient::agent_text(&sink.agent.id.as_str().into()),
    };
    let payload = cfg.payload;
    let body = "x".repeat(cfg.size);
    let total = cfg.messages;
    let (next, sent, errors) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
    let latency = Arc::new(Mutex::new(new_hist()));
    let receipts = Arc::new(Receipts::default());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..producers.len() * cfg.concurrency.max(1) {
        let producer = producers[w % producers.len()].clone();
        let (to, body, next, sent, errors, latency, receipts, payload) = (
            to.clone(),
            body.clone(),
            next.clone(),
            sent.clone(),
            errors.clone(),
            latency.clone(),
            receipts.clone(),
            payload,
        );
        workers.spawn(async move {
            let mut local = new_hist();
            let mut accepted = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let part = match payload {
                    Payload::Text => Part::text(body.clone()),
                    _ => Part::Data { data: serde_json::json!({"n": n, "body": body}) },
                };
                let m = SendMessage { to: to.clone(), parts: vec![part], ..Default::default() };
                let t0 = Instant::now();
                match producer.send(&m).await {
                    Ok(a) => {
                        let _ = local.record((t0.elapsed().as_micros() as u64).max(1));
                        accepted.push(a.id);
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latency.lock().await.add(&local).ok();
            receipts.accepted(accepted);
        });
    }
    let mut last = Instant::now();
    while !workers.is_empty() {
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), workers.join_next()).await {
            continue;
        }
        if last.elapsed() >= Duration::from_secs(1) {
            progress(sent.load(Ordering::Relaxed), sent.load(Ordering::Relaxed));
            last = Instant::now();
        }
    }
    let elapsed = started.elapsed();
    let done = sent.load(Ordering::Relaxed);
    progress(done, done);
    let lost = read_back(&admin.with_token(sink.api_key), &receipts, done).await?;
    let lat = latency.lock().await;
    Ok(Report {
        producers: producers.len(),
        consumers: 0,
        send_errors: errors.load(Ordering::Relaxed),
        lost: Some(lost),
        ..Report::measured("http", cfg, done, elapsed, &lat, &lat)
    })
}

/// Reads the sink's messages over a WebSocket, acking each, until every one of the
/// `accepted` messages has arrived or the deadline passes; returns how many never did.
async fn read_back(sink: &Client, receipts: &Receipts, accepted: usize) -> Result<u64, BenchError> {
    let mut stream = sink.stream().await?;
    let deadline = Instant::now() + DEADLINE;
    let mut received = 0;
    while Instant::now() < deadline {
        // A failed send the hub kept anyway arrives too: count, then check id by id.
        if received >= accepted && receipts.lost() == 0 {
            break;
        }
        let m = match tokio::time::timeout(Duration::from_millis(200), stream.next_message()).await {
            Err(_) => continue,
            Ok(Ok(Some(m))) => m,
            Ok(_) => break,
        };
        if receipts.received(&m.message.id) {
            received += 1;
        }
        if stream.ack(&m.message.id).await.is_err() {
            break;
        }
    }
    let _ = stream.close().await;
    Ok(receipts.lost())
}

/// The hub's resident set size, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Opens `consumers` WebSocket streams (one agent each, as real consumers would be), lets the
/// hub settle, and reports its memory per connection. The hub must run on this machine: its
/// pid is found from the port it listens on.
pub(crate) async fn connections(
    admin: &Client,
    cfg: &BenchConfig,
    progress: impl Fn(usize, usize),
) -> Result<Report, BenchError> {
    let port = admin
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .ok_or_else(|| BenchError::Incomplete("cannot tell the hub's port from SWITCHBOARD_URL".into()))?;
    let pid = crate::peers::pid_listening_on(port).ok_or_else(|| {
        BenchError::Incomplete(format!("no local process listens on port {port}; run this next to the hub"))
    })?;
    let run = run_id();
    let n = cfg.consumers.max(1);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let r =
            admin.register_agent(&RegisterAgent { name: format!("bench-{run}-idle{i}"), ..Default::default() }).await?;
        keys.push(r.api_key);
        if i % 500 == 0 {
            progress(i, 0);
        }
    }
    let before = rss_kib(pid).unwrap_or(0);
    let started = Instant::now();
    let mut streams = Vec::with_capacity(n);
    for (i, key) in keys.into_iter().enumerate() {
        streams.push(admin.with_token(key).stream().await?);
        if i % 500 == 0 {
            progress(n, i);
        }
    }
    // Let the hub finish setting the connections up before reading its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid).unwrap_or(0);
    let elapsed = started.elapsed();
    progress(n, streams.len());
    drop(streams);
    Ok(Report {
        workload: "connections".into(),
        consumers: n,
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        memory: Some(Memory {
            connections: n,
            rss_before_kib: before,
            rss_after_kib: after,
            per_connection_kib: after.saturating_sub(before) as f64 / n as f64,
        }),
        ..Default::default()
    })
}
