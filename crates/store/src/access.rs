//! Storage for access control: each tenant's policy and limits, and the counts its quotas
//! are checked against. One area of [`Store`](crate::Store).
//!
//! Nodes keep each tenant's policy and limits in memory; [`AccessStore::access_versions`]
//! is what they poll to learn that another node changed them (each change bumps the
//! tenant's `version`).

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;

use crate::error::Result;

/// A tenant's stored policy and limits (JSON text each, as the server wrote them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessRecord {
    /// The policy's rules, or `None` for no policy.
    pub policy: Option<String>,
    /// The limits, or `None` for none set.
    pub limits: Option<String>,
    /// Bumped by every change, starting at 1; 0 for a tenant that never set either.
    pub version: i64,
}

/// Policies, limits and the quota counts.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// The tenant's policy and limits (default: none set, version 0).
    async fn access(&self, tenant: &str) -> Result<AccessRecord>;
    /// Replaces the tenant's policy (`None`: no policy) with the audit entry recording it,
    /// in one transaction; returns the new version.
    async fn put_policy(&self, tenant: &str, policy: Option<String>, audit: Option<NewAuditEvent>) -> Result<i64>;
    /// Replaces the tenant's limits, audited like [`AccessStore::put_policy`].
    async fn put_limits(&self, tenant: &str, limits: String, audit: Option<NewAuditEvent>) -> Result<i64>;
    /// Every tenant that ever set a policy or limits, with its version: one small read that
    /// tells a node whose cached policy and limits are stale.
    async fn access_versions(&self) -> Result<Vec<(String, i64)>>;
    /// How many agents the tenant has registered.
    async fn count_agents(&self, tenant: &str) -> Result<u64>;
    /// How many messages the tenant has stored.
    async fn count_messages(&self, tenant: &str) -> Result<u64>;
}
