//! `/v1/users`: the tenant's people (owners and admins manage them; see
//! `domain::people::users` for who may do what).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::people::{CreateUser, UpdateUser, User, UserCreated, UserList};
use switchboard_core::time::rfc3339;
use switchboard_store::users::UserRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Conflict, Forbidden, NotFound, Unprocessable};
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::domain::people::users::{no_such_user, require_admin};
use crate::error::ApiError;

const BODY_LIMIT: usize = 16 * 1024;

/// The API view of a user.
pub fn view(u: UserRecord) -> User {
    User {
        id: u.id,
        email: u.email,
        name: u.name,
        role: u.role,
        has_password: u.has_password,
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
    }
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    pub id: String,
}

/// Creates a user (owners and admins; only an owner creates an owner).
#[utoipa::path(post, path = "/v1/users", operation_id = "createUser", request_body = CreateUser,
    responses((status = 201, description = "Created", body = UserCreated),
              (status = 403, response = Forbidden), (status = 409, response = Conflict),
              (status = 422, response = Unprocessable)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    require_admin(&auth.0)?;
    let req: CreateUser = parse_json(body, BODY_LIMIT).await?;
    let user = state.users.create(&auth.0, req).await?;
    Ok((StatusCode::CREATED, Json(UserCreated { user: view(user) })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists the tenant's users by id (owners and admins).
#[utoipa::path(get, path = "/v1/users", operation_id = "listUsers", params(ListQuery),
    responses((status = 200, description = "A page of users, by id", body = UserList),
              (status = 403, response = Forbidden)))]
pub async fn list(State(state): State<AppState>, auth: Auth, Q(q): Q<ListQuery>) -> Result<Json<UserList>, ApiError> {
    require_admin(&auth.0)?;
    let limit = super::page_limit(q.limit)?;
    let after = super::agent_cursor("cursor", q.cursor)?;
    let page = state.store.list_users(auth.0.tenant.as_str(), after, limit).await?;
    let next_cursor = (page.len() == limit).then(|| page.last().map(|u| u.id.clone())).flatten();
    Ok(Json(UserList { users: page.into_iter().map(view).collect(), next_cursor }))
}

/// One user (owners and admins, or the user itself).
#[utoipa::path(get, path = "/v1/users/{id}", operation_id = "getUser", params(UserPath),
    responses((status = 200, description = "The user", body = User),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    if auth.0.user().is_none_or(|me| me != id.as_str()) {
        require_admin(&auth.0)?;
    }
    let u = state.store.get_user(auth.0.tenant.as_str(), &id).await?.ok_or_else(|| no_such_user(&id))?;
    Ok(Json(view(u)))
}

/// Changes a user's email, name, role or password; fields left out keep their value. Owners
/// and admins change anyone (only an owner changes an owner or makes one); a person changes
/// its own name and password. A new password ends the user's sessions.
#[utoipa::path(put, path = "/v1/users/{id}", operation_id = "updateUser", params(UserPath), request_body = UpdateUser,
    responses((status = 200, description = "The user as it is now", body = User),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<User>, ApiError> {
    let req: UpdateUser = parse_json(body, BODY_LIMIT).await?;
    let user = state.users.update(&auth.0, &id, req).await?;
    // This node reads the new role at the next request (others within 10 s).
    state.tokens.forget_user(auth.0.tenant.as_str(), &id);
    Ok(Json(view(user)))
}

/// Removes a user with its sessions and personal access tokens (owners and admins; only an
/// owner removes an owner). With `?erase=true`, the payloads of their messages are erased
/// first, and the audit entry of the removal does not name their e-mail address.
#[utoipa::path(delete, path = "/v1/users/{id}", operation_id = "deleteUser", params(UserPath, super::EraseQuery),
    responses((status = 204, description = "Removed"),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Q(q): Q<super::EraseQuery>,
) -> Result<StatusCode, ApiError> {
    state.users.remove(&auth.0, &id, q.erase).await?;
    state.tokens.forget_user(auth.0.tenant.as_str(), &id);
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(show, update, remove))
}
