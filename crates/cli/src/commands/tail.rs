//! `switchboard tail`: follow this agent's messages over a WebSocket as they arrive.

use anyhow::Result;
use clap::Args;

use crate::conn::{Conn, client};
use crate::output;

/// How to follow the stream.
#[derive(Args)]
pub struct TailArgs {
    /// Do not acknowledge: messages come back after their lease.
    #[arg(long)]
    no_ack: bool,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<usize>,
    #[command(flatten)]
    conn: Conn,
}

/// Prints each message as it arrives (one JSON object per line with `--json`) and acks it.
pub async fn run(TailArgs { no_ack, count, conn }: TailArgs) -> Result<()> {
    let mut stream = client(&conn)?.stream().await?;
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
                output::text_of(&m.message.parts)
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
    Ok(())
}
