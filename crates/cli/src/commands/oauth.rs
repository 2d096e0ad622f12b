//! `switchboard oauth`: an agent's access token (client credentials), the hub's signing key
//! rotation (the platform operator), and the identity providers a tenant trusts (its admin).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use switchboard_core::oauth::IdentityProviders;

use crate::conn::{Conn, client};
use crate::output;

/// The `oauth` subcommands.
#[derive(Subcommand)]
pub enum OAuthCmd {
    /// Get a JWT access token for an agent with one of its API keys (`--token`), and print
    /// it: for tools that want OAuth2 bearer tokens rather than API keys.
    Token {
        /// The agent's id (the OAuth2 client id).
        #[arg(long)]
        agent: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Rotate the hub's token signing key (the bootstrap admin token): the old key keeps
    /// verifying its tokens until they expire.
    RotateKey {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show the identity providers whose JWTs this tenant accepts.
    Providers {
        #[command(flatten)]
        conn: Conn,
    },
    /// Replace the tenant's identity providers with those of a JSON file
    /// (`{"providers": [{"issuer", "audience", "jwks_url", "claims": {"agent"?, "user"?}}]}`).
    SetProviders {
        /// The JSON file.
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs one `oauth` subcommand.
pub async fn run(cmd: OAuthCmd) -> Result<()> {
    match cmd {
        OAuthCmd::Token { agent, conn } => {
            let c = client(&conn)?;
            let key = conn.token.clone().context("give the agent's API key with --token (or SWITCHBOARD_TOKEN)")?;
            let t = c.oauth_token(&agent, &key).await?;
            if conn.json {
                return output::json(&t);
            }
            println!("{}", t.access_token);
        }
        OAuthCmd::RotateKey { conn } => {
            let r = client(&conn)?.rotate_oauth_key().await?;
            if conn.json {
                return output::json(&r);
            }
            println!("signing key: {}", r.kid);
            if let (Some(old), Some(until)) = (&r.retired_kid, &r.retired_until) {
                println!("retired:     {old} (published until {until})");
            }
        }
        OAuthCmd::Providers { conn } => {
            let list = client(&conn)?.identity_providers().await?;
            if conn.json {
                return output::json(&list);
            }
            let rows = list
                .providers
                .into_iter()
                .map(|p| {
                    let claims =
                        [p.claims.agent.map(|a| format!("agent={a}")), p.claims.user.map(|u| format!("user={u}"))];
                    vec![p.issuer, p.audience, p.jwks_url, claims.into_iter().flatten().collect::<Vec<_>>().join(" ")]
                })
                .collect();
            print!("{}", output::table(&["ISSUER", "AUDIENCE", "JWKS URL", "CLAIMS"], rows));
        }
        OAuthCmd::SetProviders { file, conn } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let list: IdentityProviders = serde_json::from_str(&text)
                .with_context(|| format!("{} is not an identity provider list", file.display()))?;
            let stored = client(&conn)?.put_identity_providers(&list).await?;
            if conn.json {
                return output::json(&stored);
            }
            println!("{} identity provider(s) set", stored.providers.len());
        }
    }
    Ok(())
}
