//! `/conversations` and `/conversations/{id}`: the person's conversations with their unread
//! counts, and one conversation's latest history with who is doing what ("summarizing…"),
//! a reply form (text and files), and live updates: `app.js` fetches `…/live?after=<seq>`
//! (a fragment of the newer messages and the statuses) when `/live` says something arrived.
//! Showing a conversation moves the person's read marker to its end.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::api::SendMessage;
use switchboard_core::time::{now_ms, rfc3339};
use switchboard_store::MessageRecord;
use switchboard_store::conversations::{ConversationRecord, HistoryQuery};

use super::common::{PAGE, Visitor, error_page, part_views, see_other};
use super::messages::{read_checked, send_as};
use super::render::page;
use crate::api::AppState;
use crate::error::ApiError;

/// How many of the latest messages a conversation page shows.
const HISTORY: i64 = 100;

#[derive(Serialize)]
struct ConversationRow {
    id: String,
    title: String,
    participants: Vec<String>,
    unread: i64,
    last_seq: i64,
}

fn title_of(c: &ConversationRecord) -> String {
    c.title.clone().unwrap_or_else(|| {
        let names: Vec<&str> = c.participants.iter().map(|p| p.address.as_str()).collect();
        names.join(", ")
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
}

/// `GET /conversations`.
pub async fn list(State(state): State<AppState>, v: Visitor, Query(q): Query<ListQuery>) -> Response {
    let page_rows = match state.conversations.list(&v.principal, q.after, PAGE).await {
        Ok(rows) => rows,
        Err(e) => return error_page(e),
    };
    let next = (page_rows.len() == PAGE).then(|| page_rows.last().map(|c| c.id.clone())).flatten();
    let mut conversations = Vec::with_capacity(page_rows.len());
    for c in page_rows {
        let unread = match state.conversations.unread(&v.principal, &c).await {
            Ok(u) => u.unwrap_or(0),
            Err(e) => return error_page(e),
        };
        conversations.push(ConversationRow {
            title: title_of(&c),
            participants: c.participants.iter().map(|p| p.address.clone()).collect(),
            unread,
            last_seq: c.last_seq,
            id: c.id,
        });
    }
    let ctx = minijinja::context! { me => v.me(&state).await, nav => "conversations", conversations, next };
    page(StatusCode::OK, "conversations.html", ctx)
}

#[derive(Serialize)]
struct Item {
    seq: i64,
    id: String,
    from: String,
    mine: bool,
    at: String,
    in_reply_to: Option<String>,
    parts: Vec<super::common::PartView>,
}

#[derive(Serialize)]
struct StatusView {
    participant: String,
    text: String,
    until: String,
}

/// The messages after `after` (the latest `HISTORY` at most) and the live statuses; moves the
/// person's read marker to the newest shown.
async fn latest(
    state: &AppState,
    v: &Visitor,
    c: &ConversationRecord,
    after: i64,
) -> Result<(Vec<Item>, Vec<StatusView>), ApiError> {
    let after_seq = after.max(c.last_seq - HISTORY).max(0);
    let q = HistoryQuery { after_seq, limit: HISTORY as usize, thread: None };
    let rows: Vec<(i64, MessageRecord)> = state.store.conversation_history(v.tenant(), &c.id, q).await?;
    let me = v.address();
    let items: Vec<Item> = rows
        .into_iter()
        .map(|(seq, m)| Item {
            seq,
            mine: m.sender == me,
            at: rfc3339(m.created_at),
            parts: part_views(&m.parts),
            in_reply_to: m.in_reply_to,
            from: m.sender,
            id: m.id,
        })
        .collect();
    if let Some(last) = items.last()
        && c.participants.iter().any(|p| p.address == me && p.read_up_to < last.seq)
    {
        state.conversations.mark_read(&v.principal, &c.id, last.seq).await?;
    }
    let statuses = state
        .store
        .statuses(v.tenant(), &c.id, now_ms())
        .await?
        .into_iter()
        .map(|s| StatusView { participant: s.participant, text: s.text, until: rfc3339(s.expires_at) })
        .collect();
    Ok((items, statuses))
}

/// `GET /conversations/{id}`.
pub async fn show(State(state): State<AppState>, v: Visitor, Path(id): Path<String>) -> Response {
    let c = match state.conversations.get(&v.principal, &id).await {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let (items, statuses) = match latest(&state, &v, &c, 0).await {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    let last_seq = items.last().map_or(0, |i| i.seq);
    let earlier = items.first().is_some_and(|i| i.seq > 1);
    let participants: Vec<&str> = c.participants.iter().map(|p| p.address.as_str()).collect();
    let ctx = minijinja::context! {
        me => v.me(&state).await, nav => "conversations",
        conversation => minijinja::context! { id => c.id, title => title_of(&c), participants },
        items, statuses, last_seq, earlier, may_send => v.principal.may_send(),
    };
    page(StatusCode::OK, "conversation.html", ctx)
}

#[derive(Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    after: i64,
}

/// `GET /conversations/{id}/live?after=<seq>`: the fragment `app.js` appends (newer
/// messages) and the statuses it replaces.
pub async fn live(
    State(state): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
) -> Response {
    let c = match state.conversations.get(&v.principal, &id).await {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    match latest(&state, &v, &c, q.after).await {
        Ok((items, statuses)) => {
            let last_seq = items.last().map_or(q.after, |i| i.seq);
            page(StatusCode::OK, "conversation_live.html", minijinja::context! { items, statuses, last_seq })
        }
        Err(e) => error_page(e),
    }
}

/// `POST /conversations/{id}/send`: the person writes to everyone in it.
pub async fn send(State(state): State<AppState>, v: Visitor, Path(id): Path<String>, form: Multipart) -> Response {
    let result = async {
        let parts = read_checked(&v, form).await?;
        let m = SendMessage { to: format!("conversation:{id}"), parts, ..Default::default() };
        send_as(&state, &v, m).await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("/conversations/{id}")),
        Err(e) => error_page(e),
    }
}
