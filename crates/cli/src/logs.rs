//! Logs go to stderr, filtered by `RUST_LOG`: text for people, JSON lines for log shippers.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};

/// The default filter of `serve`: the hub's own events, and warnings from its libraries.
pub const SERVE_FILTER: &str = "warn,switchboard_server=info,switchboard=info";
/// The default filter of `migrate` and the client commands: warnings only.
pub const CLIENT_FILTER: &str = "warn";

/// How log lines are written.
// The variants have no doc comments: clap would show them as a list in `serve --help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    // Human-readable lines, coloured only on a terminal.
    Text,
    // One JSON object per line (tracing-subscriber's JSON format).
    Json,
}

/// The log flags of the hub's commands (`serve`, `migrate`).
#[derive(Args)]
pub struct LogArgs {
    /// Log format: text, or json (one object per line, for log shippers).
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Log as JSON lines (the same as --log-format json).
    #[arg(long, env = "SWITCHBOARD_LOG_JSON")]
    log_json: bool,
}

impl LogArgs {
    /// The format asked for: `--log-format` when given, else JSON if `--log-json`, else text.
    pub fn format(&self) -> LogFormat {
        match (self.log_format, self.log_json) {
            (Some(format), _) => format,
            (None, true) => LogFormat::Json,
            (None, false) => LogFormat::Text,
        }
    }
}

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` or else `default_filter`.
/// Colour codes only when stderr is a terminal (and `NO_COLOR` is not set): in a file, a pipe
/// or a journal they are noise that every reader has to strip.
pub fn init(default_filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.with_ansi(false).json().init(),
    }
}
