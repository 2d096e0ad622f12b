//! Auto-routing over HTTP: the tenant's settings (`/v1/routing/settings`, admin) and a
//! person's choice for a message waiting in triage (`POST /v1/messages/{id}/route`). The
//! decisions are `domain::autoroute`'s.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use switchboard_core::api::{MessageRouted, PutRoutingSettings, RouteMessage, RoutingSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Conflict, Forbidden, MessagePath, NotFound, Unprocessable};
use super::parse_json;
use crate::api::auth::Auth;
use crate::error::ApiError;

/// The tenant's auto-routing settings (admin), defaults filled in. The model's key is never
/// shown: `api_key_set` says whether one is stored.
#[utoipa::path(get, path = "/v1/routing/settings", operation_id = "getRoutingSettings",
    responses((status = 200, description = "The settings", body = RoutingSettings),
              (status = 403, response = Forbidden)))]
pub async fn show(State(state): State<AppState>, auth: Auth) -> Result<Json<RoutingSettings>, ApiError> {
    auth.require_admin()?;
    Ok(Json(state.auto.show_settings(&auth.0.tenant).await?))
}

/// Replaces the tenant's auto-routing settings (admin): BM25's `threshold` and `margin`, the
/// `triage_group`, and an optional model (a `model` without `api_key` keeps the stored key).
/// Takes effect on this node at once and on the others within a second.
#[utoipa::path(put, path = "/v1/routing/settings", operation_id = "putRoutingSettings", request_body = PutRoutingSettings,
    responses((status = 200, description = "The settings as stored", body = RoutingSettings),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<RoutingSettings>, ApiError> {
    auth.require_admin()?;
    let req: PutRoutingSettings = parse_json(body, 64 * 1024).await?;
    Ok(Json(state.auto.put_settings(&auth.0, req).await?))
}

/// Routes a message waiting in triage to a capability (a person it was sent to for triage,
/// or an admin): it is delivered to one agent with the capability, the triage deliveries are
/// closed, and the decision records who chose. 409 if it was routed already.
#[utoipa::path(post, path = "/v1/messages/{id}/route", operation_id = "routeMessage", params(MessagePath),
    request_body = RouteMessage,
    responses((status = 200, description = "Routed", body = MessageRouted),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
pub async fn route(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<MessageRouted>, ApiError> {
    let req: RouteMessage = parse_json(body, 4096).await?;
    Ok(Json(state.auto.reroute(&auth.0, &id, &req.capability).await?))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, put)).routes(routes!(route))
}
