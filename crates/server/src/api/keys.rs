//! `/v1/keys`: the directory of principals' public keys (end-to-end trust; see
//! `domain::keys` and `docs/e2e.md`). Any principal of the tenant reads them; agents and
//! people publish and revoke their own; tenant admins revoke any.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{FieldError, KeyList, PublicKey, PublishKey};
use switchboard_core::{Address, Recipient};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::domain::keys::Keys;
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// Whose keys: `agent:<id>` or `user:<id>`.
    principal: Option<String>,
    /// Or: the keys of everyone a message to this address would reach now (an agent, a
    /// person, a group, a topic's subscribers, a conversation's other participants, every
    /// agent with a capability): the keys to seal for.
    to: Option<String>,
    /// Also revoked keys (to check signatures made before a revocation). Default false.
    include_revoked: Option<bool>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// `pk_…`.
    pub key_id: String,
}

fn param(path: &str, message: &str) -> ApiError {
    ApiError::params(vec![FieldError { path: path.into(), message: message.into() }])
}

/// Lists public keys: of one principal (`principal`), or of the recipients of an address
/// (`to`). Current keys only unless `include_revoked`.
#[utoipa::path(get, path = "/v1/keys", operation_id = "listKeys", params(KeysQuery),
    responses((status = 200, description = "The keys, oldest first", body = KeyList),
              (status = 400, response = BadRequest), (status = 422, response = Unprocessable)))]
pub async fn list(State(state): State<AppState>, auth: Auth, Q(q): Q<KeysQuery>) -> Result<Json<KeyList>, ApiError> {
    let include_revoked = q.include_revoked.unwrap_or(false);
    let principals = match (q.principal, q.to) {
        (Some(p), None) => {
            p.parse::<Recipient>().map_err(|_| param("principal", "must be `agent:<id>` or `user:<id>`"))?;
            vec![p]
        }
        (None, Some(to)) => {
            let to: Address =
                to.parse().map_err(|e: switchboard_core::address::AddressError| param("to", &e.to_string()))?;
            state.acceptor.recipients(&auth.0, &to).await?
        }
        _ => return Err(param("principal", "give exactly one of `principal` and `to`")),
    };
    let keys = Keys::new(state.store.clone()).of(&auth.0, principals, include_revoked).await?;
    Ok(Json(KeyList { keys }))
}

/// Publishes one of the caller's public keys (an agent or a person); `replaces` revokes one
/// of the caller's keys in the same step. The private half never reaches the hub.
#[utoipa::path(post, path = "/v1/keys", operation_id = "publishKey", request_body = PublishKey,
    responses((status = 201, description = "The published key", body = PublicKey),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 422, response = Unprocessable)))]
pub async fn publish(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<PublicKey>), ApiError> {
    let req: PublishKey = parse_json(body, 16 * 1024).await?;
    let key = Keys::new(state.store.clone()).publish(&auth.0, req).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Revokes a key: one of the caller's, or any of the tenant's for its admins. Nothing may be
/// sealed to it or signed with it from then on.
#[utoipa::path(delete, path = "/v1/keys/{key_id}", operation_id = "revokeKey", params(KeyPath),
    responses((status = 200, description = "The revoked key", body = PublicKey),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(key_id): Path<String>,
) -> Result<Json<PublicKey>, ApiError> {
    Ok(Json(Keys::new(state.store.clone()).revoke(&auth.0, &key_id).await?))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, publish)).routes(routes!(revoke))
}
