//! The `conversation` workload: a conversation of three agents, one sender and two
//! receivers. Every message sent to `conversation:<id>` is delivered to both receivers,
//! each on its own WebSocket, and acked; each send also takes the conversation's next
//! `seq` under the conversation's lock, which is what this measures beside `throughput`.
//!
//! Sending and counting are the fanout's ([`peers::drive`], [`Tally`], its consumers), so
//! the report reads the same: msg/s is messages sent and fully delivered per second.

use std::time::Instant;

use switchboard_client::Client;
use switchboard_core::api::{CreateConversation, RegisterAgent};

use crate::{BenchConfig, BenchError, Report, run_id};

/// Receivers besides the sender: three participants in all.
pub(crate) const RECEIVERS: usize = 2;

/// Registers three agents, has the sender start a conversation with the other two, opens the
/// receivers' streams, then sends `cfg.messages` to the conversation.
pub(crate) async fn run(
    admin: &Client,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report, BenchError> {
    let run = run_id();
    let started = Instant::now();
    let register = |name: String| async move {
        let reg = admin.register_agent(&RegisterAgent { name, ..Default::default() }).await?;
        Ok::<_, BenchError>((reg.agent.id, admin.with_token(reg.api_key)))
    };
    let (_, sender) = register(format!("bench-{run}-sender")).await?;
    let mut receivers = Vec::new();
    for i in 0..RECEIVERS {
        receivers.push(register(format!("bench-{run}-r{i}")).await?);
    }
    let participants = receivers.iter().map(|(id, _)| format!("agent:{id}")).collect();
    let conversation = sender
        .create_conversation(&CreateConversation { title: Some(format!("bench {run}")), participants })
        .await?
        .conversation
        .id;
    let mut streams = Vec::new();
    for (_, c) in &receivers {
        streams.push(c.stream().await?);
    }
    let setup_ms = started.elapsed().as_secs_f64() * 1000.0;

    let to = format!("conversation:{conversation}");
    crate::fanout::send_to_streams(cfg, sender, to, streams, RECEIVERS, setup_ms, progress).await
}
