//! `/v1/approvals`: questions put to people, answered under a policy before a deadline (see
//! `domain::approvals`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{ApprovalEnvelope, ApprovalList, CreateApproval, DecideApproval, FieldError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Conflict, Forbidden, NotFound, Unprocessable};
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::domain::approvals::view;
use crate::error::ApiError;

const BODY_LIMIT: usize = 1024 * 1024;
const STATES: [&str; 6] = ["pending", "approved", "rejected", "answered", "expired", "canceled"];

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ApprovalPath {
    /// The approval's id.
    pub id: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `pending`, `approved`, `rejected`, `answered`, `expired` or `canceled`.
    state: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Asks people for an approval: stores it and delivers the request message to every decider.
#[utoipa::path(post, path = "/v1/approvals", operation_id = "createApproval", request_body = CreateApproval,
    responses((status = 201, description = "Stored; the request is delivered to the deciders", body = ApprovalEnvelope),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<ApprovalEnvelope>), ApiError> {
    let req: CreateApproval = parse_json(body, BODY_LIMIT).await?;
    let (approval, _) = state.approvals.create(&auth.0, req, None).await?;
    Ok((StatusCode::CREATED, Json(ApprovalEnvelope { approval })))
}

/// The approvals the caller may see (administrators: all; others: those they asked or decide),
/// newest first.
#[utoipa::path(get, path = "/v1/approvals", operation_id = "listApprovals", params(ListQuery),
    responses((status = 200, description = "A page of approvals, newest first", body = ApprovalList),
              (status = 422, response = Unprocessable)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Q(q): Q<ListQuery>,
) -> Result<Json<ApprovalList>, ApiError> {
    let limit = super::page_limit(q.limit)?;
    if let Some(s) = &q.state
        && !STATES.contains(&s.as_str())
    {
        return Err(ApiError::params(vec![FieldError {
            path: "state".into(),
            message: format!("use one of: {}", STATES.join(", ")),
        }]));
    }
    if let Some(c) = &q.cursor
        && (c.is_empty() || c.len() > 64 || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'))
    {
        return Err(super::bad_cursor("cursor"));
    }
    let (page, next_cursor) = state.approvals.list(&auth.0, q.state, q.cursor, limit).await?;
    Ok(Json(ApprovalList { approvals: page.iter().map(view).collect(), next_cursor }))
}

/// One approval, with its deciders, answers and outcome.
#[utoipa::path(get, path = "/v1/approvals/{id}", operation_id = "getApproval", params(ApprovalPath),
    responses((status = 200, description = "The approval", body = ApprovalEnvelope), (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ApprovalEnvelope>, ApiError> {
    let a = state.approvals.get(&auth.0, &id).await?;
    Ok(Json(ApprovalEnvelope { approval: view(&a) }))
}

/// A decider answers. 409 once the approval is settled, expired or canceled, or when the
/// caller already answered.
#[utoipa::path(post, path = "/v1/approvals/{id}/decide", operation_id = "decideApproval", params(ApprovalPath),
    request_body = DecideApproval,
    responses((status = 200, description = "The approval after the answer", body = ApprovalEnvelope),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
pub async fn decide(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<ApprovalEnvelope>, ApiError> {
    let req: DecideApproval = parse_json(body, BODY_LIMIT).await?;
    let approval = state.approvals.decide(&auth.0, &id, req).await?;
    Ok(Json(ApprovalEnvelope { approval }))
}

/// The requester (or an administrator) cancels a pending approval.
#[utoipa::path(post, path = "/v1/approvals/{id}/cancel", operation_id = "cancelApproval", params(ApprovalPath),
    responses((status = 200, description = "The canceled approval", body = ApprovalEnvelope),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 409, response = Conflict)))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ApprovalEnvelope>, ApiError> {
    let approval = state.approvals.cancel(&auth.0, &id).await?;
    Ok(Json(ApprovalEnvelope { approval }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(decide))
        .routes(routes!(cancel))
}
