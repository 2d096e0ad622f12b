//! The SQLite side of push delivery.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::rows::message_from_row;
use super::{OPEN, SqliteStore, internal};
use crate::Result;
use crate::push::{AttemptRecord, PushClaim, PushJob, PushOutcome, PushSettings, PushStore};
use crate::sql::{MESSAGE_COLS, PUSH_SETTINGS_COLS};

fn settings_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<PushSettings> {
    let schedule: Option<String> = r.get(at + 5)?;
    let disabled: i64 = r.get(at + 4)?;
    Ok(PushSettings {
        secret: r.get(at)?,
        previous: r.get(at + 1)?,
        previous_until: r.get(at + 2)?,
        health_error: r.get(at + 3)?,
        disabled: disabled != 0,
        retry_schedule_ms: schedule.and_then(|s| serde_json::from_str(&s).ok()),
        a2a: r.get(at + 6)?,
    })
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn put_push_settings(
        &self,
        tenant: &str,
        agent_id: &str,
        s: PushSettings,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let (tenant, agent_id) = (tenant.to_owned(), agent_id.to_owned());
        self.write(move |c, _| {
            let schedule = s.retry_schedule_ms.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default());
            // Only for a registered agent: a write racing the agent's deletion must not leave
            // its secret behind.
            let n = c.execute(
                "INSERT INTO agent_push (tenant_id, agent_id, secret, previous, previous_until, health_error, disabled, retry_schedule, a2a) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM agents WHERE tenant_id = ?1 AND id = ?2) \
                 ON CONFLICT (tenant_id, agent_id) DO UPDATE SET secret = ?3, previous = ?4, previous_until = ?5, \
                 health_error = ?6, disabled = ?7, retry_schedule = ?8, a2a = ?9",
                params![tenant, agent_id, s.secret, s.previous, s.previous_until, s.health_error, s.disabled, schedule, s.a2a],
            )
            .map_err(internal)?;
            append_if(c, n > 0, audit.as_ref())
        })
        .await
    }

    async fn push_settings(&self, tenant: &str, agent_ids: &[String]) -> Result<Vec<(String, PushSettings)>> {
        let tenant = tenant.to_owned();
        let ids = agent_ids.to_vec();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT p.agent_id, {PUSH_SETTINGS_COLS} FROM agent_push p \
                     JOIN agents a ON a.tenant_id = p.tenant_id AND a.id = p.agent_id \
                     WHERE p.tenant_id = ?1 AND p.agent_id = ?2"
                ))
                .map_err(internal)?;
            let mut out = Vec::new();
            for id in ids {
                let row = st
                    .query_row(params![tenant, id], |r| Ok((r.get::<_, String>(0)?, settings_from_row(r, 1)?)))
                    .optional()
                    .map_err(internal)?;
                out.extend(row);
            }
            Ok(out)
        })
        .await
    }

    async fn claim_push(&self, claim: PushClaim) -> Result<Vec<PushJob>> {
        self.write(move |c, _| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT d.seq, d.tenant_id, d.message_id, d.attempts, a.id, a.endpoint, {PUSH_SETTINGS_COLS} \
                     FROM deliveries d \
                     JOIN agents a ON a.tenant_id = d.tenant_id AND d.recipient = 'agent:' || a.id \
                     JOIN agent_push p ON p.tenant_id = a.tenant_id AND p.agent_id = a.id \
                     WHERE d.push = 1 AND {OPEN} AND d.due_at <= ?1 \
                     AND a.endpoint IS NOT NULL AND p.disabled = 0 \
                     ORDER BY d.due_at LIMIT ?2 + 0"
                ))
                .map_err(internal)?;
            // Over-fetch so agents skipped for an open circuit do not starve the rest.
            let rows: Vec<(i64, String, String, u32, String, String, PushSettings)> = st
                .query_map(params![claim.now, (claim.limit * 4 + claim.agent_room.len() * 8) as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, settings_from_row(r, 6)?))
                })
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)?;
            let hold = claim.now + claim.hold_ms;
            let mut out = Vec::new();
            let mut taken: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
            for (seq, tenant, message_id, attempts, agent_id, endpoint, settings) in rows {
                if out.len() >= claim.limit {
                    break;
                }
                let room = claim
                    .agent_room
                    .iter()
                    .find(|(t, a, _)| *t == tenant && *a == agent_id)
                    .map_or(claim.per_agent, |(_, _, r)| *r);
                let n = taken.entry((tenant.clone(), agent_id.clone())).or_default();
                if *n >= room {
                    continue;
                }
                *n += 1;
                c.prepare_cached(
                    "UPDATE deliveries SET state = 'leased', due_at = ?2, lease_expires_at = ?2, updated_at = ?3 WHERE seq = ?1",
                )
                .and_then(|mut s| s.execute(params![seq, hold, claim.now]))
                .map_err(internal)?;
                let message = c
                    .prepare_cached(&format!("SELECT {MESSAGE_COLS} FROM messages WHERE tenant_id = ?1 AND id = ?2"))
                    .and_then(|mut s| s.query_row(params![tenant, message_id], message_from_row))
                    .map_err(internal)?;
                out.push(PushJob { message, tenant, agent_id, endpoint, settings, attempts });
            }
            Ok(out)
        })
        .await
    }

    async fn finish_push(&self, tenant: &str, message_id: &str, a: AttemptRecord, outcome: PushOutcome) -> Result<()> {
        let (tenant, message_id) = (tenant.to_owned(), message_id.to_owned());
        self.write(move |c, _| {
            c.prepare_cached(
                "INSERT INTO push_attempts (tenant_id, message_id, recipient, attempt, at, duration_ms, status_code, error_kind, excerpt) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant, message_id, a.recipient, a.attempt, a.at, a.duration_ms, a.status_code, a.error_kind, a.excerpt
                ])
            })
            .map_err(internal)?;
            let now = a.at + a.duration_ms;
            let (sql, due, error): (&str, Option<Millis>, Option<String>) = match outcome {
                PushOutcome::Acked => (
                    "UPDATE deliveries SET state = 'acked', attempts = ?4, due_at = NULL, lease_expires_at = NULL, \
                     delivered_at = coalesce(delivered_at, ?5), acked_at = ?5, updated_at = ?5, last_error = ?7 \
                     WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 AND (?6 IS NULL OR 1)",
                    None,
                    None,
                ),
                PushOutcome::Retry { due_at, error } => (
                    "UPDATE deliveries SET state = 'pending', attempts = ?4, due_at = ?6, lease_expires_at = NULL, \
                     updated_at = ?5, last_error = ?7 WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3",
                    Some(due_at),
                    Some(error),
                ),
                PushOutcome::Dead { error } => (
                    "UPDATE deliveries SET state = 'dead', attempts = ?4, due_at = NULL, lease_expires_at = NULL, \
                     updated_at = ?5, last_error = ?7 WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 \
                     AND (?6 IS NULL OR 1)",
                    None,
                    Some(error),
                ),
            };
            c.prepare_cached(sql)
                .and_then(|mut s| s.execute(params![tenant, message_id, a.recipient, a.attempt, now, due, error]))
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn release_push(&self, tenant: &str, message_id: &str, recipient: &str, due_at: Millis) -> Result<()> {
        let (tenant, message_id, recipient) = (tenant.to_owned(), message_id.to_owned(), recipient.to_owned());
        self.write(move |c, _| {
            c.execute(
                "UPDATE deliveries SET state = 'pending', due_at = ?4, lease_expires_at = NULL \
                 WHERE tenant_id = ?1 AND message_id = ?2 AND recipient = ?3 AND state = 'leased'",
                params![tenant, message_id, recipient, due_at],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn set_push_health(&self, tenant: &str, agent_id: &str, error: Option<String>, disabled: bool) -> Result<()> {
        let (tenant, agent_id) = (tenant.to_owned(), agent_id.to_owned());
        self.write(move |c, _| {
            c.execute(
                "UPDATE agent_push SET health_error = ?3, disabled = ?4 WHERE tenant_id = ?1 AND agent_id = ?2",
                params![tenant, agent_id, error, disabled],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn attempts(&self, tenant: &str, message_id: &str) -> Result<Vec<AttemptRecord>> {
        let (tenant, message_id) = (tenant.to_owned(), message_id.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT recipient, attempt, at, duration_ms, status_code, error_kind, excerpt FROM push_attempts \
                     WHERE tenant_id = ?1 AND message_id = ?2 ORDER BY id",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![tenant, message_id], |r| {
                    Ok(AttemptRecord {
                        recipient: r.get(0)?,
                        attempt: r.get(1)?,
                        at: r.get(2)?,
                        duration_ms: r.get(3)?,
                        status_code: r.get(4)?,
                        error_kind: r.get(5)?,
                        excerpt: r.get(6)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn a2a_task(&self, tenant: &str, message_id: &str) -> Result<Option<String>> {
        let (tenant, message_id) = (tenant.to_owned(), message_id.to_owned());
        self.read(move |c| {
            c.query_row(
                "SELECT task_id FROM a2a_remote_tasks WHERE tenant_id = ?1 AND message_id = ?2",
                [tenant, message_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn set_a2a_task(&self, tenant: &str, message_id: &str, task_id: Option<String>) -> Result<()> {
        let (tenant, message_id) = (tenant.to_owned(), message_id.to_owned());
        self.write(move |c, _| {
            match task_id {
                Some(t) => c.execute(
                    "INSERT INTO a2a_remote_tasks (tenant_id, message_id, task_id) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (tenant_id, message_id) DO UPDATE SET task_id = ?3",
                    params![tenant, message_id, t],
                ),
                None => c.execute(
                    "DELETE FROM a2a_remote_tasks WHERE tenant_id = ?1 AND message_id = ?2",
                    params![tenant, message_id],
                ),
            }
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn tenant_push_settings(&self, tenant: &str) -> Result<Option<String>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            c.query_row("SELECT settings FROM tenant_push_settings WHERE tenant_id = ?1", [tenant], |r| r.get(0))
                .optional()
                .map_err(internal)
        })
        .await
    }

    async fn put_tenant_push_settings(
        &self,
        tenant: &str,
        settings: String,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let tenant = tenant.to_owned();
        self.write(move |c, _| {
            c.execute(
                "INSERT INTO tenant_push_settings (tenant_id, settings) VALUES (?1, ?2) \
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = ?2",
                params![tenant, settings],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn signing_key(&self, candidate: Vec<u8>) -> Result<Vec<u8>> {
        self.write(move |c, _| {
            c.execute(
                "INSERT OR IGNORE INTO hub_keys (id, secret, created_at) VALUES ('ed25519', ?1, ?2)",
                params![candidate, switchboard_core::time::now_ms()],
            )
            .map_err(internal)?;
            c.query_row("SELECT secret FROM hub_keys WHERE id = 'ed25519'", [], |r| r.get(0)).map_err(internal)
        })
        .await
    }
}
