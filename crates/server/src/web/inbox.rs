//! `/`: the person's inbox. Every message addressed to them (directly, through a group, a
//! conversation or the triage queue), newest first, unread ones marked, with filters (unread
//! only, from one sender) and search by text. Reading the list changes nothing; opening a
//! message marks it read (acknowledges it).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::api::DeliveryState;
use switchboard_core::time::rfc3339;
use switchboard_store::inbox::{InboxItem, InboxQuery};

use super::common::{PAGE, Visitor, error_page, preview};
use super::render::page;
use crate::api::AppState;

/// One row of the inbox.
#[derive(Serialize)]
pub struct InboxRow {
    pub id: String,
    pub from: String,
    pub preview: String,
    pub state: &'static str,
    pub unread: bool,
    pub at: String,
    pub conversation_id: Option<String>,
}

impl InboxRow {
    pub fn of(item: InboxItem) -> InboxRow {
        InboxRow {
            unread: matches!(item.state, DeliveryState::Pending | DeliveryState::Leased | DeliveryState::Delivered),
            state: item.state.as_str(),
            from: item.message.sender,
            preview: preview(&item.message.parts),
            at: rfc3339(item.message.created_at),
            conversation_id: item.message.conversation_id,
            id: item.message.id,
        }
    }
}

#[derive(Deserialize, Serialize, Default)]
pub struct InboxFilter {
    /// `unread` shows only unread messages.
    #[serde(default)]
    show: Option<String>,
    /// Text to look for.
    #[serde(default)]
    q: Option<String>,
    /// A sender address.
    #[serde(default)]
    from: Option<String>,
    /// The cursor: rows before this delivery.
    #[serde(default)]
    before: Option<i64>,
}

/// `/`: the inbox.
pub async fn home(State(state): State<AppState>, v: Visitor, Query(f): Query<InboxFilter>) -> Response {
    let nonempty = |s: &Option<String>| s.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (q, from) = (nonempty(&f.q), nonempty(&f.from));
    let unread_only = f.show.as_deref() == Some("unread");
    let query = InboxQuery {
        recipient: v.address(),
        before: f.before,
        unread_only,
        from: from.clone(),
        text: q.clone(),
        auto_only: false,
        limit: PAGE,
    };
    let items = match state.store.person_inbox(v.tenant(), query).await {
        Ok(items) => items,
        Err(e) => return error_page(e.into()),
    };
    let next = (items.len() == PAGE).then(|| items.last().map(|i| i.seq)).flatten();
    let messages: Vec<InboxRow> = items.into_iter().map(InboxRow::of).collect();
    let filtered = unread_only || q.is_some() || from.is_some();
    let ctx = minijinja::context! {
        me => v.me(&state).await, nav => "inbox", messages, next, q, from, unread_only, filtered,
    };
    page(StatusCode::OK, "inbox.html", ctx)
}
