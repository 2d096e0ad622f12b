//! `switchboard send`: send one message (text and/or a JSON data part), optionally waiting
//! until it is delivered, or for its reply (request/reply).

use anyhow::{Context, Result, bail};
use clap::Args;
use switchboard_core::api::{Message, Part, Priority, SendMessage};

use switchboard_client::e2e;

use crate::conn::{Conn, client};
use crate::{output, private_keys};

/// What to send, to whom, and how long to wait for it.
#[derive(Args)]
pub struct SendArgs {
    /// Recipient address, e.g. agent:<id> or capability:<name>.
    #[arg(long)]
    to: String,
    /// Text of the message.
    text: Option<String>,
    /// A JSON data part.
    #[arg(long)]
    data: Option<String>,
    #[arg(long)]
    conversation: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    #[arg(long)]
    in_reply_to: Option<String>,
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Seconds before an undelivered message expires.
    #[arg(long)]
    ttl: Option<u64>,
    /// Wait until the message is delivered (ms).
    #[arg(long, conflicts_with = "wait_reply")]
    wait_ms: Option<u64>,
    /// Wait for the first reply and print it (request/reply; agents and people only).
    #[arg(long)]
    wait_reply: bool,
    /// How long --wait-reply waits, milliseconds (at most 300000).
    #[arg(long, default_value_t = 30_000, requires = "wait_reply")]
    timeout_ms: u64,
    /// Delivery order in the recipient's queue.
    #[arg(long, value_parser = ["high", "normal", "low"])]
    priority: Option<String>,
    /// Anycast: refuse instead of queueing when no agent with the capability is active.
    #[arg(long)]
    require_active: bool,
    /// Seal the parts end to end for every current key of the recipients (and sign them):
    /// the hub stores and routes ciphertext only. Needs `switchboard keys init`.
    #[arg(long)]
    seal: bool,
    /// Sign the message with your Ed25519 key (receivers see it verified).
    #[arg(long)]
    sign: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Sends the message and prints what the hub accepted (and, with `--wait-ms`, how it went).
pub async fn run(a: SendArgs) -> Result<()> {
    let mut parts = Vec::new();
    if let Some(t) = a.text {
        parts.push(Part::text(t));
    }
    if let Some(d) = a.data {
        let data = serde_json::from_str(&d).context("--data must be JSON")?;
        parts.push(Part::Data { data });
    }
    if parts.is_empty() {
        bail!("nothing to send: give the text as an argument, or --data '{{…}}'");
    }
    let mut m = SendMessage {
        to: a.to,
        parts,
        conversation_id: a.conversation,
        correlation_id: a.correlation_id,
        in_reply_to: a.in_reply_to,
        idempotency_key: a.idempotency_key,
        ttl_seconds: a.ttl,
        metadata: None,
        priority: a.priority.as_deref().map(|p| Priority::parse(Some(p))),
        require_active: a.require_active.then_some(true),
        kind: None,
        signature: None,
    };
    let c = client(&a.conn)?;
    if a.seal || a.sign {
        let me = c.whoami().await?.principal;
        let Some(keys) = private_keys::load(&me)? else {
            bail!("--seal and --sign need your keys: run `switchboard keys init` first (as {me})");
        };
        if a.seal {
            let recipients = c.recipient_keys(&m.to).await?;
            m.parts = vec![e2e::seal(&m.parts, &recipients.keys)?];
        }
        e2e::sign(&mut m, &keys)?;
    }
    if a.wait_reply {
        let r = c.request(&m, a.timeout_ms).await?;
        if a.conn.json {
            return output::json(&r);
        }
        println!("sent {} → {}", r.message.id, r.message.to);
        println!("reply {} from {}:", r.reply.id, r.reply.from);
        print_parts(&r.reply);
        return Ok(());
    }
    let r = match a.wait_ms {
        Some(ms) => c.send_and_wait(&m, ms).await?,
        None => c.send(&m).await?,
    };
    if a.conn.json {
        return output::json(&r);
    }
    let to = if r.recipients.is_empty() { "(no recipients)".to_owned() } else { r.recipients.join(", ") };
    println!("accepted {} → {to}{}", r.id, if r.duplicate { " (duplicate)" } else { "" });
    if let Some(ds) = r.deliveries {
        for d in ds {
            println!("  {}  {}", d.recipient, d.state.as_str());
        }
    }
    Ok(())
}

/// The parts of a message, one per line: text as it is, data and files as JSON.
fn print_parts(m: &Message) {
    for p in &m.parts {
        match p {
            Part::Text { text } => println!("  {text}"),
            other => println!("  {}", serde_json::to_string(other).unwrap_or_default()),
        }
    }
}
