//! `/admin/policies`: the tenant's policy as a table of its rules in order, an editor (the
//! whole document as JSON, read and checked exactly as `PUT /v1/policies` reads and checks
//! it, errors named by field), and a check form (from, to, action → allowed, and the rule).

use axum::Form;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::Address;
use switchboard_core::api::FieldError;
use switchboard_core::policy::{Action, PolicyDecision, PolicyRules};

use super::{Admin, Done, FormError, admin, form_error, given};
use crate::api::AppState;
use crate::error::ApiError;
use crate::web::common::{error_page, see_other};
use crate::web::render::page;

/// Most bytes of a policy document, as the API's.
const POLICY_LIMIT: usize = 1024 * 1024;

#[derive(Deserialize)]
pub struct ShowQuery {
    from: Option<String>,
    to: Option<String>,
    action: Option<String>,
    #[serde(flatten)]
    done: Done,
}

/// The check form as asked, and what it found.
#[derive(Serialize, Default)]
struct CheckView {
    from: String,
    to: String,
    action: String,
    decision: Option<PolicyDecision>,
    error: Option<FormError>,
}

/// What the policy decides for the check form's question, as `POST /v1/policies:check`.
async fn check(state: &AppState, a: &Admin, from: String, to: String, action: Option<String>) -> CheckView {
    let action_text = action.unwrap_or_else(|| "send".into());
    let mut view = CheckView { from: from.clone(), to: to.clone(), action: action_text.clone(), ..Default::default() };
    let decided = async {
        let action = match action_text.as_str() {
            "send" => Action::Send,
            "subscribe" => Action::Subscribe,
            _ => return Err(field("action", "must be send or subscribe".into())),
        };
        let to: Address = to.parse().map_err(|e| field("to", format!("{e}")))?;
        state.access.check(&a.by().tenant, &from, action, &to).await
    }
    .await;
    match decided {
        Ok(d) => view.decision = Some(d),
        Err(e) => {
            let p = e.problem();
            view.error = Some(FormError { detail: p.detail, errors: p.errors });
        }
    }
    view
}

fn field(path: &str, message: String) -> ApiError {
    ApiError::fields(vec![FieldError { path: path.into(), message }])
}

/// The policy as its editor shows it: `{"rules": …}`, pretty-printed.
fn document(rules: &PolicyRules) -> String {
    serde_json::to_string_pretty(rules).unwrap_or_else(|_| "{\"rules\": null}".into())
}

struct Editor {
    text: Option<String>,
    error: Option<FormError>,
    status: StatusCode,
}

async fn render(
    state: &AppState,
    a: &Admin,
    editor: Editor,
    check: Option<CheckView>,
    done: Option<String>,
) -> Response {
    let t = match state.access.tenant(&a.by().tenant).await {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let stored = PolicyRules { rules: t.policy.as_ref().map(|p| p.specs().to_vec()) };
    let rules: Option<Vec<serde_json::Value>> =
        stored.rules.as_ref().map(|r| r.iter().filter_map(|spec| serde_json::to_value(spec).ok()).collect());
    let text = editor.text.unwrap_or_else(|| document(&stored));
    let ctx = minijinja::context! {
        me => a.me(state).await, nav => "admin", section => "policies", rules, text, error => editor.error,
        check, done,
    };
    page(editor.status, "admin_policies.html", ctx)
}

/// `GET /admin/policies`, with the check form's answer when it was asked (`from` and `to`).
pub async fn show(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<ShowQuery>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let asked = match (given(q.from), given(q.to)) {
        (Some(from), Some(to)) => Some(check(&state, &a, from, to, given(q.action)).await),
        _ => None,
    };
    let editor = Editor { text: None, error: None, status: StatusCode::OK };
    render(&state, &a, editor, asked, q.done.sentence()).await
}

#[derive(Deserialize)]
pub struct PolicyForm {
    csrf_token: String,
    policy: String,
}

/// `POST /admin/policies`: replaces the policy as `PUT /v1/policies` does; a refused document
/// is shown again with what is wrong, and nothing changes.
pub async fn put(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<PolicyForm>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = a.forged(&f.csrf_token) {
        return r;
    }
    let saved = async {
        let rules: PolicyRules = crate::api::parse_json(Body::from(f.policy.clone()), POLICY_LIMIT).await?;
        state.access.set_policy(a.by(), rules).await
    }
    .await;
    match saved {
        Ok(()) => see_other("/admin/policies?done=policy_saved"),
        Err(e) => match form_error(e) {
            Ok((status, error)) => {
                let editor = Editor { text: Some(f.policy), error: Some(error), status };
                render(&state, &a, editor, None, None).await
            }
            Err(e) => error_page(e),
        },
    }
}
