//! Where the hub is and who we are: the flags every client command shares.

use std::path::PathBuf;

use clap::Args;
use switchboard_client::Client;

/// Where the hub is and who we are, for client commands.
#[derive(Args, Clone)]
pub struct Conn {
    /// Hub URL.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:7777", global = true)]
    pub url: String,
    /// Agent API key or admin token. Defaults to ./switchboard-data/admin.token when present.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client of the hub named by `conn`: its token, or else the admin token a local hub saved.
pub fn client(conn: &Conn) -> Client {
    // An empty SWITCHBOARD_TOKEN counts as unset, as in `Client::from_env`.
    let token = conn.token.clone().filter(|t| !t.is_empty()).or_else(|| {
        let dir = std::env::var("SWITCHBOARD_DATA_DIR").unwrap_or_else(|_| "./switchboard-data".into());
        std::fs::read_to_string(PathBuf::from(dir).join("admin.token")).ok().map(|t| t.trim().to_owned())
    });
    Client::new(conn.url.clone(), token)
}
