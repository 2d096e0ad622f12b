//! `switchboard message`: one message with its deliveries and push attempts.

use anyhow::Result;
use clap::Args;

use crate::conn::{Conn, client};
use crate::output;

/// The message to show.
#[derive(Args)]
pub struct MessageArgs {
    id: String,
    #[command(flatten)]
    conn: Conn,
}

/// Shows the message, then a table of its deliveries, then one of its push attempts if any.
pub async fn run(MessageArgs { id, conn }: MessageArgs) -> Result<()> {
    let s = client(&conn)?.get_message(&id).await?;
    if conn.json {
        return output::json(&s);
    }
    println!("{}  from {} to {}  at {}", s.message.id, s.message.from, s.message.to, s.message.created_at);
    println!("  {}", output::text_of(&s.message.parts));
    if let Some(r) = &s.routing {
        let method =
            serde_json::to_value(r.method).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let chosen = r.chosen.as_deref().unwrap_or("(triage)");
        println!("  routed by {method} to {chosen}: {}", r.reason);
        let scores: Vec<String> = r.scores.iter().map(|s| format!("{} {:.2}", s.capability, s.score)).collect();
        if !scores.is_empty() {
            println!("  candidates: {}", scores.join(", "));
        }
    }
    let rows = s
        .deliveries
        .iter()
        .map(|d| {
            vec![
                d.recipient.clone(),
                d.state.as_str().into(),
                d.attempts.to_string(),
                d.updated_at.clone(),
                d.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!("{}", output::table(&["RECIPIENT", "STATE", "ATTEMPTS", "UPDATED", "ERROR"], rows));
    if !s.push_attempts.is_empty() {
        println!();
        let rows = s
            .push_attempts
            .iter()
            .map(|a| {
                vec![
                    a.attempt.to_string(),
                    a.at.clone(),
                    format!("{} ms", a.duration_ms),
                    a.status_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                    a.error_kind.clone().unwrap_or_default(),
                    a.response_excerpt.clone().unwrap_or_default().chars().take(60).collect(),
                ]
            })
            .collect();
        print!("{}", output::table(&["PUSH", "AT", "TOOK", "STATUS", "KIND", "RESPONSE"], rows));
    }
    Ok(())
}
