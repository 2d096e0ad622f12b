//! Groups of people: what `group:<name>` addresses reach (and the triage group of
//! auto-routing). One area of [`Store`](crate::Store).
//!
//! A member is a user of the tenant, checked in the transaction that adds it, so a group never
//! names a user that does not exist; deleting a user takes it out of every group.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::error::Result;

/// A group and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub tenant: String,
    pub name: String,
    pub description: Option<String>,
    /// User ids, sorted.
    pub members: Vec<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What became of a `put_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutGroupOutcome {
    /// Stored; `created` when there was no group of that name.
    Stored { created: bool },
    /// These members are not users of the tenant; nothing was written.
    UnknownUsers(Vec<String>),
}

/// What became of an `add_group_member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddMemberOutcome {
    Added,
    /// The user was a member already; nothing was written.
    AlreadyMember,
    NoGroup,
    NoUser,
}

/// Groups of users. Every change takes the audit entry recording it, written in its
/// transaction when something changed.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates the group or replaces its description and members (`created_at` is kept for a
    /// replaced one). Every member must be a user of the tenant.
    async fn put_group(&self, group: GroupRecord, audit: Option<NewAuditEvent>) -> Result<PutGroupOutcome>;
    async fn get_group(&self, tenant: &str, name: &str) -> Result<Option<GroupRecord>>;
    /// Up to `limit` groups with names after `after`, by name.
    async fn list_groups(&self, tenant: &str, after: Option<String>, limit: usize) -> Result<Vec<GroupRecord>>;
    /// Removes a group; `false` if there was none.
    async fn delete_group(&self, tenant: &str, name: &str, audit: Option<NewAuditEvent>) -> Result<bool>;
    /// Adds user `user` to the group.
    async fn add_group_member(
        &self,
        tenant: &str,
        name: &str,
        user: &str,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<AddMemberOutcome>;
    /// Takes user `user` out of the group: `None` if there is no such group, else whether it
    /// was a member.
    async fn remove_group_member(
        &self,
        tenant: &str,
        name: &str,
        user: &str,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<bool>>;
}
