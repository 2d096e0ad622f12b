//! The PostgreSQL side of push delivery, with the SQLite store's semantics.
//!
//! What differs is that several nodes claim from one database: [`PushStore::claim_push`]
//! takes its rows with `FOR UPDATE OF d SKIP LOCKED`, so a delivery another node is claiming
//! right now is skipped, and one it has just claimed is re-checked against `due_at <= now`
//! and dropped (its `due_at` moved to the end of the claim). That is the same guarantee
//! [`DeliveryStore::lease`](crate::DeliveryStore::lease) gives pull consumers.

use std::collections::HashMap;

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;
use tokio_postgres::Row;

use super::audit::append_if;
use super::error::{Fail, internal, retrying};
use super::rows::{attempts_of, message_from_row};
use super::{OPEN, PostgresStore};
use crate::push::{AttemptRecord, PushClaim, PushJob, PushOutcome, PushSettings, PushStore};
use crate::sql::{MESSAGE_COLS, PUSH_SETTINGS_COLS, qualified};
use crate::{MessageRecord, Result, StoreError};

/// Reads `sql::PUSH_SETTINGS_COLS` starting at column `at`.
fn settings_from_row(r: &Row, at: usize) -> Result<PushSettings, Fail> {
    let schedule: Option<String> = r.try_get(at + 5)?;
    Ok(PushSettings {
        secret: r.try_get(at)?,
        previous: r.try_get(at + 1)?,
        previous_until: r.try_get(at + 2)?,
        health_error: r.try_get(at + 3)?,
        disabled: r.try_get(at + 4)?,
        // Same leniency as the SQLite store: the schedule was validated when written.
        retry_schedule_ms: schedule.and_then(|s| serde_json::from_str(&s).ok()),
        a2a: r.try_get(at + 6)?,
    })
}

fn to_i32(n: u32, what: &str) -> Result<i32, Fail> {
    i32::try_from(n).map_err(|_| internal(format!("{what} {n} does not fit the database column")))
}

/// One due push delivery as the claim's locking select found it.
struct Candidate {
    seq: i64,
    tenant: String,
    message_id: String,
    attempts: u32,
    agent_id: String,
    endpoint: String,
    settings: PushSettings,
}

#[async_trait]
impl PushStore for PostgresStore {
    async fn put_push_settings(
        &self,
        tenant: &str,
        agent_id: &str,
        s: PushSettings,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let schedule = match &s.retry_schedule_ms {
            Some(v) => Some(serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))?),
            None => None,
        };
        let (s, schedule, audit) = (&s, &schedule, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(
                    // Only for a registered agent: a write racing the agent's deletion must not
                    // leave its secret behind.
                    "INSERT INTO agent_push (tenant_id, agent_id, secret, previous, previous_until, health_error, \
                     disabled, retry_schedule, a2a) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
                     WHERE EXISTS (SELECT 1 FROM agents WHERE tenant_id = $1 AND id = $2) \
                     ON CONFLICT (tenant_id, agent_id) DO UPDATE SET secret = $3, previous = $4, \
                     previous_until = $5, health_error = $6, disabled = $7, retry_schedule = $8, a2a = $9",
                )
                .await?;
            let n = tx
                .execute(
                    &st,
                    &[
                        &tenant,
                        &agent_id,
                        &s.secret,
                        &s.previous,
                        &s.previous_until,
                        &s.health_error,
                        &s.disabled,
                        schedule,
                        &s.a2a,
                    ],
                )
                .await?;
            append_if(&tx, n > 0, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn push_settings(&self, tenant: &str, agent_ids: &[String]) -> Result<Vec<(String, PushSettings)>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT p.agent_id, {PUSH_SETTINGS_COLS} FROM agent_push p \
                     JOIN agents a ON a.tenant_id = p.tenant_id AND a.id = p.agent_id \
                     WHERE p.tenant_id = $1 AND p.agent_id = ANY($2)"
                ))
                .await?;
            let mut found = HashMap::new();
            for r in c.query(&st, &[&tenant, &agent_ids]).await? {
                found.insert(r.try_get::<_, String>(0)?, settings_from_row(&r, 1)?);
            }
            // In the caller's order, skipping agents without settings, as SQLite answers.
            Ok::<_, Fail>(agent_ids.iter().filter_map(|id| found.get(id).map(|s| (id.clone(), s.clone()))).collect())
        };
        run.await.map_err(Fail::into_store)
    }

    async fn claim_push(&self, claim: PushClaim) -> Result<Vec<PushJob>> {
        let node = if claim.node.is_empty() { self.node_id.as_str() } else { claim.node.as_str() };
        let claim = &claim;
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // Locks only `d`: agents and their settings are read, not claimed, and locking
            // them would make two nodes claiming one agent's deliveries wait on each other.
            let st = tx
                .prepare_cached(&format!(
                    "SELECT d.seq, d.tenant_id, d.message_id, d.attempts, a.id, a.endpoint, {PUSH_SETTINGS_COLS} \
                     FROM deliveries d \
                     JOIN agents a ON a.tenant_id = d.tenant_id AND d.recipient = 'agent:' || a.id \
                     JOIN agent_push p ON p.tenant_id = a.tenant_id AND p.agent_id = a.id \
                     WHERE d.push AND d.state IN {OPEN} AND d.due_at <= $1 \
                     AND a.endpoint IS NOT NULL AND NOT p.disabled \
                     ORDER BY d.due_at, d.seq LIMIT $2 \
                     FOR UPDATE OF d SKIP LOCKED"
                ))
                .await?;
            // Over-fetch so agents skipped for an open circuit do not starve the rest (as
            // SQLite does); the rows not taken are unlocked at commit, moments later.
            let fetch = i64::try_from(claim.limit * 4 + claim.agent_room.len() * 8).unwrap_or(i64::MAX);
            let rows = tx.query(&st, &[&claim.now, &fetch]).await?;
            let mut taken: HashMap<(&str, &str), usize> = HashMap::new();
            let candidates = rows
                .iter()
                .map(|r| {
                    Ok(Candidate {
                        seq: r.try_get(0)?,
                        tenant: r.try_get(1)?,
                        message_id: r.try_get(2)?,
                        attempts: attempts_of(r, 3)?,
                        agent_id: r.try_get(4)?,
                        endpoint: r.try_get(5)?,
                        settings: settings_from_row(r, 6)?,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()?;
            let mut chosen = Vec::new();
            for cand in &candidates {
                if chosen.len() >= claim.limit {
                    break;
                }
                let room = claim
                    .agent_room
                    .iter()
                    .find(|(t, a, _)| *t == cand.tenant && *a == cand.agent_id)
                    .map_or(claim.per_agent, |(_, _, r)| *r);
                let n = taken.entry((&cand.tenant, &cand.agent_id)).or_default();
                if *n >= room {
                    continue;
                }
                *n += 1;
                chosen.push(cand);
            }
            if chosen.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let tenants: Vec<&str> = chosen.iter().map(|c| c.tenant.as_str()).collect();
            let seqs: Vec<i64> = chosen.iter().map(|c| c.seq).collect();
            let ids: Vec<&str> = chosen.iter().map(|c| c.message_id.as_str()).collect();
            let hold = claim.now + claim.hold_ms;
            let st = tx
                .prepare_cached(
                    "UPDATE deliveries d SET state = 'leased', due_at = $3, lease_expires_at = $3, \
                     leased_by = $4, updated_at = $5 \
                     FROM unnest($1::text[], $2::int8[]) AS u(t, s) WHERE d.tenant_id = u.t AND d.seq = u.s",
                )
                .await?;
            tx.execute(&st, &[&tenants, &seqs, &hold, &node, &claim.now]).await?;
            let st = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM messages m JOIN unnest($1::text[], $2::text[]) AS u(t, id) \
                     ON m.tenant_id = u.t AND m.id = u.id",
                    qualified(MESSAGE_COLS, "m")
                ))
                .await?;
            let mut messages: HashMap<(String, String), MessageRecord> = HashMap::new();
            for r in tx.query(&st, &[&tenants, &ids]).await? {
                let m = message_from_row(&r, 0)?;
                messages.insert((m.tenant.clone(), m.id.clone()), m);
            }
            tx.commit().await?;
            chosen
                .into_iter()
                .map(|cand| {
                    let key = (cand.tenant.clone(), cand.message_id.clone());
                    let message = messages.get(&key).cloned().ok_or_else(|| {
                        internal(format!(
                            "delivery {} names message {} which does not exist",
                            cand.seq, cand.message_id
                        ))
                    })?;
                    Ok(PushJob {
                        message,
                        tenant: cand.tenant.clone(),
                        agent_id: cand.agent_id.clone(),
                        endpoint: cand.endpoint.clone(),
                        settings: cand.settings.clone(),
                        attempts: cand.attempts,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()
        })
        .await
    }

    async fn finish_push(&self, tenant: &str, message_id: &str, a: AttemptRecord, outcome: PushOutcome) -> Result<()> {
        let (a, outcome) = (&a, &outcome);
        retrying(move || async move {
            let attempt = to_i32(a.attempt, "attempt number")?;
            let status: Option<i32> = a.status_code.map(i32::from);
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(
                    "INSERT INTO push_attempts (tenant_id, message_id, recipient, attempt, at, duration_ms, \
                     status_code, error_kind, excerpt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .await?;
            tx.execute(
                &st,
                &[
                    &tenant,
                    &message_id,
                    &a.recipient,
                    &attempt,
                    &a.at,
                    &a.duration_ms,
                    &status,
                    &a.error_kind,
                    &a.excerpt,
                ],
            )
            .await?;
            let now = a.at + a.duration_ms;
            let (sql, due, error): (&str, Option<Millis>, Option<&str>) = match outcome {
                PushOutcome::Acked => (
                    "UPDATE deliveries SET state = 'acked', attempts = $4, due_at = $6, lease_expires_at = NULL, \
                     delivered_at = coalesce(delivered_at, $5), acked_at = $5, updated_at = $5, last_error = $7 \
                     WHERE tenant_id = $1 AND message_id = $2 AND recipient = $3 AND $8::text IS NOT NULL",
                    None,
                    None,
                ),
                // A failure only counts while this node still holds the claim: if it ran out and
                // another node took the delivery, that node's attempt decides (a success is
                // recorded whatever: the receiver has the message).
                PushOutcome::Retry { due_at, error } => (
                    "UPDATE deliveries SET state = 'pending', attempts = $4, due_at = $6, lease_expires_at = NULL, \
                     updated_at = $5, last_error = $7 WHERE tenant_id = $1 AND message_id = $2 AND recipient = $3 \
                     AND state = 'leased' AND leased_by = $8",
                    Some(*due_at),
                    Some(error.as_str()),
                ),
                PushOutcome::Dead { error } => (
                    "UPDATE deliveries SET state = 'dead', attempts = $4, due_at = $6, lease_expires_at = NULL, \
                     updated_at = $5, last_error = $7 WHERE tenant_id = $1 AND message_id = $2 AND recipient = $3 \
                     AND state = 'leased' AND leased_by = $8",
                    None,
                    Some(error.as_str()),
                ),
            };
            let st = tx.prepare_cached(sql).await?;
            let node = self.node_id();
            tx.execute(&st, &[&tenant, &message_id, &a.recipient, &attempt, &now, &due, &error, &node]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn release_push(&self, tenant: &str, message_id: &str, recipient: &str, due_at: Millis) -> Result<()> {
        retrying(move || async move {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(
                    "UPDATE deliveries SET state = 'pending', due_at = $4, lease_expires_at = NULL \
                     WHERE tenant_id = $1 AND message_id = $2 AND recipient = $3 AND state = 'leased'",
                )
                .await?;
            c.execute(&st, &[&tenant, &message_id, &recipient, &due_at]).await?;
            Ok(())
        })
        .await
    }

    async fn set_push_health(&self, tenant: &str, agent_id: &str, error: Option<String>, disabled: bool) -> Result<()> {
        let error = &error;
        retrying(move || async move {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(
                    "UPDATE agent_push SET health_error = $3, disabled = $4 WHERE tenant_id = $1 AND agent_id = $2",
                )
                .await?;
            c.execute(&st, &[&tenant, &agent_id, error, &disabled]).await?;
            Ok(())
        })
        .await
    }

    async fn attempts(&self, tenant: &str, message_id: &str) -> Result<Vec<AttemptRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(
                    "SELECT recipient, attempt, at, duration_ms, status_code, error_kind, excerpt FROM push_attempts \
                     WHERE tenant_id = $1 AND message_id = $2 ORDER BY id",
                )
                .await?;
            c.query(&st, &[&tenant, &message_id])
                .await?
                .iter()
                .map(|r| {
                    let status: Option<i32> = r.try_get(4)?;
                    Ok(AttemptRecord {
                        recipient: r.try_get(0)?,
                        attempt: attempts_of(r, 1)?,
                        at: r.try_get(2)?,
                        duration_ms: r.try_get(3)?,
                        status_code: status
                            .map(|s| u16::try_from(s).map_err(|_| internal(format!("status code {s} out of range"))))
                            .transpose()?,
                        error_kind: r.try_get(5)?,
                        excerpt: r.try_get(6)?,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn a2a_task(&self, tenant: &str, message_id: &str) -> Result<Option<String>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let row = c
                .query_opt(
                    "SELECT task_id FROM a2a_remote_tasks WHERE tenant_id = $1 AND message_id = $2",
                    &[&tenant, &message_id],
                )
                .await?;
            Ok(match row {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            })
        })
        .await
    }

    async fn set_a2a_task(&self, tenant: &str, message_id: &str, task_id: Option<String>) -> Result<()> {
        let task_id = &task_id;
        retrying(move || async move {
            let c = self.conn().await?;
            match task_id {
                Some(t) => {
                    c.execute(
                        "INSERT INTO a2a_remote_tasks (tenant_id, message_id, task_id) VALUES ($1, $2, $3) \
                         ON CONFLICT (tenant_id, message_id) DO UPDATE SET task_id = $3",
                        &[&tenant, &message_id, t],
                    )
                    .await?
                }
                None => {
                    c.execute(
                        "DELETE FROM a2a_remote_tasks WHERE tenant_id = $1 AND message_id = $2",
                        &[&tenant, &message_id],
                    )
                    .await?
                }
            };
            Ok(())
        })
        .await
    }

    async fn tenant_push_settings(&self, tenant: &str) -> Result<Option<String>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let row = c.query_opt("SELECT settings FROM tenant_push_settings WHERE tenant_id = $1", &[&tenant]).await?;
            Ok(match row {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            })
        })
        .await
    }

    async fn put_tenant_push_settings(
        &self,
        tenant: &str,
        settings: String,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let (settings, audit) = (&settings, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO tenant_push_settings (tenant_id, settings) VALUES ($1, $2) \
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings",
                &[&tenant, settings],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn signing_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        let candidate = &candidate;
        retrying(move || async move {
            let c = self.conn().await?;
            // Nodes starting together: the first insert wins and every node reads it back.
            c.execute(
                "INSERT INTO hub_keys (id, secret, created_at) VALUES ('ed25519', $1, $2) ON CONFLICT (id) DO NOTHING",
                &[candidate, &switchboard_core::time::now_ms()],
            )
            .await?;
            let row = c.query_one("SELECT secret FROM hub_keys WHERE id = 'ed25519'", &[]).await?;
            Ok(row.try_get(0)?)
        })
        .await
    }
}
