//! `/admin/audit`: the tenant's audit log, filtered by actor, action and time, a page at a
//! time, under the verdict on its hash chain: the same check `switchboard audit verify` runs
//! ([`AuditStore::verify_audit`](switchboard_store::audit::AuditStore::verify_audit)), "Chain
//! intact, N entries" or the first bad entry. The check reads the whole log on each view,
//! which is what an admin opening this page asks for.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::api::FieldError;
use switchboard_core::audit::AuditAction;
use switchboard_core::time::parse_rfc3339;
use switchboard_store::audit::AuditFilter;

use super::{admin, given};
use crate::api::AppState;
use crate::error::ApiError;
use crate::web::common::{PAGE, error_page};
use crate::web::render::page;

#[derive(Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    after: Option<String>,
}

/// The filters as asked, to fill the form again and to build the next page's link.
#[derive(Serialize)]
struct Asked {
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
}

/// The chain's verdict as the page states it.
#[derive(Serialize)]
struct Verdict {
    intact: bool,
    entries: u64,
    broken: Option<String>,
}

/// The store's filter for the form, each field checked as `GET /v1/audit` checks it.
fn filter(asked: &Asked, after: Option<String>) -> Result<AuditFilter, ApiError> {
    let mut errors = Vec::new();
    if let Some(a) = asked.action.as_deref().filter(|a| AuditAction::parse(a).is_none()) {
        errors.push(FieldError { path: "action".into(), message: format!("`{a}` is not an audited action") });
    }
    let since = asked.since.as_deref().and_then(|s| {
        let t = parse_rfc3339(s);
        if t.is_none() {
            errors.push(FieldError {
                path: "since".into(),
                message: format!("must be an RFC 3339 time such as 2026-11-25T10:00:00Z, not `{s}`"),
            });
        }
        t
    });
    let after = match after.map(|c| c.parse::<i64>()) {
        Some(Ok(n)) if n >= 0 => Some(n),
        None => None,
        Some(_) => return Err(crate::api::bad_cursor("after")),
    };
    if !errors.is_empty() {
        return Err(ApiError::params(errors));
    }
    Ok(AuditFilter { actor: asked.actor.clone(), action: asked.action.clone(), since, after, limit: PAGE })
}

/// `GET /admin/audit`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<AuditQuery>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let verdict = match state.store.verify_audit(a.tenant()).await {
        Ok(v) => Verdict { intact: v.broken.is_none(), entries: v.entries, broken: v.broken.map(|b| b.to_string()) },
        Err(e) => return error_page(e.into()),
    };
    let asked = Asked { actor: given(q.actor), action: given(q.action), since: given(q.since) };
    let actions: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    let (events, next, error, status) = match filter(&asked, given(q.after)) {
        Ok(f) => match state.store.list_audit(a.tenant(), f).await {
            Ok(events) => {
                let next = (events.len() == PAGE).then(|| events.last().map(|e| e.seq)).flatten();
                (events, next, None, StatusCode::OK)
            }
            Err(e) => return error_page(e.into()),
        },
        Err(e) => {
            let p = e.problem();
            let error = super::FormError { detail: p.detail, errors: p.errors };
            (vec![], None, Some(error), StatusCode::UNPROCESSABLE_ENTITY)
        }
    };
    let events: Vec<serde_json::Value> = events
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
                "detail": if e.detail.is_null() { String::new() } else { e.detail.to_string() },
            })
        })
        .collect();
    let ctx = minijinja::context! {
        me => a.me(&state).await, nav => "admin", section => "audit", verdict, events, next, asked, actions, error,
    };
    page(status, "admin_audit.html", ctx)
}
