//! `/v1/conversations`: conversations of agents and people, their participants, their
//! history in one total order, and read markers. Sending to one is an ordinary send to
//! `conversation:<id>`. Who may do what is `domain::conversations`' to say.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{
    Conversation, ConversationCreated, ConversationHistory, ConversationList, CreateConversation, FieldError, MarkRead,
    Participant, ParticipantStatus, PutStatus, ReadMarker,
};
use switchboard_core::time::rfc3339;
use switchboard_store::conversations::{ConversationRecord, HistoryQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unprocessable};
use super::{AppState, Q, parse_json};
use crate::api::auth::Auth;
use crate::error::ApiError;

/// A create names up to 1000 participants of about 50 bytes each.
const BODY_LIMIT: usize = 256 * 1024;

/// `{id}` of a conversation in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConversationPath {
    /// The conversation's id, as returned when it was created.
    pub id: String,
}

/// `{id}` of a conversation and `{address}` of a participant in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ParticipantPath {
    /// The conversation's id.
    pub id: String,
    /// `agent:<id>` or `user:<id>`.
    #[param(pattern = "^(agent|user):[A-Za-z0-9._/@-]{1,200}$")]
    pub address: String,
}

/// The API view of a conversation, with the caller's unread count when it takes part.
fn view(c: ConversationRecord, unread: Option<i64>) -> Conversation {
    Conversation {
        id: c.id,
        title: c.title,
        created_by: c.created_by,
        created_at: rfc3339(c.created_at),
        last_seq: c.last_seq,
        participants: c
            .participants
            .into_iter()
            .map(|p| Participant { address: p.address, read_up_to: p.read_up_to, joined_at: rfc3339(p.joined_at) })
            .collect(),
        unread,
    }
}

/// Creates a conversation. Its creator, when an agent or a person, takes part; the tenant
/// admin may create one without taking part.
#[utoipa::path(post, path = "/v1/conversations", operation_id = "createConversation",
    request_body = CreateConversation,
    responses((status = 201, description = "Created", body = ConversationCreated),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<ConversationCreated>), ApiError> {
    let req: CreateConversation = parse_json(body, BODY_LIMIT).await?;
    let c = state.conversations.create(&auth.0, req).await?;
    let unread = c.participants.iter().any(|p| p.address == auth.0.sender()).then_some(0);
    Ok((StatusCode::CREATED, Json(ConversationCreated { conversation: view(c, unread) })))
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

/// The conversations the caller takes part in (the tenant's administrators: all of the
/// tenant's), in creation order, each with the caller's unread count.
#[utoipa::path(get, path = "/v1/conversations", operation_id = "listConversations", params(ListQuery),
    responses((status = 200, description = "A page of conversations", body = ConversationList)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Q(q): Q<ListQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    let limit = super::page_limit(q.limit)?;
    let after = super::agent_cursor("cursor", q.cursor)?;
    let page = state.conversations.list(&auth.0, after, limit).await?;
    let next_cursor = (page.len() == limit).then(|| page.last().map(|c| c.id.clone())).flatten();
    let mut conversations = Vec::with_capacity(page.len());
    for c in page {
        let unread = state.conversations.unread(&auth.0, &c).await?;
        conversations.push(view(c, unread));
    }
    Ok(Json(ConversationList { conversations, next_cursor }))
}

/// One conversation: its participants with their read markers, its `last_seq`, and the
/// caller's unread count.
#[utoipa::path(get, path = "/v1/conversations/{id}", operation_id = "getConversation", params(ConversationPath),
    responses((status = 200, description = "The conversation", body = Conversation),
              (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let c = state.conversations.get(&auth.0, &id).await?;
    let unread = state.conversations.unread(&auth.0, &c).await?;
    Ok(Json(view(c, unread)))
}

/// Adds a participant (participants and the tenant's administrators). 201 when added; 200
/// when it already took part.
#[utoipa::path(put, path = "/v1/conversations/{id}/participants/{address}", operation_id = "addParticipant",
    params(ParticipantPath),
    responses((status = 201, description = "Added: the conversation as it is now", body = Conversation),
              (status = 200, description = "It already took part: the conversation", body = Conversation),
              (status = 400, response = BadRequest), (status = 403, response = Forbidden),
              (status = 404, response = NotFound), (status = 409, response = Conflict),
              (status = 422, response = Unprocessable)))]
pub async fn add(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, address)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Conversation>), ApiError> {
    let added = state.conversations.add(&auth.0, &id, &address).await?;
    let c = state.conversations.get(&auth.0, &id).await?;
    let unread = state.conversations.unread(&auth.0, &c).await?;
    Ok((if added { StatusCode::CREATED } else { StatusCode::OK }, Json(view(c, unread))))
}

/// Removes a participant (participants, themselves included, and the tenant's
/// administrators). A removed participant no longer receives the conversation's messages
/// and no longer reads its history.
#[utoipa::path(delete, path = "/v1/conversations/{id}/participants/{address}", operation_id = "removeParticipant",
    params(ParticipantPath),
    responses((status = 204, description = "Removed"), (status = 403, response = Forbidden),
              (status = 404, response = NotFound)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, address)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.conversations.remove(&auth.0, &id, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// A message id: only that message and the messages replying to it, directly or through
    /// other replies.
    thread: Option<String>,
}

/// The history in the conversation's one total order (`seq` 1, 2, 3, …), or one thread of it.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", operation_id = "conversationHistory",
    params(ConversationPath, HistoryParams),
    responses((status = 200, description = "A page of the history, in seq order", body = ConversationHistory),
              (status = 404, response = NotFound)))]
pub async fn history(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Q(q): Q<HistoryParams>,
) -> Result<Json<ConversationHistory>, ApiError> {
    let limit = super::page_limit(q.limit)?;
    let after_seq = match q.cursor {
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| super::bad_cursor("cursor"))?,
        None => 0,
    };
    if let Some(t) = &q.thread
        && (t.is_empty() || t.len() > switchboard_core::validate::MAX_KEY_LEN)
    {
        return Err(ApiError::params(vec![FieldError {
            path: "thread".into(),
            message: "must be the id of a message of the conversation".into(),
        }]));
    }
    let q = HistoryQuery { after_seq, limit, thread: q.thread };
    let messages = state.conversations.history(&auth.0, &id, q).await?;
    let next_cursor = (messages.len() == limit).then(|| messages.last().map(|m| m.seq.to_string())).flatten();
    Ok(Json(ConversationHistory { messages, next_cursor }))
}

/// Marks the conversation read up to a `seq` for the caller (participants only). The marker
/// only moves forward: a lower `up_to` leaves it where it is.
#[utoipa::path(post, path = "/v1/conversations/{id}/read", operation_id = "markConversationRead",
    params(ConversationPath), request_body = MarkRead,
    responses((status = 200, description = "The caller's marker as it is now", body = ReadMarker),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 422, response = Unprocessable)))]
pub async fn read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<ReadMarker>, ApiError> {
    let req: MarkRead = parse_json(body, 1024).await?;
    let (participant, read_up_to, unread) = state.conversations.mark_read(&auth.0, &id, req.up_to).await?;
    Ok(Json(ReadMarker { conversation_id: id, participant, read_up_to, unread }))
}

/// `PUT /v1/conversations/{id}/status`: what the caller is doing, shown to the people in the
/// conversation until it expires.
#[utoipa::path(put, path = "/v1/conversations/{id}/status", operation_id = "putConversationStatus",
    params(ConversationPath), request_body = PutStatus,
    responses((status = 200, description = "The status as set", body = ParticipantStatus),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 422, response = Unprocessable)))]
pub async fn put_status(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<ParticipantStatus>, ApiError> {
    let req: PutStatus = parse_json(body, 4096).await?;
    let set = state.conversations.set_status(&auth.0, &id, Some(req)).await?;
    set.map(Json).ok_or_else(|| ApiError::Internal("a status was set but none came back".into()))
}

/// `DELETE /v1/conversations/{id}/status`: clears the caller's status.
#[utoipa::path(delete, path = "/v1/conversations/{id}/status", operation_id = "deleteConversationStatus",
    params(ConversationPath),
    responses((status = 204, description = "Cleared (or there was none)"),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn clear_status(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.conversations.set_status(&auth.0, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(add, remove))
        .routes(routes!(history))
        .routes(routes!(read))
        .routes(routes!(put_status, clear_status))
}
