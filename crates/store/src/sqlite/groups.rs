//! The SQLite side of [`GroupStore`] and [`AutoRouteStore`]: groups of people, auto-routing
//! settings, and re-routing a message out of triage.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::Result;
use crate::autoroute::{AutoRouteStore, Reroute, RerouteOutcome, RoutingSettingsRecord};
use crate::groups::{AddMemberOutcome, GroupRecord, GroupStore, PutGroupOutcome};

fn members(c: &Connection, tenant: &str, name: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT user_id FROM group_members WHERE tenant_id = ?1 AND group_name = ?2 ORDER BY user_id",
    )?;
    let rows = st.query_map(params![tenant, name], |r| r.get(0))?;
    rows.collect()
}

fn group(c: &Connection, tenant: &str, name: &str) -> rusqlite::Result<Option<GroupRecord>> {
    let head = c
        .prepare_cached("SELECT description, created_at, updated_at FROM groups WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant, name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((description, created_at, updated_at)) = head else { return Ok(None) };
    Ok(Some(GroupRecord {
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        description,
        members: members(c, tenant, name)?,
        created_at,
        updated_at,
    }))
}

fn user_exists(c: &Connection, tenant: &str, id: &str) -> rusqlite::Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![tenant, id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn group_exists(c: &Connection, tenant: &str, name: &str) -> rusqlite::Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM groups WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant, name], |_| Ok(()))
        .optional()?
        .is_some())
}

fn touch(c: &Connection, tenant: &str, name: &str, now: Millis) -> rusqlite::Result<()> {
    c.execute("UPDATE groups SET updated_at = ?3 WHERE tenant_id = ?1 AND name = ?2", params![tenant, name, now])?;
    Ok(())
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn put_group(&self, g: GroupRecord, audit: Option<NewAuditEvent>) -> Result<PutGroupOutcome> {
        self.write(move |c, _| {
            let mut unknown = Vec::new();
            for m in &g.members {
                if !user_exists(c, &g.tenant, m).map_err(internal)? {
                    unknown.push(m.clone());
                }
            }
            if !unknown.is_empty() {
                return Ok(PutGroupOutcome::UnknownUsers(unknown));
            }
            let created = !group_exists(c, &g.tenant, &g.name).map_err(internal)?;
            c.execute(
                "INSERT INTO groups (tenant_id, name, description, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET description = excluded.description, \
                 updated_at = excluded.updated_at",
                params![g.tenant, g.name, g.description, g.created_at, g.updated_at],
            )
            .map_err(internal)?;
            c.execute("DELETE FROM group_members WHERE tenant_id = ?1 AND group_name = ?2", params![g.tenant, g.name])
                .map_err(internal)?;
            let mut st = c
                .prepare_cached("INSERT INTO group_members (tenant_id, group_name, user_id) VALUES (?1, ?2, ?3)")
                .map_err(internal)?;
            for m in &g.members {
                st.execute(params![g.tenant, g.name, m]).map_err(internal)?;
            }
            append_if(c, true, audit.as_ref())?;
            Ok(PutGroupOutcome::Stored { created })
        })
        .await
    }

    async fn get_group(&self, tenant: &str, name: &str) -> Result<Option<GroupRecord>> {
        let (tenant, name) = (tenant.to_owned(), name.to_owned());
        self.read(move |c| group(c, &tenant, &name).map_err(internal)).await
    }

    async fn list_groups(&self, tenant: &str, after: Option<String>, limit: usize) -> Result<Vec<GroupRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let names: Vec<String> = c
                .prepare_cached(
                    "SELECT name FROM groups WHERE tenant_id = ?1 AND (?2 IS NULL OR name > ?2) ORDER BY name LIMIT ?3",
                )
                .map_err(internal)?
                .query_map(params![tenant, after, limit as i64], |r| r.get(0))
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)?;
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                out.extend(group(c, &tenant, &n).map_err(internal)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_group(&self, tenant: &str, name: &str, audit: Option<NewAuditEvent>) -> Result<bool> {
        let (tenant, name) = (tenant.to_owned(), name.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute("DELETE FROM groups WHERE tenant_id = ?1 AND name = ?2", params![tenant, name])
                .map_err(internal)?;
            c.execute("DELETE FROM group_members WHERE tenant_id = ?1 AND group_name = ?2", params![tenant, name])
                .map_err(internal)?;
            append_if(c, n > 0, audit.as_ref())?;
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
        let (tenant, name, user) = (tenant.to_owned(), name.to_owned(), user.to_owned());
        self.write(move |c, _| {
            if !group_exists(c, &tenant, &name).map_err(internal)? {
                return Ok(AddMemberOutcome::NoGroup);
            }
            if !user_exists(c, &tenant, &user).map_err(internal)? {
                return Ok(AddMemberOutcome::NoUser);
            }
            let n = c
                .execute(
                    "INSERT INTO group_members (tenant_id, group_name, user_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![tenant, name, user],
                )
                .map_err(internal)?;
            if n == 0 {
                return Ok(AddMemberOutcome::AlreadyMember);
            }
            touch(c, &tenant, &name, now).map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
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
        let (tenant, name, user) = (tenant.to_owned(), name.to_owned(), user.to_owned());
        self.write(move |c, _| {
            if !group_exists(c, &tenant, &name).map_err(internal)? {
                return Ok(None);
            }
            let n = c
                .execute(
                    "DELETE FROM group_members WHERE tenant_id = ?1 AND group_name = ?2 AND user_id = ?3",
                    params![tenant, name, user],
                )
                .map_err(internal)?;
            if n > 0 {
                touch(c, &tenant, &name, now).map_err(internal)?;
            }
            append_if(c, n > 0, audit.as_ref())?;
            Ok(Some(n > 0))
        })
        .await
    }
}

#[async_trait]
impl AutoRouteStore for SqliteStore {
    async fn routing_settings(&self, tenant: &str) -> Result<Option<RoutingSettingsRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT settings, api_key, updated_at FROM routing_settings WHERE tenant_id = ?1")
                .map_err(internal)?
                .query_row(params![tenant], |r| {
                    Ok(RoutingSettingsRecord { settings: r.get(0)?, api_key: r.get(1)?, updated_at: r.get(2)? })
                })
                .optional()
                .map_err(internal)
        })
        .await
    }

    async fn put_routing_settings(
        &self,
        tenant: &str,
        s: RoutingSettingsRecord,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let tenant = tenant.to_owned();
        self.write(move |c, _| {
            c.execute(
                "INSERT INTO routing_settings (tenant_id, settings, api_key, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, api_key = excluded.api_key, \
                 updated_at = excluded.updated_at",
                params![tenant, s.settings, s.api_key, s.updated_at],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn message_routing(&self, tenant: &str, message_id: &str) -> Result<Option<String>> {
        let (tenant, id) = (tenant.to_owned(), message_id.to_owned());
        self.read(move |c| {
            Ok(c.prepare_cached("SELECT routing FROM messages WHERE tenant_id = ?1 AND id = ?2")
                .map_err(internal)?
                .query_row(params![tenant, id], |r| r.get::<_, Option<String>>(0))
                .optional()
                .map_err(internal)?
                .flatten())
        })
        .await
    }

    async fn reroute(&self, r: Reroute, audit: Option<NewAuditEvent>) -> Result<RerouteOutcome> {
        self.write(move |c, keys| {
            let found: Option<(Option<String>, Option<Millis>)> = c
                .query_row(
                    "SELECT routing, expires_at FROM messages WHERE tenant_id = ?1 AND id = ?2",
                    params![r.tenant, r.message_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(internal)?;
            let Some((routing, expires_at)) = found else { return Ok(RerouteOutcome::NoMessage) };
            if routing.as_deref() != Some(r.expected.as_str()) {
                return Ok(RerouteOutcome::Changed);
            }
            c.execute(
                "UPDATE messages SET routing = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![r.tenant, r.message_id, r.routing],
            )
            .map_err(internal)?;
            let closed: Vec<String> = c
                .prepare(&format!(
                    "UPDATE deliveries SET state = 'acked', acked_at = ?3, updated_at = ?3, due_at = NULL, \
                     lease_expires_at = NULL WHERE tenant_id = ?1 AND message_id = ?2 AND {} RETURNING recipient",
                    super::OPEN
                ))
                .map_err(internal)?
                .query_map(params![r.tenant, r.message_id, r.now], |row| row.get(0))
                .map_err(internal)?
                .collect::<rusqlite::Result<_>>()
                .map_err(internal)?;
            let mut st = c
                .prepare_cached(
                    "INSERT INTO deliveries (tenant_id, message_id, recipient, state, attempts, due_at, created_at, \
                     updated_at, expires_at, push) VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4, ?5, ?6)",
                )
                .map_err(internal)?;
            for (recipient, push) in &r.add {
                st.execute(params![r.tenant, r.message_id, recipient, r.now, expires_at, push]).map_err(internal)?;
                keys.push((r.tenant.clone(), recipient.clone()));
            }
            append_if(c, true, audit.as_ref())?;
            Ok(RerouteOutcome::Rerouted { closed })
        })
        .await
    }
}
