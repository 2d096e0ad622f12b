//! The `fanout` workload against the hub: one topic, `consumers` subscribers, one publisher.
//!
//! Every subscriber is an agent of its own with its own WebSocket, as real subscribers would
//! be, and acks each delivery. The publishing and the counting are the peers' harness
//! ([`peers::drive`] and [`peers::Tally`]), so the hub and the brokers are measured alike:
//! each message carries its sequence number and due time in its metadata, and every
//! (message, subscriber) pair counts once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_client::{Client, Stream};
use switchboard_core::api::{Part, RegisterAgent, SendMessage};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::peers::{self, Tally};
use crate::{BenchConfig, BenchError, Report, run_id};

/// Subscribers set up at once (register, subscribe, open the stream): enough to overlap the
/// round trips without queueing hundreds of requests at the hub.
const SETUP_CONCURRENCY: usize = 16;

/// How long the messages may take to reach every subscriber before the rest count as lost.
const DEADLINE: Duration = Duration::from_secs(300);

/// Registers a publisher and `cfg.consumers` subscribers of a fresh topic, then publishes
/// `cfg.messages` to `topic:<name>` through the peers' harness.
pub(crate) async fn run(
    admin: &Client,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report, BenchError> {
    let run = run_id();
    // Dotted, so that wildcard patterns share its first token and the index must look further.
    let topic = format!("bench-{run}.orders.eu");
    let publisher =
        admin.register_agent(&RegisterAgent { name: format!("bench-{run}-pub"), ..Default::default() }).await?;
    let publisher = admin.with_token(publisher.api_key);

    let started = Instant::now();
    if cfg.wildcard_subscriptions > 0 {
        subscribe_patterns(admin, &run, cfg.wildcard_subscriptions).await?;
    }
    let streams = subscribe_all(admin, &run, &topic, cfg.consumers.max(1)).await?;
    let setup_ms = started.elapsed().as_secs_f64() * 1000.0;

    let to = format!("topic:{topic}");
    send_to_streams(cfg, publisher, to, streams, cfg.receipts_per_message(), setup_ms, progress).await
}

/// The measured part of a fan-out run (topic or conversation): `sender` sends `cfg.messages`
/// to `to` through the peers' harness while a consumer per stream acks and tallies what
/// arrives; each message should reach `receipts` streams.
pub(crate) async fn send_to_streams(
    cfg: &BenchConfig,
    sender: Client,
    to: String,
    streams: Vec<Stream>,
    receipts: usize,
    setup_ms: f64,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report, BenchError> {
    let tally = Tally::new(cfg.messages, receipts);
    let mut consumers = JoinSet::new();
    for (receiver, stream) in streams.into_iter().enumerate() {
        consumers.spawn(consume(stream, receiver, tally.clone()));
    }
    let body = "x".repeat(cfg.size);
    let publish = move |_producer: usize, _seq: usize, payload: Vec<u8>| {
        let (sender, to, body) = (sender.clone(), to.clone(), body.clone());
        async move {
            let (seq, due_ns) = peers::header(&payload).ok_or("payload without a header")?;
            let m = SendMessage {
                to,
                parts: vec![Part::text(body)],
                metadata: Some(serde_json::json!({ "n": seq, "t": due_ns })),
                ..Default::default()
            };
            sender.send(&m).await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    let report = peers::drive(cfg, &tally, publish, DEADLINE, progress).await;
    while consumers.join_next().await.is_some() {}
    Ok(Report { setup_ms: Some(setup_ms), ..report })
}

/// Registers `n` agents, subscribes each (with its own key) to `topic` and opens its stream,
/// [`SETUP_CONCURRENCY`] at a time. The streams come back in subscriber order.
async fn subscribe_all(admin: &Client, run: &str, topic: &str, n: usize) -> Result<Vec<Stream>, BenchError> {
    let room = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut setting_up = JoinSet::new();
    for i in 0..n {
        let (admin, room, topic) = (admin.clone(), room.clone(), topic.to_owned());
        let name = format!("bench-{run}-s{i}");
        setting_up.spawn(async move {
            let _turn = room.acquire_owned().await.map_err(|_| BenchError::Incomplete("set-up cancelled".into()))?;
            let agent = admin.register_agent(&RegisterAgent { name, ..Default::default() }).await?;
            let client = admin.with_token(agent.api_key);
            client.subscribe(&topic, &agent.agent.id).await?;
            Ok::<_, BenchError>((i, client.stream().await?))
        });
    }
    let mut streams: Vec<Option<Stream>> = (0..n).map(|_| None).collect();
    while let Some(done) = setting_up.join_next().await {
        let (i, stream) = done.map_err(|e| BenchError::Incomplete(format!("a subscriber's set-up failed: {e}")))??;
        streams[i] = Some(stream);
    }
    Ok(streams.into_iter().flatten().collect())
}

/// Agents that hold the wildcard subscriptions of a `--wildcard-subscriptions` run.
const PATTERN_AGENTS: usize = 10;

/// Sets up `n` wildcard subscriptions in the tenant, spread over [`PATTERN_AGENTS`] agents
/// of their own, none of which matches the published `bench-<run>.orders.eu`: patterns
/// sharing its first token (`bench-<run>.w<i>.*`), starting with a wildcard (`*.w<i>.>`),
/// and of other prefixes (`w<i>.>`).
async fn subscribe_patterns(admin: &Client, run: &str, n: usize) -> Result<(), BenchError> {
    let mut agents = Vec::new();
    for a in 0..PATTERN_AGENTS {
        let reg =
            admin.register_agent(&RegisterAgent { name: format!("bench-{run}-w{a}"), ..Default::default() }).await?;
        agents.push(reg.agent.id);
    }
    let room = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut setting_up = JoinSet::new();
    for i in 0..n {
        let pattern = match i % 3 {
            0 => format!("bench-{run}.w{i}.*"),
            1 => format!("*.w{i}.>"),
            _ => format!("w{i}.>"),
        };
        let (admin, room, agent) = (admin.clone(), room.clone(), agents[i % PATTERN_AGENTS].clone());
        setting_up.spawn(async move {
            let _turn = room.acquire_owned().await.map_err(|_| BenchError::Incomplete("set-up cancelled".into()))?;
            admin.subscribe(&pattern, &agent).await?;
            Ok::<_, BenchError>(())
        });
    }
    while let Some(done) = setting_up.join_next().await {
        done.map_err(|e| BenchError::Incomplete(format!("a pattern subscription failed: {e}")))??;
    }
    Ok(())
}

/// One subscriber: records each delivery in `tally` as it arrives, acks it, and leaves when
/// the run is over.
pub(crate) async fn consume(mut stream: Stream, subscriber: usize, tally: Arc<Tally>) {
    while !tally.done() {
        let m = match tokio::time::timeout(Duration::from_millis(200), stream.next_message()).await {
            Err(_) => continue,
            Ok(Ok(Some(m))) => m,
            Ok(_) => break,
        };
        let meta = m.message.metadata.as_ref();
        if let (Some(seq), Some(due_ns)) = (meta.and_then(|v| v["n"].as_u64()), meta.and_then(|v| v["t"].as_u64())) {
            tally.record(subscriber, seq, due_ns);
        }
        if stream.ack(&m.message.id).await.is_err() {
            break;
        }
    }
    let _ = stream.close().await;
}
