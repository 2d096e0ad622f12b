//! The PostgreSQL side of [`UserStore`]: users, sessions and personal access tokens.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;
use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::append_if;
use super::error::{Fail, internal, retrying};
use crate::sql::{USER_COLS, USER_TOKEN_COLS, user_principal};
use crate::users::{NewSession, NewUserToken, SessionRecord, UserRecord, UserStore, UserTokenRecord};
use crate::{Conflict, Result, StoreError};

fn user_from_row(r: &Row) -> Result<UserRecord, Fail> {
    let role: String = r.try_get(4)?;
    Ok(UserRecord {
        tenant: r.try_get(0)?,
        id: r.try_get(1)?,
        email: r.try_get(2)?,
        name: r.try_get(3)?,
        role: role.parse().map_err(internal)?,
        has_password: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

fn token_from_row(r: &Row) -> Result<UserTokenRecord, Fail> {
    Ok(UserTokenRecord {
        id: r.try_get(0)?,
        name: r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
        created_at: r.try_get(2)?,
        expires_at: r.try_get(3)?,
        last_used_at: r.try_get(4)?,
    })
}

fn email_taken(e: tokio_postgres::Error, email: &str) -> Fail {
    match e.as_db_error() {
        Some(db) if db.constraint() == Some("users_email") => {
            Fail::Store(StoreError::Conflict(Conflict::EmailTaken { email: email.to_owned() }))
        }
        _ => Fail::Db(e),
    }
}

/// Whether the user exists, locking its row against a concurrent delete (which then waits,
/// and removes what this transaction adds) until the transaction ends.
async fn lock_user(tx: &tokio_postgres::Transaction<'_>, tenant: &str, id: &str) -> Result<bool, Fail> {
    Ok(tx.query_opt("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 FOR SHARE", &[&tenant, &id]).await?.is_some())
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(
        &self,
        u: UserRecord,
        password_hash: Option<String>,
        audit: Option<NewAuditEvent>,
    ) -> Result<()> {
        let (u, password_hash, audit) = (&u, &password_hash, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO users (tenant_id, id, email, name, role, password_hash, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&u.tenant, &u.id, &u.email, &u.name, &u.role.as_str(), password_hash, &u.created_at, &u.updated_at],
            )
            .await
            .map_err(|e| email_taken(e, &u.email))?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn get_user(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!("SELECT {USER_COLS} FROM users u WHERE u.tenant_id = $1 AND u.id = $2"))
                .await?;
            c.query_opt(&st, &[&tenant, &id]).await?.as_ref().map(user_from_row).transpose()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn list_users(&self, tenant: &str, after: Option<String>, limit: usize) -> Result<Vec<UserRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLS} FROM users u WHERE u.tenant_id = $1 AND ($2::text IS NULL OR u.id > $2) \
                     ORDER BY u.id LIMIT $3"
                ))
                .await?;
            c.query(&st, &[&tenant, &after, &(limit as i64)])
                .await?
                .iter()
                .map(user_from_row)
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn update_user(
        &self,
        u: UserRecord,
        password_hash: Option<String>,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<UserRecord>> {
        let (u, password_hash, audit) = (&u, &password_hash, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE users u SET email = $3, name = $4, role = $5, updated_at = $6, \
                         password_hash = coalesce($7, password_hash) WHERE u.tenant_id = $1 AND u.id = $2 \
                         RETURNING {USER_COLS}"
                    ),
                    &[&u.tenant, &u.id, &u.email, &u.name, &u.role.as_str(), &u.updated_at, password_hash],
                )
                .await
                .map_err(|e| email_taken(e, &u.email))?;
            let Some(row) = row else {
                return Ok(None);
            };
            if password_hash.is_some() {
                tx.execute("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2", &[&u.tenant, &u.id]).await?;
            }
            let user = user_from_row(&row)?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(Some(user))
        })
        .await
    }

    async fn delete_user(&self, tenant: &str, id: &str, audit: Option<NewAuditEvent>) -> Result<bool> {
        let (principal, audit) = (&user_principal(id), audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx.execute("DELETE FROM users WHERE tenant_id = $1 AND id = $2", &[&tenant, &id]).await?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2", &[&tenant, &id]).await?;
            tx.execute("DELETE FROM tokens WHERE tenant_id = $1 AND principal = $2", &[&tenant, principal]).await?;
            tx.execute("DELETE FROM group_members WHERE tenant_id = $1 AND user_id = $2", &[&tenant, &id]).await?;
            tx.execute(
                "DELETE FROM conversation_participants WHERE tenant_id = $1 AND address = $2",
                &[&tenant, principal],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn user_for_login(&self, tenant: &str, email: &str) -> Result<Option<(UserRecord, Option<String>)>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLS}, u.password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id \
                     WHERE (t.id = $1 OR t.name = $1) AND u.email = $2 LIMIT 1"
                ))
                .await?;
            match c.query_opt(&st, &[&tenant, &email]).await? {
                Some(r) => Ok(Some((user_from_row(&r)?, r.try_get(8)?))),
                None => Ok(None),
            }
        };
        run.await.map_err(Fail::into_store)
    }

    async fn create_session(
        &self,
        tenant: &str,
        user_id: &str,
        s: NewSession,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool> {
        let (s, audit) = (&s, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            if !lock_user(&tx, tenant, user_id).await? {
                return Ok(false);
            }
            tx.execute(
                "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND (idle_until <= $3 OR expires_at <= $3)",
                &[&tenant, &user_id, &s.created_at],
            )
            .await?;
            tx.execute(
                "INSERT INTO sessions (hash, tenant_id, user_id, csrf_token, created_at, idle_until, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&s.hash, &tenant, &user_id, &s.csrf_token, &s.created_at, &s.idle_until, &s.expires_at],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn session_for_hash(&self, hash: &str, now: Millis) -> Result<Option<SessionRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLS}, s.csrf_token, s.created_at, s.idle_until, s.expires_at \
                     FROM sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id \
                     WHERE s.hash = $1 AND s.idle_until > $2 AND s.expires_at > $2"
                ))
                .await?;
            match c.query_opt(&st, &[&hash, &now]).await? {
                Some(r) => Ok(Some(SessionRecord {
                    user: user_from_row(&r)?,
                    csrf_token: r.try_get(8)?,
                    created_at: r.try_get(9)?,
                    idle_until: r.try_get(10)?,
                    expires_at: r.try_get(11)?,
                })),
                None => Ok(None),
            }
        };
        run.await.map_err(Fail::into_store)
    }

    async fn touch_session(&self, hash: &str, idle_until: Millis) -> Result<()> {
        let run = async {
            let c = self.conn().await?;
            c.execute(
                "UPDATE sessions SET idle_until = least($2, expires_at) WHERE hash = $1 AND idle_until < $2",
                &[&hash, &idle_until],
            )
            .await?;
            Ok::<_, Fail>(())
        };
        run.await.map_err(Fail::into_store)
    }

    async fn delete_session(&self, hash: &str, audit: Option<NewAuditEvent>) -> Result<bool> {
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx.execute("DELETE FROM sessions WHERE hash = $1", &[&hash]).await?;
            append_if(&tx, n > 0, audit).await?;
            tx.commit().await?;
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
        let (t, audit, principal) = (&t, audit.as_ref(), &user_principal(user_id));
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            if !lock_user(&tx, tenant, user_id).await? {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO tokens (hash, tenant_id, principal, created_at, key_id, name, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&t.hash, &tenant, principal, &t.created_at, &t.id, &t.name, &t.expires_at],
            )
            .await?;
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(Some(UserTokenRecord {
                id: t.id.clone(),
                name: t.name.clone(),
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_used_at: None,
            }))
        })
        .await
    }

    async fn list_user_tokens(&self, tenant: &str, user_id: &str) -> Result<Vec<UserTokenRecord>> {
        let principal = user_principal(user_id);
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {USER_TOKEN_COLS} FROM tokens WHERE tenant_id = $1 AND principal = $2 \
                     ORDER BY created_at, key_id"
                ))
                .await?;
            c.query(&st, &[&tenant, &principal]).await?.iter().map(token_from_row).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn revoke_user_token(
        &self,
        tenant: &str,
        user_id: &str,
        token_id: &str,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool> {
        let (principal, audit) = (&user_principal(user_id), audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute(
                    "DELETE FROM tokens WHERE tenant_id = $1 AND principal = $2 AND key_id = $3",
                    &[&tenant, principal, &token_id],
                )
                .await?;
            append_if(&tx, n > 0, audit).await?;
            tx.commit().await?;
            Ok(n > 0)
        })
        .await
    }
}
