//! `switchboard reply`: answer a message as a person (or agent) in a terminal. The reply is
//! `in_reply_to` the message and goes back where it came from: to its conversation when it
//! was part of one, else to its sender.

use anyhow::{Context, Result, bail};
use clap::Args;
use switchboard_core::api::{Message, Part, SendMessage};

use crate::conn::{Conn, client};
use crate::output;

/// The message to answer and the answer.
#[derive(Args)]
pub struct ReplyArgs {
    /// The id of the message to answer.
    id: String,
    /// Text of the reply.
    text: Option<String>,
    /// A JSON data part.
    #[arg(long)]
    data: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Where a reply to `m` goes: its conversation, else its sender.
fn reply_to(m: &Message) -> String {
    match &m.conversation_id {
        Some(c) => format!("conversation:{c}"),
        None => m.from.clone(),
    }
}

/// Reads the message (the hub shows it to its recipients), then sends the reply.
pub async fn run(a: ReplyArgs) -> Result<()> {
    let mut parts = Vec::new();
    if let Some(t) = a.text {
        parts.push(Part::text(t));
    }
    if let Some(d) = a.data {
        let data = serde_json::from_str(&d).context("--data must be JSON")?;
        parts.push(Part::Data { data });
    }
    if parts.is_empty() {
        bail!("nothing to reply: give the text as an argument, or --data '{{…}}'");
    }
    let c = client(&a.conn)?;
    let original = c.get_message(&a.id).await?.message;
    let m =
        SendMessage { to: reply_to(&original), parts, in_reply_to: Some(original.id.clone()), ..Default::default() };
    let r = c.send(&m).await?;
    if a.conn.json {
        return output::json(&r);
    }
    let to = if r.recipients.is_empty() { "(no recipients)".to_owned() } else { r.recipients.join(", ") };
    println!("replied {} to {} → {to}", r.id, original.id);
    Ok(())
}
