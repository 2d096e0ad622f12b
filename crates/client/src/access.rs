//! The tenant's policy and limits (admin).

use reqwest::Method;
use switchboard_core::limits::TenantLimits;
use switchboard_core::policy::{PolicyCheck, PolicyDecision, PolicyRules};

use crate::{Client, Result};

impl Client {
    /// The tenant's policy (`rules: None`: no policy, everything allowed).
    pub async fn policy(&self) -> Result<PolicyRules> {
        self.call::<(), _>(Method::GET, "/v1/policies", None).await
    }

    /// Replaces the tenant's policy.
    pub async fn put_policy(&self, p: &PolicyRules) -> Result<PolicyRules> {
        self.call(Method::PUT, "/v1/policies", Some(p)).await
    }

    /// What the policy decides for `from` sending to (or subscribing to) `to`.
    pub async fn check_policy(&self, q: &PolicyCheck) -> Result<PolicyDecision> {
        self.call(Method::POST, "/v1/policies:check", Some(q)).await
    }

    /// The tenant's limits.
    pub async fn limits(&self) -> Result<TenantLimits> {
        self.call::<(), _>(Method::GET, "/v1/limits", None).await
    }

    /// Replaces the tenant's limits.
    pub async fn put_limits(&self, l: &TenantLimits) -> Result<TenantLimits> {
        self.call(Method::PUT, "/v1/limits", Some(l)).await
    }
}
