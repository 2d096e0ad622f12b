//! `/triage`: the messages the router could not place (sent `to: "auto"`, waiting in the
//! tenant's triage group, of which the person is a member), each with the ranked candidates
//! the router saw, and a form to route it by hand. The choice is the API's
//! (`AutoRouter::reroute`): recorded with the message, audited, and done once.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::api::RoutingDecision;
use switchboard_core::time::rfc3339;
use switchboard_store::inbox::InboxQuery;

use super::common::{PAGE, Visitor, error_page, preview, see_other};
use super::render::page;
use crate::api::AppState;
use crate::domain::autoroute::stored_decision;

#[derive(Serialize)]
struct TriageRow {
    id: String,
    from: String,
    preview: String,
    at: String,
    decision: Option<RoutingDecision>,
    pending: bool,
}

#[derive(Deserialize)]
pub struct TriageQuery {
    before: Option<i64>,
}

/// `GET /triage`.
pub async fn list(State(state): State<AppState>, v: Visitor, Query(q): Query<TriageQuery>) -> Response {
    let query =
        InboxQuery { recipient: v.address(), before: q.before, auto_only: true, limit: PAGE, ..Default::default() };
    let items = match state.store.person_inbox(v.tenant(), query).await {
        Ok(items) => items,
        Err(e) => return error_page(e.into()),
    };
    let next = (items.len() == PAGE).then(|| items.last().map(|i| i.seq)).flatten();
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let decision = match stored_decision(state.store.as_ref(), v.tenant(), &item.message.id).await {
            Ok(d) => d,
            Err(e) => return error_page(e),
        };
        rows.push(TriageRow {
            pending: decision.as_ref().is_some_and(|d| d.chosen.is_none()),
            id: item.message.id,
            from: item.message.sender,
            preview: preview(&item.message.parts),
            at: rfc3339(item.message.created_at),
            decision,
        });
    }
    let ctx = minijinja::context! { me => v.me(&state).await, nav => "triage", rows, next };
    page(StatusCode::OK, "triage.html", ctx)
}

#[derive(Deserialize)]
pub struct RouteForm {
    csrf_token: String,
    capability: String,
}

/// `POST /triage/{id}/route`.
pub async fn route(
    State(state): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    Form(form): Form<RouteForm>,
) -> Response {
    if let Err(e) = v.csrf(&form.csrf_token) {
        return error_page(e);
    }
    match state.auto.reroute(&v.principal, &id, form.capability.trim()).await {
        Ok(_) => see_other("/triage?routed=1"),
        Err(e) => error_page(e),
    }
}
