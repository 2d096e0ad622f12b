//! `/v1/limits`: the tenant's rate limits and quotas (admin). Enforced by `domain::access`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use switchboard_core::limits::TenantLimits;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, Unprocessable};
use super::parse_json;
use crate::api::auth::Auth;
use crate::error::ApiError;

/// The tenant's limits (admin); absent fields are off.
#[utoipa::path(get, path = "/v1/limits", operation_id = "getLimits",
    responses((status = 200, description = "The limits as enforced", body = TenantLimits),
              (status = 403, response = Forbidden)))]
pub async fn show(State(state): State<AppState>, auth: Auth) -> Result<Json<TenantLimits>, ApiError> {
    auth.require_admin()?;
    Ok(Json(state.access.tenant(&auth.0.tenant).await?.limits.clone()))
}

/// Replaces the tenant's limits (admin); `{}` turns them all off. Takes effect on this node
/// at once and on the others within a second; rates count per node.
#[utoipa::path(put, path = "/v1/limits", operation_id = "putLimits", request_body = TenantLimits,
    responses((status = 200, description = "The limits as stored", body = TenantLimits),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<TenantLimits>, ApiError> {
    auth.require_admin()?;
    let limits: TenantLimits = parse_json(body, 64 * 1024).await?;
    state.access.set_limits(&auth.0, &limits).await?;
    Ok(Json(limits))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, put))
}
