//! People: users of a tenant, their browser sessions and their personal access tokens. One
//! area of [`Store`](crate::Store).
//!
//! Passwords arrive already hashed (argon2id, by the server); sessions and tokens arrive as
//! the SHA-256 of their secret, like every token. A personal access token is a row of
//! `tokens` with principal `user:<id>`, an id (`tok_…`), a name and its expiry; the user's
//! role is not stored with it but read from the user's row at every look-up, so a changed
//! role holds for every token and session of the user at once.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::principal::Role;
use switchboard_core::time::Millis;

use crate::error::Result;

/// A user of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub tenant: String,
    pub id: String,
    /// Lower-cased; unique in the tenant.
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A new browser session: the hash of its cookie's token, and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub hash: String,
    /// The value unsafe requests carry in `X-CSRF-Token`. Kept as it is (not hashed): it is
    /// worth nothing without the session's cookie, and the web app may ask for it again.
    pub csrf_token: String,
    pub created_at: Millis,
    /// When it ends unless used before (each use moves it on).
    pub idle_until: Millis,
    /// When it ends whatever happens.
    pub expires_at: Millis,
}

/// A live session and its user as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub csrf_token: String,
    pub created_at: Millis,
    pub idle_until: Millis,
    pub expires_at: Millis,
}

/// A new personal access token.
#[derive(Debug, Clone)]
pub struct NewUserToken {
    /// Its public id (`tok_…`).
    pub id: String,
    pub name: String,
    /// SHA-256 of the token.
    pub hash: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
}

/// A personal access token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokenRecord {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

/// Users, sessions and personal access tokens. Every change takes the audit entry recording
/// it, written in its transaction when something changed.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user. `Conflict::EmailTaken` if the tenant has a user with that email.
    async fn create_user(
        &self,
        user: UserRecord,
        password_hash: Option<String>,
        audit: Option<NewAuditEvent>,
    ) -> Result<()>;
    async fn get_user(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>>;
    /// Up to `limit` users with ids after `after`, in id order.
    async fn list_users(&self, tenant: &str, after: Option<String>, limit: usize) -> Result<Vec<UserRecord>>;
    /// Replaces a user's email, name and role (`updated_at` too), and its password when
    /// `password_hash` is given: then its sessions end. `None` if there is no such user.
    async fn update_user(
        &self,
        user: UserRecord,
        password_hash: Option<String>,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<UserRecord>>;
    /// Removes a user with its sessions, personal access tokens and places in conversations;
    /// `false` if none.
    async fn delete_user(&self, tenant: &str, id: &str, audit: Option<NewAuditEvent>) -> Result<bool>;
    /// The user signing in with `email` in the tenant named (by id or name) `tenant`, and its
    /// password hash. One of the two calls not scoped by a tenant id: this is how the tenant
    /// of a login is found.
    async fn user_for_login(&self, tenant: &str, email: &str) -> Result<Option<(UserRecord, Option<String>)>>;

    /// Opens a session for user `user_id` (and ends the user's sessions that have run
    /// out); `false`, writing nothing, if there is no such user.
    async fn create_session(
        &self,
        tenant: &str,
        user_id: &str,
        session: NewSession,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool>;
    /// The session whose cookie hashes to `hash`, if it is still open at `now`, with its user.
    async fn session_for_hash(&self, hash: &str, now: Millis) -> Result<Option<SessionRecord>>;
    /// Moves a session's idle end to `idle_until` (never past its absolute end).
    async fn touch_session(&self, hash: &str, idle_until: Millis) -> Result<()>;
    /// Ends a session; `false` if there was none.
    async fn delete_session(&self, hash: &str, audit: Option<NewAuditEvent>) -> Result<bool>;

    /// Adds a personal access token to user `user_id`; `None`, writing nothing, if there is
    /// no such user.
    async fn create_user_token(
        &self,
        tenant: &str,
        user_id: &str,
        token: NewUserToken,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<UserTokenRecord>>;
    /// The user's personal access tokens (expired ones too, until revoked), oldest first.
    async fn list_user_tokens(&self, tenant: &str, user_id: &str) -> Result<Vec<UserTokenRecord>>;
    /// Deletes one of the user's personal access tokens; `false` if it has none by that id.
    async fn revoke_user_token(
        &self,
        tenant: &str,
        user_id: &str,
        token_id: &str,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool>;
}
