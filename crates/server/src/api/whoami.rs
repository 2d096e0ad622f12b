//! `/v1/whoami`: who the caller's token acts as. A key does not show which agent it belongs
//! to, so tools that act "as the caller" (the CLI's `topic subscribe` without `--agent`) ask.

use axum::Json;
use switchboard_core::api::Whoami;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::api::auth::Auth;

/// The tenant and principal of the calling token.
#[utoipa::path(get, path = "/v1/whoami", operation_id = "whoami",
    responses((status = 200, description = "Who the token acts as", body = Whoami)))]
pub async fn whoami(auth: Auth) -> Json<Whoami> {
    let agent_id = auth.0.agent().map(|id| id.to_string());
    Json(Whoami { principal: auth.0.sender(), tenant: auth.0.tenant.into_string(), agent_id })
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whoami))
}
