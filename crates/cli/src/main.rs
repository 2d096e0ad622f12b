//! `switchboard`: runs the hub and talks to it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use switchboard_client::DeliveryQuery;
use switchboard_client::{Client, ClientError, InboxOptions};
use switchboard_core::api::{
    AgentStatus, Capability, DeadLetterSelection, DeliveryItem, DeliveryState, Part, RegisterAgent, SendMessage,
    SubscriberList,
};
use switchboard_server::{Config, Hub, Settings};

mod table;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Messaging hub for AI agents and the people who work with them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the hub is and who we are, for client commands.
#[derive(Args, Clone)]
struct Conn {
    /// Hub URL.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:7777", global = true)]
    url: String,
    /// Agent API key or admin token. Defaults to ./switchboard-data/admin.token when present.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub.
    Serve(ServeArgs),
    /// Apply the store's schema migrations and exit (nodes also migrate at start).
    Migrate(ServeArgs),
    /// Register, list, show and remove agents.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Subscribe agents to topics and see who listens: messages to topic:<name> reach every
    /// subscriber but the sender.
    #[command(subcommand)]
    Topic(TopicCmd),
    /// Send a message.
    Send(SendArgs),
    /// List deliveries by state and recipient.
    Deliveries {
        /// pending, leased, delivered, acked, dead or expired.
        #[arg(long)]
        state: Option<String>,
        /// agent:<id>
        #[arg(long)]
        recipient: Option<String>,
        /// RFC 3339 time: only messages accepted since.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        conn: Conn,
    },
    /// Inspect, replay or purge dead letters.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadCmd),
    /// Show a message and its deliveries.
    Message {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Take messages from this agent's inbox.
    Inbox(InboxArgs),
    /// Drive a running hub with a workload and report throughput and latency (admin token).
    Bench(BenchArgs),
    /// Follow this agent's messages as they arrive (WebSocket), acknowledging each.
    Tail {
        /// Do not acknowledge: messages come back after their lease.
        #[arg(long)]
        no_ack: bool,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<String>,
    /// Directory of the embedded store.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// postgres://… selects PostgreSQL (not in this build yet).
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Configuration file (default: ./switchboard.toml when present).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Largest message body in bytes (default 1 MiB).
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<usize>,
    /// Lease of a delivered message before redelivery, ms (default 30000).
    #[arg(long, env = "SWITCHBOARD_VISIBILITY_TIMEOUT_MS")]
    visibility_timeout_ms: Option<u64>,
    /// An agent not seen for this long is inactive, ms (default 60000).
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_WINDOW_MS")]
    heartbeat_window_ms: Option<u64>,
    /// Attempts before a delivery goes to dead letters (default 10).
    #[arg(long, env = "SWITCHBOARD_MAX_ATTEMPTS")]
    max_attempts: Option<u32>,
    /// Unacknowledged messages per stream connection (default 1000).
    #[arg(long, env = "SWITCHBOARD_MAX_IN_FLIGHT")]
    max_in_flight: Option<usize>,
    /// Let push endpoints be on addresses that are not globally reachable (loopback, private,
    /// link-local, …; tests, local dev).
    /// The flag alone means true.
    #[arg(long, env = "SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", num_args = 0..=1, default_missing_value = "true")]
    allow_private_endpoints: Option<bool>,
    /// Push requests in flight per endpoint (default 4).
    #[arg(long, env = "SWITCHBOARD_PUSH_CONCURRENCY_PER_ENDPOINT")]
    push_concurrency_per_endpoint: Option<usize>,
    /// Push request timeout, ms (default 15000).
    #[arg(long, env = "SWITCHBOARD_PUSH_TIMEOUT_MS")]
    push_timeout_ms: Option<u64>,
    /// Push retry schedule, comma-separated ms (default 5s,30s,2m,10m,30m,1h,3h,6h).
    #[arg(long, env = "SWITCHBOARD_PUSH_RETRY_SCHEDULE_MS", value_delimiter = ',')]
    push_retry_schedule_ms: Option<Vec<u64>>,
    /// Open HTTP connections at most (default 10000; also bounded by the open-file limit).
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Open HTTP connections per client address, 0 for no limit (default 1000).
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Time to send a request's headers once started, ms (default 10000); then 408.
    #[arg(long, env = "SWITCHBOARD_HEADER_READ_TIMEOUT_MS")]
    header_read_timeout_ms: Option<u64>,
    /// An idle keep-alive connection closes after this, ms (default 75000).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT_MS")]
    idle_timeout_ms: Option<u64>,
    /// Log as JSON lines.
    #[arg(long, env = "SWITCHBOARD_LOG_JSON")]
    log_json: bool,
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Register an agent (admin token); prints its API key once.
    Register {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "agent-version")]
        version: Option<String>,
        /// Push endpoint URL.
        #[arg(long)]
        endpoint: Option<String>,
        /// A capability name; repeat for several.
        #[arg(long = "capability", short = 'c')]
        capabilities: Vec<String>,
        /// A full card as JSON (file path), instead of the flags.
        #[arg(long, conflicts_with_all = ["description", "capabilities", "endpoint"])]
        card: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List agents.
    List {
        #[arg(long)]
        capability: Option<String>,
        /// active, inactive or error.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one agent.
    Show {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove an agent (admin token).
    Rm {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand)]
enum TopicCmd {
    /// Subscribe an agent to a topic (an agent key may subscribe only its own agent).
    Subscribe {
        /// Topic name, e.g. alerts/eu.
        topic: String,
        /// The agent to subscribe (its id). Default: the agent whose key is the token; with
        /// the admin token it must be given.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// End an agent's subscription to a topic.
    Unsubscribe {
        topic: String,
        /// The agent to unsubscribe (its id). Default: the agent whose key is the token.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the topics that have subscribers.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// List a topic's subscribers.
    Subscribers {
        topic: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand)]
enum DeadCmd {
    /// List dead deliveries.
    List {
        #[arg(long)]
        recipient: Option<String>,
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Make dead deliveries pending again: by message id, recipient, time, or --all.
    Replay {
        #[command(flatten)]
        sel: DeadSel,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete dead deliveries: by message id, recipient, time, or --all.
    Purge {
        #[command(flatten)]
        sel: DeadSel,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Args)]
struct DeadSel {
    /// Message ids.
    ids: Vec<String>,
    #[arg(long)]
    recipient: Option<String>,
    /// RFC 3339 time: only messages accepted since.
    #[arg(long)]
    since: Option<String>,
    /// Every dead letter in scope.
    #[arg(long)]
    all: bool,
}

impl DeadSel {
    fn selection(self) -> Result<DeadLetterSelection> {
        if self.ids.is_empty() && self.recipient.is_none() && self.since.is_none() && !self.all {
            bail!("say which dead letters: message ids, --recipient, --since, or --all");
        }
        Ok(DeadLetterSelection { message_ids: self.ids, recipient: self.recipient, since: self.since })
    }
}

fn parse_state(s: &str) -> Result<DeliveryState> {
    DeliveryState::parse(s)
        .with_context(|| format!("--state {s}: use pending, leased, delivered, acked, dead or expired"))
}

fn delivery_rows(items: &[DeliveryItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|d| {
            vec![
                d.message_id.clone(),
                d.from.clone(),
                d.recipient.clone(),
                d.state.as_str().into(),
                d.attempts.to_string(),
                d.updated_at.clone(),
                d.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const DELIVERY_HEADERS: [&str; 7] = ["MESSAGE", "FROM", "RECIPIENT", "STATE", "ATTEMPTS", "UPDATED", "LAST ERROR"];

#[derive(Args)]
struct SendArgs {
    /// Recipient address, e.g. agent:<id> or capability:<name>.
    #[arg(long)]
    to: String,
    /// Text of the message.
    text: Option<String>,
    /// A JSON data part.
    #[arg(long)]
    data: Option<String>,
    #[arg(long)]
    conversation: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    #[arg(long)]
    in_reply_to: Option<String>,
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Seconds before an undelivered message expires.
    #[arg(long)]
    ttl: Option<u64>,
    /// Wait until the message is delivered (ms).
    #[arg(long)]
    wait_ms: Option<u64>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Args)]
struct BenchArgs {
    /// burst, throughput, latency, push, http, connections, fanout, or `report` (throughput,
    /// latency and fanout against the hub and every reachable peer, written to
    /// docs/bench/RESULTS.md and results.svg).
    workload: BenchRun,
    /// What to run against: switchboard, jetstream-d1, jetstream-d2, jetstream-d0 or rabbitmq.
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
    #[command(flatten)]
    conn: Conn,
}

#[derive(Args)]
struct InboxArgs {
    /// Wait this long for a message when none is there, ms.
    #[arg(long, default_value_t = 0)]
    wait_ms: u64,
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Acknowledge what is shown.
    #[arg(long)]
    ack: bool,
    #[command(flatten)]
    conn: Conn,
}

fn client(conn: &Conn) -> Client {
    // An empty SWITCHBOARD_TOKEN counts as unset, as in `Client::from_env`.
    let token = conn.token.clone().filter(|t| !t.is_empty()).or_else(|| {
        let dir = std::env::var("SWITCHBOARD_DATA_DIR").unwrap_or_else(|_| "./switchboard-data".into());
        std::fs::read_to_string(PathBuf::from(dir).join("admin.token")).ok().map(|t| t.trim().to_owned())
    });
    Client::new(conn.url.clone(), token)
}

fn init_logs(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json { builder.json().init() } else { builder.init() }
}

/// Client commands end quietly when their reader goes away (`switchboard … --json | head`),
/// as Unix tools do, instead of panicking on a failed `println!`. Rust ignores SIGPIPE at
/// start; sockets are unaffected either way (std sends with `MSG_NOSIGNAL`). Not for `serve`.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once on the main thread before any other thread writes to a pipe;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        other => {
            init_logs("warn", false);
            restore_sigpipe();
            run_client(other).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<ClientError>() {
                Some(ClientError::Api(p)) => {
                    eprintln!("error: {} ({})\n  {}", p.title, p.code, p.detail);
                    for fe in &p.errors {
                        eprintln!("  - {}: {}", if fe.path.is_empty() { "(body)" } else { &fe.path }, fe.message);
                    }
                    if p.code == "unauthenticated" {
                        eprintln!("  hint: set SWITCHBOARD_TOKEN to an agent API key or the admin token");
                    }
                }
                // reqwest's error repeats the URL at each level of its chain: the root cause
                // is the part that says what went wrong (refused, timed out, no such host).
                Some(ClientError::Transport { url, source }) => {
                    eprintln!("error: cannot reach the hub at {url}: {}", root_cause(source));
                    eprintln!("  {HUB_DOWN_HINT}");
                }
                Some(ClientError::Stream(s)) if s.starts_with("cannot connect") => {
                    eprintln!("error: stream: {s}");
                    eprintln!("  {HUB_DOWN_HINT}");
                }
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// What to check when the hub cannot be reached.
const HUB_DOWN_HINT: &str =
    "hint: is the hub running? Start it with `switchboard serve`, or point --url / SWITCHBOARD_URL at it";

/// The innermost error of a chain.
fn root_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> &'a (dyn std::error::Error + 'static) {
    let mut e = e;
    while let Some(next) = e.source() {
        e = next;
    }
    e
}

async fn migrate(a: ServeArgs) -> Result<()> {
    init_logs("warn", a.log_json);
    let config = resolve_config(a)?;
    let target = match &config.database_url {
        Some(u) => u.split('@').next_back().unwrap_or_default().to_owned(),
        None => config.data_dir.display().to_string(),
    };
    switchboard_server::migrate(&config).await?;
    println!("store at {target} is migrated to the current schema");
    Ok(())
}

async fn serve(a: ServeArgs) -> Result<()> {
    init_logs("warn,switchboard_server=info,switchboard=info", a.log_json);
    let config = resolve_config(a)?;
    let data_dir = config.data_dir.clone();
    let hub = Hub::start(config).await?;
    println!("switchboard listening on {} (data in {})", hub.url(), data_dir.display());
    if let Some(t) = &hub.generated_admin_token {
        println!("admin token (shown once; also saved to {}):", data_dir.join("admin.token").display());
        println!("  {t}");
    }
    shutdown_signal().await;
    eprintln!("shutting down: finishing in-flight requests…");
    hub.shutdown().await;
    Ok(())
}

/// Defaults < `switchboard.toml` (or `--config`) < environment and flags.
fn resolve_config(a: ServeArgs) -> Result<Config> {
    let file_path = a.config.clone().or_else(|| {
        let p = PathBuf::from("switchboard.toml");
        p.exists().then_some(p)
    });
    let file = match &file_path {
        Some(p) => Settings::from_file(p)?,
        None => Settings::default(),
    };
    let flags = Settings {
        listen: a.listen,
        data_dir: a.data_dir,
        database_url: a.database_url,
        admin_token: std::env::var("SWITCHBOARD_ADMIN_TOKEN").ok(),
        max_message_bytes: a.max_message_bytes,
        visibility_timeout_ms: a.visibility_timeout_ms,
        heartbeat_window_ms: a.heartbeat_window_ms,
        max_attempts: a.max_attempts,
        max_in_flight: a.max_in_flight,
        push_timeout_ms: a.push_timeout_ms,
        push_concurrency_per_endpoint: a.push_concurrency_per_endpoint,
        push_retry_schedule_ms: a.push_retry_schedule_ms,
        allow_private_endpoints: a.allow_private_endpoints,
        max_connections: a.max_connections,
        max_connections_per_ip: a.max_connections_per_ip,
        header_read_timeout_ms: a.header_read_timeout_ms,
        idle_timeout_ms: a.idle_timeout_ms,
        ..Settings::default()
    };
    let config = Config::resolve(flags, file)?;
    Ok(config)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn text_of(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text { text } => text.clone(),
            Part::Data { data } => data.to_string(),
            Part::File { file } => format!("[file {}]", file.name.as_deref().unwrap_or("")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--agent`, or else the agent whose key the client holds (the admin has no agent).
async fn agent_or_self(c: &Client, agent: Option<String>) -> Result<String> {
    if let Some(a) = agent {
        return Ok(a);
    }
    match c.whoami().await?.agent_id {
        Some(id) => Ok(id),
        None => {
            bail!("the admin token is not an agent: say which agent with --agent <id> (see `switchboard agent list`)")
        }
    }
}

async fn topic(cmd: TopicCmd) -> Result<()> {
    match cmd {
        TopicCmd::Subscribe { topic, agent, conn } => {
            let c = client(&conn);
            let agent = agent_or_self(&c, agent).await?;
            let s = c.subscribe(&topic, &agent).await?;
            if conn.json {
                return print_json(&s);
            }
            println!("agent {} is subscribed to topic {} (since {})", s.agent_id, s.topic, s.created_at);
        }
        TopicCmd::Unsubscribe { topic, agent, conn } => {
            let c = client(&conn);
            let agent = agent_or_self(&c, agent).await?;
            c.unsubscribe(&topic, &agent).await?;
            if conn.json {
                return print_json(&serde_json::json!({"topic": topic, "agent_id": agent, "unsubscribed": true}));
            }
            println!("agent {agent} is no longer subscribed to topic {topic}");
        }
        TopicCmd::List { conn } => {
            let list = client(&conn).topics().await?;
            if conn.json {
                return print_json(&list);
            }
            let rows = list.topics.iter().map(|t| vec![t.name.clone(), t.subscribers.to_string()]).collect();
            print!("{}", table::render(&["TOPIC", "SUBSCRIBERS"], rows));
        }
        TopicCmd::Subscribers { topic, conn } => {
            let subscribers = client(&conn).topic_subscribers(&topic).await?;
            if conn.json {
                return print_json(&SubscriberList { subscribers, next_cursor: None });
            }
            let rows = subscribers.iter().map(|s| vec![s.agent_id.clone(), s.created_at.clone()]).collect();
            print!("{}", table::render(&["AGENT", "SINCE"], rows));
        }
    }
    Ok(())
}

async fn run_client(cmd: Command) -> Result<()> {
    match cmd {
        Command::Serve(_) | Command::Migrate(_) => unreachable!("serve and migrate are handled by main"),
        Command::Bench(a) => bench(a).await?,
        Command::Deliveries { state, recipient, since, limit, conn } => {
            let q = DeliveryQuery {
                state: state.as_deref().map(parse_state).transpose()?,
                recipient,
                since,
                limit: Some(limit),
                cursor: None,
            };
            let list = client(&conn).deliveries(&q).await?;
            if conn.json {
                return print_json(&list);
            }
            print!("{}", table::render(&DELIVERY_HEADERS, delivery_rows(&list.deliveries)));
        }
        Command::DeadLetters(DeadCmd::List { recipient, since, conn }) => {
            let q = DeliveryQuery { recipient, since, limit: Some(1000), ..Default::default() };
            let list = client(&conn).dead_letters(&q).await?;
            if conn.json {
                return print_json(&list);
            }
            print!("{}", table::render(&DELIVERY_HEADERS, delivery_rows(&list.dead_letters)));
        }
        Command::DeadLetters(DeadCmd::Replay { sel, conn }) => {
            let r = client(&conn).replay_dead_letters(&sel.selection()?).await?;
            if conn.json {
                return print_json(&r);
            }
            println!("replayed {} dead letters", r.count);
        }
        Command::DeadLetters(DeadCmd::Purge { sel, conn }) => {
            let r = client(&conn).purge_dead_letters(&sel.selection()?).await?;
            if conn.json {
                return print_json(&r);
            }
            println!("purged {} dead letters", r.count);
        }
        Command::Agent(AgentCmd::Register { name, description, version, endpoint, capabilities, card, conn }) => {
            let req = match card {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                    let mut r: RegisterAgent = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not an agent card", path.display()))?;
                    r.name = name;
                    r
                }
                None => RegisterAgent {
                    name,
                    description,
                    version,
                    endpoint,
                    capabilities: capabilities
                        .into_iter()
                        .map(|c| Capability {
                            name: c,
                            description: None,
                            tags: vec![],
                            examples: vec![],
                            input_schema: None,
                            output_schema: None,
                        })
                        .collect(),
                    metadata: None,
                    retry_schedule_ms: None,
                },
            };
            let r = client(&conn).register_agent(&req).await?;
            if conn.json {
                return print_json(&r);
            }
            println!("registered agent {} ({})", r.agent.name, r.agent.id);
            println!("address:  agent:{}", r.agent.id);
            println!("api key:  {}   (shown once; store it now)", r.api_key);
            if r.agent.endpoint.is_some() {
                println!("webhook secret: {}   (verify push signatures with it)", r.webhook_secret);
            }
        }
        Command::Agent(AgentCmd::List { capability, status, conn }) => {
            let status = match status.as_deref() {
                None => None,
                Some("active") => Some(AgentStatus::Active),
                Some("inactive") => Some(AgentStatus::Inactive),
                Some("error") => Some(AgentStatus::Error),
                Some(s) => bail!("--status {s}: use active, inactive or error"),
            };
            let list = client(&conn).list_agents(capability.as_deref(), status).await?;
            if conn.json {
                return print_json(&list);
            }
            let rows = list
                .agents
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.name.clone(),
                        a.status.as_str().to_owned(),
                        a.capabilities.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(","),
                        a.last_seen_at.clone().unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            print!("{}", table::render(&["ID", "NAME", "STATUS", "CAPABILITIES", "LAST SEEN"], rows));
        }
        Command::Agent(AgentCmd::Show { id, conn }) => {
            let a = client(&conn).get_agent(&id).await?;
            if conn.json {
                return print_json(&a);
            }
            let rows = vec![
                vec!["id".into(), a.id.clone()],
                vec!["name".into(), a.name.clone()],
                vec!["status".into(), a.status.as_str().into()],
                vec!["description".into(), a.description.clone().unwrap_or_default()],
                vec!["version".into(), a.version.clone().unwrap_or_default()],
                vec!["endpoint".into(), a.endpoint.clone().unwrap_or_else(|| "(pull)".into())],
                vec![
                    "capabilities".into(),
                    a.capabilities.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
                ],
                vec!["last seen".into(), a.last_seen_at.clone().unwrap_or_else(|| "never".into())],
                vec!["created".into(), a.created_at.clone()],
            ];
            print!("{}", table::render(&["FIELD", "VALUE"], rows));
        }
        Command::Topic(cmd) => topic(cmd).await?,
        Command::Agent(AgentCmd::Rm { id, conn }) => {
            client(&conn).delete_agent(&id).await?;
            if conn.json {
                return print_json(&serde_json::json!({"deleted": id}));
            }
            println!("deleted agent {id}");
        }
        Command::Send(a) => {
            let mut parts = Vec::new();
            if let Some(t) = a.text {
                parts.push(Part::text(t));
            }
            if let Some(d) = a.data {
                let data = serde_json::from_str(&d).context("--data must be JSON")?;
                parts.push(Part::Data { data });
            }
            if parts.is_empty() {
                bail!("nothing to send: give the text as an argument, or --data '{{…}}'");
            }
            let m = SendMessage {
                to: a.to,
                parts,
                conversation_id: a.conversation,
                correlation_id: a.correlation_id,
                in_reply_to: a.in_reply_to,
                idempotency_key: a.idempotency_key,
                ttl_seconds: a.ttl,
                metadata: None,
            };
            let c = client(&a.conn);
            let r = match a.wait_ms {
                Some(ms) => c.send_and_wait(&m, ms).await?,
                None => c.send(&m).await?,
            };
            if a.conn.json {
                return print_json(&r);
            }
            let to = if r.recipients.is_empty() { "(no recipients)".to_owned() } else { r.recipients.join(", ") };
            println!("accepted {} → {to}{}", r.id, if r.duplicate { " (duplicate)" } else { "" });
            if let Some(ds) = r.deliveries {
                for d in ds {
                    println!("  {}  {}", d.recipient, d.state.as_str());
                }
            }
        }
        Command::Message { id, conn } => {
            let s = client(&conn).get_message(&id).await?;
            if conn.json {
                return print_json(&s);
            }
            println!("{}  from {} to {}  at {}", s.message.id, s.message.from, s.message.to, s.message.created_at);
            println!("  {}", text_of(&s.message.parts));
            let rows = s
                .deliveries
                .iter()
                .map(|d| {
                    vec![
                        d.recipient.clone(),
                        d.state.as_str().into(),
                        d.attempts.to_string(),
                        d.updated_at.clone(),
                        d.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print!("{}", table::render(&["RECIPIENT", "STATE", "ATTEMPTS", "UPDATED", "ERROR"], rows));
            if !s.push_attempts.is_empty() {
                println!();
                let rows = s
                    .push_attempts
                    .iter()
                    .map(|a| {
                        vec![
                            a.attempt.to_string(),
                            a.at.clone(),
                            format!("{} ms", a.duration_ms),
                            a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                            a.error_kind.clone().unwrap_or_default(),
                            a.response_excerpt.clone().unwrap_or_default().chars().take(60).collect(),
                        ]
                    })
                    .collect();
                print!("{}", table::render(&["PUSH", "AT", "TOOK", "STATUS", "KIND", "RESPONSE"], rows));
            }
        }
        Command::Inbox(a) => {
            let c = client(&a.conn);
            let inbox =
                c.inbox(&InboxOptions { wait_ms: Some(a.wait_ms), limit: Some(a.limit), visibility_ms: None }).await?;
            if a.ack && !inbox.messages.is_empty() {
                c.ack(inbox.messages.iter().map(|m| m.message.id.clone()).collect()).await?;
            }
            if a.conn.json {
                return print_json(&inbox);
            }
            if inbox.messages.is_empty() {
                println!("inbox is empty");
                return Ok(());
            }
            let rows = inbox
                .messages
                .iter()
                .map(|m| {
                    vec![m.message.id.clone(), m.message.from.clone(), m.attempt.to_string(), text_of(&m.message.parts)]
                })
                .collect();
            print!("{}", table::render(&["ID", "FROM", "ATTEMPT", "TEXT"], rows));
            if !a.ack {
                println!("(not acknowledged: run with --ack, or they come back after their lease)");
            }
        }
        Command::Tail { no_ack, count, conn } => {
            let mut stream = client(&conn).stream().await?;
            let mut seen = 0;
            while let Some(m) = stream.next_message().await? {
                if conn.json {
                    println!("{}", serde_json::to_string(&m)?);
                } else {
                    println!(
                        "{}  {}  #{}  {}",
                        m.message.created_at,
                        m.message.from,
                        m.attempt,
                        text_of(&m.message.parts)
                    );
                }
                if !no_ack {
                    stream.ack(&m.message.id).await?;
                }
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    // Close with a close frame rather than by exiting: a hub that reads the
                    // last ack and then finds the connection reset may drop that ack, and
                    // the message would come back after its lease.
                    stream.close().await?;
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A bench workload, or the side-by-side report.
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
    if workload == switchboard_bench::Workload::Fanout {
        cfg.consumers = a.subscribers.first().copied().unwrap_or(cfg.consumers).max(1);
    }
    cfg
}

async fn bench(a: BenchArgs) -> Result<()> {
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
        switchboard_bench::run(&client(&a.conn), &cfg, tick).await?
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
    print!("{}", table::render(&["FIGURE", "VALUE"], rows));
    Ok(())
}

/// `switchboard bench report`: the hub beside every reachable peer, written to `--out-dir`.
async fn bench_report(a: &BenchArgs, peers: switchboard_bench::peers::PeerConfig) -> Result<()> {
    use switchboard_bench::Workload;
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
    let c = switchboard_bench::report::compare(&client(&a.conn), &rc, &|line: &str| eprintln!("{line}")).await;
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
