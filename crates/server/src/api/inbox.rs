//! `/v1/inbox`: long-poll pull with leases, ack and nack.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde::Deserialize;
use switchboard_core::api::{AckRequest, AckResult, Inbox, NackRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::Forbidden;
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::domain::delivery::{Next, inbox_view};
use crate::error::ApiError;

const MAX_WAIT_MS: u64 = 60_000;
const MAX_IDS: usize = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Wait up to this long for a message when none is due, milliseconds (0 to 60000; default 0).
    #[param(minimum = 0, maximum = 60000)]
    wait_ms: Option<u64>,
    /// Most messages to return (1 to 1000; default 10).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Lease length: how long before an unacknowledged message is delivered again,
    /// milliseconds (100 to 43200000; default: the node's visibility timeout).
    #[param(minimum = 100, maximum = 43200000)]
    visibility_ms: Option<u64>,
}

/// Leases the caller's due messages, in accept order. Unacknowledged messages come back
/// after their lease with a higher `attempt`.
#[utoipa::path(get, path = "/v1/inbox", operation_id = "fetchInbox", params(InboxQuery),
    responses((status = 200, description = "Leased messages (none when `wait_ms` passed first)", body = Inbox),
              (status = 403, response = Forbidden)))]
pub async fn fetch(State(state): State<AppState>, auth: Auth, Q(q): Q<InboxQuery>) -> Result<Json<Inbox>, ApiError> {
    auth.require_inbox()?;
    let wait_ms = super::wait_ms(q.wait_ms, 0, MAX_WAIT_MS)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::InvalidQuery("`limit` must be between 1 and 1000".into()));
    }
    let lease_ms = q.visibility_ms.unwrap_or(state.config.visibility_timeout_ms);
    if !(100..=12 * 3600 * 1000).contains(&lease_ms) {
        return Err(ApiError::InvalidQuery("`visibility_ms` must be between 100 and 43200000".into()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let _slot = state.access.open_stream(&auth.0).await?;
    let mut consumer = state.deliveries.consumer(auth.0, state.shutdown.clone())?;
    let messages = match consumer.next(limit, lease_ms, tokio::time::sleep_until(deadline)).await? {
        Next::Leased(batch) => batch.into_iter().map(inbox_view).collect::<Result<_, _>>()?,
        Next::Woken | Next::Other(()) | Next::Stopped => Vec::new(),
    };
    Ok(Json(Inbox { messages }))
}

fn check_ids(ids: &[String]) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "ids".into(),
            message: format!("give 1 to {MAX_IDS} message ids"),
        }]));
    }
    Ok(())
}

/// Acknowledges messages: they will not be delivered again.
#[utoipa::path(post, path = "/v1/inbox/ack", operation_id = "ack", request_body = AckRequest,
    responses((status = 200, description = "Which ids were acknowledged, which ignored", body = AckResult),
              (status = 403, response = Forbidden)))]
pub async fn ack(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<AckResult>, ApiError> {
    auth.require_inbox()?;
    let req: AckRequest = parse_json(body, 1024 * 1024).await?;
    check_ids(&req.ids)?;
    let (ids, ignored) = state.deliveries.ack(&auth.0, req.ids).await?;
    Ok(Json(AckResult { ids, ignored }))
}

/// Gives messages back: they are delivered again after `retry_in_ms` (default at once).
#[utoipa::path(post, path = "/v1/inbox/nack", operation_id = "nack", request_body = NackRequest,
    responses((status = 200, description = "Which ids were given back, which ignored", body = AckResult),
              (status = 403, response = Forbidden)))]
pub async fn nack(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<AckResult>, ApiError> {
    auth.require_inbox()?;
    let req: NackRequest = parse_json(body, 1024 * 1024).await?;
    check_ids(&req.ids)?;
    let (ids, ignored) = state.deliveries.nack(&auth.0, req.ids, req.retry_in_ms.unwrap_or(0)).await?;
    Ok(Json(AckResult { ids, ignored }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(fetch)).routes(routes!(ack)).routes(routes!(nack))
}
