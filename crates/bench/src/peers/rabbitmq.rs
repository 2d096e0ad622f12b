//! RabbitMQ, D2: one durable quorum queue per receiver (`x-queue-type: quorum`, which fsyncs
//! its Raft log before confirming), persistent messages, publisher confirms (each publish
//! awaits its confirm; producers × concurrency are in flight), manual consumer acks with a
//! prefetch of [`PREFETCH`]. A fanout publishes to a durable fanout exchange bound to one
//! quorum queue per subscriber, so every queue gets (and fsyncs) its own copy.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::{DEADLINE, PeerError, PeerRun, Tally, drive, pid_listening_on, run_id, with_cpu};
use crate::{BenchConfig, Report, Workload};

/// Unacknowledged deliveries a consumer may hold: enough to keep the pipe full at 1 KiB.
const PREFETCH: u16 = 256;

async fn connect(url: &str) -> Result<Connection, PeerError> {
    match tokio::time::timeout(Duration::from_secs(3), Connection::connect(url, ConnectionProperties::default())).await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(PeerError::Unreachable(format!("RabbitMQ at {url} is not reachable: {e}"))),
        Err(_) => Err(PeerError::Unreachable(format!("RabbitMQ at {url} did not answer within 3 s"))),
    }
}

/// Opens one more connection to a broker that has already answered: a failure now breaks the
/// run rather than telling that the peer is absent, and a broker busy starting 1,000 quorum
/// queues can take seconds to accept one.
async fn reconnect(url: &str) -> Result<Connection, PeerError> {
    let patience = Duration::from_secs(30);
    match tokio::time::timeout(patience, Connection::connect(url, ConnectionProperties::default())).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(PeerError::Failed(format!("cannot open another connection to RabbitMQ at {url}: {e}"))),
        Err(_) => Err(PeerError::Failed(format!("RabbitMQ at {url} accepted no further connection within 30 s"))),
    }
}

async fn channel(conn: &Connection) -> Result<Channel, PeerError> {
    conn.create_channel().await.map_err(|e| PeerError::Failed(format!("cannot open a channel: {e}")))
}

/// The broker's version, from `rabbitmqctl version` (lapin does not expose the server
/// properties of the AMQP handshake).
fn version() -> String {
    std::process::Command::new("rabbitmqctl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// What one run declared, deleted afterwards whether the run completed or not.
#[derive(Default)]
struct Topology {
    /// The fanout exchange, once declared.
    exchange: Option<String>,
    /// The quorum queues declared so far.
    queues: Vec<String>,
}

/// Runs `cfg` against the RabbitMQ at `url`.
pub(crate) async fn run(
    url: &str,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PeerRun, PeerError> {
    let admin = connect(url).await?;
    let setup = channel(&admin).await?;
    let port = url.rsplit_once('@').map_or(url, |(_, h)| h).split(['/', ':']).nth(1).and_then(|p| p.parse().ok());
    let server_pid = port.and_then(pid_listening_on);
    let mut topology = Topology::default();
    let mut connections = Vec::new();
    let measured = measure(url, &setup, &mut topology, &mut connections, server_pid, cfg, progress).await;
    for c in connections {
        let _ = c.close(200, "bench done".into()).await;
    }
    let cleanup = Instant::now();
    for q in &topology.queues {
        let _ = setup.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    }
    if let Some(x) = &topology.exchange {
        let _ = setup.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    if topology.queues.len() > 100 {
        eprintln!("\n  deleted {} quorum queues in {:.1} s", topology.queues.len(), cleanup.elapsed().as_secs_f64());
    }
    let _ = admin.close(200, "bench done".into()).await;
    let (report, server_cpu_s) = measured?;
    Ok(PeerRun { report, server_pid, server_cpu_s, version: version() })
}

/// The broker's file descriptors in use and their limit, from `rabbitmqctl status` (so only
/// when the broker runs on this machine).
fn file_descriptors() -> Option<(u64, u64)> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["status", "--formatter", "json"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let fds = &status["file_descriptors"];
    Some((fds["total_used"].as_u64()?, fds["total_limit"].as_u64()?))
}

/// Declares one quorum queue per receiver (bound to the fanout exchange, if any). After the
/// first [`PROBE`] it projects what all `n` will cost and gives up early, as `Unreachable` so
/// the run is skipped rather than failed, when they would take longer than
/// [`DECLARE_BUDGET`] or more file descriptors than the broker may open: each quorum queue
/// holds a few open, and a broker out of them refuses connections.
async fn declare_queues(setup: &Channel, topology: &mut Topology, run: &str, n: usize) -> Result<(), PeerError> {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    let fds_before = if n > PROBE { file_descriptors() } else { None };
    let started = Instant::now();
    for i in 0..n {
        let q = format!("sb-bench-{run}-{i}");
        setup
            .queue_declare(q.as_str().into(), QueueDeclareOptions { durable: true, ..Default::default() }, args.clone())
            .await
            .map_err(|e| PeerError::Failed(format!("cannot declare quorum queue {q}: {e}")))?;
        topology.queues.push(q);
        if let Some(x) = &topology.exchange {
            setup
                .queue_bind(
                    topology.queues[i].as_str().into(),
                    x.as_str().into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| PeerError::Failed(format!("cannot bind queue {i} to {x}: {e}")))?;
        }
        if i + 1 != PROBE || n <= PROBE {
            continue;
        }
        let skip = |why: String| PeerError::Unreachable(format!("not possible with {n} quorum queues here: {why}"));
        let each = started.elapsed() / PROBE as u32;
        let projected = each * n as u32;
        if projected > DECLARE_BUDGET {
            return Err(skip(format!(
                "declaring them would take about {:.0} s here ({:.0} ms each over the first {PROBE}), over the {} s \
                 set-up budget",
                projected.as_secs_f64(),
                each.as_secs_f64() * 1000.0,
                DECLARE_BUDGET.as_secs()
            )));
        }
        if let (Some((before, limit)), Some((now, _))) = (fds_before, file_descriptors()) {
            let per_queue = now.saturating_sub(before) as f64 / PROBE as f64;
            let needed = before as f64 + per_queue * n as f64 + n.min(CONSUMER_CONNECTIONS) as f64;
            if needed > limit as f64 {
                return Err(skip(format!(
                    "the broker would need about {needed:.0} file descriptors ({per_queue:.1} per queue over the \
                     first {PROBE}, plus the consumers' connections) but may open {limit} (`rabbitmqctl status`; \
                     raise its `ulimit -n`)"
                )));
            }
        }
    }
    Ok(())
}

/// Queues declared before projecting how long all of them will take.
const PROBE: usize = 50;

/// The longest the queues of one run may take to declare (deleting them takes about as long).
const DECLARE_BUDGET: Duration = Duration::from_secs(90);

/// Connections the consumers share at most: past that, consumers open channels on them. The
/// broker's socket limit here is 832 (`rabbitmqctl status`), below 1,000 subscribers.
const CONSUMER_CONNECTIONS: usize = 100;

/// Declares the topology (a fanout exchange bound to every queue, or one queue per
/// receiver), starts the consumers and drives the publishers.
async fn measure(
    url: &str,
    setup: &Channel,
    topology: &mut Topology,
    connections: &mut Vec<Connection>,
    server_pid: Option<u32>,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Report, Option<f64>), PeerError> {
    let run = run_id();
    let fanout = cfg.workload == Workload::Fanout;
    let n_queues = cfg.consumers.max(1);
    let started = Instant::now();
    if fanout {
        let x = format!("sb-bench-{run}");
        setup
            .exchange_declare(
                x.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .map_err(|e| PeerError::Failed(format!("cannot declare fanout exchange {x}: {e}")))?;
        topology.exchange = Some(x);
    }
    declare_queues(setup, topology, &run, n_queues).await?;

    let tally = Tally::new(cfg.messages, cfg.receipts_per_message());
    let mut consumers = tokio::task::JoinSet::new();
    let mut consumer_conns = Vec::new();
    for (i, q) in topology.queues.iter().enumerate() {
        if i < CONSUMER_CONNECTIONS {
            consumer_conns.push(reconnect(url).await?);
        }
        let ch = channel(&consumer_conns[i % CONSUMER_CONNECTIONS]).await?;
        ch.basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(|e| PeerError::Failed(format!("cannot set prefetch: {e}")))?;
        let mut deliveries = ch
            .basic_consume(
                q.as_str().into(),
                format!("c{i}").into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| PeerError::Failed(format!("cannot consume {q}: {e}")))?;
        let tally = tally.clone();
        let slot = if fanout { i } else { 0 };
        consumers.spawn(async move {
            while !tally.done() {
                match tokio::time::timeout(Duration::from_millis(200), deliveries.next()).await {
                    Err(_) => continue,
                    Ok(Some(Ok(d))) => {
                        tally.receipt(slot, &d.data);
                        if d.ack(BasicAckOptions::default()).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => break,
                }
            }
        });
    }
    connections.extend(consumer_conns);
    let setup_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut producers = Vec::new();
    for _ in 0..cfg.producers.max(1) {
        let conn = reconnect(url).await?;
        let ch = channel(&conn).await?;
        connections.push(conn);
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| PeerError::Failed(format!("cannot enable publisher confirms: {e}")))?;
        producers.push(ch);
    }
    // A fanout publishes to the exchange, which copies to every bound queue; otherwise
    // message n goes straight to queue n mod receivers through the default exchange.
    let exchange = topology.exchange.clone().unwrap_or_default();
    let queues = topology.queues.clone();
    let publish = move |p: usize, seq: usize, payload: Vec<u8>| {
        let ch = producers[p % producers.len()].clone();
        let (exchange, key) = if exchange.is_empty() {
            (String::new(), queues[seq % queues.len()].clone())
        } else {
            (exchange.clone(), String::new())
        };
        async move {
            let confirm = ch
                .basic_publish(
                    exchange.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            if confirm.is_ack() { Ok(()) } else { Err("publish nacked".into()) }
        }
    };
    let (report, cpu) = with_cpu(server_pid, drive(cfg, &tally, publish, DEADLINE, progress)).await;
    while consumers.join_next().await.is_some() {}
    Ok((Report { setup_ms: fanout.then_some(setup_ms), ..report }, cpu))
}
