//! `/v1/users/me/tokens`: the calling person's personal access tokens (`sbp_…`), which act
//! as the person with its role at the time of each request.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use switchboard_core::people::{CreateToken, TokenCreated, UserToken, UserTokenList};
use switchboard_core::time::rfc3339;
use switchboard_store::users::UserTokenRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, NotFound, Unprocessable};
use super::parse_json;
use crate::api::auth::Auth;
use crate::error::ApiError;

fn view(t: UserTokenRecord) -> UserToken {
    UserToken {
        id: t.id,
        name: t.name,
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
        last_used_at: t.last_used_at.map(rfc3339),
    }
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    pub id: String,
}

/// Creates a personal access token for the calling person. The token is in this answer only.
#[utoipa::path(post, path = "/v1/users/me/tokens", operation_id = "createToken", request_body = CreateToken,
    responses((status = 201, description = "The new token, shown only this once", body = TokenCreated),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    crate::domain::people::users::me(&auth.0)?;
    let req: CreateToken = parse_json(body, 16 * 1024).await?;
    let (t, token) = state.users.create_token(&auth.0, req).await?;
    let created = TokenCreated {
        token,
        id: t.id,
        name: t.name,
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists the calling person's tokens with their last use; never the tokens themselves.
#[utoipa::path(get, path = "/v1/users/me/tokens", operation_id = "listTokens",
    responses((status = 200, description = "The caller's tokens, oldest first", body = UserTokenList),
              (status = 403, response = Forbidden)))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> Result<Json<UserTokenList>, ApiError> {
    let tokens = state.users.list_tokens(&auth.0).await?;
    Ok(Json(UserTokenList { tokens: tokens.into_iter().map(view).collect() }))
}

/// Revokes one of the calling person's tokens: it stops working at once on this node, and
/// within 10 seconds on the others.
#[utoipa::path(delete, path = "/v1/users/me/tokens/{id}", operation_id = "revokeToken", params(TokenPath),
    responses((status = 204, description = "Revoked"),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn revoke(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.users.revoke_token(&auth.0, &id).await?;
    state.tokens.forget_key(auth.0.tenant.as_str(), &id);
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(revoke))
}
