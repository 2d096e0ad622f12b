//! `/v1/tenant/push-settings` and the hub's published signing key.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use base64::Engine;
use serde::Serialize;
use switchboard_core::api::{TenantPushSettings, TenantRetention};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, StoreUnavailable, Unprocessable};
use super::parse_json;
use crate::api::auth::Auth;
use crate::error::ApiError;

/// The tenant's push settings (admin).
#[utoipa::path(get, path = "/v1/tenant/push-settings", operation_id = "getPushSettings",
    responses((status = 200, description = "The tenant's push settings", body = TenantPushSettings),
              (status = 403, response = Forbidden)))]
pub async fn push_settings(State(state): State<AppState>, auth: Auth) -> Result<Json<TenantPushSettings>, ApiError> {
    auth.require_admin()?;
    Ok(Json(state.pusher.tenant_settings(auth.0.tenant.as_str()).await?))
}

/// Replaces the tenant's push settings (admin).
#[utoipa::path(put, path = "/v1/tenant/push-settings", operation_id = "putPushSettings",
    request_body = TenantPushSettings,
    responses((status = 200, description = "The settings as stored", body = TenantPushSettings),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put_push_settings(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<Json<TenantPushSettings>, ApiError> {
    auth.require_admin()?;
    let s: TenantPushSettings = parse_json(body, 64 * 1024).await?;
    state.pusher.put_tenant_settings(&auth.0, &s).await?;
    Ok(Json(s))
}

/// The tenant's retention (admin).
#[utoipa::path(get, path = "/v1/tenant/retention", operation_id = "getRetention",
    responses((status = 200, description = "How long the tenant's messages and dead letters are kept", body = TenantRetention),
              (status = 403, response = Forbidden)))]
pub async fn retention(State(state): State<AppState>, auth: Auth) -> Result<Json<TenantRetention>, ApiError> {
    auth.require_admin()?;
    Ok(Json(crate::domain::retention::get(state.store.as_ref(), auth.0.tenant.as_str()).await?))
}

/// Replaces the tenant's retention (admin). Applied within seconds by every node's purge task.
#[utoipa::path(put, path = "/v1/tenant/retention", operation_id = "putRetention",
    request_body = TenantRetention,
    responses((status = 200, description = "The retention as stored", body = TenantRetention),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put_retention(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<Json<TenantRetention>, ApiError> {
    auth.require_admin()?;
    let r: TenantRetention = parse_json(body, 64 * 1024).await?;
    crate::domain::retention::put(state.store.as_ref(), &auth.0, &r).await?;
    Ok(Json(r))
}

/// One public key, JWK style (RFC 8037 `OKP` / `Ed25519`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Jwk {
    kty: &'static str,
    crv: &'static str,
    kid: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    /// The public key, base64url without padding.
    x: String,
}

/// The hub's public keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

/// The public key that verifies `v1a` webhook signatures (no authentication).
#[utoipa::path(get, path = "/.well-known/switchboard-keys.json", operation_id = "getSigningKeys", security(()),
    responses((status = 200, description = "The hub's public signing key", body = KeySet),
              (status = 503, response = StoreUnavailable)))]
pub async fn keys(State(state): State<AppState>) -> Result<Json<KeySet>, ApiError> {
    let key = state.pusher.signing_key().await?;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    Ok(Json(KeySet { keys: vec![Jwk { kty: "OKP", crv: "Ed25519", kid: "switchboard-webhooks", use_: "sig", x }] }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(push_settings, put_push_settings))
        .routes(routes!(retention, put_retention))
        .routes(routes!(keys))
}
