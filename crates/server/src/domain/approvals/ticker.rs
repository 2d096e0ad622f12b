//! The approvals' clock: once a second, each node looks up the approvals that are due
//! (`due_at <= now`) and moves each one on: escalation steps whose time came add their
//! deciders and deliver the request to them, a passed deadline ends it `expired` with its
//! default outcome (`decided_by: "deadline"`), and messages still in its outbox are sent.
//!
//! Every node runs it against the shared store; the conditional update of the row makes
//! exactly one node's change stick (the others' updates find a newer version and drop theirs).
//! The time is the store's rows and the wall clock, nothing in memory, so a node started
//! after a deadline fires it on its first tick.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_core::TenantId;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::{Millis, now_ms};
use switchboard_store::approvals::ApprovalRecord;
use tokio::sync::watch;

use super::{Approvals, Loaded, Outgoing, RETRIES, addresses, request_parts, target};
use crate::domain::accept::{Composed, HUB_SENDER};
use crate::error::ApiError;

/// Most approvals one tick moves on.
const BATCH: usize = 200;

/// The audit entry of something the hub did on its own (the clock).
fn by_hub(a: &Loaded, action: AuditAction, now: Millis, detail: serde_json::Value) -> NewAuditEvent {
    NewAuditEvent {
        tenant: a.row.tenant.clone(),
        at: now,
        actor: HUB_SENDER.to_owned(),
        action,
        target: target(&a.row.id),
        detail,
    }
}

impl Approvals {
    /// Moves one due approval on at `now`; `false` if another writer changed it first.
    async fn advance(&self, mut a: Loaded, now: Millis) -> Result<bool, ApiError> {
        let mut audit = Vec::new();
        if a.row.state == "pending" {
            while let Some(at) = a.next_step()
                && at <= now
                && a.row.deadline > at
            {
                let step = a.request.escalation[a.row.escalated as usize].clone();
                let added: Vec<String> = step.add.iter().filter(|d| !a.deciders.contains(d)).cloned().collect();
                a.deciders.extend(added.iter().cloned());
                a.row.escalated += 1;
                if !added.is_empty() {
                    a.outbox.push(Outgoing {
                        id: switchboard_core::new_id().to_string(),
                        kind: "request".into(),
                        to: added.clone(),
                    });
                }
                audit.push(by_hub(
                    &a,
                    AuditAction::ApprovalEscalate,
                    now,
                    json!({ "step": a.row.escalated, "added": added }),
                ));
            }
            if a.row.deadline <= now {
                let default = a.request.default_outcome.clone();
                a.settle("expired", default.clone(), "deadline".into(), None, None);
                audit.push(by_hub(&a, AuditAction::ApprovalExpire, now, json!({ "outcome": default })));
            }
        }
        let changed = !audit.is_empty();
        if changed {
            let row = a.row_at(now)?;
            if !self.store.update_approval(row.clone(), audit).await? {
                return Ok(false);
            }
            tracing::info!(approval = %a.row.id, state = %row.state, escalated = row.escalated, "approval moved on by its clock");
            a.row = ApprovalRecord { version: row.version + 1, ..row };
        }
        self.flush(a).await?;
        Ok(true)
    }

    /// Sends what the approval's outbox holds, then takes it out of the outbox (a
    /// conditional update again: on a race it reads the row and takes out only what it
    /// sent). Answers the approval as it is now and the recipients of its request message.
    pub(super) async fn flush(&self, mut a: Loaded) -> Result<(Loaded, Vec<String>), ApiError> {
        let mut request_recipients = Vec::new();
        if a.outbox.is_empty() {
            return Ok((a, request_recipients));
        }
        let tenant = TenantId::from(a.row.tenant.as_str());
        let mut sent = Vec::new();
        for o in &a.outbox {
            let (sender, composed) = self.composed(&a, o);
            match self.acceptor.compose(&tenant, sender, composed).await {
                Ok(recipients) => {
                    if o.id == a.row.message_id {
                        request_recipients = recipients;
                    }
                    sent.push(o.id.clone());
                }
                // Left in the outbox: the ticker tries again.
                Err(e) => {
                    tracing::warn!(approval = %a.row.id, message = %o.id, error = %e, "could not send an approval's message")
                }
            }
        }
        for _ in 0..RETRIES {
            a.outbox.retain(|o| !sent.contains(&o.id));
            let now = now_ms();
            let row = a.row_at(now)?;
            if self.store.update_approval(row.clone(), Vec::new()).await? {
                a.row = ApprovalRecord { version: row.version + 1, ..row };
                return Ok((a, request_recipients));
            }
            let Some(fresh) = self.store.get_approval(&a.row.tenant, &a.row.id).await? else {
                return Ok((a, request_recipients));
            };
            a = Loaded::read(fresh)?;
        }
        Ok((a, request_recipients))
    }

    /// The message an outbox entry stands for, and who sends it.
    fn composed(&self, a: &Loaded, o: &Outgoing) -> (String, Composed) {
        let key = format!("approval:{}:{}", a.row.id, o.id);
        if o.kind == "outcome" {
            let outcome = a.outcome.as_ref().map(|x| json!(x)).unwrap_or(json!(null));
            let text = match &a.outcome {
                Some(x) => format!("{}: {} (decided by {})", a.request.question, x.outcome, x.decided_by),
                None => a.request.question.clone(),
            };
            let composed = Composed {
                id: o.id.clone(),
                key,
                to: addresses(&o.to),
                parts: vec![
                    switchboard_core::api::Part::Data { data: outcome },
                    switchboard_core::api::Part::text(text),
                ],
                metadata: json!({ "kind": "approval_outcome", "approval_id": a.row.id }),
                in_reply_to: Some(a.row.message_id.clone()),
            };
            return (HUB_SENDER.to_owned(), composed);
        }
        let composed = Composed {
            id: o.id.clone(),
            key,
            to: addresses(&o.to),
            parts: request_parts(a),
            metadata: json!({ "kind": "approval_request", "approval_id": a.row.id }),
            in_reply_to: None,
        };
        (a.row.requester.clone(), composed)
    }

    /// One tick: every due approval moved on. Answers how many were.
    pub async fn tick(&self, now: Millis) -> Result<usize, ApiError> {
        let due = self.store.due_approvals(now, BATCH).await?;
        let mut moved = 0;
        for row in due {
            let id = row.id.clone();
            match Loaded::read(row) {
                Ok(a) => match self.advance(a, now).await {
                    Ok(true) => moved += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(approval = %id, error = %e, "could not move an approval on"),
                },
                Err(e) => tracing::warn!(approval = %id, error = %e, "an approval does not read back"),
            }
        }
        Ok(moved)
    }
}

/// Runs [`Approvals::tick`] at once and then every `interval` until shutdown.
pub async fn ticker(approvals: Arc<Approvals>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = approvals.tick(now_ms()).await {
            tracing::warn!(error = %e, "could not look for due approvals");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
}
