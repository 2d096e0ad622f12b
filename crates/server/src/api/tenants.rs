//! `/v1/tenants`: the platform operator creates and lists tenants. Only the bootstrap admin
//! token may (403 for a tenant's admin token and for agents); the decisions are in
//! `domain/tenants.rs`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{CreateTenant, Tenant, TenantCreated, TenantList};
use switchboard_core::time::rfc3339;
use switchboard_store::TenantRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Conflict, Forbidden, Unprocessable};
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::domain::tenants;
use crate::error::ApiError;

fn view(t: TenantRecord) -> Tenant {
    Tenant { id: t.id, name: t.name, created_at: rfc3339(t.created_at) }
}

/// Creates a tenant (platform operator only). Its admin token is in this answer only.
#[utoipa::path(post, path = "/v1/tenants", operation_id = "createTenant", request_body = CreateTenant,
    responses((status = 201, description = "Created; the tenant's admin token is shown only here", body = TenantCreated),
              (status = 403, response = Forbidden), (status = 409, response = Conflict),
              (status = 422, response = Unprocessable)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<TenantCreated>), ApiError> {
    tenants::require_operator(&auth.0)?;
    let req: CreateTenant = parse_json(body, 64 * 1024).await?;
    let (record, admin_token) = tenants::create(state.store.as_ref(), &auth.0, req).await?;
    Ok((StatusCode::CREATED, Json(TenantCreated { tenant: view(record), admin_token })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantQuery {
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists tenants by id (platform operator only).
#[utoipa::path(get, path = "/v1/tenants", operation_id = "listTenants", params(TenantQuery),
    responses((status = 200, description = "A page of tenants, by id", body = TenantList),
              (status = 403, response = Forbidden)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Q(q): Q<TenantQuery>,
) -> Result<Json<TenantList>, ApiError> {
    tenants::require_operator(&auth.0)?;
    let limit = super::page_limit(q.limit)?;
    // A tenant id: `default` or a UUID.
    let cursor_ok =
        |c: &str| !c.is_empty() && c.len() <= 64 && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if q.cursor.as_deref().is_some_and(|c| !cursor_ok(c)) {
        return Err(super::bad_cursor("cursor"));
    }
    let page = tenants::list(state.store.as_ref(), &auth.0, q.cursor, limit).await?;
    let next_cursor = (page.len() == limit).then(|| page.last().map(|t| t.id.clone())).flatten();
    Ok(Json(TenantList { tenants: page.into_iter().map(view).collect(), next_cursor }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list))
}
