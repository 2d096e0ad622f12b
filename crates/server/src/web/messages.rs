//! `/messages/{id}`: one message addressed to (or sent by) the person, with its parts, the
//! message it answers, and a reply form (text and files). Opening it marks it read: the
//! person's delivery is acknowledged, as an agent acknowledges what it has handled.
//!
//! A reply is an ordinary send by the person (`Acceptor::prepare` and `commit`, with every
//! check a send has): `in_reply_to` the message, to its conversation when it belongs to one
//! the person takes part in, else to its sender.

use axum::extract::{Multipart, Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use switchboard_core::api::{DeliveryState, FilePart, Part, SendMessage};
use switchboard_core::time::rfc3339;
use switchboard_store::MessageRecord;

use super::common::{Visitor, error_page, part_views, preview, see_other};
use super::render::page;
use crate::api::AppState;
use crate::error::ApiError;

/// The message `id` if the person may see it: it was addressed to them or sent by them.
/// Anything else is "not found", as the API answers for what the caller cannot see.
pub async fn visible(
    state: &AppState,
    v: &Visitor,
    id: &str,
) -> Result<(MessageRecord, Option<DeliveryState>), ApiError> {
    let me = v.address();
    let not_found =
        || ApiError::NotFound(format!("there is no message {id} addressed to you; it may have expired or been erased"));
    let (m, deliveries) = state.store.get_message(v.tenant(), id).await?.ok_or_else(not_found)?;
    let mine = deliveries.iter().find(|d| d.recipient == me).map(|d| d.state);
    if mine.is_none() && m.sender != me {
        return Err(not_found());
    }
    Ok((m, mine))
}

#[derive(Serialize)]
struct Linked {
    id: String,
    from: String,
    preview: String,
}

/// `GET /messages/{id}`.
pub async fn show(State(state): State<AppState>, v: Visitor, Path(id): Path<String>) -> Response {
    let (m, mine) = match visible(&state, &v, &id).await {
        Ok(found) => found,
        Err(e) => return error_page(e),
    };
    // Opening it is reading it.
    if matches!(mine, Some(DeliveryState::Pending | DeliveryState::Leased | DeliveryState::Delivered))
        && let Err(e) = state.deliveries.ack(&v.principal, vec![id.clone()]).await
    {
        return error_page(e);
    }
    let answers = match &m.in_reply_to {
        Some(parent) => match visible(&state, &v, parent).await {
            Ok((p, _)) => Some(Linked { id: p.id, from: p.sender, preview: preview(&p.parts) }),
            Err(_) => None,
        },
        None => None,
    };
    let reply = state.store.first_reply(v.tenant(), &id, &m.sender).await.ok().flatten();
    let reply = reply.map(|r| Linked { id: r.id, from: r.sender, preview: preview(&r.parts) });
    let ctx = minijinja::context! {
        me => v.me(&state).await,
        nav => "inbox",
        message => minijinja::context! {
            id => m.id, from => m.sender, to => m.to, at => rfc3339(m.created_at),
            conversation_id => m.conversation_id, parts => part_views(&m.parts),
            metadata => m.metadata,
        },
        answers, reply,
        may_send => v.principal.may_send(),
    };
    page(StatusCode::OK, "message.html", ctx)
}

/// A reply as the form sends it.
struct ReplyForm {
    pub csrf_token: String,
    pub text: String,
    pub files: Vec<FilePart>,
}

/// Reads the reply form (`multipart/form-data`: `csrf_token`, `text`, any number of `file`).
async fn read_reply(mut form: Multipart) -> Result<ReplyForm, ApiError> {
    let mut out = ReplyForm { csrf_token: String::new(), text: String::new(), files: Vec::new() };
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "form".into(),
            message: format!("did not arrive whole ({e}); a file may be over the size limit"),
        }])
    };
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "csrf_token" => out.csrf_token = field.text().await.map_err(bad)?,
            "text" => out.text = field.text().await.map_err(bad)?,
            "file" => {
                let name = field.file_name().map(str::to_owned).filter(|n| !n.is_empty());
                let media_type = field.content_type().map(str::to_owned);
                let bytes = field.bytes().await.map_err(bad)?;
                // A file input left empty still sends a part with no name and no bytes.
                if name.is_some() || !bytes.is_empty() {
                    let bytes = Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
                    out.files.push(FilePart { name, media_type, bytes, uri: None });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The parts a reply form makes: its text (if any), then its files.
fn reply_parts(form: &ReplyForm) -> Result<Vec<Part>, ApiError> {
    let mut parts = Vec::new();
    let text = form.text.trim();
    if !text.is_empty() {
        parts.push(Part::text(text));
    }
    parts.extend(form.files.iter().cloned().map(|file| Part::File { file }));
    if parts.is_empty() {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "text".into(),
            message: "write a reply or attach a file".into(),
        }]));
    }
    Ok(parts)
}

/// The parts of a send form of the person's session: read, its CSRF token checked, made parts.
pub async fn read_checked(v: &Visitor, form: Multipart) -> Result<Vec<Part>, ApiError> {
    let form = read_reply(form).await?;
    v.csrf(&form.csrf_token)?;
    reply_parts(&form)
}

/// Sends `m` as the person; returns the new message's id.
pub async fn send_as(state: &AppState, v: &Visitor, m: SendMessage) -> Result<String, ApiError> {
    let ready = state.acceptor.prepare(&v.principal, m).await?;
    let outcome = state.acceptor.commit(&v.principal, vec![ready]).await?.pop();
    match outcome {
        Some(switchboard_store::AcceptOutcome::Accepted { id, .. })
        | Some(switchboard_store::AcceptOutcome::Duplicate { id, .. }) => Ok(id),
        Some(switchboard_store::AcceptOutcome::KeyReused { id }) => {
            Err(ApiError::Conflict(format!("this reply was already sent as message {id}")))
        }
        None => Err(ApiError::Internal("the store answered no outcome".into())),
    }
}

/// `POST /messages/{id}/reply`.
pub async fn reply(State(state): State<AppState>, v: Visitor, Path(id): Path<String>, form: Multipart) -> Response {
    let result = async {
        let parts = read_checked(&v, form).await?;
        let (m, _) = visible(&state, &v, &id).await?;
        let conversation = match &m.conversation_id {
            Some(c) => state.conversations.get(&v.principal, c).await.ok().map(|c| c.id),
            None => None,
        };
        let to = match &conversation {
            Some(c) => format!("conversation:{c}"),
            None if m.sender == v.address() => m.to.clone(),
            None => m.sender.clone(),
        };
        let send = SendMessage {
            to,
            parts,
            in_reply_to: Some(m.id.clone()),
            conversation_id: m.conversation_id.clone(),
            ..Default::default()
        };
        send_as(&state, &v, send).await?;
        Ok(conversation)
    }
    .await;
    match result {
        Ok(Some(c)) => see_other(&format!("/conversations/{c}")),
        Ok(None) => see_other(&format!("/messages/{id}?replied=1")),
        Err(e) => error_page(e),
    }
}

/// `GET /messages/{id}/files/{index}`: a file part's bytes, as a download (never rendered
/// inline, so a file cannot run as a page of the app).
pub async fn file(State(state): State<AppState>, v: Visitor, Path((id, index)): Path<(String, usize)>) -> Response {
    let (m, _) = match visible(&state, &v, &id).await {
        Ok(found) => found,
        Err(e) => return error_page(e),
    };
    let parts: Vec<Part> = serde_json::from_str(&m.parts).unwrap_or_default();
    let Some(Part::File { file }) = parts.into_iter().nth(index) else {
        return error_page(ApiError::NotFound(format!("message {id} has no file part {index}")));
    };
    let Some(bytes) = file.bytes.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()) else {
        return error_page(ApiError::NotFound(format!("file part {index} of message {id} carries no bytes")));
    };
    let name: String = file
        .name
        .unwrap_or_else(|| format!("file-{index}"))
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || ".-_ ".contains(c) { c } else { '_' })
        .collect();
    let mut res = (StatusCode::OK, bytes).into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(d) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(CONTENT_DISPOSITION, d);
    }
    res
}

/// `POST /agents/{id}/message`: the agent page's form; shows the sent message.
pub async fn to_agent(State(state): State<AppState>, v: Visitor, Path(id): Path<String>, form: Multipart) -> Response {
    let result = async {
        let parts = read_checked(&v, form).await?;
        send_as(&state, &v, SendMessage { to: format!("agent:{id}"), parts, ..Default::default() }).await
    }
    .await;
    match result {
        Ok(sent) => see_other(&format!("/messages/{sent}")),
        Err(e) => error_page(e),
    }
}
