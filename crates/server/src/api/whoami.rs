//! `/v1/whoami`: who the caller's token acts as. A key does not show which agent it belongs
//! to, nor a personal access token which person, so tools that act "as the caller" (the
//! CLI's `topic subscribe` without `--agent`, `switchboard whoami`) ask.

use axum::Json;
use axum::extract::State;
use switchboard_core::api::{Whoami, WhoamiUser};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::api::auth::Auth;
use crate::error::ApiError;

/// The tenant and principal of the calling token.
#[utoipa::path(get, path = "/v1/whoami", operation_id = "whoami",
    responses((status = 200, description = "Who the token acts as", body = Whoami)))]
pub async fn whoami(State(state): State<AppState>, auth: Auth) -> Result<Json<Whoami>, ApiError> {
    let agent_id = auth.0.agent().map(|id| id.to_string());
    let user = match auth.0.user() {
        Some(id) => state.store.get_user(auth.0.tenant.as_str(), id.as_str()).await?.map(|u| WhoamiUser {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
        }),
        None => None,
    };
    Ok(Json(Whoami { principal: auth.0.sender(), tenant: auth.0.tenant.into_string(), agent_id, user }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whoami))
}
