//! `switchboard bench report`: throughput, latency and fanout for Switchboard and every
//! reachable peer in one run on one machine, written as Markdown tables and an SVG chart (by
//! hand, no plotting dependency) for `docs/bench/`.

use serde::Serialize;
use switchboard_client::Client;

use crate::peers::{self, Durability, PeerConfig, Target, cores_of, cpu_seconds, pid_listening_on};
use crate::{BenchConfig, Report};

/// Settings of a comparison run.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub peers: PeerConfig,
    pub throughput: BenchConfig,
    pub latency: BenchConfig,
    /// One fanout run per subscriber count, smallest first.
    pub fanout: Vec<BenchConfig>,
    /// The hub's URL (for finding its process by port, and for the record).
    pub hub_url: String,
    /// The hub's process, when known; otherwise found from the URL's port.
    pub hub_pid: Option<u32>,
    /// How the hub was started (backend), for the table.
    pub hub_label: String,
    /// The command that reproduces this run, for the record.
    pub command: String,
    /// Workloads only Switchboard runs (none of them has a peer equivalent here): burst,
    /// single-message HTTP sends, idle WebSocket connections.
    pub hub_only: Vec<BenchConfig>,
    /// More hubs to run the Switchboard workloads against (another backend), each its own row.
    pub extra_hubs: Vec<ExtraHub>,
}

/// Another running hub for the comparison, e.g. one on PostgreSQL.
#[derive(Debug, Clone)]
pub struct ExtraHub {
    pub label: String,
    pub url: String,
    /// An admin client of that hub.
    pub admin: Client,
}

/// One workload's figures with the CPU each process used meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    #[serde(flatten)]
    pub report: Report,
    pub server_cpu_s: Option<f64>,
    pub bench_cpu_s: Option<f64>,
}

/// One system in the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub system: String,
    pub durability: Durability,
    pub version: String,
    pub server_pid: Option<u32>,
    pub server_cores: Option<String>,
    pub throughput: Option<Measured>,
    pub latency: Option<Measured>,
    /// Why the system has no figures (unreachable, or the run failed).
    pub skipped: Option<String>,
    /// One entry per fanout size run (none when the system was skipped as a whole).
    pub fanout: Vec<FanoutRun>,
    /// Switchboard only: burst, http and connections, in [`ReportConfig::hub_only`] order.
    pub hub_only: Vec<Measured>,
}

impl Row {
    /// Whether this row is a hub (on any backend) rather than a peer: its ratios are the
    /// ones the peers are read against, so it shows none itself.
    pub fn is_switchboard(&self) -> bool {
        self.system.starts_with("switchboard")
    }

    /// A system before any of its runs.
    fn empty(system: String, durability: Durability) -> Row {
        Row {
            system,
            durability,
            version: String::new(),
            server_pid: None,
            server_cores: None,
            throughput: None,
            latency: None,
            skipped: None,
            fanout: Vec::new(),
            hub_only: Vec::new(),
        }
    }
}

/// One fanout size for one system: its figures, or why it has none.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutRun {
    pub subscribers: usize,
    pub measured: Option<Measured>,
    pub skipped: Option<String>,
}

impl FanoutRun {
    fn new(subscribers: usize, got: Result<Measured, String>) -> FanoutRun {
        match got {
            Ok(m) => FanoutRun { subscribers, measured: Some(m), skipped: None },
            Err(why) => FanoutRun { subscribers, measured: None, skipped: Some(why) },
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub machine: String,
    pub cores: usize,
    pub bench_cores: Option<String>,
    pub settings: String,
    pub command: String,
    /// Messages per second of the latency workload.
    pub latency_rate: u64,
    pub rows: Vec<Row>,
}

async fn measured<E>(work: impl Future<Output = Result<(Report, Option<f64>), E>>) -> Result<Measured, E> {
    let me = std::process::id();
    let before = cpu_seconds(me);
    let (report, server_cpu_s) = work.await?;
    let bench_cpu_s = before.zip(cpu_seconds(me)).map(|(b, a)| a - b);
    Ok(Measured { report, server_cpu_s, bench_cpu_s })
}

/// Every workload against one hub: throughput, latency and fanout (compared with the
/// peers), then the Switchboard-only ones.
async fn hub_row(
    admin: &Client,
    label: &str,
    url: &str,
    pid: Option<u32>,
    rc: &ReportConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> Row {
    let hub_pid = pid.or_else(|| {
        url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).and_then(pid_listening_on)
    });
    let mut row = Row {
        version: format!("switchboard {}", env!("CARGO_PKG_VERSION")),
        server_pid: hub_pid,
        server_cores: hub_pid.and_then(cores_of),
        ..Row::empty(label.to_owned(), Durability::D2)
    };
    let run = |cfg: &BenchConfig| {
        let cfg = cfg.clone();
        async move {
            let tick = |s: usize, r: usize| progress(&format!("  sent {s} received {r}"));
            measured(async {
                let (r, cpu) = peers::with_cpu(hub_pid, crate::run(admin, &cfg, tick)).await;
                r.map(|r| (r, cpu))
            })
            .await
        }
    };
    for cfg in [&rc.throughput, &rc.latency] {
        progress(&format!("{label} {:?}", cfg.workload).to_lowercase());
        match run(cfg).await {
            Ok(m) if cfg.rate > 0 => row.latency = Some(m),
            Ok(m) => row.throughput = Some(m),
            Err(e) => row.skipped = Some(format!("switchboard at {url}: {e}")),
        }
    }
    for cfg in &rc.fanout {
        progress(&format!("{label} fanout to {} subscribers", cfg.consumers));
        let got = run(cfg).await;
        row.fanout.push(FanoutRun::new(cfg.consumers, got.map_err(|e| e.to_string())));
    }
    for cfg in &rc.hub_only {
        progress(&format!("{label} {:?}", cfg.workload).to_lowercase());
        match run(cfg).await {
            Ok(m) => row.hub_only.push(m),
            Err(e) => progress(&format!("  failed: {e}")),
        }
    }
    row
}

/// Runs throughput and latency against the hub and then each peer; a peer that is not there
/// is skipped with the reason in its row.
pub async fn compare(admin: &Client, rc: &ReportConfig, progress: &(dyn Fn(&str) + Sync)) -> Comparison {
    let mut rows = vec![hub_row(admin, &rc.hub_label, &rc.hub_url, rc.hub_pid, rc, progress).await];
    for extra in &rc.extra_hubs {
        rows.push(hub_row(&extra.admin, &extra.label, &extra.url, None, rc, progress).await);
    }

    for target in Target::PEERS {
        let mut row = Row::empty(target.name().into(), target.durability());
        for cfg in [&rc.throughput, &rc.latency] {
            progress(&format!("{} {:?}", target.name(), cfg.workload).to_lowercase());
            let tick = |s: usize, r: usize| progress(&format!("  sent {s} received {r}"));
            // The server's cores are read during the run: dedicated servers exist only then.
            let got = measured(async {
                peers::run(target, cfg, &rc.peers, &tick).await.map(|p| {
                    row.version = p.version.clone();
                    row.server_pid = p.server_pid;
                    if row.server_cores.is_none() {
                        row.server_cores = match (target, &rc.peers.server_cores) {
                            (Target::JetstreamD2 | Target::JetstreamD0, Some(c)) => Some(c.clone()),
                            _ => p.server_pid.and_then(cores_of),
                        };
                    }
                    (p.report, p.server_cpu_s)
                })
            })
            .await;
            match got {
                Ok(m) if cfg.rate > 0 => row.latency = Some(m),
                Ok(m) => row.throughput = Some(m),
                Err(e) => {
                    progress(&format!("  skipped: {e}"));
                    row.skipped = Some(e.to_string());
                    break;
                }
            }
        }
        // A peer that answered neither workload is not there: no point in fanning out to it.
        let absent = row.throughput.is_none() && row.latency.is_none();
        for cfg in rc.fanout.iter().filter(|_| !absent) {
            progress(&format!("{} fanout to {} subscribers", target.name(), cfg.consumers));
            let tick = |s: usize, r: usize| progress(&format!("  sent {s} received {r}"));
            let got =
                measured(async { peers::run(target, cfg, &rc.peers, &tick).await.map(|p| (p.report, p.server_cpu_s)) })
                    .await;
            if let Err(e) = &got {
                progress(&format!("  skipped: {e}"));
            }
            row.fanout.push(FanoutRun::new(cfg.consumers, got.map_err(|e| e.to_string())));
        }
        rows.push(row);
    }

    let t = &rc.throughput;
    let l = &rc.latency;
    let fanout = match rc.fanout.first() {
        Some(f) => format!(
            " Fanout: one topic, {}; one publisher with {} sends in flight (closed loop), every subscriber its \
             own connection acking each delivery; latency from publish to each receipt. JetStream: one subject, one \
             durable pull consumer per subscriber; RabbitMQ: a durable fanout exchange bound to one quorum queue \
             per subscriber.",
            rc.fanout
                .iter()
                .map(|c| format!("{} messages to {} subscribers", c.messages, c.consumers))
                .collect::<Vec<_>>()
                .join(", "),
            f.concurrency
        ),
        None => String::new(),
    };
    Comparison {
        machine: machine(),
        // Counted from /proc/cpuinfo: `available_parallelism` would see only this process's cores.
        cores: std::fs::read_to_string("/proc/cpuinfo")
            .map_or(0, |i| i.lines().filter(|l| l.starts_with("processor")).count()),
        bench_cores: cores_of(std::process::id()),
        settings: format!(
            "throughput: closed loop, {} messages of {} B, {} producers × {} in flight, {} consumers acking each \
             message; latency: open loop at {}/s, {} messages of {} B, {} producer, {} consumer, measured from when \
             each message was due to its receipt. JetStream: file storage (memory for D0), publish awaits the \
             PubAck, durable pull consumers with explicit ack; D2 on a dedicated nats-server with `sync_interval: \
             always`. RabbitMQ: one durable quorum queue per consumer, persistent messages, publisher confirms \
             awaited per message, manual acks, prefetch 256.{}",
            t.messages,
            t.size,
            t.producers,
            t.concurrency,
            t.consumers,
            l.rate,
            l.messages,
            l.size,
            l.producers,
            l.consumers,
            fanout
        ),
        command: rc.command.clone(),
        latency_rate: rc.latency.rate,
        rows,
    }
}

/// CPU model and count, from `/proc/cpuinfo`.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, Linux {}", kernel.trim())
}

fn f(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

fn cpu(m: &Measured) -> String {
    let secs = m.report.elapsed_ms / 1000.0;
    let pct = |c: Option<f64>| c.map_or("?".into(), |c| format!("{:.0}%", 100.0 * c / secs.max(1e-9)));
    format!("{} / {}", pct(m.server_cpu_s), pct(m.bench_cpu_s))
}

/// The comparison as Markdown: the table, then machine, versions, settings and the command.
pub fn markdown(c: &Comparison) -> String {
    let hub = c.rows.first();
    let hub_tput = hub.and_then(|r| r.throughput.as_ref()).map(|m| m.report.messages_per_s);
    let hub_p99 = hub.and_then(|r| r.latency.as_ref()).map(|m| m.report.p99_ms);
    let mut s = String::from("# Switchboard beside NATS JetStream and RabbitMQ\n\n");
    s += "Generated by `switchboard bench report`; every figure from one run on this machine. D2 = fsync'd before \
          the sender's ack, D1 = written, not yet fsync'd, D0 = memory only. Compare like with like: D2 is the \
          headline.\n\n";
    s += "| System | Durability | Throughput (msg/s) | Switchboard ÷ peer | p50 (ms) | p99 (ms) | p99.9 (ms) | max \
          (ms) | p99: Switchboard ÷ peer | Lost / dup | Server cores | CPU server / bench (throughput) |\n";
    s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n";
    for r in &c.rows {
        if let Some(why) = &r.skipped
            && r.throughput.is_none()
        {
            s += &format!("| {} | {:?} | skipped: {} |||||||||\n", r.system, r.durability, why.replace('|', "/"));
            continue;
        }
        let is_hub = r.is_switchboard();
        let t = r.throughput.as_ref();
        let l = r.latency.as_ref();
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            _ if is_hub => "—".to_owned(),
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "?".into(),
        };
        let lost = |m: Option<&Measured>| m.map_or(0, |m| m.report.lost.unwrap_or(0) + m.report.send_errors);
        let dup = t.map_or(0, |m| m.report.duplicates) + l.map_or(0, |m| m.report.duplicates);
        s += &format!(
            "| {} | {:?} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |\n",
            r.system,
            r.durability,
            t.map_or("?".into(), |m| format!("{:.0}", m.report.messages_per_s)),
            ratio(hub_tput, t.map(|m| m.report.messages_per_s)),
            l.map_or("?".into(), |m| f(m.report.p50_ms)),
            l.map_or("?".into(), |m| f(m.report.p99_ms)),
            l.map_or("?".into(), |m| f(m.report.p999_ms)),
            l.map_or("?".into(), |m| f(m.report.max_ms)),
            ratio(hub_p99, l.map(|m| m.report.p99_ms)),
            lost(t) + lost(l),
            dup,
            r.server_cores.as_deref().unwrap_or("?"),
            t.map_or("?".into(), cpu),
        );
    }
    s += "\nThroughput ratio above 1 and p99 ratio below 1 favour Switchboard. CPU is the share of one core used \
          during the throughput run (user + system time from `/proc/<pid>/stat`). Lost counts, over both runs, \
          messages whose send was acknowledged but that the consumer had not received when the run ended (checked \
          message by message), plus failed sends.\n\n";
    s += &fanout_table(c);
    s += &hub_only_table(c);
    s += "![throughput and latency by system](results.svg)\n\n## Machine\n\n";
    s += &format!(
        "- {} ({} cores in /proc/cpuinfo)\n- bench process on cores {}\n",
        c.machine,
        c.cores,
        c.bench_cores.as_deref().unwrap_or("?")
    );
    for r in &c.rows {
        s += &format!(
            "- {}: {}, pid {}, cores {}\n",
            r.system,
            if r.version.is_empty() { "version unknown" } else { &r.version },
            r.server_pid.map_or("?".into(), |p| p.to_string()),
            r.server_cores.as_deref().unwrap_or("?")
        );
    }
    s += "- rabbitmq and jetstream-d1 are the machine's own services, left unpinned; the hub and the nats-server this tool starts are pinned with `taskset`.\n";
    s += &format!(
        "\n## Settings\n\n{}\n\n## Reproduce\n\n```sh\ncargo build --release\nSWITCHBOARD_MAX_CONNECTIONS=20000 SWITCHBOARD_MAX_CONNECTIONS_PER_IP=0 SWITCHBOARD_ADMIN_TOKEN=sba_bench-report-token-0123456789 taskset -c 0 target/release/switchboard serve --listen 127.0.0.1:7931 --data-dir \"$(mktemp -d)\" &\nSWITCHBOARD_URL=http://127.0.0.1:7931 SWITCHBOARD_TOKEN=sba_bench-report-token-0123456789 NATS_SERVER_BIN=<nats-server v2.10+> taskset -c 1 {}\n```\n",
        c.settings, c.command
    );
    s
}

/// The workloads only Switchboard runs, one line per hub and workload.
fn hub_only_table(c: &Comparison) -> String {
    let hubs: Vec<&Row> = c.rows.iter().filter(|r| !r.hub_only.is_empty()).collect();
    if hubs.is_empty() {
        return String::new();
    }
    let mut s = String::from("## Switchboard only: burst, single HTTP sends, idle connections\n\n");
    s += "| Hub | Workload | Messages | Elapsed (ms) | msg/s | p50 (ms) | p99 (ms) | p99.9 (ms) | Send p99 (ms) | \
          Memory | Lost / errors | CPU server / bench |\n";
    s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n";
    for r in hubs {
        for m in &r.hub_only {
            let rep = &m.report;
            let memory = rep.memory.as_ref().map_or("—".into(), |mem| {
                format!(
                    "{} idle: {:.1} → {:.1} MiB, {:.1} KiB each",
                    mem.connections,
                    mem.rss_before_kib as f64 / 1024.0,
                    mem.rss_after_kib as f64 / 1024.0,
                    mem.per_connection_kib
                )
            });
            s += &format!(
                "| {} | {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} / {} | {} |\n",
                r.system,
                rep.workload,
                rep.messages,
                rep.elapsed_ms,
                rep.messages_per_s,
                f(rep.p50_ms),
                f(rep.p99_ms),
                f(rep.p999_ms),
                f(rep.send_p99_ms),
                memory,
                rep.lost.map_or("—".into(), |l| l.to_string()),
                rep.send_errors,
                cpu(m),
            );
        }
    }
    s += "\nburst: 1,000 concurrent sends from 10 agents to 10 agents, elapsed until all are delivered and acked. \
          http: single-message `POST /v1/messages`, keep-alive, no consumer; latency is the request's. connections: \
          idle WebSocket consumers held open; memory is the hub's RSS before and after. Lost: messages answered 202 \
          but never received (http: read back after the timed run).\n\n";
    s
}

/// The fanout figures as a Markdown table: one line per system and subscriber count.
fn fanout_table(c: &Comparison) -> String {
    if c.rows.iter().all(|r| r.fanout.is_empty()) {
        return String::new();
    }
    let hub_rate = |n: usize| {
        c.rows.first().and_then(|r| r.fanout.iter().find(|f| f.subscribers == n)).and_then(|f| f.measured.as_ref())
    };
    let mut s = String::from("## Fanout: one topic, many subscribers\n\n");
    s += "| System | Durability | Subscribers | Published (msg/s) | Deliveries/s | Switchboard ÷ peer | p50 (ms) | p99 \
          (ms) | p99.9 (ms) | max (ms) | Lost / dup | Set-up (s) | CPU server / bench |\n";
    s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n";
    for r in &c.rows {
        if r.fanout.is_empty() {
            s += &format!("| {} | {:?} | not run (see above) |||||||||||\n", r.system, r.durability);
        }
        for run in &r.fanout {
            let Some(m) = &run.measured else {
                let why = run.skipped.as_deref().unwrap_or("no figures").replace('|', "/");
                s +=
                    &format!("| {} | {:?} | {} | skipped: {why} ||||||||||\n", r.system, r.durability, run.subscribers);
                continue;
            };
            let rep = &m.report;
            let per_s = rep.deliveries_per_s.unwrap_or(0.0);
            let ratio = match hub_rate(run.subscribers).and_then(|h| h.report.deliveries_per_s) {
                _ if r.is_switchboard() => "—".to_owned(),
                Some(h) if per_s > 0.0 => format!("{:.2}×", h / per_s),
                _ => "?".into(),
            };
            s += &format!(
                "| {} | {:?} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} / {} | {} | {} |\n",
                r.system,
                r.durability,
                run.subscribers,
                rep.messages_per_s,
                per_s,
                ratio,
                f(rep.p50_ms),
                f(rep.p99_ms),
                f(rep.p999_ms),
                f(rep.max_ms),
                rep.lost.unwrap_or(0) + rep.send_errors,
                rep.duplicates,
                rep.setup_ms.map_or("?".into(), |ms| format!("{:.1}", ms / 1000.0)),
                cpu(m),
            );
        }
    }
    s += "\nDeliveries are (message, subscriber) pairs received, each counted once; a ratio above 1 favours \
          Switchboard. Published/s counts messages over the whole run, until the last delivery. Set-up (not timed in \
          the run) creates the subscribers: agents, subscriptions and streams; durable consumers; queues and \
          bindings. Lost counts failed publishes, and (message, subscriber) pairs whose publish was acknowledged but \
          that had not arrived when the run ended.\n\n";
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The chart's label column and bar lengths, and the height of one bar's row.
const LABEL_W: f64 = 240.0;
const BAR_W: f64 = 530.0;
const ROW_H: f64 = 26.0;

/// The colour of a durability class in the chart (the legend at its foot names them).
fn colour(d: Durability) -> &'static str {
    match d {
        Durability::D2 => "#2b6cb0",
        Durability::D1 => "#dd8a2b",
        Durability::D0 => "#9b9b9b",
    }
}

/// One labelled row at `y`: a bar of `value` on a scale up to `max`, with the figure beside it
/// (just the label when there is no value).
fn bar(label: &str, y: f64, value: Option<f64>, max: f64, fill: &str) -> String {
    let mut s = format!("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", LABEL_W - 8.0, y + 15.0, esc(label));
    if let Some(v) = value {
        let len = BAR_W * v / max;
        s += &format!(
            "<rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{len:.1}\" height=\"{}\" fill=\"{fill}\"/>\n<text x=\"{:.1}\" \
             y=\"{}\">{v:.0}</text>\n",
            ROW_H - 6.0,
            LABEL_W + len + 4.0,
            y + 15.0,
        );
    }
    s
}

/// The comparison as an SVG chart: throughput bars, then latency percentiles (log scale).
pub fn svg(c: &Comparison) -> String {
    let rows: Vec<&Row> = c.rows.iter().filter(|r| r.throughput.is_some() || r.latency.is_some()).collect();
    let (w, label_w, bar_w, row_h) = (860.0, LABEL_W, BAR_W, ROW_H);
    let top1 = 50.0;
    let h1 = rows.len() as f64 * row_h;
    let top2 = top1 + h1 + 80.0;
    let lat_row_h = 3.0 * 14.0 + 10.0;
    let h2 = rows.len() as f64 * lat_row_h;
    // Fanout: one row per (system, subscriber count) run, a bar where it has figures.
    let fan: Vec<(&Row, usize, Option<f64>)> = c
        .rows
        .iter()
        .flat_map(|r| r.fanout.iter().map(move |f| (r, f)))
        .map(|(r, f)| (r, f.subscribers, f.measured.as_ref().and_then(|m| m.report.deliveries_per_s)))
        .collect();
    let top3 = top2 + h2 + 80.0;
    let h3 = if fan.is_empty() { 0.0 } else { fan.len() as f64 * row_h + 80.0 };
    let height = top2 + h2 + h3 + 50.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    s += "<text x=\"10\" y=\"24\" font-size=\"15\" font-weight=\"bold\">Throughput (messages/s, 1 KiB, end \
          to end) — higher is better</text>\n";
    let max_t = rows.iter().filter_map(|r| r.throughput.as_ref()).map(|m| m.report.messages_per_s).fold(1.0, f64::max);
    for (i, r) in rows.iter().enumerate() {
        let label = format!("{} ({:?})", r.system, r.durability);
        let tput = r.throughput.as_ref().map(|m| m.report.messages_per_s);
        s += &bar(&label, top1 + i as f64 * row_h, tput, max_t, colour(r.durability));
    }
    s += &format!(
        "<text x=\"10\" y=\"{}\" font-size=\"15\" font-weight=\"bold\">Latency at {}/s, due → received (ms, log \
         scale): p50, p99, p99.9 — lower is better</text>\n",
        top2 - 26.0,
        c.latency_rate
    );
    let lats: Vec<f64> =
        rows.iter().filter_map(|r| r.latency.as_ref()).flat_map(|m| [m.report.p50_ms, m.report.p999_ms]).collect();
    // With no latency figures at all, an axis from 1 to 10 ms (an infinite `lo` would never end
    // the decade loop below).
    let lo = lats.iter().cloned().reduce(f64::min).map_or(0.0, |v| v.max(0.001).log10().floor());
    let hi = lats.iter().cloned().fold(0.0, f64::max).max(0.01).log10().ceil().max(lo + 1.0);
    let x = |v: f64| label_w + bar_w * ((v.max(1e-3).log10() - lo) / (hi - lo)).clamp(0.0, 1.0);
    let mut decade = lo;
    while decade <= hi {
        let v = 10f64.powf(decade);
        s += &format!(
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#ddd\"/>\n<text x=\"{0:.1}\" y=\"{3}\" \
             text-anchor=\"middle\" fill=\"#666\">{4}</text>\n",
            x(v),
            top2 - 4.0,
            top2 + h2,
            top2 + h2 + 14.0,
            if v < 1.0 { format!("{v}") } else { format!("{v:.0}") }
        );
        decade += 1.0;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top2 + i as f64 * lat_row_h;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} ({:?})</text>\n",
            label_w - 8.0,
            y + 24.0,
            esc(&r.system),
            r.durability
        );
        if let Some(m) = &r.latency {
            for (j, (name, v, op)) in
                [("p50", m.report.p50_ms, "1"), ("p99", m.report.p99_ms, "0.7"), ("p99.9", m.report.p999_ms, "0.45")]
                    .into_iter()
                    .enumerate()
            {
                let yy = y + j as f64 * 14.0;
                s += &format!(
                    "<rect x=\"{label_w}\" y=\"{yy}\" width=\"{:.1}\" height=\"12\" fill=\"{}\" \
                     fill-opacity=\"{op}\"/>\n<text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{name} {}</text>\n",
                    x(v) - label_w,
                    colour(r.durability),
                    x(v) + 4.0,
                    yy + 10.0,
                    f(v)
                );
            }
        }
    }
    if !fan.is_empty() {
        s += &format!(
            "<text x=\"10\" y=\"{}\" font-size=\"15\" font-weight=\"bold\">Fanout: deliveries/s to N subscribers of \
             one topic — higher is better</text>\n",
            top3 - 26.0
        );
        let max_d = fan.iter().filter_map(|(_, _, d)| *d).fold(1.0, f64::max);
        for (i, (r, n, d)) in fan.iter().enumerate() {
            let (label, y) = (format!("{} ({:?}) × {n}", r.system, r.durability), top3 + i as f64 * row_h);
            s += &bar(&label, y, *d, max_d, colour(r.durability));
            if d.is_none() {
                s += &format!("<text x=\"{label_w}\" y=\"{}\" fill=\"#666\">skipped: see the table</text>\n", y + 15.0);
            }
        }
    }
    s += &format!(
        "<text x=\"10\" y=\"{}\" fill=\"#666\">blue: D2 (fsync before ack) · orange: D1 (not yet fsync'd) · grey: D0 \
         (memory)</text>\n</svg>\n",
        height - 10.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fanout_run(subscribers: usize, deliveries_per_s: Option<f64>) -> FanoutRun {
        let measured = deliveries_per_s.map(|d| Measured {
            report: Report { deliveries_per_s: Some(d), elapsed_ms: 1000.0, ..Default::default() },
            server_cpu_s: None,
            bench_cpu_s: None,
        });
        FanoutRun { subscribers, skipped: measured.is_none().then(|| "too many queues".into()), measured }
    }

    fn row(system: &str, durability: Durability, fanout: Vec<FanoutRun>) -> Row {
        Row { fanout, ..Row::empty(system.into(), durability) }
    }

    fn comparison() -> Comparison {
        Comparison {
            machine: String::new(),
            cores: 2,
            bench_cores: None,
            settings: String::new(),
            command: String::new(),
            latency_rate: 1000,
            rows: vec![
                row("switchboard (SQLite)", Durability::D2, vec![fanout_run(100, Some(8000.0))]),
                row("rabbitmq", Durability::D2, vec![fanout_run(100, Some(4000.0)), fanout_run(1000, None)]),
            ],
        }
    }

    #[test]
    fn fanout_table_has_a_line_per_run_with_the_ratio_at_the_same_count_and_the_skip_reason() {
        let md = markdown(&comparison());
        assert!(md.contains("| rabbitmq | D2 | 100 | 0 | 4000 | 2.00× |"), "{md}");
        assert!(md.contains("| rabbitmq | D2 | 1000 | skipped: too many queues |"), "{md}");
    }

    #[test]
    fn chart_draws_a_fanout_row_per_run_and_marks_the_skipped_one() {
        let svg = svg(&comparison());
        assert!(svg.contains("rabbitmq (D2) × 1000</text>") && svg.contains("skipped: see the table"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 1 + 2, "{svg}");
    }
}
