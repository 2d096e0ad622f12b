//! The PostgreSQL side of [`AgentStore`]: cards, capabilities and API keys.

use async_trait::async_trait;
use switchboard_core::api::Capability;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::error::{Fail, retrying};
use super::rows::agent_from_row;
use super::{OPEN, PostgresStore};
use crate::sql::{AGENT_COLS, KEY_COLS, RECIPIENT_DELETED, qualified};
use crate::{AgentFilter, AgentKeyRecord, AgentRecord, AgentStore, Conflict, Result, StoreError};

fn agent_conflict(e: tokio_postgres::Error, name: &str) -> Fail {
    match e.as_db_error() {
        Some(db) if db.constraint() == Some("agents_name") => {
            Fail::Store(StoreError::Conflict(Conflict::AgentNameTaken { name: name.to_owned() }))
        }
        _ => Fail::Db(e),
    }
}

async fn insert_capabilities(c: &deadpool_postgres::Transaction<'_>, a: &AgentRecord) -> Result<(), Fail> {
    if a.capabilities.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = a.capabilities.iter().map(|c| c.name.as_str()).collect();
    let st = c
        .prepare_cached(
            "INSERT INTO agent_capabilities (tenant_id, name, agent_id) \
             SELECT $1, n, $2 FROM unnest($3::text[]) AS n ON CONFLICT DO NOTHING",
        )
        .await?;
    c.execute(&st, &[&a.tenant, &a.id, &names]).await?;
    Ok(())
}

fn capabilities_json(caps: &[Capability]) -> Result<String, Fail> {
    serde_json::to_string(caps).map_err(|e| Fail::Store(StoreError::Internal(e.to_string())))
}

#[async_trait]
impl AgentStore for PostgresStore {
    async fn create_agent(&self, a: AgentRecord, key_hash: String, audit: Option<NewAuditEvent>) -> Result<()> {
        let (a, key_hash, audit) = (&a, &key_hash, audit.as_ref());
        retrying(move || async move {
            let caps = capabilities_json(&a.capabilities)?;
            let metadata = a.metadata.as_ref().map(|m| m.to_string());
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(&format!(
                    "INSERT INTO agents ({AGENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .await?;
            tx.execute(
                &st,
                &[
                    &a.tenant,
                    &a.id,
                    &a.name,
                    &a.description,
                    &a.version,
                    &a.endpoint,
                    &caps,
                    &metadata,
                    &a.created_at,
                    &a.updated_at,
                    &a.last_seen_at,
                ],
            )
            .await
            .map_err(|e| agent_conflict(e, &a.name))?;
            insert_capabilities(&tx, a).await?;
            tx.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at, key_id) VALUES ($1, $2, $3, $4, $5)",
                &[
                    key_hash,
                    &a.tenant,
                    &switchboard_core::Recipient::agent_text(&a.id.as_str().into()),
                    &a.created_at,
                    &switchboard_core::new_key_id(),
                ],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn get_agent(&self, tenant: &str, id: &str) -> Result<Option<AgentRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st =
                c.prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE tenant_id = $1 AND id = $2")).await?;
            match c.query_opt(&st, &[&tenant, &id]).await? {
                Some(r) => Ok::<_, Fail>(Some(agent_from_row(&r)?)),
                None => Ok(None),
            }
        };
        run.await.map_err(Fail::into_store)
    }

    async fn list_agents(&self, tenant: &str, f: AgentFilter) -> Result<Vec<AgentRecord>> {
        let run = async {
            let c = self.conn().await?;
            let after = f.after.unwrap_or_default();
            let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
            let rows = match &f.capability {
                Some(cap) => {
                    let cols = qualified(AGENT_COLS, "a");
                    let st = c
                        .prepare_cached(&format!(
                            "SELECT {cols} FROM agents a JOIN agent_capabilities k \
                             ON k.tenant_id = a.tenant_id AND k.agent_id = a.id \
                             WHERE a.tenant_id = $1 AND a.id > $2 AND k.name = $4 ORDER BY a.id LIMIT $3"
                        ))
                        .await?;
                    c.query(&st, &[&tenant, &after, &limit, cap]).await?
                }
                None => {
                    let st = c
                        .prepare_cached(&format!(
                            "SELECT {AGENT_COLS} FROM agents WHERE tenant_id = $1 AND id > $2 \
                             ORDER BY id LIMIT $3"
                        ))
                        .await?;
                    c.query(&st, &[&tenant, &after, &limit]).await?
                }
            };
            rows.iter().map(agent_from_row).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn update_agent(&self, a: AgentRecord, audit: Option<NewAuditEvent>) -> Result<Option<AgentRecord>> {
        let (a, audit) = (&a, audit.as_ref());
        retrying(move || async move {
            let caps = capabilities_json(&a.capabilities)?;
            let metadata = a.metadata.as_ref().map(|m| m.to_string());
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(&format!(
                    "UPDATE agents SET name = $3, description = $4, version = $5, endpoint = $6, \
                     capabilities = $7, metadata = $8, updated_at = $9 \
                     WHERE tenant_id = $1 AND id = $2 RETURNING {AGENT_COLS}"
                ))
                .await?;
            let row = tx
                .query_opt(
                    &st,
                    &[
                        &a.tenant,
                        &a.id,
                        &a.name,
                        &a.description,
                        &a.version,
                        &a.endpoint,
                        &caps,
                        &metadata,
                        &a.updated_at,
                    ],
                )
                .await
                .map_err(|e| agent_conflict(e, &a.name))?;
            let Some(row) = row else {
                return Ok(None);
            };
            tx.execute("DELETE FROM agent_capabilities WHERE tenant_id = $1 AND agent_id = $2", &[&a.tenant, &a.id])
                .await?;
            insert_capabilities(&tx, a).await?;
            let updated = agent_from_row(&row)?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(Some(updated))
        })
        .await
    }

    async fn delete_agent(&self, tenant: &str, id: &str, now: Millis, audit: Option<NewAuditEvent>) -> Result<bool> {
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx.execute("DELETE FROM agents WHERE tenant_id = $1 AND id = $2", &[&tenant, &id]).await?;
            if n == 0 {
                return Ok(false);
            }
            let principal = switchboard_core::Recipient::agent_text(&id.into());
            tx.execute("DELETE FROM agent_capabilities WHERE tenant_id = $1 AND agent_id = $2", &[&tenant, &id])
                .await?;
            tx.execute("DELETE FROM tokens WHERE tenant_id = $1 AND principal = $2", &[&tenant, &principal]).await?;
            tx.execute("DELETE FROM topic_subscriptions WHERE tenant_id = $1 AND agent_id = $2", &[&tenant, &id])
                .await?;
            tx.execute("DELETE FROM agent_push WHERE tenant_id = $1 AND agent_id = $2", &[&tenant, &id]).await?;
            tx.execute(
                "DELETE FROM conversation_participants WHERE tenant_id = $1 AND address = $2",
                &[&tenant, &principal],
            )
            .await?;
            tx.execute(
                &format!(
                    "UPDATE deliveries SET state = 'dead', due_at = NULL, updated_at = $3, \
                     last_error = '{RECIPIENT_DELETED}' \
                     WHERE tenant_id = $1 AND recipient = $2 AND state IN {OPEN}"
                ),
                &[&tenant, &principal, &now],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn touch_agents(&self, seen: Vec<(String, String, Millis)>) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let tenants: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        let ids: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
        let at: Vec<i64> = seen.iter().map(|s| s.2).collect();
        let (tenants, ids, at) = (&tenants, &ids, &at);
        retrying(move || async move {
            let c = self.conn().await?;
            // One statement for the whole flush; `max` per agent since the same agent may be
            // listed twice, and an UPDATE applies only one joined row per target.
            let st = c
                .prepare_cached(
                    "UPDATE agents a SET last_seen_at = greatest(coalesce(a.last_seen_at, 0), v.at) \
                     FROM (SELECT t, id, max(at) AS at \
                           FROM unnest($1::text[], $2::text[], $3::int8[]) AS u(t, id, at) \
                           GROUP BY t, id) v \
                     WHERE a.tenant_id = v.t AND a.id = v.id",
                )
                .await?;
            c.execute(&st, &[tenants, ids, at]).await?;
            Ok(())
        })
        .await
    }

    async fn create_agent_key(
        &self,
        tenant: &str,
        agent_id: &str,
        key_id: String,
        key_hash: String,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<AgentKeyRecord>> {
        let (key_id, key_hash, audit) = (&key_id, &key_hash, audit.as_ref());
        let principal = &agent_principal(agent_id);
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // FOR SHARE: a deletion of the agent waits for this key, and then removes it too.
            let exists = tx
                .query_opt("SELECT 1 FROM agents WHERE tenant_id = $1 AND id = $2 FOR SHARE", &[&tenant, &agent_id])
                .await?
                .is_some();
            if !exists {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at, key_id) VALUES ($1, $2, $3, $4, $5)",
                &[key_hash, &tenant, principal, &now, key_id],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(Some(AgentKeyRecord { id: key_id.clone(), created_at: now, expires_at: None, last_used_at: None }))
        })
        .await
    }

    async fn list_agent_keys(&self, tenant: &str, agent_id: &str, now: Millis) -> Result<Vec<AgentKeyRecord>> {
        let principal = agent_principal(agent_id);
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM tokens WHERE tenant_id = $1 AND principal = $2 \
                     AND (expires_at IS NULL OR expires_at > $3) ORDER BY created_at, key_id"
                ))
                .await?;
            let rows = c.query(&st, &[&tenant, &principal, &now]).await?;
            rows.iter().map(key_from_row).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn revoke_agent_key(
        &self,
        tenant: &str,
        agent_id: &str,
        key_id: &str,
        now: Millis,
        grace_ms: i64,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<AgentKeyRecord>> {
        let (principal, audit) = (&agent_principal(agent_id), audit.as_ref());
        let ends = &now.saturating_add(grace_ms.max(0));
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE tokens SET expires_at = least(coalesce(expires_at, $5), $5) \
                         WHERE tenant_id = $1 AND principal = $2 AND key_id = $3 \
                         AND (expires_at IS NULL OR expires_at > $4) RETURNING {KEY_COLS}"
                    ),
                    &[&tenant, principal, &key_id, &now, ends],
                )
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let key = key_from_row(&row)?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(Some(key))
        })
        .await
    }

    async fn touch_agent_keys(&self, used: Vec<(String, Millis)>) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        let hashes: Vec<&str> = used.iter().map(|u| u.0.as_str()).collect();
        let at: Vec<i64> = used.iter().map(|u| u.1).collect();
        let (hashes, at) = (&hashes, &at);
        retrying(move || async move {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(
                    "UPDATE tokens t SET last_used_at = greatest(coalesce(t.last_used_at, 0), v.at) \
                     FROM (SELECT h, max(at) AS at FROM unnest($1::text[], $2::int8[]) AS u(h, at) GROUP BY h) v \
                     WHERE t.hash = v.h",
                )
                .await?;
            c.execute(&st, &[hashes, at]).await?;
            Ok(())
        })
        .await
    }
}

fn key_from_row(r: &tokio_postgres::Row) -> Result<AgentKeyRecord, Fail> {
    Ok(AgentKeyRecord {
        id: r.try_get(0)?,
        created_at: r.try_get(1)?,
        expires_at: r.try_get(2)?,
        last_used_at: r.try_get(3)?,
    })
}

fn agent_principal(id: &str) -> String {
    switchboard_core::Recipient::agent_text(&id.into())
}
