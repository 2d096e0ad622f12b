//! `/v1/identity-providers`: the external issuers whose JWTs the tenant accepts (its admin).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use switchboard_core::oauth::IdentityProviders;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Conflict, Forbidden, Unprocessable};
use super::parse_json;
use crate::api::auth::Auth;
use crate::error::ApiError;

/// The tenant's identity providers (admin).
#[utoipa::path(get, path = "/v1/identity-providers", operation_id = "getIdentityProviders",
    responses((status = 200, description = "The issuers the tenant trusts", body = IdentityProviders),
              (status = 403, response = Forbidden)))]
pub async fn get(State(state): State<AppState>, auth: Auth) -> Result<Json<IdentityProviders>, ApiError> {
    auth.require_admin()?;
    Ok(Json(state.oauth.identity_providers(&auth.0).await?))
}

/// Replaces the tenant's identity providers (admin). A JWT whose `iss` is a provider's
/// `issuer` and whose `aud` includes its `audience` is verified against the keys at its
/// `jwks_url` and acts as the agent its `claims.agent` claim names, or else the person its
/// `claims.user` claim (`email` or `sub`) names. No two tenants may trust the same issuer and
/// audience (409).
#[utoipa::path(put, path = "/v1/identity-providers", operation_id = "putIdentityProviders",
    request_body = IdentityProviders,
    responses((status = 200, description = "The providers as stored", body = IdentityProviders),
              (status = 403, response = Forbidden), (status = 409, response = Conflict),
              (status = 422, response = Unprocessable)))]
pub async fn put(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<IdentityProviders>, ApiError> {
    auth.require_admin()?;
    let list: IdentityProviders = parse_json(body, 64 * 1024).await?;
    state.oauth.put_identity_providers(&auth.0, list.clone()).await?;
    Ok(Json(list))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get, put))
}
