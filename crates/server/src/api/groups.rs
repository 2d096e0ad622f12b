//! `/v1/groups`: groups of the tenant's people, what `group:<name>` reaches (owners and
//! admins manage them; see `domain::groups`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{Group, GroupList, PutGroup};
use switchboard_core::time::rfc3339;
use switchboard_store::groups::GroupRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, NotFound, Unprocessable};
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::domain::groups::{group_name, no_such_group, require_admin};
use crate::error::ApiError;

const BODY_LIMIT: usize = 256 * 1024;

/// The API view of a group.
pub fn view(g: GroupRecord) -> Group {
    Group {
        name: g.name,
        description: g.description,
        members: g.members,
        created_at: rfc3339(g.created_at),
        updated_at: rfc3339(g.updated_at),
    }
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    /// 1 to 64 letters, digits or `-_.`, starting with a letter or digit.
    pub name: String,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    pub name: String,
    /// A user id of the tenant.
    pub user: String,
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

/// Lists the tenant's groups by name (owners and admins).
#[utoipa::path(get, path = "/v1/groups", operation_id = "listGroups", params(ListQuery),
    responses((status = 200, description = "A page of groups, by name", body = GroupList),
              (status = 403, response = Forbidden)))]
pub async fn list(State(state): State<AppState>, auth: Auth, Q(q): Q<ListQuery>) -> Result<Json<GroupList>, ApiError> {
    require_admin(&auth.0)?;
    let limit = super::page_limit(q.limit)?;
    if let Some(c) = &q.cursor
        && switchboard_core::api::check_group_name(c).is_err()
    {
        return Err(super::bad_cursor("cursor"));
    }
    let page = state.store.list_groups(auth.0.tenant.as_str(), q.cursor, limit).await?;
    let next_cursor = (page.len() == limit).then(|| page.last().map(|g| g.name.clone())).flatten();
    Ok(Json(GroupList { groups: page.into_iter().map(view).collect(), next_cursor }))
}

/// One group with its members (owners and admins).
#[utoipa::path(get, path = "/v1/groups/{name}", operation_id = "getGroup", params(GroupPath),
    responses((status = 200, description = "The group", body = Group),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<Json<Group>, ApiError> {
    require_admin(&auth.0)?;
    group_name(&name)?;
    let g = state.store.get_group(auth.0.tenant.as_str(), &name).await?.ok_or_else(|| no_such_group(&name))?;
    Ok(Json(view(g)))
}

/// Creates the group or replaces its description and members (owners and admins). Every
/// member must be a user of the tenant; an unknown one is a 422 naming `members[i]`, and
/// nothing changes.
#[utoipa::path(put, path = "/v1/groups/{name}", operation_id = "putGroup", params(GroupPath), request_body = PutGroup,
    responses((status = 200, description = "The group as stored (replaced)", body = Group),
              (status = 201, description = "The group as stored (created)", body = Group),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    require_admin(&auth.0)?;
    let req: PutGroup = parse_json(body, BODY_LIMIT).await?;
    let (g, created) = state.groups.put(&auth.0, &name, req).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view(g))))
}

/// Removes a group (owners and admins).
#[utoipa::path(delete, path = "/v1/groups/{name}", operation_id = "deleteGroup", params(GroupPath),
    responses((status = 204, description = "Removed"),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.groups.remove(&auth.0, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a user to a group (owners and admins); adding a member again changes nothing.
#[utoipa::path(put, path = "/v1/groups/{name}/members/{user}", operation_id = "addGroupMember", params(MemberPath),
    responses((status = 200, description = "The group as it is now", body = Group),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, user)): Path<(String, String)>,
) -> Result<Json<Group>, ApiError> {
    state.groups.add_member(&auth.0, &name, &user).await?;
    let g = state.store.get_group(auth.0.tenant.as_str(), &name).await?.ok_or_else(|| no_such_group(&name))?;
    Ok(Json(view(g)))
}

/// Takes a user out of a group (owners and admins); 404 if it was not a member.
#[utoipa::path(delete, path = "/v1/groups/{name}/members/{user}", operation_id = "removeGroupMember", params(MemberPath),
    responses((status = 204, description = "Taken out"),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !state.groups.remove_member(&auth.0, &name, &user).await? {
        return Err(ApiError::NotFound(format!(
            "user {user} is not a member of group `{name}`; see `switchboard group show {name}`"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, put, remove))
        .routes(routes!(add_member, remove_member))
}
