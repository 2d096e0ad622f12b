//! Sign-in, sign-out and the agent directory. Each page reads the session from the `sb_session` cookie (a page without one sends
//! the browser to the sign-in form), asks the domain or the store, and renders a template.

use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::api::Agent;
use switchboard_core::people::Login;
use switchboard_store::{AgentFilter, DeliveryFilter};

use super::common::{PAGE, Visitor, error_page, see_other, session};
use super::render::page;
use crate::api::AppState;
use crate::api::auth::{check_same_site, session_cookie};
use crate::api::sessions::cookie;
use crate::domain::people::sessions::{ABSOLUTE_MS, principal_of};
use crate::error::ApiError;
use crate::listener::ClientAddr;

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    signed_out: Option<String>,
    /// Where to go once signed in (see [`safe_next`]).
    #[serde(default)]
    next: Option<String>,
}

/// `next` if it is a path on this site: it starts with one `/` (not `//`, which a browser
/// reads as another host, nor `/\`, which some read the same way), and has no scheme, no
/// control characters and no backslash. Anything else is dropped, so a link cannot send a
/// person who signs in to another site.
pub(super) fn safe_next(next: Option<&str>) -> Option<&str> {
    let n = next?;
    let ok = n.starts_with('/')
        && !n.starts_with("//")
        && !n.contains('\\')
        && !n.chars().any(|c| c.is_control())
        && n.len() <= 2000;
    ok.then_some(n)
}

/// `GET /sign-in`: the form (or home, or `next`, when already signed in).
pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<SignInQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if let Some(token) = session_cookie(&headers)
        && let Ok(Some(_)) = state.sessions.session(token).await
    {
        return see_other(next.unwrap_or("/"));
    }
    page(StatusCode::OK, "sign_in.html", minijinja::context! { signed_out => q.signed_out.is_some(), next })
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    next: Option<String>,
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
    let next = safe_next(form.next.as_deref());
    match state.sessions.login(login, client).await {
        Ok(opened) => {
            let mut res = see_other(next.unwrap_or("/"));
            let secure = state.config.tls_cert.is_some();
            res.headers_mut().insert(SET_COOKIE, cookie(&opened.token, ABSOLUTE_MS / 1000, secure));
            res
        }
        Err(e) => {
            let problem = e.problem();
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNAUTHORIZED);
            let ctx = minijinja::context! { error => problem.detail, email => form.email, tenant => tenant, next };
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
pub async fn agents(State(state): State<AppState>, v: Visitor, Query(q): Query<AgentsQuery>) -> Response {
    let s = &v.session;
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
    let ctx = minijinja::context! { me => v.me(&state).await, nav => "agents", agents, next, capability };
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
pub async fn agent(State(state): State<AppState>, v: Visitor, Path(id): Path<String>) -> Response {
    let s = &v.session;
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
    let health = match delivery_health(&state, &s.user.tenant, &agent.id).await {
        Ok(h) => h,
        Err(e) => return error_page(e),
    };
    let ctx = minijinja::context! {
        me => v.me(&state).await, nav => "agents", agent, capabilities, health,
        may_send => v.principal.may_send(),
    };
    page(StatusCode::OK, "agent.html", ctx)
}

/// How deliveries to an agent are going: its push endpoint's circuit (open with the reason,
/// or disabled by a 410), the deliveries waiting for it, and its recent dead letters.
#[derive(Serialize)]
struct Health {
    push: bool,
    circuit_open: Option<String>,
    disabled: bool,
    waiting: i64,
    dead: usize,
    /// 50 or more: "at least".
    dead_capped: bool,
    last_error: Option<String>,
}

async fn delivery_health(state: &AppState, tenant: &str, id: &str) -> Result<Health, ApiError> {
    let address = format!("agent:{id}");
    let push = crate::api::agents::settings_of(state, tenant, &[id.to_owned()]).await?;
    let push = push.into_iter().next().map(|(_, p)| p);
    let waiting = state.store.outstanding(tenant, std::slice::from_ref(&address)).await?;
    let filter = DeliveryFilter {
        state: Some(switchboard_core::api::DeliveryState::Dead),
        recipient: Some(address),
        limit: PAGE,
        ..Default::default()
    };
    let dead = state.store.list_deliveries(tenant, filter).await?;
    Ok(Health {
        push: push.is_some(),
        circuit_open: push.as_ref().and_then(|p| p.health_error.clone()),
        disabled: push.as_ref().is_some_and(|p| p.disabled),
        waiting: waiting.first().map_or(0, |(_, n)| *n),
        dead_capped: dead.len() >= PAGE,
        last_error: dead.last().and_then(|(_, d)| d.last_error.clone()),
        dead: dead.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_a_path_on_this_site_or_nothing() {
        for ok in ["/", "/messages/0192", "/approvals/a?x=1#y"] {
            assert_eq!(safe_next(Some(ok)), Some(ok));
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "messages/1",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_next(None), None);
    }
}
