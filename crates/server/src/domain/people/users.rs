//! Users and their personal access tokens: the changes, and who may make them.
//!
//! Owners and admins administer the tenant's users, as do the tenant's admin token and the
//! operator (which count as owners here: they are the tenant's root credentials). Only an
//! owner makes, promotes to, changes or removes an owner, so an admin cannot take the tenant
//! from its owners. A person may change its own name and password. Personal access tokens are
//! the caller's own (`/v1/users/me/tokens`).

use std::sync::Arc;

use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::people::{self, CreateToken, CreateUser, PAT_PREFIX, UpdateUser};
use switchboard_core::principal::{Principal, PrincipalKind, Role};
use switchboard_core::time::now_ms;
use switchboard_core::{Recipient, UserId};
use switchboard_store::Store;
use switchboard_store::users::{NewUserToken, UserRecord, UserTokenRecord};

use super::password;
use crate::error::ApiError;
use crate::token::{new_token, token_hash};

/// The answer for a user id that names no user of the tenant.
pub fn no_such_user(id: &str) -> ApiError {
    ApiError::NotFound(format!("user {id} is not in this tenant; list users with `switchboard user list`"))
}

/// Whether `by` acts with an owner's powers: an owner, the tenant's admin token or the operator.
fn owns(by: &Principal) -> bool {
    matches!(by.kind, PrincipalKind::Admin | PrincipalKind::Operator) || by.role() == Some(Role::Owner)
}

/// Who may administer users: the tenant's administrators.
pub fn require_admin(by: &Principal) -> Result<(), ApiError> {
    if by.is_admin() {
        return Ok(());
    }
    Err(ApiError::Forbidden(match by.role() {
        Some(role) => format!("your role `{role}` cannot manage users; it needs an owner or admin"),
        None => "managing users needs the tenant's admin token, or an owner or admin signed in".into(),
    }))
}

fn only_owners(what: &str) -> ApiError {
    ApiError::Forbidden(format!("only an owner may {what}; your role `admin` cannot"))
}

fn target(id: &str) -> String {
    Recipient::user_text(&UserId::from(id))
}

/// The person calling, for `/v1/users/me/…`, or `forbidden`.
pub fn me(by: &Principal) -> Result<&UserId, ApiError> {
    by.user().ok_or_else(|| {
        ApiError::Forbidden(
            "only people have personal access tokens: sign in as a user (`switchboard login`), not with an agent key \
             or the admin token"
                .into(),
        )
    })
}

/// Changes to users and personal access tokens.
pub struct Users {
    store: Arc<dyn Store>,
}

impl Users {
    pub fn new(store: Arc<dyn Store>) -> Users {
        Users { store }
    }

    /// Creates a user (tenant administrators; owners alone create owners).
    pub async fn create(&self, by: &Principal, req: CreateUser) -> Result<UserRecord, ApiError> {
        require_admin(by)?;
        let req = people::create_user(req).map_err(ApiError::fields)?;
        if req.role == Role::Owner && !owns(by) {
            return Err(only_owners("create an owner"));
        }
        let password_hash = match req.password {
            Some(p) => Some(password::hash(p).await?),
            None => None,
        };
        let now = now_ms();
        let user = UserRecord {
            tenant: by.tenant.to_string(),
            id: switchboard_core::new_id().to_string(),
            email: req.email,
            name: req.name,
            role: req.role,
            has_password: password_hash.is_some(),
            created_at: now,
            updated_at: now,
        };
        let audit = NewAuditEvent::by(by, AuditAction::UserCreate, target(&user.id), now)
            .with_detail(serde_json::json!({ "email": user.email, "role": user.role.as_str() }));
        self.store.create_user(user.clone(), password_hash, Some(audit)).await?;
        tracing::info!(user = %user.id, role = %user.role, "user created");
        Ok(user)
    }

    /// Changes a user: administrators change anyone (owners alone touch owners); a person
    /// changes its own name and password.
    pub async fn update(&self, by: &Principal, id: &str, req: UpdateUser) -> Result<UserRecord, ApiError> {
        let itself = by.user().is_some_and(|me| me == id);
        if !itself {
            require_admin(by)?;
        } else if !by.is_admin() && (req.role.is_some() || req.email.is_some()) {
            return Err(ApiError::Forbidden(
                "you may change your own name and password; your email and role are changed by an owner or admin"
                    .into(),
            ));
        }
        let req = people::update_user(req).map_err(ApiError::fields)?;
        let tenant = by.tenant.as_str();
        let existing = self.store.get_user(tenant, id).await?.ok_or_else(|| no_such_user(id))?;
        if !owns(by) && (existing.role == Role::Owner || req.role == Some(Role::Owner)) {
            return Err(only_owners("change an owner or make one"));
        }
        let password_hash = match req.password {
            Some(p) => Some(password::hash(p).await?),
            None => None,
        };
        let mut changed: Vec<&str> = Vec::new();
        for (name, yes) in [
            ("email", req.email.as_ref().is_some_and(|e| *e != existing.email)),
            ("name", req.name.as_ref().is_some_and(|n| *n != existing.name)),
            ("role", req.role.is_some_and(|r| r != existing.role)),
            ("password", password_hash.is_some()),
        ] {
            if yes {
                changed.push(name);
            }
        }
        let user = UserRecord {
            email: req.email.unwrap_or(existing.email),
            name: req.name.unwrap_or(existing.name),
            role: req.role.unwrap_or(existing.role),
            updated_at: now_ms(),
            ..existing
        };
        let audit = NewAuditEvent::by(by, AuditAction::UserUpdate, target(id), user.updated_at)
            .with_detail(serde_json::json!({ "changed": changed, "role": user.role.as_str() }));
        self.store.update_user(user, password_hash, Some(audit)).await?.ok_or_else(|| no_such_user(id))
    }

    /// Removes a user with its sessions and tokens (administrators; owners alone remove owners).
    /// With `erase`, the payloads of the person's messages are erased first (see
    /// `RetentionStore::erase_messages`), and the audit entry keeps no e-mail address.
    pub async fn remove(&self, by: &Principal, id: &str, erase: bool) -> Result<(), ApiError> {
        require_admin(by)?;
        let tenant = by.tenant.as_str();
        let existing = self.store.get_user(tenant, id).await?.ok_or_else(|| no_such_user(id))?;
        if existing.role == Role::Owner && !owns(by) {
            return Err(only_owners("remove an owner"));
        }
        let now = now_ms();
        let detail = if erase {
            let erased = self.store.erase_messages(tenant, &format!("user:{id}"), now).await?;
            serde_json::json!({ "erase": true, "messages_erased": erased.messages })
        } else {
            serde_json::json!({ "email": existing.email })
        };
        let audit = NewAuditEvent::by(by, AuditAction::UserDelete, target(id), now).with_detail(detail);
        if !self.store.delete_user(tenant, id, Some(audit)).await? {
            return Err(no_such_user(id));
        }
        tracing::info!(user = %id, "user deleted");
        Ok(())
    }

    /// A new personal access token for the calling person; the token is returned this once.
    pub async fn create_token(&self, by: &Principal, req: CreateToken) -> Result<(UserTokenRecord, String), ApiError> {
        let me = me(by)?;
        let lifetime = people::create_token(&req).map_err(ApiError::fields)?;
        let token = new_token(PAT_PREFIX);
        let now = now_ms();
        let new = NewUserToken {
            id: format!("tok_{}", switchboard_core::new_id().simple()),
            name: req.name.trim().to_owned(),
            hash: token_hash(&token),
            created_at: now,
            expires_at: lifetime.map(|ms| now.saturating_add(ms)),
        };
        let audit = NewAuditEvent::by(by, AuditAction::TokenCreate, target(me.as_str()), now)
            .with_detail(serde_json::json!({ "token_id": new.id, "name": new.name }));
        let record = self
            .store
            .create_user_token(by.tenant.as_str(), me.as_str(), new, Some(audit))
            .await?
            .ok_or_else(|| no_such_user(me.as_str()))?;
        Ok((record, token))
    }

    /// The calling person's tokens.
    pub async fn list_tokens(&self, by: &Principal) -> Result<Vec<UserTokenRecord>, ApiError> {
        let me = me(by)?;
        Ok(self.store.list_user_tokens(by.tenant.as_str(), me.as_str()).await?)
    }

    /// Revokes one of the calling person's tokens: it stops working at once.
    pub async fn revoke_token(&self, by: &Principal, token_id: &str) -> Result<(), ApiError> {
        let me = me(by)?;
        let audit = NewAuditEvent::by(by, AuditAction::TokenRevoke, target(me.as_str()), now_ms())
            .with_detail(serde_json::json!({ "token_id": token_id }));
        if !self.store.revoke_user_token(by.tenant.as_str(), me.as_str(), token_id, Some(audit)).await? {
            return Err(ApiError::NotFound(format!(
                "you have no token {token_id}; list yours with `switchboard token list`"
            )));
        }
        Ok(())
    }
}
