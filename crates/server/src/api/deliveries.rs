//! `/v1/deliveries` and `/v1/dead-letters`: find deliveries, and replay or purge dead ones.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde::Deserialize;
use switchboard_core::api::{
    DeadLetterList, DeadLetterResult, DeadLetterSelection, DeliveryItem, DeliveryList, DeliveryState,
};
use switchboard_core::time::{parse_rfc3339, rfc3339};
use switchboard_store::{DeliveryFilter, DeliveryRow};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, Unprocessable};
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `pending`, `leased`, `delivered`, `acked`, `failed`, `dead` or `expired` (on
    /// `/v1/dead-letters` only `dead`).
    state: Option<DeliveryState>,
    /// Recipient address (`agent:<id>`); agents see only their own.
    recipient: Option<String>,
    /// Only messages accepted at or after this time (RFC 3339 in UTC, e.g. `2026-11-25T10:00:00Z`).
    #[param(format = DateTime)]
    since: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Agents act on deliveries to themselves only; the admin on any.
fn scope(auth: &Auth, recipient: Option<String>) -> Result<Option<String>, ApiError> {
    if auth.0.is_admin() {
        return Ok(recipient);
    }
    let me = auth.0.recipient().map(|r| r.to_string()).unwrap_or_default();
    match recipient {
        Some(r) if r != me => Err(ApiError::Forbidden(
            "an agent sees only deliveries to itself; leave out `recipient`, or use the admin token".into(),
        )),
        _ => Ok(Some(me)),
    }
}

fn since(s: Option<&str>) -> Result<Option<i64>, ApiError> {
    s.map(|s| {
        parse_rfc3339(s).ok_or_else(|| {
            ApiError::InvalidQuery(format!("`since` must be an RFC 3339 time such as 2026-11-25T10:00:00Z, not `{s}`"))
        })
    })
    .transpose()
}

fn item(d: DeliveryRow) -> DeliveryItem {
    DeliveryItem {
        message_id: d.message_id,
        from: d.sender,
        recipient: d.recipient,
        state: d.state,
        attempts: d.attempts,
        created_at: rfc3339(d.created_at),
        updated_at: rfc3339(d.updated_at),
        last_error: d.last_error,
    }
}

async fn page(
    state: &AppState,
    auth: &Auth,
    q: DeliveryQuery,
) -> Result<(Vec<DeliveryItem>, Option<String>), ApiError> {
    let limit = super::page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(|c| c.parse::<i64>().map_err(|_| super::bad_cursor("cursor"))).transpose()?;
    let filter = DeliveryFilter {
        state: q.state,
        recipient: scope(auth, q.recipient)?,
        message_ids: vec![],
        since: since(q.since.as_deref())?,
        after,
        limit,
    };
    let rows = state.store.list_deliveries(auth.0.tenant.as_str(), filter).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|(seq, _)| seq.to_string())).flatten();
    Ok((rows.into_iter().map(|(_, d)| item(d)).collect(), next))
}

/// Lists deliveries, oldest first, by state, recipient and time.
#[utoipa::path(get, path = "/v1/deliveries", operation_id = "listDeliveries", params(DeliveryQuery),
    responses((status = 200, description = "A page of deliveries, oldest first", body = DeliveryList),
              (status = 403, response = Forbidden)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Q(q): Q<DeliveryQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let (deliveries, next_cursor) = page(&state, &auth, q).await?;
    Ok(Json(DeliveryList { deliveries, next_cursor }))
}

/// Lists dead deliveries (dead letters): attempts exhausted, endpoint gone, or recipient deleted.
#[utoipa::path(get, path = "/v1/dead-letters", operation_id = "listDeadLetters", params(DeliveryQuery),
    responses((status = 200, description = "A page of dead deliveries, oldest first", body = DeadLetterList),
              (status = 403, response = Forbidden)))]
pub async fn dead_letters(
    State(state): State<AppState>,
    auth: Auth,
    Q(mut q): Q<DeliveryQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    if q.state.is_some_and(|s| s != DeliveryState::Dead) {
        return Err(ApiError::InvalidQuery(
            "dead letters are always in state `dead`; use /v1/deliveries for others".into(),
        ));
    }
    q.state = Some(DeliveryState::Dead);
    let (dead_letters, next_cursor) = page(&state, &auth, q).await?;
    Ok(Json(DeadLetterList { dead_letters, next_cursor }))
}

fn selection(auth: &Auth, s: DeadLetterSelection) -> Result<DeliveryFilter, ApiError> {
    let since = s
        .since
        .as_deref()
        .map(|t| {
            parse_rfc3339(t).ok_or_else(|| {
                ApiError::fields(vec![switchboard_core::api::FieldError {
                    path: "since".into(),
                    message: "must be an RFC 3339 time such as 2026-11-25T10:00:00Z".into(),
                }])
            })
        })
        .transpose()?;
    Ok(DeliveryFilter {
        state: Some(DeliveryState::Dead),
        recipient: scope(auth, s.recipient)?,
        message_ids: s.message_ids,
        since,
        after: None,
        limit: usize::MAX,
    })
}

/// Makes dead deliveries pending again, with a fresh attempt count: one, a filter, or all.
#[utoipa::path(post, path = "/v1/dead-letters:replay", operation_id = "replayDeadLetters",
    request_body = DeadLetterSelection,
    responses((status = 200, description = "How many deliveries are pending again", body = DeadLetterResult),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn replay(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<DeadLetterResult>, ApiError> {
    let sel: DeadLetterSelection = parse_json(body, 1024 * 1024).await?;
    let filter = selection(&auth, sel)?;
    let count = state.deliveries.replay_dead(&auth.0, filter).await?;
    Ok(Json(DeadLetterResult { count }))
}

/// Deletes dead deliveries: one, a filter, or all.
#[utoipa::path(post, path = "/v1/dead-letters:purge", operation_id = "purgeDeadLetters",
    request_body = DeadLetterSelection,
    responses((status = 200, description = "How many deliveries were deleted", body = DeadLetterResult),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn purge(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<DeadLetterResult>, ApiError> {
    let sel: DeadLetterSelection = parse_json(body, 1024 * 1024).await?;
    let filter = selection(&auth, sel)?;
    let count = state.deliveries.purge_dead(&auth.0, filter).await?;
    Ok(Json(DeadLetterResult { count }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
        .routes(routes!(purge))
}
