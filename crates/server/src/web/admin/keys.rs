//! `/admin/agents/{id}/keys`: an agent's API keys (id, created, last used, expiry); create one
//! (shown once, in the answer to the form), revoke one now or after a grace period (after a
//! confirmation). The rules are `domain::agents`' and the API's (`grace_seconds`).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::time::rfc3339;
use switchboard_store::AgentKeyRecord;

use super::{Admin, Confirm, Done, admin, confirm_page};
use crate::api::AppState;
use crate::domain::agents::not_registered;
use crate::web::common::{error_page, see_other};
use crate::web::render::page;

#[derive(Serialize)]
struct KeyRow {
    id: String,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
}

/// A key just created: the secret, in this page only.
#[derive(Serialize)]
struct NewKey {
    id: String,
    key: String,
}

async fn render(state: &AppState, a: &Admin, id: &str, new_key: Option<NewKey>, done: Option<String>) -> Response {
    let agent = match state.store.get_agent(a.tenant(), id).await {
        Ok(Some(agent)) => agent,
        Ok(None) => return error_page(not_registered(id)),
        Err(e) => return error_page(e.into()),
    };
    let keys = match state.agents.list_keys(a.by(), id).await {
        Ok(keys) => keys,
        Err(e) => return error_page(e),
    };
    let keys: Vec<KeyRow> = keys
        .into_iter()
        .map(|k: AgentKeyRecord| KeyRow {
            id: k.id,
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
            expires_at: k.expires_at.map(rfc3339),
        })
        .collect();
    let ctx = minijinja::context! {
        me => a.me(state).await, nav => "admin", section => "agents", agent_id => agent.id, agent_name => agent.name,
        keys, new_key, done,
    };
    page(StatusCode::OK, "admin_keys.html", ctx)
}

/// `GET /admin/agents/{id}/keys`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    render(&state, &a, &id, None, done.sentence()).await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: String,
}

/// `POST /admin/agents/{id}/keys`: creates a key as `POST /v1/agents/{id}/keys` does and
/// shows it once. Not a redirect: the key must not travel in a URL, and is stored nowhere.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = a.forged(&f.csrf_token) {
        return r;
    }
    match state.agents.create_key(a.by(), &id).await {
        Ok((k, key)) => render(&state, &a, &id, Some(NewKey { id: k.id, key }), None).await,
        Err(e) => error_page(e),
    }
}

/// `GET /admin/agents/{id}/keys/{key_id}/revoke`: asks before revoking, and for how long the
/// key keeps working.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, key_id)): Path<(String, String)>,
) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    // The key must be one of the agent's working keys (and the agent in this tenant).
    match state.agents.list_keys(a.by(), &id).await {
        Ok(keys) if keys.iter().any(|k| k.id == key_id) => {}
        Ok(_) => {
            return error_page(crate::error::ApiError::NotFound(format!(
                "agent {id} has no working key {key_id}; see its keys at /admin/agents/{id}/keys"
            )));
        }
        Err(e) => return error_page(e),
    }
    confirm_page(
        &state,
        &a,
        Confirm {
            heading: "Revoke a key",
            text: format!(
                "Revoke key {key_id} of agent {id}? Requests with it are refused once the grace period ends."
            ),
            action: format!("/admin/agents/{id}/keys/{key_id}/revoke"),
            hidden: vec![],
            button: "Revoke the key",
            cancel: format!("/admin/agents/{id}/keys"),
            grace: true,
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf_token: String,
    #[serde(default)]
    grace_seconds: Option<String>,
}

/// `POST /admin/agents/{id}/keys/{key_id}/revoke`: revokes as `DELETE
/// /v1/agents/{id}/keys/{key_id}?grace_seconds=` does.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, key_id)): Path<(String, String)>,
    Form(f): Form<RevokeForm>,
) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = a.forged(&f.csrf_token) {
        return r;
    }
    let asked = super::given(f.grace_seconds);
    let grace = match crate::api::agents::grace_seconds(asked.as_deref()) {
        Ok(g) => g,
        Err(e) => return error_page(e),
    };
    if let Err(e) = state.agents.revoke_key(a.by(), &id, &key_id, grace).await {
        return error_page(e);
    }
    state.tokens.forget_key(a.tenant(), &key_id);
    see_other(&format!("/admin/agents/{id}/keys?done=key_revoked"))
}
