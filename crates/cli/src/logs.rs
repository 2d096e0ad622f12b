//! Logs go to stderr, filtered by `RUST_LOG`.

/// The default filter of `serve`: the hub's own events, and warnings from its libraries.
pub const SERVE_FILTER: &str = "warn,switchboard_server=info,switchboard=info";
/// The default filter of `migrate` and the client commands: warnings only.
pub const CLIENT_FILTER: &str = "warn";

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` or else `default_filter`; as JSON
/// lines when `json`.
pub fn init(default_filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json { builder.json().init() } else { builder.init() }
}
