//! Tenants: created and listed by the platform operator alone (the bootstrap admin token).
//! A tenant's own admin token administers that tenant only and answers 403 here.

use switchboard_core::api::CreateTenant;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::now_ms;
use switchboard_core::{ADMIN_TOKEN_PREFIX, Principal, validate};
use switchboard_store::{Store, TenantRecord};

use crate::error::ApiError;
use crate::token::{new_token, token_hash};

/// The answer for anyone but the operator.
fn operator_only() -> ApiError {
    ApiError::Forbidden(
        "only the platform operator may create or list tenants: use the bootstrap admin token \
         (admin.token in the first node's data directory, or the configured admin_token), not a tenant's admin token"
            .into(),
    )
}

/// Refuses anyone but the platform operator.
pub fn require_operator(by: &Principal) -> Result<(), ApiError> {
    if by.is_operator() { Ok(()) } else { Err(operator_only()) }
}

/// Creates a tenant and its admin token (returned here only; the store keeps its hash).
///
/// The `tenant.create` audit entry goes in the **operator's chain** (the default tenant's),
/// written in the tenant's transaction: the operator is the actor, and its chain is where
/// the platform's tenants are accounted for; the new tenant's chain begins with its own
/// admin's first change.
pub async fn create(store: &dyn Store, by: &Principal, req: CreateTenant) -> Result<(TenantRecord, String), ApiError> {
    require_operator(by)?;
    validate::create_tenant(&req).map_err(ApiError::fields)?;
    let now = now_ms();
    let record = TenantRecord { id: switchboard_core::new_id().to_string(), name: req.name, created_at: now };
    let token = new_token(ADMIN_TOKEN_PREFIX);
    let target = format!("tenant:{}", record.id);
    let audit = NewAuditEvent::by(by, AuditAction::TenantCreate, target, now)
        .with_detail(serde_json::json!({ "name": record.name }));
    store.create_tenant(record.clone(), token_hash(&token), Some(audit)).await?;
    tracing::info!(tenant = %record.id, name = %record.name, "tenant created");
    Ok((record, token))
}

/// A page of tenants in id order, after the tenant id `after`.
pub async fn list(
    store: &dyn Store,
    by: &Principal,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<TenantRecord>, ApiError> {
    require_operator(by)?;
    Ok(store.list_tenants(after, limit).await?)
}
