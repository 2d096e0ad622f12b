//! `switchboard serve`: runs a hub until SIGINT or SIGTERM. Its flags are one layer of the
//! configuration (defaults < `switchboard.toml` < environment and flags); `migrate` takes the
//! same ones.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use switchboard_server::cfg::Secret;
use switchboard_server::{Config, Hub, Settings};

use crate::logs::{self, LogArgs, LogFormat};

/// The flags of `serve` and `migrate`: one layer of the configuration.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<String>,
    /// Directory of the embedded store.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// postgres://… runs the hub on PostgreSQL instead of the embedded store.
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
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs
    /// --tls-key.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, unencrypted).
    #[arg(long, env = "SWITCHBOARD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// The hub's public base URL, the issuer of its OAuth2 tokens (default: the listen
    /// address; set it behind a proxy and when several nodes share a database).
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lifetime of OAuth2 access tokens, seconds (default 900).
    #[arg(long, env = "SWITCHBOARD_OAUTH_TOKEN_TTL_SECS")]
    oauth_token_ttl_secs: Option<u64>,
    /// E-mail notifications: the SMTP server (unset: no e-mail is sent). Links in e-mails
    /// start with --public-url.
    #[arg(long, env = "SWITCHBOARD_SMTP_HOST")]
    smtp_host: Option<String>,
    /// The SMTP port (default 25, 587 or 465 by --smtp-tls).
    #[arg(long, env = "SWITCHBOARD_SMTP_PORT")]
    smtp_port: Option<u16>,
    /// none, starttls (default) or tls.
    #[arg(long, env = "SWITCHBOARD_SMTP_TLS", value_parser = ["none", "starttls", "tls"])]
    smtp_tls: Option<String>,
    #[arg(long, env = "SWITCHBOARD_SMTP_USERNAME")]
    smtp_username: Option<String>,
    /// Only from the environment or the file, so it shows in no process list.
    #[arg(skip)]
    smtp_password: Option<String>,
    /// The sender of notification e-mails, e.g. "Switchboard <hub@example.com>".
    #[arg(long, env = "SWITCHBOARD_SMTP_FROM")]
    smtp_from: Option<String>,
    /// How often the node looks for new requests to e-mail, ms (default 1000).
    #[arg(long, env = "SWITCHBOARD_NOTIFY_INTERVAL_MS")]
    notify_interval_ms: Option<u64>,
    #[command(flatten)]
    pub(crate) logs: LogArgs,
}

/// Runs the hub until SIGINT or SIGTERM, then lets in-flight requests finish.
pub async fn run(a: ServeArgs) -> Result<()> {
    let log_format = a.logs.format();
    logs::init(logs::SERVE_FILTER, log_format);
    let config = resolve_config(a)?;
    let data_dir = config.data_dir.clone();
    let hub = Hub::start(config).await?;
    println!("switchboard listening on {} (data in {})", hub.url(), data_dir.display());
    if let Some(t) = &hub.generated_admin_token {
        println!("admin token (shown once; also saved to {}):", data_dir.join("admin.token").display());
        println!("  {t}");
    }
    shutdown_signal().await;
    // At a terminal this shows whatever RUST_LOG says; a log shipper needs every line as JSON.
    match log_format {
        LogFormat::Text => eprintln!("shutting down: finishing in-flight requests…"),
        LogFormat::Json => tracing::info!("shutting down: finishing in-flight requests…"),
    }
    hub.shutdown().await;
    Ok(())
}

/// Defaults < `switchboard.toml` (or `--config`) < environment and flags.
pub fn resolve_config(a: ServeArgs) -> Result<Config> {
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
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        public_url: a.public_url,
        oauth_token_ttl_secs: a.oauth_token_ttl_secs,
        smtp_host: a.smtp_host,
        smtp_port: a.smtp_port,
        smtp_tls: a.smtp_tls,
        smtp_username: a.smtp_username,
        smtp_password: a.smtp_password.or_else(|| std::env::var("SWITCHBOARD_SMTP_PASSWORD").ok()).map(Secret),
        smtp_from: a.smtp_from,
        notify_interval_ms: a.notify_interval_ms,
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
