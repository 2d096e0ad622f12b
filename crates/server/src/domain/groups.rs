//! Groups of people: the tenant's administrators manage them; `group:<name>` reaches every
//! member (one delivery each, read from their inbox), and auto-routing sends what it cannot
//! decide to the triage group.

use std::sync::Arc;

use switchboard_core::api::{FieldError, PutGroup, check_group_name, check_put_group};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::principal::Principal;
use switchboard_core::time::now_ms;
use switchboard_store::Store;
use switchboard_store::groups::{AddMemberOutcome, GroupRecord, PutGroupOutcome};

use crate::error::ApiError;

/// The answer for a group name that names no group of the tenant.
pub fn no_such_group(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "there is no group `{name}` in this tenant; create it with `switchboard group set {name} --member <user id>`"
    ))
}

/// Who may manage groups: the tenant's administrators (admin token, owners, admins).
pub fn require_admin(by: &Principal) -> Result<(), ApiError> {
    if by.is_admin() {
        return Ok(());
    }
    Err(ApiError::Forbidden(match by.role() {
        Some(role) => format!("your role `{role}` cannot manage groups; it needs an owner or admin"),
        None => "managing groups needs the tenant's admin token, or an owner or admin signed in".into(),
    }))
}

/// A group name from a path that must name an existing group: one that breaks the name
/// rule names none (404).
pub fn group_name(name: &str) -> Result<(), ApiError> {
    check_group_name(name).map_err(|_| no_such_group(name))
}

/// The name of a group to create: 422 naming `name` if it breaks the rule.
fn new_group_name(name: &str) -> Result<(), ApiError> {
    check_group_name(name).map_err(|e| ApiError::fields(vec![e]))
}

fn target(name: &str) -> String {
    switchboard_core::Address::Group(name.to_owned()).to_string()
}

/// Changes to groups.
pub struct Groups {
    store: Arc<dyn Store>,
}

impl Groups {
    pub fn new(store: Arc<dyn Store>) -> Groups {
        Groups { store }
    }

    /// Creates or replaces a group; answers it and whether it is new.
    pub async fn put(&self, by: &Principal, name: &str, req: PutGroup) -> Result<(GroupRecord, bool), ApiError> {
        require_admin(by)?;
        new_group_name(name)?;
        let members = check_put_group(&req).map_err(ApiError::fields)?;
        let tenant = by.tenant.as_str();
        let now = now_ms();
        let created_at = self.store.get_group(tenant, name).await?.map_or(now, |g| g.created_at);
        let group = GroupRecord {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            description: req.description,
            members,
            created_at,
            updated_at: now,
        };
        let audit = NewAuditEvent::by(by, AuditAction::GroupSet, target(name), now)
            .with_detail(serde_json::json!({ "members": group.members }));
        match self.store.put_group(group.clone(), Some(audit)).await? {
            PutGroupOutcome::Stored { created } => {
                tracing::info!(group = %name, members = group.members.len(), created, "group set");
                Ok((group, created))
            }
            PutGroupOutcome::UnknownUsers(unknown) => {
                let errors = req_paths(&req.members, &unknown);
                Err(ApiError::fields(errors))
            }
        }
    }

    /// Removes a group.
    pub async fn remove(&self, by: &Principal, name: &str) -> Result<(), ApiError> {
        require_admin(by)?;
        group_name(name)?;
        let audit = NewAuditEvent::by(by, AuditAction::GroupDelete, target(name), now_ms());
        if !self.store.delete_group(by.tenant.as_str(), name, Some(audit)).await? {
            return Err(no_such_group(name));
        }
        tracing::info!(group = %name, "group removed");
        Ok(())
    }

    /// Adds a user to a group; `true` if it was not a member yet.
    pub async fn add_member(&self, by: &Principal, name: &str, user: &str) -> Result<bool, ApiError> {
        require_admin(by)?;
        group_name(name)?;
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::GroupMemberAdd, target(name), now)
            .with_detail(serde_json::json!({ "user": user }));
        match self.store.add_group_member(by.tenant.as_str(), name, user, now, Some(audit)).await? {
            AddMemberOutcome::Added => Ok(true),
            AddMemberOutcome::AlreadyMember => Ok(false),
            AddMemberOutcome::NoGroup => Err(no_such_group(name)),
            AddMemberOutcome::NoUser => Err(crate::domain::people::users::no_such_user(user)),
        }
    }

    /// Takes a user out of a group; `false` if it was not a member.
    pub async fn remove_member(&self, by: &Principal, name: &str, user: &str) -> Result<bool, ApiError> {
        require_admin(by)?;
        group_name(name)?;
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::GroupMemberRemove, target(name), now)
            .with_detail(serde_json::json!({ "user": user }));
        self.store
            .remove_group_member(by.tenant.as_str(), name, user, now, Some(audit))
            .await?
            .ok_or_else(|| no_such_group(name))
    }
}

/// The `members[i]` paths of the unknown users, as the request listed them.
fn req_paths(asked: &[String], unknown: &[String]) -> Vec<FieldError> {
    asked
        .iter()
        .enumerate()
        .filter(|(_, m)| unknown.contains(m))
        .map(|(i, m)| FieldError {
            path: format!("members[{i}]"),
            message: format!("user {m} is not in this tenant; list users with `switchboard user list`"),
        })
        .collect()
}
