//! `switchboard token`: the signed-in person's personal access tokens.

use anyhow::Result;
use clap::Subcommand;
use switchboard_core::people::CreateToken;

use crate::conn::{Conn, client};
use crate::output;

/// The `token` subcommands.
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a personal access token and print it (shown once).
    Create {
        /// A name to tell it apart.
        name: String,
        /// Days it works (fractions allowed, at most 365); never expires when left out.
        #[arg(long)]
        expires_in_days: Option<f64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List your tokens with their last use (never the tokens themselves).
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke one of your tokens: it stops working at once.
    Revoke {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs one `token` subcommand.
pub async fn run(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Create { name, expires_in_days, conn } => {
            let t = client(&conn)?.create_token(&CreateToken { name, expires_in_days }).await?;
            if conn.json {
                return output::json(&t);
            }
            println!("created token {} ({})", t.id, t.name);
            println!("token:  {}   (shown once; store it now)", t.token);
        }
        TokenCmd::List { conn } => {
            let list = client(&conn)?.list_tokens().await?;
            if conn.json {
                return output::json(&list);
            }
            let none = || "-".to_owned();
            let rows = list
                .tokens
                .into_iter()
                .map(|t| {
                    vec![
                        t.id,
                        t.name,
                        t.created_at,
                        t.expires_at.unwrap_or_else(none),
                        t.last_used_at.unwrap_or_else(none),
                    ]
                })
                .collect();
            print!("{}", output::table(&["ID", "NAME", "CREATED", "EXPIRES", "LAST USED"], rows));
        }
        TokenCmd::Revoke { id, conn } => {
            client(&conn)?.revoke_token(&id).await?;
            if conn.json {
                return output::json(&serde_json::json!({ "revoked": id }));
            }
            println!("revoked token {id}");
        }
    }
    Ok(())
}
