//! The pages: each reads the session from the `sb_session` cookie (a page without one sends
//! the browser to the sign-in form), asks the domain or the store, and renders a template.

use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_core::api::{Agent, Part};
use switchboard_core::people::Login;
use switchboard_core::time::rfc3339;
use switchboard_store::users::SessionRecord;
use switchboard_store::{AgentFilter, DeliveryFilter};

use super::render::page;
use crate::api::AppState;
use crate::api::auth::{check_same_site, session_cookie};
use crate::api::sessions::cookie;
use crate::domain::people::sessions::{ABSOLUTE_MS, principal_of};
use crate::error::ApiError;
use crate::listener::ClientAddr;

/// How many rows a page shows.
const PAGE: usize = 50;

/// The signed-in person, as the templates see them.
#[derive(Serialize)]
struct Me {
    id: String,
    name: String,
    email: String,
    role: String,
    tenant: String,
    csrf_token: String,
}

impl Me {
    fn of(s: &SessionRecord) -> Me {
        Me {
            id: s.user.id.clone(),
            name: s.user.name.clone(),
            email: s.user.email.clone(),
            role: s.user.role.as_str().to_owned(),
            tenant: s.user.tenant.clone(),
            csrf_token: s.csrf_token.clone(),
        }
    }
}

fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")));
    res
}

/// An error as a page, in words for a person (the API's problem detail).
fn error_page(e: ApiError) -> Response {
    let problem = e.problem();
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    page(status, "error.html", minijinja::context! { title => problem.title, detail => problem.detail })
}

/// The session of the request's cookie, or where to send the browser instead.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<SessionRecord, Response> {
    let Some(token) = session_cookie(headers) else { return Err(see_other("/sign-in")) };
    match state.sessions.session(token).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(see_other("/sign-in")),
        Err(e) => Err(error_page(e)),
    }
}

#[derive(Serialize)]
struct InboxRow {
    id: String,
    from: String,
    preview: String,
    state: &'static str,
    at: String,
}

/// The first text of a message's parts (or what kinds of parts it has), for a one-line preview.
fn preview(parts_json: &str) -> String {
    let parts: Vec<Part> = serde_json::from_str(parts_json).unwrap_or_default();
    let text = parts.iter().find_map(|p| match p {
        Part::Text { text } => Some(text.clone()),
        _ => None,
    });
    match text {
        Some(t) if t.chars().count() > 160 => format!("{}…", t.chars().take(160).collect::<String>()),
        Some(t) => t,
        None if parts.is_empty() => "(no parts)".into(),
        None => "(data or file parts)".into(),
    }
}

#[derive(Deserialize)]
pub struct Paging {
    after: Option<i64>,
}

/// `/`: the person's inbox, the messages addressed to them in the order they arrived, with
/// their delivery state (the page only reads: it neither leases nor acknowledges).
pub async fn home(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<Paging>) -> Response {
    let s = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let recipient = format!("user:{}", s.user.id);
    let filter = DeliveryFilter { recipient: Some(recipient), after: q.after, limit: PAGE, ..Default::default() };
    let rows = match state.store.list_deliveries(&s.user.tenant, filter).await {
        Ok(rows) => rows,
        Err(e) => return error_page(e.into()),
    };
    let next = (rows.len() == PAGE).then(|| rows.last().map(|(seq, _)| *seq)).flatten();
    let mut messages = Vec::with_capacity(rows.len());
    for (_, d) in rows {
        let text = match state.store.get_message(&s.user.tenant, &d.message_id).await {
            Ok(Some((m, _))) => preview(&m.parts),
            Ok(None) => "(expired)".into(),
            Err(e) => return error_page(e.into()),
        };
        messages.push(InboxRow {
            id: d.message_id,
            from: d.sender,
            preview: text,
            state: d.state.as_str(),
            at: rfc3339(d.created_at),
        });
    }
    page(StatusCode::OK, "home.html", minijinja::context! { me => Me::of(&s), nav => "inbox", messages, next })
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    signed_out: Option<String>,
}

/// `GET /sign-in`: the form (or home, when already signed in).
pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<SignInQuery>) -> Response {
    if let Some(token) = session_cookie(&headers)
        && let Ok(Some(_)) = state.sessions.session(token).await
    {
        return see_other("/");
    }
    page(StatusCode::OK, "sign_in.html", minijinja::context! { signed_out => q.signed_out.is_some() })
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    #[serde(default)]
    tenant: Option<String>,
}

/// `POST /sign-in`: signs in with the API's rules (throttling included) and sets the session
/// cookie; a wrong password shows the form again with the reason.
pub async fn sign_in(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if let Err(e) = check_same_site(&headers) {
        return error_page(e);
    }
    let tenant = form.tenant.filter(|t| !t.trim().is_empty());
    let login = Login { email: form.email.clone(), password: form.password, tenant: tenant.clone() };
    let client = client.map(|Extension(c)| c.to_string());
    match state.sessions.login(login, client).await {
        Ok(opened) => {
            let mut res = see_other("/");
            let secure = state.config.tls_cert.is_some();
            res.headers_mut().insert(SET_COOKIE, cookie(&opened.token, ABSOLUTE_MS / 1000, secure));
            res
        }
        Err(e) => {
            let problem = e.problem();
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNAUTHORIZED);
            let ctx = minijinja::context! { error => problem.detail, email => form.email, tenant => tenant };
            page(status, "sign_in.html", ctx)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /sign-out`: ends the session (the form carries its CSRF token) and clears the cookie.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let s = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if form.csrf_token != s.csrf_token {
        return error_page(ApiError::CsrfFailed("this form is not from your session; reload the page".into()));
    }
    if let Some(token) = session_cookie(&headers)
        && let Err(e) = state.sessions.logout(&principal_of(&s), token).await
    {
        return error_page(e);
    }
    let mut res = see_other("/sign-in?signed_out=1");
    res.headers_mut().insert(SET_COOKIE, cookie("", 0, state.config.tls_cert.is_some()));
    res
}

/// The agents of the tenant with their status, as the API shows them.
async fn agent_views(
    state: &AppState,
    tenant: &str,
    agents: Vec<switchboard_store::AgentRecord>,
) -> Result<Vec<Agent>, ApiError> {
    let ids: Vec<String> = agents.iter().filter(|a| a.endpoint.is_some()).map(|a| a.id.clone()).collect();
    let settings: std::collections::HashMap<_, _> =
        crate::api::agents::settings_of(state, tenant, &ids).await?.into_iter().collect();
    Ok(agents
        .into_iter()
        .map(|a| {
            let s = settings.get(&a.id);
            crate::api::agents::view(a, state.config.heartbeat_window_ms, s)
        })
        .collect())
}

#[derive(Deserialize)]
pub struct AgentsQuery {
    after: Option<String>,
    capability: Option<String>,
}

/// `/agents`: the directory, by name of capability if one is asked for.
pub async fn agents(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<AgentsQuery>) -> Response {
    let s = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let capability = q.capability.filter(|c| !c.trim().is_empty());
    let filter = AgentFilter { capability: capability.clone(), after: q.after, limit: PAGE };
    let page_rows = match state.store.list_agents(&s.user.tenant, filter).await {
        Ok(rows) => rows,
        Err(e) => return error_page(e.into()),
    };
    let next = (page_rows.len() == PAGE).then(|| page_rows.last().map(|a| a.id.clone())).flatten();
    let agents = match agent_views(&state, &s.user.tenant, page_rows).await {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let ctx = minijinja::context! { me => Me::of(&s), nav => "agents", agents, next, capability };
    page(StatusCode::OK, "agents.html", ctx)
}

/// A capability as the agent page shows it: its schemas pretty-printed.
#[derive(Serialize)]
struct CapabilityView {
    name: String,
    description: Option<String>,
    tags: Vec<String>,
    examples: Vec<String>,
    input_schema: Option<String>,
    output_schema: Option<String>,
}

/// `/agents/{id}`: one agent's card, status and capabilities with their schemas.
pub async fn agent(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let record = match state.store.get_agent(&s.user.tenant, &id).await {
        Ok(Some(a)) => a,
        Ok(None) => return error_page(crate::domain::agents::not_registered(&id)),
        Err(e) => return error_page(e.into()),
    };
    let agent = match agent_views(&state, &s.user.tenant, vec![record]).await {
        Ok(mut a) => a.remove(0),
        Err(e) => return error_page(e),
    };
    let pretty = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| serde_json::to_string_pretty(v).ok());
    let capabilities: Vec<CapabilityView> = agent
        .capabilities
        .iter()
        .map(|c| CapabilityView {
            name: c.name.clone(),
            description: c.description.clone(),
            tags: c.tags.clone(),
            examples: c.examples.clone(),
            input_schema: pretty(&c.input_schema),
            output_schema: pretty(&c.output_schema),
        })
        .collect();
    let ctx = minijinja::context! { me => Me::of(&s), nav => "agents", agent, capabilities };
    page(StatusCode::OK, "agent.html", ctx)
}
