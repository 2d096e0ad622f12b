//! The PostgreSQL side of [`GroupStore`] and [`AutoRouteStore`]: groups of people,
//! auto-routing settings, and re-routing a message out of triage.
//!
//! Adding members locks their user rows (`FOR SHARE`), so a concurrent user deletion waits
//! and then takes the user out of the group too; a change to a group locks its row first
//! (the upsert, or `FOR UPDATE`), so two changes to one group queue.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::error::{Fail, retrying};
use super::listener::{dedup, notify};
use super::{OPEN, PostgresStore};
use crate::autoroute::{AutoRouteStore, Reroute, RerouteOutcome, RoutingSettingsRecord};
use crate::groups::{AddMemberOutcome, GroupRecord, GroupStore, PutGroupOutcome};
use crate::{Result, WakeKey};

async fn group(c: &impl GenericClient, tenant: &str, name: &str) -> Result<Option<GroupRecord>, Fail> {
    let st = c
        .prepare_cached(
            "SELECT description, created_at, updated_at, \
                    ARRAY(SELECT user_id FROM group_members m \
                          WHERE m.tenant_id = g.tenant_id AND m.group_name = g.name ORDER BY user_id) \
             FROM groups g WHERE tenant_id = $1 AND name = $2",
        )
        .await?;
    let Some(r) = c.query_opt(&st, &[&tenant, &name]).await? else { return Ok(None) };
    Ok(Some(GroupRecord {
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        description: r.try_get(0)?,
        created_at: r.try_get(1)?,
        updated_at: r.try_get(2)?,
        members: r.try_get(3)?,
    }))
}

/// Whether the group exists, locking its row until the transaction ends.
async fn lock_group(tx: &tokio_postgres::Transaction<'_>, tenant: &str, name: &str) -> Result<bool, Fail> {
    Ok(tx
        .query_opt("SELECT 1 FROM groups WHERE tenant_id = $1 AND name = $2 FOR UPDATE", &[&tenant, &name])
        .await?
        .is_some())
}

#[async_trait]
impl GroupStore for PostgresStore {
    async fn put_group(&self, g: GroupRecord, audit: Option<NewAuditEvent>) -> Result<PutGroupOutcome> {
        let (g, audit) = (&g, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let found: Vec<String> = tx
                .query("SELECT id FROM users WHERE tenant_id = $1 AND id = ANY($2) FOR SHARE", &[&g.tenant, &g.members])
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let unknown: Vec<String> = g.members.iter().filter(|m| !found.contains(m)).cloned().collect();
            if !unknown.is_empty() {
                return Ok(PutGroupOutcome::UnknownUsers(unknown));
            }
            let created: bool = tx
                .query_one(
                    "INSERT INTO groups (tenant_id, name, description, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, name) DO UPDATE SET description = excluded.description, \
                     updated_at = excluded.updated_at RETURNING (xmax = 0)",
                    &[&g.tenant, &g.name, &g.description, &g.created_at, &g.updated_at],
                )
                .await?
                .try_get(0)?;
            tx.execute("DELETE FROM group_members WHERE tenant_id = $1 AND group_name = $2", &[&g.tenant, &g.name])
                .await?;
            tx.execute(
                "INSERT INTO group_members (tenant_id, group_name, user_id) SELECT $1, $2, u FROM unnest($3::text[]) u",
                &[&g.tenant, &g.name, &g.members],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(PutGroupOutcome::Stored { created })
        })
        .await
    }

    async fn get_group(&self, tenant: &str, name: &str) -> Result<Option<GroupRecord>> {
        let run = async {
            let c = self.conn().await?;
            group(&c, tenant, name).await
        };
        run.await.map_err(Fail::into_store)
    }

    async fn list_groups(&self, tenant: &str, after: Option<String>, limit: usize) -> Result<Vec<GroupRecord>> {
        let run = async {
            let c = self.conn().await?;
            let rows = c
                .query(
                    "SELECT name FROM groups WHERE tenant_id = $1 AND ($2::text IS NULL OR name > $2) \
                     ORDER BY name LIMIT $3",
                    &[&tenant, &after, &(limit as i64)],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let name: String = r.try_get(0)?;
                out.extend(group(&c, tenant, &name).await?);
            }
            Ok(out)
        };
        run.await.map_err(Fail::into_store)
    }

    async fn delete_group(&self, tenant: &str, name: &str, audit: Option<NewAuditEvent>) -> Result<bool> {
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx.execute("DELETE FROM groups WHERE tenant_id = $1 AND name = $2", &[&tenant, &name]).await?;
            tx.execute("DELETE FROM group_members WHERE tenant_id = $1 AND group_name = $2", &[&tenant, &name]).await?;
            append_if(&tx, n > 0, audit).await?;
            tx.commit().await?;
            Ok(n > 0)
        })
        .await
    }

    async fn add_group_member(
        &self,
        tenant: &str,
        name: &str,
        user: &str,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<AddMemberOutcome> {
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            if !lock_group(&tx, tenant, name).await? {
                return Ok(AddMemberOutcome::NoGroup);
            }
            let user_found = tx
                .query_opt("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 FOR SHARE", &[&tenant, &user])
                .await?
                .is_some();
            if !user_found {
                return Ok(AddMemberOutcome::NoUser);
            }
            let n = tx
                .execute(
                    "INSERT INTO group_members (tenant_id, group_name, user_id) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[&tenant, &name, &user],
                )
                .await?;
            if n == 0 {
                return Ok(AddMemberOutcome::AlreadyMember);
            }
            tx.execute("UPDATE groups SET updated_at = $3 WHERE tenant_id = $1 AND name = $2", &[&tenant, &name, &now])
                .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(AddMemberOutcome::Added)
        })
        .await
    }

    async fn remove_group_member(
        &self,
        tenant: &str,
        name: &str,
        user: &str,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<bool>> {
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            if !lock_group(&tx, tenant, name).await? {
                return Ok(None);
            }
            let n = tx
                .execute(
                    "DELETE FROM group_members WHERE tenant_id = $1 AND group_name = $2 AND user_id = $3",
                    &[&tenant, &name, &user],
                )
                .await?;
            if n > 0 {
                tx.execute(
                    "UPDATE groups SET updated_at = $3 WHERE tenant_id = $1 AND name = $2",
                    &[&tenant, &name, &now],
                )
                .await?;
            }
            append_if(&tx, n > 0, audit).await?;
            tx.commit().await?;
            Ok(Some(n > 0))
        })
        .await
    }
}

#[async_trait]
impl AutoRouteStore for PostgresStore {
    async fn routing_settings(&self, tenant: &str) -> Result<Option<RoutingSettingsRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached("SELECT settings, api_key, updated_at FROM routing_settings WHERE tenant_id = $1")
                .await?;
            match c.query_opt(&st, &[&tenant]).await? {
                Some(r) => Ok(Some(RoutingSettingsRecord {
                    settings: r.try_get(0)?,
                    api_key: r.try_get(1)?,
                    updated_at: r.try_get(2)?,
                })),
                None => Ok(None),
            }
        };
        run.await.map_err(Fail::into_store)
    }

    async fn put_routing_settings(
        &self,
        tenant: &str,
        s: RoutingSettingsRecord,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let (s, audit) = (&s, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO routing_settings (tenant_id, settings, api_key, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, api_key = excluded.api_key, \
                 updated_at = excluded.updated_at",
                &[&tenant, &s.settings, &s.api_key, &s.updated_at],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn message_routing(&self, tenant: &str, message_id: &str) -> Result<Option<String>> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached("SELECT routing FROM messages WHERE tenant_id = $1 AND id = $2").await?;
            match c.query_opt(&st, &[&tenant, &message_id]).await? {
                Some(r) => Ok(r.try_get::<_, Option<String>>(0)?),
                None => Ok(None),
            }
        };
        run.await.map_err(Fail::into_store)
    }

    async fn reroute(&self, r: Reroute, audit: Option<NewAuditEvent>) -> Result<RerouteOutcome> {
        let (r, audit) = (&r, audit.as_ref());
        let done = retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    "SELECT routing, expires_at FROM messages WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                    &[&r.tenant, &r.message_id],
                )
                .await?
            else {
                return Ok((RerouteOutcome::NoMessage, Vec::new()));
            };
            let (routing, expires_at): (Option<String>, Option<Millis>) = (row.try_get(0)?, row.try_get(1)?);
            if routing.as_deref() != Some(r.expected.as_str()) {
                return Ok((RerouteOutcome::Changed, Vec::new()));
            }
            tx.execute(
                "UPDATE messages SET routing = $3 WHERE tenant_id = $1 AND id = $2",
                &[&r.tenant, &r.message_id, &r.routing],
            )
            .await?;
            let closed: Vec<String> = tx
                .query(
                    &format!(
                        "UPDATE deliveries SET state = 'acked', acked_at = $3, updated_at = $3, due_at = NULL, \
                         lease_expires_at = NULL WHERE tenant_id = $1 AND message_id = $2 AND state IN {OPEN} \
                         RETURNING recipient"
                    ),
                    &[&r.tenant, &r.message_id, &r.now],
                )
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            let mut keys: Vec<WakeKey> = Vec::with_capacity(r.add.len());
            for (recipient, push) in &r.add {
                tx.execute(
                    "INSERT INTO deliveries (tenant_id, message_id, recipient, state, attempts, due_at, created_at, \
                     updated_at, expires_at, push) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4, $5, $6)",
                    &[&r.tenant, &r.message_id, recipient, &r.now, &expires_at, push],
                )
                .await?;
                keys.push((r.tenant.clone(), recipient.clone()));
            }
            dedup(&mut keys);
            notify(&tx, &keys).await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok((RerouteOutcome::Rerouted { closed }, keys))
        })
        .await?;
        let (outcome, keys) = done;
        self.wake.wake(keys.iter());
        Ok(outcome)
    }
}
