//! The same `throughput`, `latency` and `fanout` workloads against general brokers (NATS JetStream,
//! RabbitMQ) through their official Rust clients, so Switchboard's figures have a peer to be
//! read against. Every figure is labelled with its durability class ([`Durability`]): only
//! like is compared with like.
//!
//! The peers share one harness ([`drive`]): it paces the producers (closed loop, or open loop
//! at a fixed rate) and tallies what the consumers take. Each message carries its sequence
//! number and the time it was due (nanoseconds since the run's epoch, one monotonic clock for
//! producer and consumer), so latency is measured from when a message was due to when the
//! consumer receives it, and duplicates are counted by (sequence number, subscriber).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::{BenchConfig, Report, Workload, new_hist};

// The drivers link the brokers' client libraries; the harness above them is the hub's too.
#[cfg(feature = "peers")]
pub(crate) mod nats;
#[cfg(feature = "peers")]
pub(crate) mod rabbitmq;

/// Whether this build can drive the peers: the drivers are behind the cargo feature `peers`,
/// so that the shipped binary does not link two brokers' clients for a comparison run.
pub const BUILT: bool = cfg!(feature = "peers");

/// What a run is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The hub at `SWITCHBOARD_URL` (D2: a 2xx means fsync'd).
    Switchboard,
    /// The machine's running JetStream (default sync: fsync every 2 minutes).
    JetstreamD1,
    /// A dedicated nats-server started for the run with `sync_interval: always`.
    JetstreamD2,
    /// JetStream with memory storage, on a dedicated nats-server.
    JetstreamD0,
    /// A durable quorum queue with publisher confirms and manual acks.
    Rabbitmq,
}

impl Target {
    /// Every peer target, in the order the report runs them.
    pub const PEERS: [Target; 4] = [Target::JetstreamD2, Target::Rabbitmq, Target::JetstreamD1, Target::JetstreamD0];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Target::Switchboard => "switchboard",
            Target::JetstreamD1 => "jetstream-d1",
            Target::JetstreamD2 => "jetstream-d2",
            Target::JetstreamD0 => "jetstream-d0",
            Target::Rabbitmq => "rabbitmq",
        }
    }

    /// The durability promise behind the sender's acknowledgement.
    pub fn durability(self) -> Durability {
        match self {
            Target::Switchboard | Target::JetstreamD2 | Target::Rabbitmq => Durability::D2,
            Target::JetstreamD1 => Durability::D1,
            Target::JetstreamD0 => Durability::D0,
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Target::Switchboard].into_iter().chain(Target::PEERS).find(|t| t.name() == s).ok_or_else(|| {
            format!("unknown target `{s}`; use switchboard, jetstream-d1, jetstream-d2, jetstream-d0 or rabbitmq")
        })
    }
}

/// What the sender's acknowledgement promises about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Durability {
    /// In memory only: lost if the process dies.
    D0,
    /// Written to the OS, not yet fsync'd: lost if the machine dies.
    D1,
    /// Fsync'd before the sender's ack.
    D2,
}

/// Where the peers are and how to start the ones this tool owns.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The machine's running JetStream (D1).
    pub nats_url: String,
    /// The nats-server binary to start for D2 and D0 (needs `sync_interval`, v2.10 or later).
    pub nats_server_bin: String,
    /// RabbitMQ.
    pub amqp_url: String,
    /// Cores for the servers this tool starts (`taskset -c`), e.g. "0"; None leaves them free.
    pub server_cores: Option<String>,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_server_bin: "/usr/sbin/nats-server".into(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            server_cores: None,
        }
    }
}

/// Why a peer run produced no figures.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer is not there (or cannot offer the setting): skip it, do not fail the run.
    #[error("{0}")]
    Unreachable(String),
    /// The peer was there but the run broke.
    #[error("{0}")]
    Failed(String),
    /// This build leaves the peer drivers out ([`BUILT`] is false).
    #[error(
        "{0}: this build of switchboard leaves out the peer drivers (NATS, RabbitMQ); build one with them \
         (`cargo build --release -p switchboard-cli --features peers`) and run that"
    )]
    NotBuilt(&'static str),
}

/// A peer run's figures with the server process that produced them.
#[derive(Debug, Clone)]
pub struct PeerRun {
    pub report: Report,
    /// The broker's process (for CPU use and core affinity), when it could be found.
    pub server_pid: Option<u32>,
    /// Server CPU seconds (user + system) during the workload.
    pub server_cpu_s: Option<f64>,
    /// The broker's version, as it reports it.
    pub version: String,
}

/// Runs `cfg` (throughput, latency or fanout) against a peer.
pub async fn run(
    target: Target,
    cfg: &BenchConfig,
    peers: &PeerConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PeerRun, PeerError> {
    match target {
        Target::Switchboard => Err(PeerError::Failed("switchboard is not a peer; use bench::run".into())),
        #[cfg(not(feature = "peers"))]
        peer => {
            let _ = (cfg, peers, progress);
            Err(PeerError::NotBuilt(peer.name()))
        }
        #[cfg(feature = "peers")]
        Target::JetstreamD1 => nats::run_on(&peers.nats_url, None, async_nats_storage_file(), cfg, progress).await,
        #[cfg(feature = "peers")]
        Target::JetstreamD2 | Target::JetstreamD0 => {
            let server = nats::DedicatedServer::start(
                &peers.nats_server_bin,
                target == Target::JetstreamD2,
                peers.server_cores.as_deref(),
            )?;
            let storage = if target == Target::JetstreamD0 {
                async_nats::jetstream::stream::StorageType::Memory
            } else {
                async_nats_storage_file()
            };
            nats::run_on(&server.url, Some(server.pid()), storage, cfg, progress).await
            // `server` drops here: the process is killed and its store removed.
        }
        #[cfg(feature = "peers")]
        Target::Rabbitmq => rabbitmq::run(&peers.amqp_url, cfg, progress).await,
    }
}

#[cfg(feature = "peers")]
fn async_nats_storage_file() -> async_nats::jetstream::stream::StorageType {
    async_nats::jetstream::stream::StorageType::File
}

/// Bytes at the head of every peer message: sequence number, then due time (ns since epoch).
const HEADER: usize = 16;

/// What the consumers of one run have taken, shared by producers, consumers and the harness.
/// Each message is expected `fan` times, once per subscriber (1 unless the run is a fanout);
/// each (message, subscriber) pair counts once, any further copy is a duplicate.
pub(crate) struct Tally {
    epoch: Instant,
    fan: usize,
    /// One flag per (sequence number, subscriber): `seq * fan + subscriber`.
    seen: Box<[AtomicBool]>,
    /// One flag per sequence number: the broker acknowledged its publish.
    accepted: Box<[AtomicBool]>,
    received: AtomicUsize,
    duplicates: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    /// Set when the run is over; consumers check it between messages and leave.
    done: AtomicBool,
}

impl Tally {
    /// A tally of `total` messages, each expected by `fan` subscribers.
    pub(crate) fn new(total: usize, fan: usize) -> Arc<Tally> {
        let fan = fan.max(1);
        Arc::new(Tally {
            epoch: Instant::now(),
            fan,
            seen: (0..total * fan).map(|_| AtomicBool::new(false)).collect(),
            accepted: (0..total).map(|_| AtomicBool::new(false)).collect(),
            received: AtomicUsize::new(0),
            duplicates: AtomicU64::new(0),
            latency: Mutex::new(new_hist()),
            done: AtomicBool::new(false),
        })
    }

    fn payload(&self, seq: usize, due: Instant, size: usize) -> Vec<u8> {
        let mut p = vec![b'x'; size.max(HEADER)];
        p[..8].copy_from_slice(&(seq as u64).to_le_bytes());
        p[8..16].copy_from_slice(&(due.duration_since(self.epoch).as_nanos() as u64).to_le_bytes());
        p
    }

    /// Records one message as subscriber `subscriber` (0 when each message has one
    /// receiver) takes it, before the ack, like Switchboard's run.
    #[cfg(feature = "peers")]
    pub(crate) fn receipt(&self, subscriber: usize, payload: &[u8]) {
        if let Some((seq, due_ns)) = header(payload) {
            self.record(subscriber, seq, due_ns);
        }
    }

    /// Records that `subscriber` received message `seq`, due `due_ns` after the epoch.
    pub(crate) fn record(&self, subscriber: usize, seq: u64, due_ns: u64) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let slot = (subscriber < self.fan).then(|| seq as usize * self.fan + subscriber);
        match slot.and_then(|i| self.seen.get(i)) {
            Some(s) if !s.swap(true, Ordering::Relaxed) => {
                if let Ok(mut h) = self.latency.lock() {
                    let _ = h.record((now.saturating_sub(due_ns) / 1000).max(1));
                }
                self.received.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    /// Deliveries lost: (message, subscriber) pairs whose publish the broker acknowledged but
    /// that subscriber never received. Counted per message, not from totals, so a failed
    /// publish that arrived anyway does not hide a lost one.
    pub(crate) fn lost(&self) -> u64 {
        let fan = self.fan;
        (self.accepted.iter().enumerate())
            .filter(|(_, a)| a.load(Ordering::Relaxed))
            .map(|(seq, _)| (0..fan).filter(|s| !self.seen[seq * fan + s].load(Ordering::Relaxed)).count() as u64)
            .sum()
    }
}

/// The sequence number and due time (ns since the epoch) at the head of a payload.
pub(crate) fn header(payload: &[u8]) -> Option<(u64, u64)> {
    let seq = payload.get(..8)?.try_into().ok().map(u64::from_le_bytes)?;
    let due = payload.get(8..HEADER)?.try_into().ok().map(u64::from_le_bytes)?;
    Some((seq, due))
}

/// How long a peer run may take before the harness reports what arrived and calls the rest lost.
#[cfg(feature = "peers")]
const DEADLINE: Duration = Duration::from_secs(60);

/// Paces the producers and waits for the consumers, for at most `deadline`.
/// `publish(producer, seq, payload)` must return once the broker has acknowledged the message
/// (its durability class says what that means); the payload starts with the [`header`]. The
/// consumers are the caller's: they feed `tally` and leave when `tally.done()`. The hub's
/// fanout runs on this harness too.
pub(crate) async fn drive<P, F>(
    cfg: &BenchConfig,
    tally: &Arc<Tally>,
    publish: P,
    deadline: Duration,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Report
where
    P: Fn(usize, usize, Vec<u8>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let total = cfg.messages;
    let sent = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let send_latency = Arc::new(Mutex::new(new_hist()));
    let next = Arc::new(AtomicUsize::new(0));
    let interval = (cfg.rate > 0).then(|| Duration::from_nanos(1_000_000_000 / cfg.rate));
    let started = Instant::now();
    // Closed loop: `producers × concurrency` workers, each publishing its next message once
    // the previous one is acknowledged. Open loop: one pacer starts message n at
    // n × interval in a task of its own (at most 4096 in flight), so a stall cannot hide.
    let workers = if interval.is_some() { 1 } else { cfg.producers.max(1) * cfg.concurrency.max(1) };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4096));
    let mut senders = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (publish, tally, sent, errors, first_error, send_latency, next, in_flight) = (
            publish.clone(),
            tally.clone(),
            sent.clone(),
            errors.clone(),
            first_error.clone(),
            send_latency.clone(),
            next.clone(),
            in_flight.clone(),
        );
        let (size, producers) = (cfg.size, cfg.producers.max(1));
        senders.spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let due = interval.map(|i| started + i * n as u32);
                if let Some(d) = due {
                    tokio::time::sleep_until(d.into()).await;
                }
                let t0 = due.unwrap_or_else(Instant::now);
                let producer = if interval.is_some() { n % producers } else { w % producers };
                let sending = publish(producer, n, tally.payload(n, t0, size));
                let (sent, errors, first_error, send_latency, tally) =
                    (sent.clone(), errors.clone(), first_error.clone(), send_latency.clone(), tally.clone());
                let one = async move {
                    match sending.await {
                        Ok(()) => {
                            if let Ok(mut h) = send_latency.lock() {
                                let _ = h.record((t0.elapsed().as_micros() as u64).max(1));
                            }
                            tally.accepted[n].store(true, Ordering::Relaxed);
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                };
                if interval.is_some() {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
                    tasks.spawn(async move {
                        one.await;
                        drop(permit);
                    });
                } else {
                    one.await;
                }
            }
            while tasks.join_next().await.is_some() {}
        });
    }

    let deadline = started + deadline;
    let mut last_report = Instant::now();
    let fan = tally.fan;
    loop {
        let (s, r) = (sent.load(Ordering::Relaxed), tally.received.load(Ordering::Relaxed));
        let e = errors.load(Ordering::Relaxed) as usize;
        if Instant::now() > deadline {
            break;
        }
        // Every publish answered, and as many receipts as acknowledged publishes. A failed
        // publish the broker kept anyway can make up for a lost one here, so then check
        // message by message.
        if r >= total * fan || (s + e >= total && r >= s * fan && (e == 0 || tally.lost() == 0)) {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            progress(s, r);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    tally.done.store(true, Ordering::Relaxed);
    senders.abort_all();
    while senders.join_next().await.is_some() {}
    let (s, r) = (sent.load(Ordering::Relaxed), tally.received.load(Ordering::Relaxed));
    progress(s, r);
    if let Some(e) = first_error.lock().ok().and_then(|f| f.clone()) {
        eprintln!("\n  first publish error: {e}");
    }
    let lat = tally.latency.lock().map(|h| h.clone()).unwrap_or_else(|_| new_hist());
    let sl = send_latency.lock().map(|h| h.clone()).unwrap_or_else(|_| new_hist());
    let report = Report {
        send_errors: errors.load(Ordering::Relaxed),
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        lost: Some(tally.lost()),
        ..Report::measured(workload_name(cfg), cfg, if fan == 1 { r } else { s }, elapsed, &lat, &sl)
    };
    if matches!(cfg.workload, Workload::Fanout | Workload::Conversation) { report.with_deliveries(r) } else { report }
}

/// The workload a peer run reports: the peers run throughput (closed loop), latency (open
/// loop) and fanout (either); the hub's conversation workload is driven alike.
fn workload_name(cfg: &BenchConfig) -> &'static str {
    match cfg.workload {
        Workload::Fanout => "fanout",
        Workload::Conversation => "conversation",
        _ if cfg.rate > 0 => "latency",
        _ => "throughput",
    }
}

#[cfg(feature = "peers")]
pub(crate) use crate::run_id;

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The cores a process may run on (`Cpus_allowed_list` in `/proc/<pid>/status`).
pub fn cores_of(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|s| s.trim().to_owned())
}

/// The process listening on a loopback TCP port, from `ss -ltnpH`.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let out = std::process::Command::new("ss").args(["-ltnpH"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().filter(|l| l.split_whitespace().nth(3).is_some_and(|a| a.ends_with(&format!(":{port}")))).find_map(
        |l| {
            let i = l.find("pid=")? + 4;
            l[i..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        },
    )
}

/// Runs `work` and returns its result with the CPU seconds `pid` used meanwhile.
pub(crate) async fn with_cpu<T>(pid: Option<u32>, work: impl Future<Output = T>) -> (T, Option<f64>) {
    let before = pid.and_then(cpu_seconds);
    let out = work.await;
    let after = pid.and_then(cpu_seconds);
    (out, before.zip(after).map(|(b, a)| a - b))
}
