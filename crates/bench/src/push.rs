//! The `push` workload: this tool runs a webhook receiver on loopback, registers an agent
//! pointing at it, sends through the hub and measures what arrives. The receiver can fail a
//! share of requests with 500 to show retries at work. The hub must allow private endpoints
//! (`SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true`), since the receiver is on loopback.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::Rng;
use switchboard_client::Client;
use switchboard_core::api::{Part, RegisterAgent, SendMessage};
use tokio::sync::Mutex;

use super::{BenchConfig, BenchError, Report, new_hist, run_id};

struct Received {
    ok: Mutex<HashSet<String>>,
    oks: AtomicUsize,
    failed: AtomicU64,
    duplicates: AtomicU64,
    latency: Mutex<hdrhistogram::Histogram<u64>>,
}

/// Accepted messages the receiver has not taken: what is lost if the run ends now.
async fn missing(got: &Received, accepted: &std::sync::Mutex<Vec<String>>) -> u64 {
    let ok = got.ok.lock().await;
    accepted.lock().map(|ids| ids.iter().filter(|id| !ok.contains(*id)).count() as u64).unwrap_or(0)
}

pub(crate) async fn run(
    admin: &Client,
    cfg: &BenchConfig,
    progress: impl Fn(usize, usize),
) -> Result<Report, BenchError> {
    let epoch = Instant::now();
    let got = Arc::new(Received {
        ok: Mutex::new(HashSet::new()),
        oks: AtomicUsize::new(0),
        failed: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        latency: Mutex::new(new_hist()),
    });
    let fail_ratio = cfg.fail_ratio;
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                if fail_ratio > 0.0 && rand::rng().random_bool(fail_ratio.min(1.0)) {
                    g.failed.fetch_add(1, Ordering::Relaxed);
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let now_ns = epoch.elapsed().as_nanos() as u64;
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                let sent_ns = v["metadata"]["t"].as_u64().unwrap_or(0);
                if g.ok.lock().await.insert(id) {
                    let _ = g.latency.lock().await.record((now_ns.saturating_sub(sent_ns) / 1000).max(1));
                    g.oks.fetch_add(1, Ordering::Relaxed);
                } else {
                    g.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Incomplete(format!("cannot start the receiver: {e}")))?;
    let url = format!("http://{}/hook", listener.local_addr().map_err(|e| BenchError::Incomplete(e.to_string()))?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let run_id = run_id();
    let card = RegisterAgent {
        name: format!("bench-{run_id}-hook"),
        endpoint: Some(url),
        // Short retries, so a run with failures ends in seconds, not hours.
        retry_schedule_ms: Some(vec![10, 20, 40, 80, 160, 320, 640, 1280, 2560]),
        ..Default::default()
    };
    let hook = admin.register_agent(&card).await.map_err(|e| match e.code() {
        Some("invalid_body") => BenchError::Incomplete(format!(
            "{e}\n  the push workload needs a hub started with SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true"
        )),
        _ => e.into(),
    })?;
    let mut producers = Vec::new();
    for i in 0..cfg.producers {
        let r =
            admin.register_agent(&RegisterAgent { name: format!("bench-{run_id}-p{i}"), ..Default::default() }).await?;
        producers.push(admin.with_token(r.api_key));
    }
    let to = switchboard_core::Recipient::agent_text(&hook.agent.id.as_str().into());
    let body = "x".repeat(cfg.size);
    let total = cfg.messages;
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let send_latency = Arc::new(Mutex::new(new_hist()));
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for w in 0..cfg.producers * cfg.concurrency.max(1) {
        let producer = producers[w % producers.len()].clone();
        let (to, body, next, sent, errors, send_latency, accepted) = (
            to.clone(),
            body.clone(),
            next.clone(),
            sent.clone(),
            errors.clone(),
            send_latency.clone(),
            accepted.clone(),
        );
        senders.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t0 = Instant::now();
                let m = SendMessage {
                    to: to.clone(),
                    parts: vec![Part::text(body.clone())],
                    metadata: Some(serde_json::json!({ "t": t0.duration_since(epoch).as_nanos() as u64 })),
                    ..Default::default()
                };
                match producer.send(&m).await {
                    Ok(a) => {
                        let _ = send_latency.lock().await.record((t0.elapsed().as_micros() as u64).max(1));
                        if let Ok(mut ids) = accepted.lock() {
                            ids.push(a.id);
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let deadline = Instant::now() + super::DEADLINE;
    let mut last_report = Instant::now();
    loop {
        let (s, r) = (sent.load(Ordering::Relaxed), got.oks.load(Ordering::Relaxed));
        let e = errors.load(Ordering::Relaxed) as usize;
        // A failed send the hub kept anyway is pushed too, and can make up for a lost one in
        // the counts: then check message by message.
        if s + e >= total && r >= s && (e == 0 || missing(&got, &accepted).await == 0) {
            break;
        }
        if Instant::now() > deadline {
            break; // report what arrived; `lost` says what did not
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            progress(s, r);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    while senders.join_next().await.is_some() {}
    server.abort();
    let delivered = got.oks.load(Ordering::Relaxed);
    progress(sent.load(Ordering::Relaxed), delivered);
    let lat = got.latency.lock().await;
    let sl = send_latency.lock().await;
    let lost = missing(&got, &accepted).await;
    Ok(Report {
        consumers: 1,
        send_errors: errors.load(Ordering::Relaxed),
        duplicates: got.duplicates.load(Ordering::Relaxed),
        retries: Some(got.failed.load(Ordering::Relaxed)),
        lost: Some(lost),
        ..Report::measured("push", cfg, delivered, elapsed, &lat, &sl)
    })
}
