//! The approvals pages: `/approvals` (pending, decided, expired) and `/approvals/{id}`, the
//! question with its context, its deadline stated as what will happen ("expires in 2 m 14 s
//! → Reject"), a button per option, a comment, and a form generated from the request's JSON
//! Schema where it is simple (string, number, integer, boolean and enum properties; a JSON
//! text area otherwise). Answers go through `domain::approvals`, as the API's do.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_core::api::{Approval, DecideApproval, FieldError, Part};
use switchboard_core::time::{now_ms, parse_rfc3339};

use super::common::{Visitor, error_page, see_other};
use super::render::page;
use crate::api::AppState;
use crate::domain::approvals::view;

/// Most approvals a tab shows.
const TAB: usize = 200;

#[derive(Deserialize)]
pub struct TabQuery {
    tab: Option<String>,
}

/// A row of the list.
#[derive(Serialize)]
struct Row {
    id: String,
    question: String,
    state: String,
    requester: String,
    due: String,
    outcome: Option<String>,
}

/// "2 h 14 m", "3 m 5 s", "12 s": how long until `ms`.
fn span(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, m, sec) => format!("{m} m {sec} s"),
        (h, m, _) if h < 48 => format!("{h} h {m} m"),
        (h, _, _) => format!("{} d {} h", h / 24, h % 24),
    }
}

fn label_of(a: &Approval, option: &str) -> String {
    a.options.iter().find(|o| o.id == option).map_or_else(|| option.to_owned(), |o| o.label.clone())
}

/// What happens at the deadline, said before anyone acts; or what did happen.
fn deadline_text(a: &Approval) -> String {
    let default = label_of(a, &a.default_outcome);
    match (a.state.as_str(), &a.outcome) {
        ("pending", _) => {
            let left = parse_rfc3339(&a.deadline).map_or(0, |d| d - now_ms());
            format!("expires in {} → {default}", span(left))
        }
        ("expired", _) => format!("expired at {} → {default}", a.deadline),
        (_, Some(o)) => format!("{} by {}", label_of(a, &o.outcome), o.decided_by),
        (state, None) => state.to_owned(),
    }
}

/// `/approvals?tab=pending|decided|expired`: the approvals the person may see.
pub async fn list(State(state): State<AppState>, v: Visitor, Query(q): Query<TabQuery>) -> Response {
    let tab = match q.tab.as_deref() {
        Some("decided") => "decided",
        Some("expired") => "expired",
        _ => "pending",
    };
    let wanted = match tab {
        "decided" => None,
        other => Some(other.to_owned()),
    };
    let page_rows = match state.approvals.list(&v.principal, wanted, None, TAB).await {
        Ok((rows, _)) => rows,
        Err(e) => return error_page(e),
    };
    let rows: Vec<Row> = page_rows
        .iter()
        .map(view)
        .filter(|a| tab != "decided" || !matches!(a.state.as_str(), "pending" | "expired"))
        .map(|a| Row {
            due: deadline_text(&a),
            outcome: a.outcome.as_ref().map(|o| label_of(&a, &o.outcome)),
            id: a.id,
            question: a.question,
            state: a.state,
            requester: a.requester,
        })
        .collect();
    let ctx = minijinja::context! { me => v.me(&state).await, nav => "approvals", tab, rows };
    page(StatusCode::OK, "approvals.html", ctx)
}

/// A field of a form generated from a simple schema.
#[derive(Serialize)]
struct Field {
    name: String,
    label: String,
    /// `text`, `number`, `integer`, `checkbox` or `select`.
    kind: &'static str,
    required: bool,
    choices: Vec<String>,
}

/// The fields of a schema that is an object of simple properties; `None` when it is not
/// (the page then offers a JSON text area).
fn fields_of(schema: &Value) -> Option<Vec<Field>> {
    let props = schema.get("properties")?.as_object()?;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (name, p) in props {
        let label = p.get("title").and_then(Value::as_str).unwrap_or(name).to_owned();
        let (kind, choices) = if let Some(e) = p.get("enum").and_then(Value::as_array) {
            ("select", e.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()?)
        } else {
            match p.get("type").and_then(Value::as_str)? {
                "string" => ("text", Vec::new()),
                "number" => ("number", Vec::new()),
                "integer" => ("integer", Vec::new()),
                "boolean" => ("checkbox", Vec::new()),
                _ => return None,
            }
        };
        out.push(Field { name: name.clone(), label, kind, required: required.contains(&name.as_str()), choices });
    }
    Some(out)
}

/// A part of the context as the page shows it.
#[derive(Serialize)]
struct PartView {
    text: Option<String>,
    data: Option<String>,
    file: Option<String>,
}

fn part_view(p: &Part) -> PartView {
    match p {
        Part::Text { text } => PartView { text: Some(text.clone()), data: None, file: None },
        Part::Data { data } => PartView { text: None, data: serde_json::to_string_pretty(data).ok(), file: None },
        Part::File { file } => PartView {
            text: None,
            data: None,
            file: Some(file.name.clone().or_else(|| file.uri.clone()).unwrap_or_else(|| "(a file)".into())),
        },
        // The hub cannot read a sealed part; the page says so instead of showing ciphertext.
        Part::Sealed { .. } => PartView { text: Some("(sealed: end-to-end encrypted)".into()), data: None, file: None },
    }
}

async fn show(state: &AppState, v: &Visitor, a: Approval, status: StatusCode, errors: Vec<FieldError>) -> Response {
    let fields = a.form_schema.as_ref().and_then(fields_of);
    let schema = a.form_schema.as_ref().and_then(|v| serde_json::to_string_pretty(v).ok());
    let parts: Vec<PartView> = a.parts.iter().map(part_view).collect();
    let me = v.address();
    let answered = a.decisions.iter().any(|d| d.by == me);
    let ctx = minijinja::context! {
        me => v.me(state).await, nav => "approvals", deadline => deadline_text(&a), parts, fields, schema,
        open => a.state == "pending" && !answered, answered, errors, approval => a,
    };
    page(status, "approval.html", ctx)
}

/// `/approvals/{id}`: one approval, and the answer form while it is open.
pub async fn one(State(state): State<AppState>, v: Visitor, Path(id): Path<String>) -> Response {
    match state.approvals.get(&v.principal, &id).await {
        Ok(a) => show(&state, &v, view(&a), StatusCode::OK, Vec::new()).await,
        Err(e) => error_page(e),
    }
}

/// The form built from the posted fields (`f.<name>`), typed as the schema says, or parsed
/// from the JSON text area (`form_json`).
fn posted_form(schema: Option<&Value>, fields: &[(String, String)]) -> Result<Option<Value>, FieldError> {
    let Some(schema) = schema else { return Ok(None) };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(simple) = fields_of(schema) else {
        let text = get("form_json").unwrap_or("").trim();
        if text.is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(text)
            .map(Some)
            .map_err(|e| FieldError { path: "form".into(), message: format!("is not JSON: {e}") });
    };
    let mut out = Map::new();
    for f in simple {
        let raw = get(&format!("f.{}", f.name)).unwrap_or("").trim();
        let bad = |what: &str| FieldError { path: format!("form.{}", f.name), message: format!("write {what}") };
        let value = match f.kind {
            "checkbox" => Value::Bool(!raw.is_empty()),
            _ if raw.is_empty() => continue,
            "number" => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| bad("a number"))?,
            "integer" => raw.parse::<i64>().map(Value::from).map_err(|_| bad("a whole number"))?,
            _ => Value::String(raw.to_owned()),
        };
        out.insert(f.name, value);
    }
    Ok(Some(Value::Object(out)))
}

/// `POST /approvals/{id}/decide`: the person's answer (CSRF-checked); the page again, with
/// what was wrong, when it is refused.
pub async fn decide(
    State(state): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, x)| x.clone());
    if let Err(e) = v.csrf(&get("csrf_token").unwrap_or_default()) {
        return error_page(e);
    }
    let by = &v.principal;
    let current = match state.approvals.get(by, &id).await {
        Ok(a) => view(&a),
        Err(e) => return error_page(e),
    };
    let form = match posted_form(current.form_schema.as_ref(), &fields) {
        Ok(f) => f,
        Err(e) => return show(&state, &v, current, StatusCode::UNPROCESSABLE_ENTITY, vec![e]).await,
    };
    let comment = get("comment").filter(|c| !c.trim().is_empty());
    let answer = DecideApproval { option: get("option").unwrap_or_default(), comment, form };
    match state.approvals.decide(by, &id, answer).await {
        Ok(_) => see_other(&format!("/approvals/{id}")),
        Err(e) => {
            let problem = e.problem();
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let mut errors = problem.errors;
            if errors.is_empty() {
                errors.push(FieldError { path: String::new(), message: problem.detail });
            }
            show(&state, &v, current, status, errors).await
        }
    }
}
