//! `switchboard deliveries`: list deliveries by state and recipient (admin token).

use anyhow::{Context, Result};
use clap::Args;
use switchboard_client::DeliveryQuery;
use switchboard_core::api::DeliveryState;

use crate::conn::{Conn, client};
use crate::output;

/// Which deliveries to list.
#[derive(Args)]
pub struct DeliveriesArgs {
    /// pending, leased, delivered, acked, dead or expired.
    #[arg(long)]
    state: Option<String>,
    /// agent:<id>
    #[arg(long)]
    recipient: Option<String>,
    /// RFC 3339 time: only messages accepted since.
    #[arg(long)]
    since: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    conn: Conn,
}

/// Lists the deliveries that match, as a table or `--json`.
pub async fn run(a: DeliveriesArgs) -> Result<()> {
    let q = DeliveryQuery {
        state: a.state.as_deref().map(parse_state).transpose()?,
        recipient: a.recipient,
        since: a.since,
        limit: Some(a.limit),
        cursor: None,
    };
    let list = client(&a.conn)?.deliveries(&q).await?;
    if a.conn.json {
        return output::json(&list);
    }
    print!("{}", output::table(&output::DELIVERY_HEADERS, output::delivery_rows(&list.deliveries)));
    Ok(())
}

fn parse_state(s: &str) -> Result<DeliveryState> {
    DeliveryState::parse(s)
        .with_context(|| format!("--state {s}: use pending, leased, delivered, acked, dead or expired"))
}
