//! `/v1/audit` and `/v1/audit:export`: the tenant's audit log, read by its admin. Plain reads
//! of the store; entries are written by the domain, in the transaction of their change.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_core::api::{AuditEvent, AuditPage, AuditSettings, FieldError};
use switchboard_core::audit::AuditAction;
use switchboard_core::time::parse_rfc3339;
use switchboard_store::Store;
use switchboard_store::audit::AuditFilter;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{Forbidden, Unprocessable};
use super::{AppState, Q};
use crate::api::auth::Auth;
use crate::error::ApiError;

/// The media type of `GET /v1/audit:export`: one JSON object per line.
pub const NDJSON: &str = "application/x-ndjson";

/// Entries read from the store per page of an export.
const EXPORT_PAGE: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries by this actor: `operator`, `admin`, `agent:<id>` or `user:<id>`.
    actor: Option<String>,
    /// Only entries of this action, e.g. `agent.register`.
    #[param(schema_with = action_schema, required = false)]
    action: Option<String>,
    /// Only entries at or after this time (RFC 3339 in UTC, e.g. `2026-11-25T10:00:00Z`).
    #[param(format = DateTime)]
    since: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `action` as the document states it: one of the actions the hub records.
fn action_schema() -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(AuditAction::ALL.map(AuditAction::as_str))).build()
}

fn param(path: &str, message: String) -> ApiError {
    ApiError::params(vec![FieldError { path: path.to_owned(), message }])
}

/// The store's filter for a query, every parameter checked and a wrong one named.
fn filter(q: AuditQuery) -> Result<AuditFilter, ApiError> {
    let limit = super::page_limit(q.limit)?;
    if let Some(a) = q.action.as_deref().filter(|a| AuditAction::parse(a).is_none()) {
        let known: Vec<&str> = AuditAction::ALL.map(AuditAction::as_str).to_vec();
        return Err(param("action", format!("`{a}` is not an audited action; use one of {}", known.join(", "))));
    }
    let since = q
        .since
        .as_deref()
        .map(|s| {
            parse_rfc3339(s).ok_or_else(|| {
                param("since", format!("must be an RFC 3339 time such as 2026-11-25T10:00:00Z, not `{s}`"))
            })
        })
        .transpose()?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| super::bad_cursor("cursor")))
        .transpose()?;
    Ok(AuditFilter { actor: q.actor, action: q.action, since, after, limit })
}

/// Lists the tenant's audit log in `seq` order, by actor, action and time (admin).
#[utoipa::path(get, path = "/v1/audit", operation_id = "listAudit", params(AuditQuery),
    responses((status = 200, description = "A page of audit entries in `seq` order", body = AuditPage),
              (status = 403, response = Forbidden)))]
pub async fn list(State(state): State<AppState>, auth: Auth, Q(q): Q<AuditQuery>) -> Result<Json<AuditPage>, ApiError> {
    auth.require_admin()?;
    let filter = filter(q)?;
    let limit = filter.limit;
    let events = state.store.list_audit(auth.0.tenant.as_str(), filter).await?;
    let next_cursor = (events.len() == limit).then(|| events.last().map(|e| e.seq.to_string())).flatten();
    Ok(Json(AuditPage { events, next_cursor }))
}

/// Exports the tenant's whole audit log as JSON lines (admin).
///
/// One entry per line, in `seq` order, streamed page by page. An export cut short by a
/// store failure ends the connection without the final chunk, so it cannot be taken for a
/// whole log.
#[utoipa::path(get, path = "/v1/audit:export", operation_id = "exportAudit",
    responses((status = 200, description = "Every entry, one JSON object per line, in `seq` order; \
                 check the chain with `prev_hash` and `hash`", content_type = "application/x-ndjson", body = AuditEvent),
              (status = 403, response = Forbidden)))]
pub async fn export(State(state): State<AppState>, auth: Auth) -> Result<Response, ApiError> {
    auth.require_admin()?;
    let tenant = auth.0.tenant.as_str().to_owned();
    // The first page is read before answering, so that a store that cannot be read is a
    // 503 problem rather than an empty log.
    let first = state.store.export_audit(&tenant, 0, EXPORT_PAGE).await?;
    let pages = Pages { store: state.store.clone(), tenant, next: Some(first) };
    let body = Body::from_stream(futures_util::stream::unfold(pages, Pages::next));
    Ok(([(header::CONTENT_TYPE, NDJSON)], body).into_response())
}

/// The pages of an export still to send: `next` is the page read and not yet sent (`None`
/// once the last has been).
struct Pages {
    store: Arc<dyn Store>,
    tenant: String,
    next: Option<Vec<AuditEvent>>,
}

impl Pages {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Pages)> {
        let page = self.next.take()?;
        let last = page.last()?.seq;
        if page.len() == EXPORT_PAGE {
            match self.store.export_audit(&self.tenant, last, EXPORT_PAGE).await {
                Ok(p) => self.next = Some(p),
                Err(e) => {
                    tracing::warn!(tenant = %self.tenant, after = last, error = %e, "audit export cut short");
                    let cut = std::io::Error::other(format!("the store failed after entry {last}: {e}"));
                    return Some((Err(cut), self));
                }
            }
        }
        Some((Ok(lines(&page)), self))
    }
}

/// A page as JSON lines.
fn lines(page: &[AuditEvent]) -> Bytes {
    let mut out = Vec::with_capacity(page.len() * 512);
    for e in page {
        // Serializing a plain struct of strings, numbers and a JSON value cannot fail.
        if serde_json::to_writer(&mut out, e).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}

/// What the tenant's audit log records beyond changes (admin).
#[utoipa::path(get, path = "/v1/audit/settings", operation_id = "getAuditSettings",
    responses((status = 200, description = "The tenant's audit settings", body = AuditSettings),
              (status = 403, response = Forbidden)))]
pub async fn get_settings(State(state): State<AppState>, auth: Auth) -> Result<Json<AuditSettings>, ApiError> {
    auth.require_admin()?;
    let sends = state.store.audit_sends(auth.0.tenant.as_str()).await?;
    Ok(Json(AuditSettings { sends }))
}

/// Turns auditing of sends and acks on or off (admin); the change is itself audited. This
/// node follows it at once, other nodes within 5 seconds.
#[utoipa::path(put, path = "/v1/audit/settings", operation_id = "putAuditSettings", request_body = AuditSettings,
    responses((status = 200, description = "The settings now in force", body = AuditSettings),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<Json<AuditSettings>, ApiError> {
    auth.require_admin()?;
    let settings: AuditSettings = super::parse_json(body, 4 * 1024).await?;
    state.send_audit.set(&auth.0, settings.sends).await?;
    Ok(Json(settings))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(export)).routes(routes!(get_settings, put_settings))
}
