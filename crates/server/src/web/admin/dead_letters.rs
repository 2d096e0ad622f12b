//! `/admin/dead-letters`: dead deliveries (recipient, message preview, attempts, last error);
//! one inspected (the message's parts, its deliveries, the push attempt log); replay the
//! chosen ones or all of a recipient's; purge them after a confirmation. Replays and purges are
//! `domain::delivery`'s, as `POST /v1/dead-letters:replay` and `:purge` call them, audited there.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::api::{DeliveryState, Part};
use switchboard_core::time::rfc3339;
use switchboard_store::DeliveryFilter;

use super::{Admin, Confirm, Done, admin, confirm_page, given};
use crate::api::AppState;
use crate::error::ApiError;
use crate::web::common::{PAGE, error_page, preview, see_other};
use crate::web::render::page;

#[derive(Serialize)]
struct DeadRow {
    message_id: String,
    from: String,
    recipient: String,
    preview: String,
    attempts: u32,
    last_error: Option<String>,
    updated_at: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    recipient: Option<String>,
    after: Option<String>,
    #[serde(flatten)]
    done: Done,
}

/// `GET /admin/dead-letters`: a page of dead deliveries, oldest first, of one recipient if
/// asked.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let recipient = given(q.recipient);
    let after = match given(q.after).map(|c| c.parse::<i64>()).transpose() {
        Ok(after) => after,
        Err(_) => return error_page(crate::api::bad_cursor("after")),
    };
    let filter = DeliveryFilter {
        state: Some(DeliveryState::Dead),
        recipient: recipient.clone(),
        after,
        limit: PAGE,
        ..Default::default()
    };
    let rows = match state.store.list_deliveries(a.tenant(), filter).await {
        Ok(rows) => rows,
        Err(e) => return error_page(e.into()),
    };
    let next = (rows.len() == PAGE).then(|| rows.last().map(|(seq, _)| *seq)).flatten();
    let mut dead = Vec::with_capacity(rows.len());
    for (_, d) in rows {
        let text = match state.store.get_message(a.tenant(), &d.message_id).await {
            Ok(Some((m, _))) => preview(&m.parts),
            Ok(None) => "(expired)".into(),
            Err(e) => return error_page(e.into()),
        };
        dead.push(DeadRow {
            message_id: d.message_id,
            from: d.sender,
            recipient: d.recipient,
            preview: text,
            attempts: d.attempts,
            last_error: d.last_error,
            updated_at: rfc3339(d.updated_at),
        });
    }
    let ctx = minijinja::context! {
        me => a.me(&state).await, nav => "admin", section => "dead_letters", dead, next, recipient,
        done => q.done.sentence(),
    };
    page(StatusCode::OK, "admin_dead_letters.html", ctx)
}

/// A part as the inspect page shows it: its kind and its text (data pretty-printed, a file
/// as its JSON description).
#[derive(Serialize)]
struct PartView {
    kind: &'static str,
    body: String,
}

fn part_view(p: &Part) -> PartView {
    match p {
        Part::Text { text } => PartView { kind: "text", body: text.clone() },
        Part::Data { data } => PartView { kind: "data", body: pretty(data) },
        Part::File { file } => PartView { kind: "file", body: pretty(file) },
        Part::Sealed { sealed } => PartView { kind: "sealed", body: pretty(sealed) },
    }
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `GET /admin/dead-letters/{id}`: one message with its parts, deliveries and push attempts.
pub async fn inspect(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (m, deliveries) = match state.store.get_message(a.tenant(), &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return error_page(ApiError::NotFound(format!("message {id} does not exist in this tenant"))),
        Err(e) => return error_page(e.into()),
    };
    let attempts: Vec<_> = match state.store.attempts(a.tenant(), &id).await {
        Ok(list) => list.into_iter().map(crate::api::messages::attempt_view).collect(),
        Err(e) => return error_page(e.into()),
    };
    let parts: Vec<Part> = serde_json::from_str(&m.parts).unwrap_or_default();
    let parts: Vec<PartView> = parts.iter().map(part_view).collect();
    let dead = deliveries.iter().any(|d| d.state == DeliveryState::Dead);
    let deliveries: Vec<_> = deliveries.into_iter().map(crate::api::messages::delivery_view).collect();
    let ctx = minijinja::context! {
        me => a.me(&state).await, nav => "admin", section => "dead_letters", id => m.id, from => m.sender, to => m.to,
        created_at => rfc3339(m.created_at), parts, deliveries, attempts, dead,
    };
    page(StatusCode::OK, "admin_dead_letter.html", ctx)
}

/// The replay and purge forms: the token, the chosen messages (`id`, repeated), whether the
/// choice is those (`scope=selected`) or every dead delivery of the listing (`scope=all`, of
/// `recipient` when given), and for a purge the confirmation.
struct Selection {
    csrf_token: String,
    ids: Vec<String>,
    all: bool,
    recipient: Option<String>,
    confirmed: bool,
}

/// Reads a form body by hand: `id` repeats, which the `Form` extractor does not take.
fn selection(body: &[u8]) -> Selection {
    let mut s = Selection { csrf_token: String::new(), ids: vec![], all: false, recipient: None, confirmed: false };
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "csrf_token" => s.csrf_token = v.into_owned(),
            "id" => s.ids.push(v.into_owned()),
            "scope" => s.all = v == "all",
            "recipient" => s.recipient = given(Some(v.into_owned())),
            "confirm" => s.confirmed = v == "yes",
            _ => {}
        }
    }
    s
}

impl Selection {
    /// The store's filter, or the error when nothing was chosen (an empty choice must not
    /// widen to every dead delivery, which is what no ids means to the store).
    fn filter(&self) -> Result<DeliveryFilter, ApiError> {
        if !self.all && self.ids.is_empty() {
            return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
                path: "id".into(),
                message: "choose at least one dead letter, or use the button for all of them".into(),
            }]));
        }
        Ok(DeliveryFilter {
            state: Some(DeliveryState::Dead),
            recipient: self.recipient.clone(),
            message_ids: if self.all { vec![] } else { self.ids.clone() },
            since: None,
            after: None,
            limit: usize::MAX,
        })
    }

    fn back(&self, done: &str, count: u64) -> String {
        let mut to = format!("/admin/dead-letters?done={done}&count={count}");
        if let Some(r) = &self.recipient {
            to.push_str("&recipient=");
            to.extend(form_urlencoded::byte_serialize(r.as_bytes()));
        }
        to
    }
}

/// Checks the session, the token and the choice.
async fn chosen(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Admin, Selection, DeliveryFilter), Response> {
    let a = admin(state, headers).await?;
    let s = selection(body);
    if let Some(r) = a.forged(&s.csrf_token) {
        return Err(r);
    }
    let filter = s.filter().map_err(error_page)?;
    Ok((a, s, filter))
}

/// `POST /admin/dead-letters/replay`: makes the chosen dead deliveries pending again.
pub async fn replay(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (a, s, filter) = match chosen(&state, &headers, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match state.deliveries.replay_dead(a.by(), filter).await {
        Ok(count) => see_other(&s.back("replayed", count)),
        Err(e) => error_page(e),
    }
}

/// `POST /admin/dead-letters/purge`: without `confirm=yes`, the page that asks; with it,
/// deletes the chosen dead deliveries.
pub async fn purge(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (a, s, filter) = match chosen(&state, &headers, &body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !s.confirmed {
        let what = match (s.all, &s.recipient) {
            (true, Some(r)) => format!("every dead letter to {r}"),
            (true, None) => "every dead letter of the tenant".to_owned(),
            (false, _) if s.ids.len() == 1 => format!("the dead letter of message {}", s.ids[0]),
            (false, _) => format!("the dead letters of {} messages", s.ids.len()),
        };
        let mut hidden: Vec<(String, String)> = s.ids.iter().map(|id| ("id".to_owned(), id.clone())).collect();
        hidden.push(("scope".into(), if s.all { "all" } else { "selected" }.into()));
        if let Some(r) = &s.recipient {
            hidden.push(("recipient".into(), r.clone()));
        }
        hidden.push(("confirm".into(), "yes".into()));
        let text = format!("Purge {what}? Purged deliveries cannot be replayed; this cannot be undone.");
        let c = Confirm {
            heading: "Purge dead letters",
            text,
            action: "/admin/dead-letters/purge".into(),
            hidden,
            button: "Purge",
            cancel: "/admin/dead-letters".into(),
            grace: false,
        };
        return confirm_page(&state, &a, c).await;
    }
    match state.deliveries.purge_dead(a.by(), filter).await {
        Ok(count) => see_other(&s.back("purged", count)),
        Err(e) => error_page(e),
    }
}
