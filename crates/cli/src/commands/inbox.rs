//! `switchboard inbox`: take messages from this agent's inbox (long-poll), optionally
//! acknowledging them.

use anyhow::Result;
use clap::Args;
use switchboard_client::InboxOptions;
use switchboard_core::api::Part;

use crate::conn::{Conn, client};
use crate::{output, private_keys};

/// How many messages to take, how long to wait, and whether to ack them.
#[derive(Args)]
pub struct InboxArgs {
    /// Wait this long for a message when none is there, ms.
    #[arg(long, default_value_t = 0)]
    wait_ms: u64,
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Acknowledge what is shown.
    #[arg(long)]
    ack: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Takes up to `--limit` messages (waiting up to `--wait-ms` for one) and shows them.
pub async fn run(a: InboxArgs) -> Result<()> {
    let c = client(&a.conn)?;
    let mut inbox =
        c.inbox(&InboxOptions { wait_ms: Some(a.wait_ms), limit: Some(a.limit), visibility_ms: None }).await?;
    if a.ack && !inbox.messages.is_empty() {
        c.ack(inbox.messages.iter().map(|m| m.message.id.clone()).collect()).await?;
    }
    // Sealed messages are opened with the caller's own keys (`switchboard keys init`), and
    // signatures checked against the directory here, not taken from the hub's word.
    let mut signed = Vec::with_capacity(inbox.messages.len());
    if inbox.messages.iter().any(|m| m.message.signature.is_some()) {
        let keys = private_keys::load(&c.whoami().await?.principal)?;
        for m in &mut inbox.messages {
            if m.message.signature.is_none() {
                signed.push("-");
                continue;
            }
            match c.open_message(&m.message, keys.as_ref()).await {
                Ok(opened) => {
                    m.message.parts = opened.parts;
                    m.message.verified = opened.verified;
                    signed.push(if opened.verified { "verified" } else { "NOT VERIFIED" });
                }
                Err(e) => {
                    m.message.verified = false;
                    m.message.parts = vec![Part::text(format!("[cannot open: {e}]"))];
                    signed.push("NOT VERIFIED");
                }
            }
        }
    } else {
        signed.resize(inbox.messages.len(), "-");
    }
    if a.conn.json {
        return output::json(&inbox);
    }
    if inbox.messages.is_empty() {
        println!("inbox is empty");
        return Ok(());
    }
    // The SIGNATURE column only when something is signed: an inbox of plain messages reads
    // as it always did.
    let any_signed = signed.iter().any(|s| *s != "-");
    let rows = inbox
        .messages
        .iter()
        .zip(&signed)
        .map(|(m, s)| {
            let mut row = vec![m.message.id.clone(), m.message.from.clone(), m.attempt.to_string()];
            if any_signed {
                row.push((*s).to_owned());
            }
            row.push(output::text_of(&m.message.parts));
            row
        })
        .collect();
    let headers: &[&str] =
        if any_signed { &["ID", "FROM", "ATTEMPT", "SIGNATURE", "TEXT"] } else { &["ID", "FROM", "ATTEMPT", "TEXT"] };
    print!("{}", output::table(headers, rows));
    if !a.ack {
        println!("(not acknowledged: run with --ack, or they come back after their lease)");
    }
    Ok(())
}
