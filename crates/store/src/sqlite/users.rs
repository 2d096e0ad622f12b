//! The SQLite side of [`UserStore`]: users, sessions and personal access tokens.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::{SqliteStore, internal};
use crate::sql::{USER_COLS, USER_TOKEN_COLS, user_principal};
use crate::users::{NewSession, NewUserToken, SessionRecord, UserRecord, UserStore, UserTokenRecord};
use crate::{Conflict, Result, StoreError};

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    let role: String = r.get(4)?;
    Ok(UserRecord {
        tenant: r.get(0)?,
        id: r.get(1)?,
        email: r.get(2)?,
        name: r.get(3)?,
        role: role
            .parse()
            .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into()))?,
        has_password: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserTokenRecord> {
    Ok(UserTokenRecord {
        id: r.get(0)?,
        name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        last_used_at: r.get(4)?,
    })
}

fn email_taken(e: rusqlite::Error, email: &str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(Conflict::EmailTaken { email: email.to_owned() })
        }
        e => internal(e),
    }
}

fn user_exists(c: &Connection, tenant: &str, id: &str) -> Result<bool> {
    Ok(c.query_row("SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2", params![tenant, id], |_| Ok(()))
        .optional()
        .map_err(internal)?
        .is_some())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(
        &self,
        u: UserRecord,
        password_hash: Option<String>,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        self.write(move |c, _| {
            c.execute(
                "INSERT INTO users (tenant_id, id, email, name, role, password_hash, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![u.tenant, u.id, u.email, u.name, u.role.as_str(), password_hash, u.created_at, u.updated_at],
            )
            .map_err(|e| email_taken(e, &u.email))?;
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn get_user(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {USER_COLS} FROM users u WHERE u.tenant_id = ?1 AND u.id = ?2"))
                .map_err(internal)?
                .query_row(params![tenant, id], user_from_row)
                .optional()
                .map_err(internal)
        })
        .await
    }

    async fn list_users(&self, tenant: &str, after: Option<String>, limit: usize) -> Result<Vec<UserRecord>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLS} FROM users u WHERE u.tenant_id = ?1 AND (?2 IS NULL OR u.id > ?2) ORDER BY u.id LIMIT ?3"
                ))
                .map_err(internal)?;
            let rows = st.query_map(params![tenant, after, limit as i64], user_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn update_user(
        &self,
        u: UserRecord,
        password_hash: Option<String>,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<UserRecord>> {
        self.write(move |c, _| {
            let n = c
                .execute(
                    "UPDATE users SET email = ?3, name = ?4, role = ?5, updated_at = ?6, \
                     password_hash = coalesce(?7, password_hash) WHERE tenant_id = ?1 AND id = ?2",
                    params![u.tenant, u.id, u.email, u.name, u.role.as_str(), u.updated_at, password_hash],
                )
                .map_err(|e| email_taken(e, &u.email))?;
            if n == 0 {
                return Ok(None);
            }
            if password_hash.is_some() {
                c.execute("DELETE FROM sessions WHERE tenant_id = ?1 AND user_id = ?2", params![u.tenant, u.id])
                    .map_err(internal)?;
            }
            append_if(c, true, audit.as_ref())?;
            c.query_row(
                &format!("SELECT {USER_COLS} FROM users u WHERE u.tenant_id = ?1 AND u.id = ?2"),
                params![u.tenant, u.id],
                user_from_row,
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn delete_user(&self, tenant: &str, id: &str, audit: Option<NewAuditEvent>) -> Result<bool> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute("DELETE FROM users WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])
                .map_err(internal)?;
            if n == 0 {
                return Ok(false);
            }
            c.execute("DELETE FROM sessions WHERE tenant_id = ?1 AND user_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute("DELETE FROM group_members WHERE tenant_id = ?1 AND user_id = ?2", params![tenant, id])
                .map_err(internal)?;
            c.execute(
                "DELETE FROM tokens WHERE tenant_id = ?1 AND principal = ?2",
                params![tenant, user_principal(&id)],
            )
            .map_err(internal)?;
            c.execute(
                "DELETE FROM conversation_participants WHERE tenant_id = ?1 AND address = ?2",
                params![tenant, user_principal(&id)],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(true)
        })
        .await
    }

    async fn user_for_login(&self, tenant: &str, email: &str) -> Result<Option<(UserRecord, Option<String>)>> {
        let (tenant, email) = (tenant.to_owned(), email.to_owned());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {USER_COLS}, u.password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id \
                 WHERE (t.id = ?1 OR t.name = ?1) AND u.email = ?2 LIMIT 1"
            ))
            .map_err(internal)?
            .query_row(params![tenant, email], |r| Ok((user_from_row(r)?, r.get(8)?)))
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn create_session(
        &self,
        tenant: &str,
        user_id: &str,
        s: NewSession,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool> {
        let (tenant, user_id) = (tenant.to_owned(), user_id.to_owned());
        self.write(move |c, _| {
            if !user_exists(c, &tenant, &user_id)? {
                return Ok(false);
            }
            c.execute(
                "DELETE FROM sessions WHERE tenant_id = ?1 AND user_id = ?2 AND (idle_until <= ?3 OR expires_at <= ?3)",
                params![tenant, user_id, s.created_at],
            )
            .map_err(internal)?;
            c.execute(
                "INSERT INTO sessions (hash, tenant_id, user_id, csrf_token, created_at, idle_until, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![s.hash, tenant, user_id, s.csrf_token, s.created_at, s.idle_until, s.expires_at],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(true)
        })
        .await
    }

    async fn session_for_hash(&self, hash: &str, now: Millis) -> Result<Option<SessionRecord>> {
        let hash = hash.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {USER_COLS}, s.csrf_token, s.created_at, s.idle_until, s.expires_at \
                 FROM sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id \
                 WHERE s.hash = ?1 AND s.idle_until > ?2 AND s.expires_at > ?2"
            ))
            .map_err(internal)?
            .query_row(params![hash, now], |r| {
                Ok(SessionRecord {
                    user: user_from_row(r)?,
                    csrf_token: r.get(8)?,
                    created_at: r.get(9)?,
                    idle_until: r.get(10)?,
                    expires_at: r.get(11)?,
                })
            })
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn touch_session(&self, hash: &str, idle_until: Millis) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |c, _| {
            c.execute(
                "UPDATE sessions SET idle_until = min(?2, expires_at) WHERE hash = ?1 AND idle_until < ?2",
                params![hash, idle_until],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, hash: &str, audit: Option<NewAuditEvent>) -> Result<bool> {
        let hash = hash.to_owned();
        self.write(move |c, _| {
            let n = c.execute("DELETE FROM sessions WHERE hash = ?1", [hash]).map_err(internal)?;
            append_if(c, n > 0, audit.as_ref())?;
            Ok(n > 0)
        })
        .await
    }

    async fn create_user_token(
        &self,
        tenant: &str,
        user_id: &str,
        t: NewUserToken,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<UserTokenRecord>> {
        let (tenant, user_id) = (tenant.to_owned(), user_id.to_owned());
        self.write(move |c, _| {
            if !user_exists(c, &tenant, &user_id)? {
                return Ok(None);
            }
            c.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at, key_id, name, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![t.hash, tenant, user_principal(&user_id), t.created_at, t.id, t.name, t.expires_at],
            )
            .map_err(internal)?;
            append_if(c, true, audit.as_ref())?;
            Ok(Some(UserTokenRecord {
                id: t.id,
                name: t.name,
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_used_at: None,
            }))
        })
        .await
    }

    async fn list_user_tokens(&self, tenant: &str, user_id: &str) -> Result<Vec<UserTokenRecord>> {
        let (tenant, principal) = (tenant.to_owned(), user_principal(user_id));
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {USER_TOKEN_COLS} FROM tokens WHERE tenant_id = ?1 AND principal = ?2 \
                     ORDER BY created_at, key_id"
                ))
                .map_err(internal)?;
            let rows = st.query_map(params![tenant, principal], token_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn revoke_user_token(
        &self,
        tenant: &str,
        user_id: &str,
        token_id: &str,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool> {
        let (tenant, principal, token_id) = (tenant.to_owned(), user_principal(user_id), token_id.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute(
                    "DELETE FROM tokens WHERE tenant_id = ?1 AND principal = ?2 AND key_id = ?3",
                    params![tenant, principal, token_id],
                )
                .map_err(internal)?;
            append_if(c, n > 0, audit.as_ref())?;
            Ok(n > 0)
        })
        .await
    }
}
