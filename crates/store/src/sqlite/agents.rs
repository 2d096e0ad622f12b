//! The SQLite side of [`AgentStore`]: cards, capabilities and API keys.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::rows::agent_from_row;
use super::{OPEN, SqliteStore, internal};
use crate::sql::{AGENT_COLS, KEY_COLS, RECIPIENT_DELETED, qualified};
use crate::{AgentFilter, AgentKeyRecord, AgentRecord, AgentStore, Conflict, Result, StoreError};

fn to_json(v: &serde_json::Value) -> String {
    v.to_string()
}

#[async_trait]
impl AgentStore for SqliteStore {
    async fn create_agent(&self, a: AgentRecord, key_hash: String, audit: Option<NewAuditEvent>) -> Result<()> {
        self.write(move |c, _| {
            let caps = serde_json::to_string(&a.capabilities).map_err(|e| StoreError::Internal(e.to_string()))?;
            let res = c.execute(
                &format!("INSERT INTO agents ({AGENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    a.tenant,
                    a.id,
                    a.name,
                    a.description,
                    a.version,
                    a.endpoint,
                    caps,
                    a.metadata.as_ref().map(to_json),
                    a.created_at,
                    a.updated_at,
                    a.last_seen_at
                ],
            );
            match res {
                Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(StoreError::Conflict(Conflict::AgentNameTaken { name: a.name }));
                }
                r => r.map_err(internal)?,
            };
            for cap in &a.capabilities {
                c.execute(
                    "INSERT INTO agent_capabilities (tenant_id, name, agent_id) VALUES (?1, ?2, ?3)",
                    params![a.tenant, cap.name, a.id],
                )
                .map_err(internal)?;
            }
            c.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at, key_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    key_hash,
                    a.tenant,
                    switchboard_core::Recipient::agent_text(&a.id.as_str().into()),
                    a.created_at,
                    switchboard_core::new_key_id()
                ],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn get_agent(&self, tenant: &str, id: &str) -> Result<Option<AgentRecord>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE tenant_id = ?1 AND id = ?2"))
                .map_err(internal)?;
            st.query_row(params![tenant, id], agent_from_row).optional().map_err(internal)
        })
        .await
    }

    async fn list_agents(&self, tenant: &str, f: AgentFilter) -> Result<Vec<AgentRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let after = f.after.unwrap_or_default();
            let limit = f.limit.max(1) as i64;
            let (sql, cap) = match f.capability {
                Some(cap) => (
                    format!(
                        "SELECT {} FROM agents a JOIN agent_capabilities k ON k.tenant_id = a.tenant_id AND k.agent_id = a.id \
                         WHERE a.tenant_id = ?1 AND a.id > ?2 AND k.name = ?4 ORDER BY a.id LIMIT ?3",
                        qualified(AGENT_COLS, "a")
                    ),
                    cap,
                ),
                None => (
                    format!("SELECT {AGENT_COLS} FROM agents WHERE tenant_id = ?1 AND id > ?2 AND ?4 = '' ORDER BY id LIMIT ?3"),
                    String::new(),
                ),
            };
            let mut st = c.prepare_cached(&sql).map_err(internal)?;
            let rows = st.query_map(params![tenant, after, limit, cap], agent_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn update_agent(&self, a: AgentRecord, audit: Option<NewAuditEvent>) -> Result<Option<AgentRecord>> {
        self.write(move |c, _| {
            let caps = serde_json::to_string(&a.capabilities).map_err(|e| StoreError::Internal(e.to_string()))?;
            let n = c
                .execute(
                    "UPDATE agents SET name = ?3, description = ?4, version = ?5, endpoint = ?6, capabilities = ?7, \
                     metadata = ?8, updated_at = ?9 WHERE tenant_id = ?1 AND id = ?2",
                    params![
                        a.tenant,
                        a.id,
                        a.name,
                        a.description,
                        a.version,
                        a.endpoint,
                        caps,
                        a.metadata.as_ref().map(to_json),
                        a.updated_at
                    ],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        StoreError::Conflict(Conflict::AgentNameTaken { name: a.name.clone() })
                    }
                    e => internal(e),
                })?;
            if n == 0 {
                return Ok(None);
            }
            c.execute("DELETE FROM agent_capabilities WHERE tenant_id = ?1 AND agent_id = ?2", params![a.tenant, a.id])
                .map_err(internal)?;
            for cap in &a.capabilities {
                c.execute(
                    "INSERT INTO agent_capabilities (tenant_id, name, agent_id) VALUES (?1, ?2, ?3)",
                    params![a.tenant, cap.name, a.id],
                )
                .map_err(internal)?;
            }
            let updated = c
                .query_row(
                    &format!("SELECT {AGENT_COLS} FROM agents WHERE tenant_id = ?1 AND id = ?2"),
                    params![a.tenant, a.id],
                    agent_from_row,
                )
                .optional()
                .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(updated)
        })
        .await
    }

    async fn delete_agent(&self, tenant: &str, id: &str, now: Millis, audit: Option<NewAuditEvent>) -> Result<bool> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute("DELETE FROM agents WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])
                .map_err(internal)?;
            if n == 0 {
                return Ok(false);
            }
            let principal = switchboard_core::Recipient::agent_text(&id.as_str().into());
            c.execute("DELETE FROM agent_capabilities WHERE tenant_id = ?1 AND agent_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute("DELETE FROM tokens WHERE tenant_id = ?1 AND principal = ?2", params![tenant, principal])
                .map_err(internal)?;
            c.execute("DELETE FROM topic_subscriptions WHERE tenant_id = ?1 AND agent_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute("DELETE FROM agent_push WHERE tenant_id = ?1 AND agent_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute(
                "DELETE FROM conversation_participants WHERE tenant_id = ?1 AND address = ?2",
                params![tenant, principal],
            )
            .map_err(internal)?;
            c.execute(
                &format!(
                    "UPDATE deliveries SET state = 'dead', due_at = NULL, updated_at = ?3, \
                     last_error = '{RECIPIENT_DELETED}' \
                     WHERE tenant_id = ?1 AND recipient = ?2 AND {OPEN}"
                ),
                params![tenant, principal, now],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(true)
        })
        .await
    }

    async fn touch_agents(&self, seen: Vec<(String, String, Millis)>) -> Result<()> {
        self.write(move |c, _| {
            let mut st = c
                .prepare_cached(
                    "UPDATE agents SET last_seen_at = max(coalesce(last_seen_at, 0), ?3) WHERE tenant_id = ?1 AND id = ?2",
                )
                .map_err(internal)?;
            for (t, id, at) in seen {
                st.execute(params![t, id, at]).map_err(internal)?;
            }
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
        let (tenant, agent_id) = (tenant.to_owned(), agent_id.to_owned());
        self.write(move |c, _| {
            let exists = c
                .query_row("SELECT 1 FROM agents WHERE tenant_id = ?1 AND id = ?2", params![tenant, agent_id], |_| {
                    Ok(())
                })
                .optional()
                .map_err(internal)?
                .is_some();
            if !exists {
                return Ok(None);
            }
            c.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at, key_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key_hash, tenant, agent_principal(&agent_id), now, key_id],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(Some(AgentKeyRecord { id: key_id, created_at: now, expires_at: None, last_used_at: None }))
        })
        .await
    }

    async fn list_agent_keys(&self, tenant: &str, agent_id: &str, now: Millis) -> Result<Vec<AgentKeyRecord>> {
        let (tenant, principal) = (tenant.to_owned(), agent_principal(agent_id));
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM tokens WHERE tenant_id = ?1 AND principal = ?2 \
                     AND (expires_at IS NULL OR expires_at > ?3) ORDER BY created_at, key_id"
                ))
                .map_err(internal)?;
            let rows = st.query_map(params![tenant, principal, now], key_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
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
        let (tenant, principal, key_id) = (tenant.to_owned(), agent_principal(agent_id), key_id.to_owned());
        self.write(move |c, _| {
            let ends = now.saturating_add(grace_ms.max(0));
            let n = c
                .execute(
                    "UPDATE tokens SET expires_at = min(coalesce(expires_at, ?5), ?5) \
                     WHERE tenant_id = ?1 AND principal = ?2 AND key_id = ?3 AND (expires_at IS NULL OR expires_at > ?4)",
                    params![tenant, principal, key_id, now, ends],
                )
                .map_err(internal)?;
            if n == 0 {
                return Ok(None);
            }
            let key = c
                .query_row(
                    &format!("SELECT {KEY_COLS} FROM tokens WHERE tenant_id = ?1 AND key_id = ?2"),
                    params![tenant, key_id],
                    key_from_row,
                )
                .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(Some(key))
        })
        .await
    }

    async fn touch_agent_keys(&self, used: Vec<(String, Millis)>) -> Result<()> {
        self.write(move |c, _| {
            let mut st = c
                .prepare_cached("UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE hash = ?1")
                .map_err(internal)?;
            for (hash, at) in used {
                st.execute(params![hash, at]).map_err(internal)?;
            }
            Ok(())
        })
        .await
    }
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentKeyRecord> {
    Ok(AgentKeyRecord { id: r.get(0)?, created_at: r.get(1)?, expires_at: r.get(2)?, last_used_at: r.get(3)? })
}

fn agent_principal(id: &str) -> String {
    switchboard_core::Recipient::agent_text(&id.into())
}
