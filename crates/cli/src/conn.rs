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
    /// Agent API key, personal access token or admin token. Defaults to the token
    /// `switchboard login` saved for this hub, else ./switchboard-data/admin.token when present.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Also trust this CA certificate (PEM) for an https:// hub whose certificate a private
    /// CA issued, or a self-signed one.
    #[arg(long, env = "SWITCHBOARD_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client of the hub named by `conn`: its token, or else the token `switchboard login`
/// saved for this hub, or else the admin token a local hub saved; trusting `--ca-cert` if
/// given.
pub fn client(conn: &Conn) -> anyhow::Result<Client> {
    // An empty SWITCHBOARD_TOKEN counts as unset, as in `Client::from_env`.
    let token = conn.token.clone().filter(|t| !t.is_empty());
    let token = token.or_else(|| crate::credentials::token_for(&conn.url)).or_else(|| {
        let dir = std::env::var("SWITCHBOARD_DATA_DIR").unwrap_or_else(|_| "./switchboard-data".into());
        std::fs::read_to_string(PathBuf::from(dir).join("admin.token")).ok().map(|t| t.trim().to_owned())
    });
    let client = Client::new(conn.url.clone(), token);
    match conn.ca_cert.as_ref().filter(|p| !p.as_os_str().is_empty()) {
        None => Ok(client),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--ca-cert (SWITCHBOARD_CA_CERT): cannot read {}: {e}", path.display()))?;
            client
                .with_ca_cert(&pem)
                .map_err(|e| anyhow::anyhow!("--ca-cert (SWITCHBOARD_CA_CERT) {}: {e}", path.display()))
        }
    }
}
