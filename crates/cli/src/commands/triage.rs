//! `switchboard triage`: the messages `auto` could not place, waiting for a person, with the
//! ranked candidates the router considered; `triage route ID --to capability:<name>` decides
//! one (`POST /v1/messages/{id}/route`).
//!
//! The list is the caller's deliveries (a person: those addressed to them; the admin: every
//! person's) whose message waits in triage: routed to a triage group and not yet chosen.

use std::collections::HashSet;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use switchboard_client::{Client, DeliveryQuery};
use switchboard_core::api::{Message, RoutingDecision};

use crate::conn::{Conn, client};
use crate::output;

/// `switchboard triage` lists; its one subcommand routes.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TriageArgs {
    #[command(subcommand)]
    cmd: Option<TriageCmd>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
pub enum TriageCmd {
    /// Send a message waiting in triage to a capability (one agent with it gets it).
    Route {
        /// The message's id.
        id: String,
        /// Where it goes: `capability:<name>` (or the bare name).
        #[arg(long)]
        to: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// One message waiting in triage, as `--json` prints it.
#[derive(Serialize)]
struct Waiting {
    message: Message,
    routing: RoutingDecision,
}

/// Deliveries to read at most, in pages of 1000: a triage queue longer than this is a
/// queue for the web app, not a terminal.
const MAX_DELIVERIES: usize = 10_000;

pub async fn run(a: TriageArgs) -> Result<()> {
    match a.cmd {
        None => list(&a.conn).await,
        Some(TriageCmd::Route { id, to, conn }) => route(&conn, &id, &to).await,
    }
}

/// The capability named by `--to`: `capability:<name>` or a bare name.
fn capability_of(to: &str) -> Result<&str> {
    match to.split_once(':') {
        None => Ok(to),
        Some(("capability", name)) if !name.is_empty() && !name.ends_with("?all") => Ok(name),
        _ => bail!(
            "--to `{to}`: triage routes to a capability; use capability:<name> (see `switchboard agent list` for what agents offer)"
        ),
    }
}

async fn waiting(c: &Client) -> Result<Vec<Waiting>> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let mut q = DeliveryQuery { limit: Some(1000), ..Default::default() };
    let mut read = 0;
    loop {
        let page = c.deliveries(&q).await?;
        read += page.deliveries.len();
        for d in page.deliveries {
            if !d.recipient.starts_with("user:") || !seen.insert(d.message_id.clone()) {
                continue;
            }
            let s = c.get_message(&d.message_id).await?;
            if let Some(r) = s.routing.filter(|r| r.triage.is_some() && r.chosen.is_none()) {
                found.push(Waiting { message: s.message, routing: r });
            }
        }
        match page.next_cursor {
            Some(next) if read < MAX_DELIVERIES => q.cursor = Some(next),
            _ => break,
        }
    }
    Ok(found)
}

async fn list(conn: &Conn) -> Result<()> {
    let found = waiting(&client(conn)?).await?;
    if conn.json {
        return output::json(&serde_json::json!({ "messages": found }));
    }
    let rows = found
        .iter()
        .map(|w| {
            let candidates: Vec<String> =
                w.routing.scores.iter().map(|s| format!("{} {:.2}", s.capability, s.score)).collect();
            let text: String = output::text_of(&w.message.parts).chars().take(60).collect();
            vec![
                w.message.id.clone(),
                w.message.from.clone(),
                w.message.created_at.clone(),
                text,
                if candidates.is_empty() { "-".into() } else { candidates.join(", ") },
            ]
        })
        .collect();
    print!("{}", output::table(&["ID", "FROM", "CREATED", "TEXT", "CANDIDATES"], rows));
    Ok(())
}

async fn route(conn: &Conn, id: &str, to: &str) -> Result<()> {
    let capability = capability_of(to)?;
    let r = client(conn)?.route_message(id, capability).await?;
    if conn.json {
        return output::json(&r);
    }
    println!("routed {} to capability:{capability} → {}", r.id, r.recipients.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::capability_of;

    #[test]
    fn to_names_a_capability() {
        assert_eq!(capability_of("capability:billing").unwrap(), "billing");
        assert_eq!(capability_of("billing").unwrap(), "billing");
        for bad in ["agent:x", "capability:", "capability:x?all", "topic:a"] {
            assert!(capability_of(bad).is_err(), "{bad}");
        }
    }
}
