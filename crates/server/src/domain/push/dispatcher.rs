//! The dispatcher: one task per node claims due push deliveries within each endpoint's room
//! (its concurrency limit; 0 while its circuit is open, 1 for the half-open probe) and runs
//! each attempt in a task of its own.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::time::{Millis, now_ms};
use switchboard_core::{AgentId, Recipient};
use switchboard_store::push::{PushClaim, PushJob};
use tokio::sync::watch;

use super::Pusher;
use super::circuit::Policy;

/// The dispatcher: claims due push deliveries and starts their attempts. Runs until shutdown.
pub async fn dispatcher(pusher: Arc<Pusher>, mut shutdown: watch::Receiver<bool>) {
    let tick = Duration::from_millis(pusher.config.reaper_interval_ms.max(100));
    let mut attempts = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = pusher.poke.notified() => {}
            _ = tokio::time::sleep(tick) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        }
        while attempts.try_join_next().is_some() {}
        loop {
            let room = pusher.slots.available_permits();
            if room == 0 {
                break;
            }
            let jobs = match claim(&pusher, room.min(256)).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim push deliveries");
                    break;
                }
            };
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                let Ok(permit) = pusher.slots.clone().try_acquire_owned() else {
                    // Claimed but no slot: give it back for the next round.
                    if let Some(c) = pusher
                        .circuits
                        .lock()
                        .expect("circuits lock poisoned")
                        .get_mut(&(job.tenant.clone(), job.agent_id.clone()))
                    {
                        c.in_flight = c.in_flight.saturating_sub(1);
                    }
                    release(&pusher, &job, now_ms()).await;
                    continue;
                };
                let pusher = pusher.clone();
                attempts.spawn(async move {
                    super::attempt::attempt(&pusher, job).await;
                    drop(permit);
                    pusher.poke.poke();
                });
            }
        }
    }
    // Let attempts in flight finish (each is bounded by the request timeout), so their
    // outcome is recorded rather than left to claim expiry.
    while attempts.join_next().await.is_some() {}
}

async fn claim(p: &Pusher, limit: usize) -> switchboard_store::Result<Vec<PushJob>> {
    let now = now_ms();
    let policy = Policy::of(&p.config);
    let per_endpoint = policy.per_endpoint;
    let agent_room: Vec<(String, String, usize)> = {
        let circuits = p.circuits.lock().expect("circuits lock poisoned");
        circuits
            .iter()
            .filter_map(|((t, a), c)| {
                let room = c.room(now, &policy);
                (room < per_endpoint).then(|| (t.clone(), a.clone(), room))
            })
            .collect()
    };
    let jobs = p
        .store
        .claim_push(PushClaim {
            now,
            limit,
            hold_ms: p.config.push_timeout_ms as i64 + 2_000,
            node: String::new(),
            per_agent: per_endpoint,
            agent_room,
        })
        .await?;
    // A claim may hold several deliveries of one endpoint: keep within its concurrency (one
    // for a half-open probe) and hand the rest back.
    let mut kept = Vec::with_capacity(jobs.len());
    let mut back = Vec::new();
    {
        let mut circuits = p.circuits.lock().expect("circuits lock poisoned");
        for job in jobs {
            let c = circuits.entry((job.tenant.clone(), job.agent_id.clone())).or_default();
            if c.start(now, &policy) {
                kept.push(job);
            } else {
                back.push(job);
            }
        }
    }
    for job in back {
        release(p, &job, now).await;
    }
    Ok(kept)
}

pub(super) async fn release(p: &Pusher, job: &PushJob, due_at: Millis) {
    let recipient = Recipient::agent_text(&AgentId::from(job.agent_id.as_str()));
    if let Err(e) = p.store.release_push(&job.tenant, &job.message.id, &recipient, due_at).await {
        tracing::warn!(error = %e, "could not release a push claim; it expires by itself");
    }
}
