//! `switchboard dead-letters`: inspect, replay or purge the deliveries that ran out of attempts.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use switchboard_client::DeliveryQuery;
use switchboard_core::api::DeadLetterSelection;

use crate::conn::{Conn, client};
use crate::output;

/// The `dead-letters` subcommands.
#[derive(Subcommand)]
pub enum DeadCmd {
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

/// Which dead letters `replay` and `purge` act on; at least one criterion, or `--all`.
#[derive(Args)]
pub struct DeadSel {
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

/// Runs one `dead-letters` subcommand.
pub async fn run(cmd: DeadCmd) -> Result<()> {
    match cmd {
        DeadCmd::List { recipient, since, conn } => {
            let q = DeliveryQuery { recipient, since, limit: Some(1000), ..Default::default() };
            let list = client(&conn)?.dead_letters(&q).await?;
            if conn.json {
                return output::json(&list);
            }
            print!("{}", output::table(&output::DELIVERY_HEADERS, output::delivery_rows(&list.dead_letters)));
        }
        DeadCmd::Replay { sel, conn } => {
            let r = client(&conn)?.replay_dead_letters(&sel.selection()?).await?;
            if conn.json {
                return output::json(&r);
            }
            println!("replayed {} dead letters", r.count);
        }
        DeadCmd::Purge { sel, conn } => {
            let r = client(&conn)?.purge_dead_letters(&sel.selection()?).await?;
            if conn.json {
                return output::json(&r);
            }
            println!("purged {} dead letters", r.count);
        }
    }
    Ok(())
}
