//! `/v1/messages`: accept (validate, route, commit) and inspect messages.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_core::api::{
    BatchAccepted, BatchItem, Delivery, DeliveryState, MessageAccepted, MessageKind, MessageReply, MessageStatus,
    Problem, PushAttempt, SendBatch, SendMessage,
};
use switchboard_core::time::rfc3339;
use switchboard_store::{AcceptOutcome, DeliveryRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Conflict, Forbidden, MessagePath, NotFound, ReplyTimeout, Unprocessable, Wait};
use super::{Q, read_json};
use crate::api::auth::Auth;
use crate::domain::delivery::message_view;
use crate::domain::reply::{self, DEFAULT_REPLY_WAIT_MS, MAX_REPLY_WAIT_MS};
use crate::error::ApiError;

/// Most messages in one batch.
pub const MAX_BATCH: usize = 1000;

fn answer(outcome: AcceptOutcome) -> Result<MessageAccepted, ApiError> {
    match outcome {
        AcceptOutcome::Accepted { id, recipients, created_at } => Ok(MessageAccepted {
            id,
            status: "accepted".into(),
            recipients,
            created_at: rfc3339(created_at),
            duplicate: false,
            deliveries: None,
        }),
        AcceptOutcome::Duplicate { id, recipients, created_at } => Ok(MessageAccepted {
            id,
            status: "accepted".into(),
            recipients,
            created_at: rfc3339(created_at),
            duplicate: true,
            deliveries: None,
        }),
        AcceptOutcome::KeyReused { id } => Err(ApiError::Conflict(format!(
            "this idempotency key was already used by this sender for a different message ({id}); use a new key for a new message"
        ))),
    }
}

pub(crate) fn attempt_view(a: switchboard_store::push::AttemptRecord) -> PushAttempt {
    PushAttempt {
        recipient: a.recipient,
        attempt: a.attempt,
        at: rfc3339(a.at),
        duration_ms: a.duration_ms,
        status_code: a.status_code,
        error_kind: a.error_kind,
        response_excerpt: a.excerpt,
    }
}

/// The API view of a delivery.
pub fn delivery_view(d: DeliveryRecord) -> Delivery {
    Delivery {
        recipient: d.recipient,
        state: d.state,
        attempts: d.attempts,
        updated_at: rfc3339(d.updated_at),
        delivered_at: d.delivered_at.map(rfc3339),
        acked_at: d.acked_at.map(rfc3339),
        lease_expires_at: d.lease_expires_at.filter(|_| !d.state.is_final()).map(rfc3339),
        last_error: d.last_error,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SendQuery {
    /// `delivered`: answer once every recipient has been handed the message (or `wait_ms`
    /// passes). `reply`: answer 200 with the first reply to the message (a message with
    /// `in_reply_to` = its id), or 504 `reply_timeout` after `timeout_ms`; agents and people
    /// only.
    #[param(value_type = Option<Wait>, inline)]
    wait: Option<String>,
    /// How long `wait=delivered` may take, milliseconds (default 30000, at most 120000).
    #[param(minimum = 0, maximum = 120000)]
    wait_ms: Option<u64>,
    /// How long `wait=reply` may take, milliseconds (default 30000, at most 300000).
    #[param(minimum = 0, maximum = 300000)]
    timeout_ms: Option<u64>,
}

/// What a send waits for before answering.
enum Waiting {
    Delivered(u64),
    Reply(u64),
}

impl SendQuery {
    fn waiting(&self, by: &switchboard_core::Principal) -> Result<Option<Waiting>, ApiError> {
        match self.wait.as_deref() {
            None => Ok(None),
            Some("delivered") => {
                Ok(Some(Waiting::Delivered(super::wait_ms(self.wait_ms, DELIVERED_WAIT_MS.0, DELIVERED_WAIT_MS.1)?)))
            }
            Some("reply") => {
                if by.recipient().is_none() {
                    return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
                        path: "wait".into(),
                        message: "only an agent or a person can wait for a reply (the reply is delivered to the \
                                  sender's inbox, and the admin has none); send without `wait=reply`"
                            .into(),
                    }]));
                }
                match self.timeout_ms.unwrap_or(DEFAULT_REPLY_WAIT_MS) {
                    ms if ms > MAX_REPLY_WAIT_MS => Err(ApiError::params(vec![switchboard_core::api::FieldError {
                        path: "timeout_ms".into(),
                        message: format!(
                            "must be at most {MAX_REPLY_WAIT_MS} (milliseconds); wait less, then read a late reply from your inbox"
                        ),
                    }])),
                    ms => Ok(Some(Waiting::Reply(ms))),
                }
            }
            Some(other) => Err(ApiError::InvalidQuery(format!(
                "`wait={other}` is not understood; use `wait=delivered` or `wait=reply`"
            ))),
        }
    }
}

/// Default and most of `wait_ms` with `?wait=delivered`.
const DELIVERED_WAIT_MS: (u64, u64) = (30_000, 120_000);

/// Polls the deliveries until each is handed out or final. Opt-in and bounded, so a poll with
/// back-off is simpler than a per-message notification on the hot path.
async fn wait_delivered(state: &AppState, tenant: &str, id: &str, wait_ms: u64) -> Result<Vec<Delivery>, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut pause = Duration::from_millis(2);
    loop {
        let (_, deliveries) = state
            .store
            .get_message(tenant, id)
            .await?
            .ok_or_else(|| ApiError::Internal(format!("message {id} vanished after it was accepted")))?;
        let done = deliveries.iter().all(|d| d.state == DeliveryState::Delivered || d.state.is_final());
        if done || tokio::time::Instant::now() >= deadline {
            return Ok(deliveries.into_iter().map(delivery_view).collect());
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(tokio::time::Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Sends a message. 202 means it is committed to disk and will be delivered. With
/// `?wait=reply`, 200 with the message and its first reply, or 504 `reply_timeout`.
#[utoipa::path(post, path = "/v1/messages", operation_id = "sendMessage", request_body = SendMessage, params(SendQuery),
    responses((status = 200, description = "With `wait=reply`: the message and the first reply to it", body = MessageReply),
              (status = 202, description = "Committed to disk; it will be delivered", body = MessageAccepted),
              (status = 403, response = Forbidden), (status = 409, response = Conflict),
              (status = 422, response = Unprocessable), (status = 504, response = ReplyTimeout)))]
pub async fn send(
    State(state): State<AppState>,
    auth: Auth,
    Q(q): Q<SendQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let waiting = q.waiting(&auth.0)?;
    // `prepare` applies the string rule (`validate::send_message`).
    let req: SendMessage = read_json(body, state.config.max_message_bytes).await?;
    if req.kind == Some(MessageKind::ApprovalRequest) {
        return send_approval(&state, &auth.0, req, waiting).await;
    }
    let m = state.acceptor.prepare(&auth.0, req).await?;
    let outcome = state
        .acceptor
        .commit(&auth.0, vec![m])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("the store answered no outcome".into()))?;
    let mut accepted = answer(outcome)?;
    match waiting {
        None => {}
        Some(Waiting::Delivered(ms)) => {
            accepted.deliveries = Some(wait_delivered(&state, auth.0.tenant.as_str(), &accepted.id, ms).await?);
        }
        Some(Waiting::Reply(ms)) => return wait_reply(&state, &auth.0, &accepted.id, ms).await,
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// A send with `kind: "approval_request"`: the approval is stored and its request is the
/// message; `?wait=reply` answers with its outcome.
async fn send_approval(
    state: &AppState,
    by: &switchboard_core::Principal,
    req: SendMessage,
    waiting: Option<Waiting>,
) -> Result<Response, ApiError> {
    let errors = switchboard_core::validate::strings(&req);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (approval, recipients) = state.approvals.create_from_send(by, req).await?;
    let mut accepted = MessageAccepted {
        id: approval.message_id,
        status: "accepted".into(),
        recipients,
        created_at: approval.created_at,
        duplicate: false,
        deliveries: None,
    };
    match waiting {
        None => {}
        Some(Waiting::Delivered(ms)) => {
            accepted.deliveries = Some(wait_delivered(state, by.tenant.as_str(), &accepted.id, ms).await?);
        }
        Some(Waiting::Reply(ms)) => return wait_reply(state, by, &accepted.id, ms).await,
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// The answer of `?wait=reply`: 200 with the message and its first reply, or 504.
async fn wait_reply(
    state: &AppState,
    by: &switchboard_core::Principal,
    id: &str,
    ms: u64,
) -> Result<Response, ApiError> {
    let store = state.store.as_ref();
    let timeout = Duration::from_millis(ms);
    let reply = reply::await_reply(store, &state.deliveries, by, id, timeout, state.shutdown.clone()).await?;
    let Some(reply) = reply else {
        return Err(ApiError::ReplyTimeout(format!(
            "no reply to message {id} within {ms} ms; the message is stored and stays delivered, and a later reply \
             reaches your inbox like any message"
        )));
    };
    let (message, _) = store
        .get_message(by.tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("message {id} vanished after it was accepted")))?;
    let answer = MessageReply { message: message_view(message)?, reply: message_view(reply)? };
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// Sends many messages in one request and one commit. Each is accepted or refused alone;
/// the answer lists the results in request order.
#[utoipa::path(post, path = "/v1/messages:batch", operation_id = "sendBatch", request_body = SendBatch,
    responses((status = 202, description = "One result per message, in request order", body = BatchAccepted),
              (status = 422, response = Unprocessable)))]
pub async fn send_batch(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<BatchAccepted>), ApiError> {
    let limit = state.config.max_message_bytes.saturating_mul(16);
    // The string rule is applied per message by `prepare`, so only the message at fault is refused.
    let req: SendBatch = read_json(body, limit).await?;
    if req.messages.is_empty() || req.messages.len() > MAX_BATCH {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "messages".into(),
            message: format!("send 1 to {MAX_BATCH} messages per batch"),
        }]));
    }
    let mut results: Vec<Option<Result<MessageAccepted, Problem>>> = Vec::with_capacity(req.messages.len());
    let mut ready = Vec::new();
    let mut slots = Vec::new();
    for (i, m) in req.messages.into_iter().enumerate() {
        match state.acceptor.prepare_sized(&auth.0, m, i).await {
            Ok(nm) => {
                ready.push(nm);
                slots.push(i);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(prefix_paths(e.problem(), i)))),
        }
    }
    if !ready.is_empty() {
        let outcomes = state.acceptor.commit(&auth.0, ready).await?;
        for (slot, outcome) in slots.into_iter().zip(outcomes) {
            results[slot] = Some(answer(outcome).map_err(|e| e.problem()));
        }
    }
    let results = results
        .into_iter()
        .map(|r| match r {
            Some(Ok(a)) => BatchItem::Accepted(a),
            Some(Err(p)) => BatchItem::Refused { error: p },
            None => BatchItem::Refused { error: ApiError::Internal("no outcome".into()).problem() },
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(BatchAccepted { results })))
}

fn prefix_paths(mut p: Problem, i: usize) -> Problem {
    for e in &mut p.errors {
        e.path = if e.path.is_empty() { format!("messages[{i}]") } else { format!("messages[{i}].{}", e.path) };
    }
    p
}

/// A message and the state of each of its deliveries. Visible to its sender, its recipients
/// and the admin.
#[utoipa::path(get, path = "/v1/messages/{id}", operation_id = "getMessage", params(MessagePath),
    responses((status = 200, description = "The message and its deliveries", body = MessageStatus),
              (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<MessageStatus>, ApiError> {
    let not_found = || ApiError::NotFound(format!("message {id} does not exist, or is not visible to you"));
    let (m, deliveries) = state.store.get_message(auth.0.tenant.as_str(), &id).await?.ok_or_else(not_found)?;
    let me = auth.0.sender();
    let visible = auth.0.is_admin() || m.sender == me || deliveries.iter().any(|d| d.recipient == me);
    if !visible {
        return Err(not_found());
    }
    let push_attempts =
        state.store.attempts(auth.0.tenant.as_str(), &id).await?.into_iter().map(attempt_view).collect();
    let routing = match m.to.as_str() {
        "auto" => crate::domain::autoroute::stored_decision(state.store.as_ref(), auth.0.tenant.as_str(), &id).await?,
        _ => None,
    };
    Ok(Json(MessageStatus {
        message: message_view(m)?,
        deliveries: deliveries.into_iter().map(delivery_view).collect(),
        push_attempts,
        routing,
    }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(send)).routes(routes!(send_batch)).routes(routes!(show))
}
