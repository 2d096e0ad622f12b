//! `switchboard keys`: the caller's key pairs for sealed and signed messages (docs/e2e.md).

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::conn::{Conn, client};
use crate::{output, private_keys};

/// The `keys` subcommands.
#[derive(Subcommand)]
pub enum KeysCmd {
    /// Make your X25519 and Ed25519 key pairs, keep the private halves in your config
    /// directory (mode 0600) and publish the public halves.
    Init {
        /// Replace keys made before: the new ones are published and the old ones revoked.
        #[arg(long)]
        rotate: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a principal's public keys (yours by default).
    List {
        /// `agent:<id>` or `user:<id>`.
        #[arg(long)]
        principal: Option<String>,
        /// Or the keys of everyone a message to this address reaches.
        #[arg(long, conflicts_with = "principal")]
        to: Option<String>,
        #[arg(long)]
        include_revoked: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke a key (yours; admins: any of the tenant).
    Revoke {
        key_id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs one `keys` subcommand.
pub async fn run(cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::Init { rotate, conn } => {
            let c = client(&conn)?;
            let me = c.whoami().await?.principal;
            let old = private_keys::load(&me)?;
            let keys = match (old, rotate) {
                (Some(_), false) => bail!(
                    "you have keys already ({}); `switchboard keys init --rotate` replaces them",
                    private_keys::path(&me)?.display()
                ),
                (Some(old), true) => c.rotate_keys(&old).await?,
                (None, _) => c.init_keys(&me).await?,
            };
            let path = private_keys::save(&keys)?;
            if conn.json {
                return output::json(&serde_json::json!({
                    "principal": keys.principal,
                    "signing_key_id": keys.signing_key_id,
                    "encryption_key_id": keys.encryption_key_id,
                    "path": path,
                }));
            }
            println!("published keys of {me}:");
            println!("  ed25519 (signing)    {}", keys.signing_key_id);
            println!("  x25519  (encryption) {}", keys.encryption_key_id);
            println!("private halves in {} (mode 0600)", path.display());
        }
        KeysCmd::List { principal, to, include_revoked, conn } => {
            let c = client(&conn)?;
            let list = match (principal, to) {
                (_, Some(to)) => c.recipient_keys(&to).await?,
                (Some(p), None) => c.keys_of(&p, include_revoked).await?,
                (None, None) => c.keys_of(&c.whoami().await?.principal, include_revoked).await?,
            };
            if conn.json {
                return output::json(&list);
            }
            let rows = list
                .keys
                .into_iter()
                .map(|k| {
                    vec![
                        k.key_id,
                        k.principal,
                        k.kind.as_str().to_owned(),
                        k.created_at,
                        k.revoked_at.unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print!("{}", output::table(&["KEY", "PRINCIPAL", "KIND", "CREATED", "REVOKED"], rows));
        }
        KeysCmd::Revoke { key_id, conn } => {
            let k = client(&conn)?.revoke_key(&key_id).await?;
            if conn.json {
                return output::json(&k);
            }
            println!("revoked {} of {}", k.key_id, k.principal);
        }
    }
    Ok(())
}
