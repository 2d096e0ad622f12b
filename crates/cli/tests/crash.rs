//! Kill -9 while sending: every message that got a 202 is delivered after restart.
//!
//! The real binary runs as a child process; the test SIGKILLs it mid-load several times,
//! restarts it on the same data directory, and finally drains the recipient's inbox.

use std::collections::HashSet;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use common::{Ids, agent_addr, start_hub};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{RegisterAgent, SendMessage};

const ROUNDS: usize = 3;
const SENDERS: usize = 8;
const PER_ROUND: usize = 300;

async fn start(dir: &std::path::Path) -> (Child, Client) {
    start_hub(dir, &[("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", "true"), ("SWITCHBOARD_PUSH_TIMEOUT_MS", "1000")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_accepted_message() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut admin) = start(dir.path()).await;
    let bob = admin.register_agent(&RegisterAgent { name: "bob".into(), ..Default::default() }).await.unwrap();
    let to = agent_addr(&bob.agent.id);
    let accepted = Ids::new();
    let mut refused_after_kill = 0usize;

    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::new();
        for s in 0..SENDERS {
            let (admin, to, stop, accepted) = (admin.clone(), to.clone(), stop.clone(), accepted.clone());
            senders.push(tokio::spawn(async move {
                let mut failures = 0;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    match admin.send(&SendMessage::text(&to, format!("r{round} s{s} n{i}"))).await {
                        Ok(r) => accepted.push(r.id),
                        Err(_) => {
                            failures += 1;
                            if failures > 3 {
                                break; // the hub is gone
                            }
                        }
                    }
                }
                failures
            }));
        }
        let target = (round + 1) * PER_ROUND;
        accepted.wait(60, &format!("{target} accepted sends"), |ids| ids.len() >= target).await;
        child.kill().expect("SIGKILL"); // mid-stream: sends are in flight right now
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            refused_after_kill += s.await.unwrap();
        }
        (child, admin) = start(dir.path()).await;
    }

    // Drain everything the recipient has, after the last restart.
    let port_client = admin.with_token(bob.api_key.clone());
    let mut delivered = HashSet::new();
    loop {
        let inbox = port_client
            .inbox(&InboxOptions { limit: Some(1000), visibility_ms: Some(600_000), wait_ms: Some(0) })
            .await
            .unwrap();
        if inbox.messages.is_empty() {
            break;
        }
        let ids: Vec<String> = inbox.messages.iter().map(|m| m.message.id.clone()).collect();
        port_client.ack(ids.clone()).await.unwrap();
        delivered.extend(ids);
    }
    let accepted = accepted.snapshot();
    let missing: Vec<_> = accepted.iter().filter(|id| !delivered.contains(*id)).collect();
    println!(
        "crash test: {ROUNDS} SIGKILLs, {} sends answered 202, {} delivered after restart, {} sends failed while the hub was down",
        accepted.len(),
        delivered.len(),
        refused_after_kill
    );
    assert!(missing.is_empty(), "{} accepted messages were lost, e.g. {:?}", missing.len(), missing.first());
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts a webhook receiver on loopback that takes a little while to answer (so pushes are
/// in flight when the hub dies) and records every `webhook-id` it acknowledges.
async fn receiver() -> (String, Arc<Ids>) {
    use axum::http::HeaderMap;
    let seen = Ids::new();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let s = s.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                s.push(id);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_pushes_in_flight_loses_no_accepted_message() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = receiver().await;
    let (mut child, mut admin) = start(dir.path()).await;
    let card = RegisterAgent {
        name: "hook".into(),
        endpoint: Some(url),
        retry_schedule_ms: Some(vec![100; 20]),
        ..Default::default()
    };
    let hook = admin.register_agent(&card).await.unwrap();
    let to = agent_addr(&hook.agent.id);
    let mut accepted = Vec::new();
    for round in 0..ROUNDS {
        let target = (round + 1) * 200;
        let mut in_flight = tokio::task::JoinSet::new();
        // Send until the target is reached, then kill the hub while pushes are going out.
        while accepted.len() < target {
            for i in 0..SENDERS {
                let (admin, to) = (admin.clone(), to.clone());
                in_flight.spawn(async move { admin.send(&SendMessage::text(&to, format!("r{round} {i}"))).await });
            }
            while let Some(r) = in_flight.join_next().await {
                if let Ok(Ok(a)) = r {
                    accepted.push(a.id);
                }
            }
        }
        let pushed_before_kill = seen.len();
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        println!(
            "round {round}: {} accepted so far, {pushed_before_kill} pushes received before the kill",
            accepted.len()
        );
        (child, admin) = start(dir.path()).await;
    }
    seen.wait_for_all(&accepted, 60, "every accepted message pushed").await;
    let total = seen.len();
    println!(
        "push crash test: {ROUNDS} SIGKILLs, {} accepted, all pushed; {} requests in all ({} duplicates, same webhook-id)",
        accepted.len(),
        total,
        total - accepted.len()
    );
    let _ = child.kill();
    let _ = child.wait();
}
