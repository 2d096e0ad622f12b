//! The `pages` workload: how fast the web app renders for a person with a full inbox.
//!
//! Set-up (not timed): a person with a password, an agent that sends them `cfg.messages`
//! messages (default 10,000) in batches of 1,000, a tenth of them in a conversation of the
//! two, one in twenty with a word to search for; then the person signs in. Measured: each
//! page of the web app fetched `ROUNDS` times in turn, one request at a time, from the
//! request to the last byte; p50, p95 and max per page. The person's inbox then holds every
//! message, which is the worst case the pages have (the triage page scans it all for
//! routed-by-hand items, of which there are none).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use switchboard_client::Client;
use switchboard_core::api::{BatchItem, CreateConversation, Part, RegisterAgent, SendMessage};
use switchboard_core::people::{CreateUser, Login};
use switchboard_core::principal::Role;

use crate::{BenchConfig, BenchError, Report, ms, new_hist, run_id};

/// Fetches of each page.
const ROUNDS: usize = 30;

/// One page's render times.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PageTiming {
    pub page: String,
    pub path: String,
    pub bytes: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

pub(crate) async fn run(
    admin: &Client,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report, BenchError> {
    let run = run_id();
    let started = Instant::now();
    let email = format!("bench-{run}@example.com");
    let password = format!("bench-{run}-password");
    let create = CreateUser {
        email: email.clone(),
        name: format!("Bench {run}"),
        role: Role::Member,
        password: Some(password.clone()),
    };
    let person = admin.create_user(&create).await?.user.id;
    let reg = admin.register_agent(&RegisterAgent { name: format!("bench-{run}-agent"), ..Default::default() }).await?;
    let agent = admin.with_token(reg.api_key);
    let participants = vec![format!("user:{person}")];
    let conversation = agent
        .create_conversation(&CreateConversation { title: Some(format!("bench {run}")), participants })
        .await?
        .conversation
        .id;

    let filler = "x".repeat(cfg.size.saturating_sub(40));
    let mut sent = 0;
    let mut last = None;
    while sent < cfg.messages {
        let n = (cfg.messages - sent).min(1000);
        let batch = (sent..sent + n)
            .map(|i| {
                let word = if i % 20 == 0 { "needle" } else { "hay" };
                let to = if i % 10 == 0 { format!("conversation:{conversation}") } else { format!("user:{person}") };
                SendMessage {
                    to,
                    parts: vec![Part::text(format!("message {i} {word} {filler}"))],
                    ..Default::default()
                }
            })
            .collect();
        let answer = agent.send_batch(batch).await?;
        for r in &answer.results {
            match r {
                BatchItem::Accepted(a) => last = Some(a.id.clone()),
                BatchItem::Refused { error } => {
                    return Err(BenchError::Incomplete(format!("a message was refused: {}", error.detail)));
                }
            }
        }
        sent += n;
        progress(sent, 0);
    }
    let session = Client::new(admin.base_url(), None).login(&Login { email, password, tenant: None }).await?;
    let setup_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut pages = vec![
        ("inbox", "/".to_owned()),
        ("inbox, unread only", "/?show=unread".to_owned()),
        ("inbox, search", "/?q=needle".to_owned()),
        ("conversations", "/conversations".to_owned()),
        ("conversation", format!("/conversations/{conversation}")),
        ("triage", "/triage".to_owned()),
        ("agents", "/agents".to_owned()),
        ("agent", format!("/agents/{}", reg.agent.id)),
    ];
    if let Some(id) = last {
        pages.push(("message", format!("/messages/{id}")));
    }
    let measured = Instant::now();
    let mut all = new_hist();
    let mut timings = Vec::new();
    for (done, (page, path)) in pages.into_iter().enumerate() {
        let mut h = new_hist();
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let (status, len) = admin.page(&session, &path).await?;
            if status != 200 {
                return Err(BenchError::Incomplete(format!("page {path} answered {status}")));
            }
            let us = (t.elapsed().as_micros() as u64).max(1);
            let _ = h.record(us);
            let _ = all.record(us);
            bytes = len;
        }
        timings.push(timing(page, path, bytes, &h));
        progress(sent, done + 1);
    }
    let elapsed = measured.elapsed();
    let renders = all.len() as usize;
    Ok(Report {
        workload: "pages".into(),
        messages: cfg.messages,
        size: cfg.size,
        producers: 1,
        consumers: 1,
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        messages_per_s: renders as f64 / elapsed.max(Duration::from_micros(1)).as_secs_f64(),
        p50_ms: ms(&all, 0.5),
        p90_ms: ms(&all, 0.9),
        p99_ms: ms(&all, 0.99),
        p999_ms: ms(&all, 0.999),
        max_ms: all.max() as f64 / 1000.0,
        setup_ms: Some(setup_ms),
        pages: Some(timings),
        ..Default::default()
    })
}

fn timing(page: &str, path: String, bytes: usize, h: &Histogram<u64>) -> PageTiming {
    PageTiming {
        page: page.into(),
        path,
        bytes,
        p50_ms: ms(h, 0.5),
        p95_ms: ms(h, 0.95),
        max_ms: h.max() as f64 / 1000.0,
    }
}
