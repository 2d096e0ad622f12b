//! `switchboard bench`: drives a running hub (or a peer broker, in a build with the `peers`
//! feature) with a workload and reports throughput and latency; `bench report` runs them
//! side by side and writes `docs/bench/RESULTS.md`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use switchboard_client::Client;

use crate::conn::{Conn, client};
use crate::output;

/// The workload, its sizes, and where the hub and the peers are.
#[derive(Args)]
pub struct BenchArgs {
    /// burst, throughput, latency, push, http, connections, fanout, conversation, pages (the web
    /// app for a person with 10,000 messages), or `report` (throughput,
    /// latency and fanout against the hub and every reachable peer, written to
    /// docs/bench/RESULTS.md and results.svg).
    workload: BenchRun,
    /// What to run against: switchboard, jetstream-d1, jetstream-d2, jetstream-d0 or rabbitmq
    /// (the peers need a build with `--features peers`).
    #[arg(long, default_value = "switchboard")]
    target: switchboard_bench::peers::Target,
    /// The running JetStream (D1).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// nats-server binary to start for jetstream-d2/d0 (v2.10+ for `sync_interval`).
    #[arg(long, env = "NATS_SERVER_BIN", default_value = "/usr/sbin/nats-server")]
    nats_server: String,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Cores (`taskset -c`) for the nats-server this tool starts, e.g. 0.
    #[arg(long)]
    server_cores: Option<String>,
    /// The hub's process id, for CPU use (default: found from the URL's port with `ss`).
    #[arg(long)]
    hub_pid: Option<u32>,
    /// Where `report` writes RESULTS.md and results.svg.
    #[arg(long, default_value = "docs/bench")]
    out_dir: PathBuf,
    /// Label of the hub in the report (say which backend it runs).
    #[arg(long, default_value = "switchboard (SQLite)")]
    hub_label: String,
    /// `report`: another hub to run the Switchboard workloads against, as LABEL=URL (same
    /// token), e.g. `"switchboard (PostgreSQL)=http://127.0.0.1:7932"`. Repeatable.
    #[arg(long, value_name = "LABEL=URL")]
    also_hub: Vec<String>,
    /// `report`: idle WebSocket consumers for its connections workload.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Messages to send (default depends on the workload). `report` sends as many in each
    /// workload; fanout beyond the smallest subscriber count sends proportionally fewer.
    #[arg(long)]
    messages: Option<usize>,
    /// Bytes per message.
    #[arg(long)]
    size: Option<usize>,
    #[arg(long)]
    producers: Option<usize>,
    #[arg(long)]
    consumers: Option<usize>,
    /// Subscribers of the topic (fanout workload; default 100). `report` runs each of a
    /// comma-separated list (default 100,1000).
    #[arg(long, value_delimiter = ',')]
    subscribers: Vec<usize>,
    /// Requests in flight per producer.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Messages per second (latency workload; open loop for fanout when set).
    #[arg(long)]
    rate: Option<u64>,
    /// Share of push requests the bench receiver fails (push workload), e.g. 0.1.
    #[arg(long)]
    fail_ratio: Option<f64>,
    /// Messages per send request (closed loop), using POST /v1/messages:batch when > 1.
    #[arg(long)]
    batch: Option<usize>,
    /// What the http workload sends: `text` (to an agent), `data` (a data part to a
    /// capability without a schema) or `schema` (the same, checked against a small schema).
    #[arg(long)]
    payload: Option<switchboard_bench::Payload>,
    /// Fanout: wildcard subscriptions (`<prefix>.w<i>.*` and the like, over 10 extra agents)
    /// to set up in the tenant first, none matching the published topic, e.g. 10000.
    #[arg(long, default_value_t = 0)]
    wildcard_subscriptions: usize,
    #[command(flatten)]
    conn: Conn,
}
#[derive(Clone, Copy)]
enum BenchRun {
    Workload(switchboard_bench::Workload),
    Report,
}

impl std::str::FromStr for BenchRun {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "report" { Ok(BenchRun::Report) } else { s.parse().map(BenchRun::Workload) }
    }
}

fn bench_config(a: &BenchArgs, workload: switchboard_bench::Workload) -> switchboard_bench::BenchConfig {
    let mut cfg = switchboard_bench::BenchConfig::for_workload(workload);
    cfg.messages = a.messages.unwrap_or(cfg.messages);
    cfg.size = a.size.unwrap_or(cfg.size);
    cfg.producers = a.producers.unwrap_or(cfg.producers).max(1);
    cfg.consumers = a.consumers.unwrap_or(cfg.consumers).max(1);
    cfg.concurrency = a.concurrency.unwrap_or(cfg.concurrency).max(1);
    cfg.rate = a.rate.unwrap_or(cfg.rate);
    cfg.batch = a.batch.unwrap_or(cfg.batch).clamp(1, 1000);
    cfg.fail_ratio = a.fail_ratio.unwrap_or(cfg.fail_ratio).clamp(0.0, 0.95);
    cfg.payload = a.payload.unwrap_or(cfg.payload);
    cfg.wildcard_subscriptions = a.wildcard_subscriptions;
    if workload == switchboard_bench::Workload::Fanout {
        cfg.consumers = a.subscribers.first().copied().unwrap_or(cfg.consumers).max(1);
    }
    cfg
}

/// Runs one workload against the hub or a peer, or the side-by-side report.
pub async fn run(a: BenchArgs) -> Result<()> {
    use switchboard_bench::peers::{self, Target};
    let peer_cfg = peers::PeerConfig {
        nats_url: a.nats_url.clone(),
        nats_server_bin: a.nats_server.clone(),
        amqp_url: a.amqp_url.clone(),
        server_cores: a.server_cores.clone(),
    };
    let workload = match a.workload {
        BenchRun::Workload(w) => w,
        BenchRun::Report => return bench_report(&a, peer_cfg).await,
    };
    let cfg = bench_config(&a, workload);
    let total = cfg.messages;
    let expected = total * cfg.receipts_per_message();
    let tick = |sent: usize, got: usize| eprint!("\r  sent {sent}/{total}  received {got}/{expected}   ");
    let r = if a.target == Target::Switchboard {
        switchboard_bench::run(&client(&a.conn)?, &cfg, tick).await?
    } else {
        use switchboard_bench::Workload;
        if !matches!(workload, Workload::Throughput | Workload::Latency | Workload::Fanout) {
            anyhow::bail!("--target {} runs the throughput, latency and fanout workloads only", a.target.name());
        }
        match peers::run(a.target, &cfg, &peer_cfg, &tick).await {
            Ok(p) => {
                let cpu = p.server_cpu_s.map_or("?".into(), |c| format!("{c:.2} s"));
                eprintln!(
                    "\n  {} {} ({:?}), server pid {:?} on cores {}, server CPU {cpu}",
                    a.target.name(),
                    p.version,
                    a.target.durability(),
                    p.server_pid,
                    p.server_pid.and_then(peers::cores_of).unwrap_or_else(|| "?".into())
                );
                p.report
            }
            Err(peers::PeerError::Unreachable(why)) => {
                eprintln!("skipping {}: {why}", a.target.name());
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    };
    eprintln!();
    if a.conn.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let f = |v: f64| format!("{v:.2}");
    if let Some(pages) = &r.pages {
        println!("{} messages in the person's inbox; each page fetched in turn, request to last byte:", r.messages);
        let rows = pages
            .iter()
            .map(|p| vec![p.page.clone(), p.path.clone(), p.bytes.to_string(), f(p.p50_ms), f(p.p95_ms), f(p.max_ms)])
            .collect();
        print!("{}", output::table(&["PAGE", "PATH", "BYTES", "P50 MS", "P95 MS", "MAX MS"], rows));
        return Ok(());
    }
    // A fanout counts messages published; each is received once per subscriber.
    let (messages, who, rate) = match r.deliveries {
        Some(_) => ("messages published", "publishers / subscribers", "published"),
        None => ("messages", "producers / consumers", "throughput"),
    };
    let rows = vec![
        vec!["workload".into(), r.workload.clone()],
        vec![messages.into(), format!("{} x {} B", r.messages, r.size)],
        vec![who.into(), format!("{} / {}", r.producers, r.consumers)],
        vec!["elapsed".into(), format!("{} ms", f(r.elapsed_ms))],
        vec![rate.into(), format!("{:.0} msg/s", r.messages_per_s)],
        vec![
            "send->receipt p50/p90/p99/p99.9/max".into(),
            format!("{} / {} / {} / {} / {} ms", f(r.p50_ms), f(r.p90_ms), f(r.p99_ms), f(r.p999_ms), f(r.max_ms)),
        ],
        vec!["send (202) p50/p99".into(), format!("{} / {} ms", f(r.send_p50_ms), f(r.send_p99_ms))],
        vec![
            "send errors / lost / duplicates".into(),
            format!("{} / {} / {}", r.send_errors, r.lost.map_or("-".into(), |l| l.to_string()), r.duplicates),
        ],
    ];
    let mut rows = rows;
    if let Some(retries) = r.retries {
        rows.push(vec!["push retries".into(), retries.to_string()]);
    }
    if let (Some(d), Some(per_s)) = (r.deliveries, r.deliveries_per_s) {
        rows.push(vec!["deliveries".into(), format!("{d} ({per_s:.0}/s)")]);
        if let Some(s) = r.setup_ms {
            rows.push(vec!["subscriber set-up".into(), format!("{} ms", f(s))]);
        }
    }
    if let Some(m) = &r.memory {
        rows.push(vec!["idle connections".into(), m.connections.to_string()]);
        rows.push(vec![
            "hub RSS before / after".into(),
            format!("{:.1} / {:.1} MiB", m.rss_before_kib as f64 / 1024.0, m.rss_after_kib as f64 / 1024.0),
        ]);
        rows.push(vec!["per connection".into(), format!("{:.1} KiB", m.per_connection_kib)]);
    }
    print!("{}", output::table(&["FIGURE", "VALUE"], rows));
    Ok(())
}

/// `switchboard bench report`: the hub beside every reachable peer, written to `--out-dir`.
async fn bench_report(a: &BenchArgs, peers: switchboard_bench::peers::PeerConfig) -> Result<()> {
    use switchboard_bench::Workload;
    if !switchboard_bench::peers::BUILT {
        eprintln!(
            "note: this build leaves out the peer drivers, so the report has the hub only; for the peers, \
             build with `cargo build --release -p switchboard-cli --features peers`"
        );
    }
    let mut latency = bench_config(a, Workload::Latency);
    latency.rate = a.rate.unwrap_or(1000);
    // Fanout at each subscriber count, smallest first; the larger ones send proportionally
    // fewer messages so that every count makes as many deliveries.
    let mut counts = if a.subscribers.is_empty() { vec![100, 1000] } else { a.subscribers.clone() };
    counts.sort_unstable();
    counts.dedup();
    let smallest = counts.first().copied().unwrap_or(1).max(1);
    let fanout = counts
        .iter()
        .map(|&n| {
            let mut cfg = bench_config(a, Workload::Fanout);
            cfg.consumers = n.max(1);
            cfg.messages = (cfg.messages * smallest / cfg.consumers).max(1);
            cfg
        })
        .collect();
    // Burst keeps its shape (1,000 sends, 10 → 10) unless the run is asked to be smaller.
    let mut burst = switchboard_bench::BenchConfig::for_workload(Workload::Burst);
    burst.messages = a.messages.map_or(burst.messages, |m| m.min(burst.messages));
    let mut connections = switchboard_bench::BenchConfig::for_workload(Workload::Connections);
    connections.consumers = a.connections.max(1);
    let hub_only = vec![burst, bench_config(a, Workload::Http), connections];
    let extra_hubs = a
        .also_hub
        .iter()
        .map(|spec| {
            let (label, url) = spec
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--also-hub `{spec}`: write it as LABEL=URL, e.g. \"switchboard (PostgreSQL)=http://127.0.0.1:7932\""))?;
            Ok(switchboard_bench::report::ExtraHub {
                label: label.to_owned(),
                url: url.to_owned(),
                admin: Client::new(url.to_owned(), a.conn.token.clone()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rc = switchboard_bench::report::ReportConfig {
        peers,
        throughput: bench_config(a, Workload::Throughput),
        latency,
        fanout,
        hub_only,
        extra_hubs,
        hub_url: a.conn.url.clone(),
        hub_pid: a.hub_pid,
        hub_label: a.hub_label.clone(),
        // The command as run, with any token left out: the file is committed.
        command: ["target/release/switchboard".to_owned()]
            .into_iter()
            .chain(std::env::args().skip(1))
            .scan(false, |after_token, arg| {
                let shown = if *after_token { "$SWITCHBOARD_TOKEN".into() } else { arg.clone() };
                *after_token = arg == "--token";
                Some(if arg.starts_with("--token=") { "--token=$SWITCHBOARD_TOKEN".into() } else { shown })
            })
            .collect::<Vec<_>>()
            .join(" "),
    };
    let c = switchboard_bench::report::compare(&client(&a.conn)?, &rc, &|line: &str| eprintln!("{line}")).await;
    std::fs::create_dir_all(&a.out_dir)?;
    std::fs::write(a.out_dir.join("RESULTS.md"), switchboard_bench::report::markdown(&c))?;
    std::fs::write(a.out_dir.join("results.svg"), switchboard_bench::report::svg(&c))?;
    eprintln!("wrote {}/RESULTS.md and results.svg", a.out_dir.display());
    if a.conn.json {
        println!("{}", serde_json::to_string(&c)?);
    } else {
        print!("{}", switchboard_bench::report::markdown(&c));
    }
    Ok(())
}
