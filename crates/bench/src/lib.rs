//! Load generator for a running hub: drives it through the client crate, like any user, and
//! reports throughput and latency percentiles (HDR histogram).
//!
//! Latency is measured from just before the send request to the moment the consumer reads
//! the message off its WebSocket: the send time travels in the message's metadata (nanoseconds
//! since this process's start, so producer and consumer share one monotonic clock).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use switchboard_client::{Client, ClientError};
use switchboard_core::api::{Part, RegisterAgent, SendMessage};
use tokio::sync::Mutex;

mod conversation;
mod fanout;
mod figures;
mod pages;
pub mod peers;
mod push;
pub use figures::{Memory, Report};
pub use pages::PageTiming;
pub mod report;
mod sends;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// 1,000 concurrent sends from 10 agents to 10 agents, all delivered and acked.
    Burst,
    /// Closed loop: as fast as the producers can send, one-to-one, WebSocket consumers.
    Throughput,
    /// Open loop at a fixed rate: latency percentiles without coordinated omission.
    Latency,
    /// Push to a local webhook receiver that this tool runs (optionally failing a share of
    /// requests): deliveries/s, send-to-receipt latency, retries, losses.
    Push,
    /// Single-message `POST /v1/messages` requests/s and their latency, keep-alive, no consumer.
    Http,
    /// Hold `consumers` idle WebSocket consumers open; report the hub's memory per connection.
    Connections,
    /// One topic, `consumers` subscribers (each its own agent and WebSocket), one publisher:
    /// every message is delivered to every subscriber and each delivery is acked.
    Fanout,
    /// A conversation of three agents: one sender, two receivers (each its own WebSocket,
    /// acking); every message reaches both and takes the conversation's next `seq`.
    Conversation,
    /// A person with `messages` in their inbox (default 10,000): each page of the web app
    /// rendered in turn, its p50, p95 and max (see `pages.rs`).
    Pages,
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "burst" => Ok(Workload::Burst),
            "throughput" => Ok(Workload::Throughput),
            "latency" => Ok(Workload::Latency),
            "push" => Ok(Workload::Push),
            "http" => Ok(Workload::Http),
            "connections" => Ok(Workload::Connections),
            "fanout" => Ok(Workload::Fanout),
            "conversation" => Ok(Workload::Conversation),
            "pages" => Ok(Workload::Pages),
            other => Err(format!(
                "unknown workload `{other}`; use burst, throughput, latency, push, http, connections, fanout, conversation or pages"
            )),
        }
    }
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub workload: Workload,
    /// Messages to send in all.
    pub messages: usize,
    /// Bytes of text in each message.
    pub size: usize,
    /// Concurrent sending agents (each with `concurrency` requests in flight).
    pub producers: usize,
    /// Receiving agents, each with one WebSocket (`fanout`: the topic's subscribers).
    pub consumers: usize,
    /// Requests in flight per producer (closed loop).
    pub concurrency: usize,
    /// Messages per second in all (open loop when set; `latency` and `fanout`).
    pub rate: u64,
    /// Share of push requests the receiver fails with 500 (`push` only).
    pub fail_ratio: f64,
    /// Messages per send request in closed loop (1: `POST /v1/messages`; more: `:batch`).
    pub batch: usize,
    /// What the `http` workload sends.
    pub payload: Payload,
    /// `fanout` only: wildcard subscriptions to set up in the tenant first, none of which
    /// match the published topic (what a publish costs when the tenant has many patterns).
    pub wildcard_subscriptions: usize,
}

/// What the `http` workload sends: a text part to an agent, or a `data` part to a
/// capability whose agent has no `input_schema` (`data`) or a small one (`schema`), to
/// measure what checking a schema costs a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Text,
    Data,
    Schema,
}

impl std::str::FromStr for Payload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Payload::Text),
            "data" => Ok(Payload::Data),
            "schema" => Ok(Payload::Schema),
            other => Err(format!("unknown payload `{other}`; use text, data or schema")),
        }
    }
}

impl BenchConfig {
    /// The defaults of a workload.
    pub fn for_workload(workload: Workload) -> BenchConfig {
        match workload {
            Workload::Burst => BenchConfig {
                workload,
                messages: 1000,
                size: 1024,
                producers: 10,
                consumers: 10,
                concurrency: 100,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            Workload::Throughput => BenchConfig {
                workload,
                messages: 20_000,
                size: 1024,
                producers: 4,
                consumers: 4,
                concurrency: 16,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            Workload::Latency => BenchConfig {
                workload,
                messages: 5000,
                size: 1024,
                producers: 1,
                consumers: 1,
                concurrency: 1,
                rate: 1000,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            Workload::Push => BenchConfig {
                workload,
                messages: 5000,
                size: 1024,
                producers: 4,
                consumers: 1,
                concurrency: 8,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            Workload::Http => BenchConfig {
                workload,
                messages: 20000,
                size: 1024,
                producers: 4,
                consumers: 0,
                concurrency: 16,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            Workload::Connections => BenchConfig {
                workload,
                messages: 0,
                size: 1024,
                producers: 0,
                consumers: 1000,
                concurrency: 8,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            // One sender with 16 sends in flight, as the fanout's publisher.
            Workload::Conversation => BenchConfig {
                workload,
                messages: 5000,
                size: 1024,
                producers: 1,
                consumers: 2,
                concurrency: 16,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            // A person's inbox of 10,000 messages of 200 bytes, read one page at a time.
            Workload::Pages => BenchConfig {
                workload,
                messages: 10_000,
                size: 200,
                producers: 1,
                consumers: 1,
                concurrency: 1,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1000,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
            // 100,000 deliveries at 100 subscribers; one publisher with 16 sends in flight.
            Workload::Fanout => BenchConfig {
                workload,
                messages: 1000,
                size: 1024,
                producers: 1,
                consumers: 100,
                concurrency: 16,
                rate: 0,
                fail_ratio: 0.0,
                batch: 1,
                payload: Payload::Text,
                wildcard_subscriptions: 0,
            },
        }
    }

    /// How many receipts each message should make: every subscriber's for `fanout`, both
    /// receivers' for `conversation`, one consumer's otherwise.
    pub fn receipts_per_message(&self) -> usize {
        match self.workload {
            Workload::Fanout => self.consumers.max(1),
            Workload::Conversation => conversation::RECEIVERS,
            _ => 1,
        }
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Incomplete(String),
}

/// A name prefix unique to this run, so runs started at the same moment (one per node) do not
/// collide on agent names: the random tail of a UUIDv7.
fn run_id() -> String {
    let id = switchboard_core::new_id().simple().to_string();
    id[id.len() - 12..].to_owned()
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Runs a workload against the hub `admin` points at; `progress` is called about once a
/// second with (sent, received).
pub async fn run(
    admin: &Client,
    cfg: &BenchConfig,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<Report, BenchError> {
    match cfg.workload {
        Workload::Push => return push::run(admin, cfg, progress).await,
        Workload::Http => return sends::http(admin, cfg, progress).await,
        Workload::Connections => return sends::connections(admin, cfg, progress).await,
        Workload::Fanout => return fanout::run(admin, cfg, &progress).await,
        Workload::Conversation => return conversation::run(admin, cfg, &progress).await,
        Workload::Pages => return pages::run(admin, cfg, &progress).await,
        _ => {}
    }
    let run_id = run_id();
    let mut producers = Vec::new();
    for i in 0..cfg.producers {
        let r =
            admin.register_agent(&RegisterAgent { name: format!("bench-{run_id}-p{i}"), ..Default::default() }).await?;
        producers.push(admin.with_token(r.api_key));
    }
    let mut consumer_ids = Vec::new();
    let mut streams = Vec::new();
    for i in 0..cfg.consumers {
        let r =
            admin.register_agent(&RegisterAgent { name: format!("bench-{run_id}-c{i}"), ..Default::default() }).await?;
        consumer_ids.push(switchboard_core::Recipient::agent_text(&r.agent.id.as_str().into()));
        streams.push(admin.with_token(r.api_key).stream().await?);
    }

    let epoch = Instant::now();
    let received = Arc::new(AtomicUsize::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(new_hist()));
    let receipts = Arc::new(Receipts::default());
    let done = Arc::new(AtomicBool::new(false));
    let total = cfg.messages;
    let mut consumers = Vec::new();
    for mut stream in streams {
        let (received, duplicates, latency, receipts, done) =
            (received.clone(), duplicates.clone(), latency.clone(), receipts.clone(), done.clone());
        consumers.push(tokio::spawn(async move {
            let mut local = new_hist();
            while received.load(Ordering::Relaxed) < total && !done.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(200), stream.next_message()).await;
                let m = match next {
                    Err(_) => continue,
                    Ok(Ok(Some(m))) => m,
                    Ok(_) => break,
                };
                let sent_ns = m.message.metadata.as_ref().and_then(|v| v["t"].as_u64()).unwrap_or(0);
                let now_ns = epoch.elapsed().as_nanos() as u64;
                if receipts.received(&m.message.id) {
                    let _ = local.record(((now_ns.saturating_sub(sent_ns)) / 1000).max(1));
                    received.fetch_add(1, Ordering::Relaxed);
                } else {
                    duplicates.fetch_add(1, Ordering::Relaxed);
                }
                if stream.ack(&m.message.id).await.is_err() {
                    break;
                }
            }
            let _ = stream.close().await;
            latency.lock().await.add(&local).ok();
        }));
    }

    let body = "x".repeat(cfg.size);
    let sent = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let send_latency = Arc::new(Mutex::new(new_hist()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let interval = (cfg.rate > 0).then(|| Duration::from_nanos(1_000_000_000 / cfg.rate));
    let mut senders = Vec::new();
    // Closed loop: `producers × concurrency` workers, each sending its next message as soon as
    // the previous one is accepted. Open loop (`rate` set): one pacer starts message n at
    // n × interval in a task of its own, whether or not earlier sends were slow, and its
    // latency counts from when it was due — so a stall cannot hide (coordinated omission).
    let workers = if interval.is_some() { 1 } else { cfg.producers * cfg.concurrency.max(1) };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4096));
    let batch = cfg.batch.max(1);
    for w in 0..workers {
        let producers = producers.clone();
        let (consumer_ids, body, sent, errors, send_latency, next, in_flight, receipts) = (
            consumer_ids.clone(),
            body.clone(),
            sent.clone(),
            errors.clone(),
            send_latency.clone(),
            next.clone(),
            in_flight.clone(),
            receipts.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut tasks = Vec::new();
            loop {
                // Closed loop may send `batch` messages per request (`POST /v1/messages:batch`).
                let k = if interval.is_some() { 1 } else { batch };
                let n = next.fetch_add(k, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let count = k.min(total - n);
                let due = interval.map(|i| started + i * n as u32);
                if let Some(d) = due {
                    tokio::time::sleep_until(d.into()).await;
                }
                let t0 = due.unwrap_or_else(Instant::now);
                let batch_msgs: Vec<SendMessage> = (n..n + count)
                    .map(|j| SendMessage {
                        to: consumer_ids[j % consumer_ids.len()].clone(),
                        parts: vec![Part::text(body.clone())],
                        metadata: Some(serde_json::json!({ "t": t0.duration_since(epoch).as_nanos() as u64 })),
                        ..Default::default()
                    })
                    .collect();
                let producer = producers[(w + n) % producers.len()].clone();
                let (sent, errors, send_latency, receipts) =
                    (sent.clone(), errors.clone(), send_latency.clone(), receipts.clone());
                let one = async move {
                    let accepted = if batch_msgs.len() == 1 {
                        producer.send(&batch_msgs[0]).await.map(|a| vec![a.id])
                    } else {
                        producer.send_batch(batch_msgs).await.map(|r| {
                            (r.results.into_iter())
                                .filter_map(|i| match i {
                                    switchboard_core::api::BatchItem::Accepted(a) => Some(a.id),
                                    _ => None,
                                })
                                .collect()
                        })
                    };
                    match accepted {
                        Ok(ids) => {
                            let _ = send_latency.lock().await.record((t0.elapsed().as_micros() as u64).max(1));
                            let a = ids.len();
                            receipts.accepted(ids);
                            sent.fetch_add(a, Ordering::Relaxed);
                            errors.fetch_add((count - a) as u64, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(count as u64, Ordering::Relaxed);
                        }
                    }
                };
                if interval.is_some() {
                    let permit = in_flight.clone().acquire_owned().await.expect("semaphore open");
                    tasks.push(tokio::spawn(async move {
                        one.await;
                        drop(permit);
                    }));
                } else {
                    one.await;
                }
            }
            for t in tasks {
                let _ = t.await;
            }
        }));
    }

    let deadline = Instant::now() + deadline_for(cfg);
    let mut last_report = Instant::now();
    loop {
        let (s, r) = (sent.load(Ordering::Relaxed), received.load(Ordering::Relaxed));
        let e = errors.load(Ordering::Relaxed) as usize;
        // A failed send the hub committed anyway arrives too, and can make up for a lost
        // one in the counts: then check message by message.
        let all_in = s + e >= total && r >= s && (e == 0 || receipts.lost() == 0);
        if r >= total || (all_in && senders.iter().all(|h| h.is_finished())) || Instant::now() > deadline {
            break; // past the deadline, report what arrived: `lost` says what did not
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            progress(s, r);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    for c in consumers {
        let _ = c.await;
    }
    progress(sent.load(Ordering::Relaxed), received.load(Ordering::Relaxed));
    let lat = latency.lock().await;
    let sl = send_latency.lock().await;
    let delivered = received.load(Ordering::Relaxed);
    Ok(Report {
        send_errors: errors.load(Ordering::Relaxed),
        duplicates: duplicates.load(Ordering::Relaxed),
        lost: Some(receipts.lost()),
        ..Report::measured(&format!("{:?}", cfg.workload).to_lowercase(), cfg, delivered, elapsed, &lat, &sl)
    })
}

/// How long a hub run may take before it reports what arrived and counts the rest as lost.
const DEADLINE: Duration = Duration::from_secs(300);

/// [`DEADLINE`], or for an open-loop run planned to last longer (`messages / rate`), that
/// plan with half again and a minute to spare: the consumers must go on receiving and
/// acknowledging for as long as the producers send (a ten-minute run at 1,000 msg/s).
fn deadline_for(cfg: &BenchConfig) -> Duration {
    if cfg.rate == 0 {
        return DEADLINE;
    }
    let planned = Duration::from_secs_f64(cfg.messages as f64 / cfg.rate as f64);
    DEADLINE.max(planned.mul_f64(1.5) + Duration::from_secs(60))
}

/// The ids the hub accepted (answered 2xx) and the ids the consumers received, to count
/// losses message by message: a count of receipts would let a failed send that the hub kept
/// anyway stand in for an accepted one that never came.
#[derive(Default)]
pub(crate) struct Receipts {
    ids: std::sync::Mutex<ReceiptIds>,
}

#[derive(Default)]
struct ReceiptIds {
    accepted: Vec<String>,
    received: std::collections::HashSet<String>,
}

impl Receipts {
    /// Notes messages the hub accepted.
    pub(crate) fn accepted(&self, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut r) = self.ids.lock() {
            r.accepted.extend(ids);
        }
    }

    /// Notes a message received; false if it was received before (a duplicate).
    pub(crate) fn received(&self, id: &str) -> bool {
        self.ids.lock().map(|mut r| r.received.insert(id.to_owned())).unwrap_or(false)
    }

    /// Accepted messages not received (so far).
    pub(crate) fn lost(&self) -> u64 {
        self.ids.lock().map(|r| r.accepted.iter().filter(|id| !r.received.contains(*id)).count() as u64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ten-minute open-loop run keeps its consumers for all ten minutes (the retention
    /// measurement's consumers stopped acknowledging at 300 s before this).
    #[test]
    fn an_open_loop_run_longer_than_the_deadline_gets_its_planned_time() {
        let mut cfg = BenchConfig::for_workload(Workload::Latency);
        assert_eq!(deadline_for(&cfg), DEADLINE, "5,000 at 1,000/s: the usual deadline");
        cfg.messages = 600_000;
        assert_eq!(deadline_for(&cfg), Duration::from_secs(960), "600 s planned: 900 s and a minute");
        cfg.rate = 0;
        assert_eq!(deadline_for(&cfg), DEADLINE, "closed loop: the usual deadline");
    }
}
