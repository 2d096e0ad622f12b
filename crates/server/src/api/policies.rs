//! `/v1/policies`: the tenant's policy (who may send to which address and subscribe to which
//! topic), and `POST /v1/policies:check` to ask what it decides. The decisions themselves are
//! `domain::access`; the rules' grammar is `core::policy`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use switchboard_core::Address;
use switchboard_core::api::FieldError;
use switchboard_core::policy::{Action, PolicyCheck, PolicyDecision, PolicyRules};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, Unprocessable};
use super::parse_json;
use crate::api::auth::Auth;
use crate::error::ApiError;

/// Most bytes of a policy document.
const POLICY_LIMIT: usize = 1024 * 1024;

/// The tenant's policy (admin): its rules in order, or `rules: null` when it has none (then
/// everything in the tenant is allowed).
#[utoipa::path(get, path = "/v1/policies", operation_id = "getPolicy",
    responses((status = 200, description = "The policy as stored", body = PolicyRules),
              (status = 403, response = Forbidden)))]
pub async fn show(State(state): State<AppState>, auth: Auth) -> Result<Json<PolicyRules>, ApiError> {
    auth.require_admin()?;
    let t = state.access.tenant(&auth.0.tenant).await?;
    Ok(Json(PolicyRules { rules: t.policy.as_ref().map(|p| p.specs().to_vec()) }))
}

/// Replaces the tenant's policy (admin). Every rule is checked first; a bad one is a 422
/// naming it (`rules[3].from`), and nothing changes. `rules: null` removes the policy.
/// Takes effect on this node at once and on the others within a second.
#[utoipa::path(put, path = "/v1/policies", operation_id = "putPolicy", request_body = PolicyRules,
    responses((status = 200, description = "The policy as stored", body = PolicyRules),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<PolicyRules>, ApiError> {
    auth.require_admin()?;
    let rules: PolicyRules = parse_json(body, POLICY_LIMIT).await?;
    state.access.set_policy(&auth.0, rules.clone()).await?;
    Ok(Json(rules))
}

/// What the policy decides for a principal and an address (admin): allowed or not, and the
/// rule that decided (`null`: the default).
#[utoipa::path(post, path = "/v1/policies:check", operation_id = "checkPolicy", request_body = PolicyCheck,
    responses((status = 200, description = "The decision and its rule", body = PolicyDecision),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn check(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<PolicyDecision>, ApiError> {
    auth.require_admin()?;
    let req: PolicyCheck = parse_json(body, 64 * 1024).await?;
    let to: Address = req
        .to
        .parse()
        .map_err(|e| ApiError::fields(vec![FieldError { path: "to".into(), message: format!("{e}") }]))?;
    let action = req.action.unwrap_or(Action::Send);
    Ok(Json(state.access.check(&auth.0.tenant, &req.from, action, &to).await?))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, put)).routes(routes!(check))
}
