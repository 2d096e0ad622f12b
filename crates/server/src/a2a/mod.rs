//! The A2A door, beside `api/` and `web/`: Agent Cards and the JSON-RPC 2.0 binding
//! (`rpc`). It decides nothing of its own: tasks are `domain::a2a`, sends go through the
//! same `Acceptor` as `POST /v1/messages`.
//!
//! - `GET /.well-known/agent-card.json`: the hub's card, public (it names no agent and no
//!   tenant; it says where agents are and how to authenticate).
//! - `GET /a2a/{id}/.well-known/agent-card.json`: the agent's card. Without credentials, a
//!   public card that says how to reach and authenticate to the agent and nothing else (the
//!   id is not looked up). With credentials (authenticated like the API, because agents
//!   belong to a tenant) the full card: the caller's tenant is the one looked in, and an
//!   unknown agent or another tenant's answers 404. An agent's name, description and skills
//!   are the tenant's data, the same a `GET /v1/agents/{id}` shows; `GetExtendedAgentCard`
//!   answers the same full card.
//! - `POST /a2a/{id}` and `/a2a/{id}/`: JSON-RPC (`rpc`).
//! - `/a2a/{id}/rest/…`: HTTP+JSON (`rest`).
//!
//! Both bindings read their requests into the operations of `ops`.
//!
//! Cards carry `Cache-Control` and a strong `ETag` (a hash of the card's bytes); a request
//! whose `If-None-Match` names it is answered 304 with no body.
//!
//! The base URL in cards is `public_url` when configured, else the request's `Host` with the
//! node's scheme.

mod ops;
mod rest;
mod rpc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use sha2::{Digest, Sha256};

use crate::api::AppState;
use crate::api::auth::Auth;
use crate::domain::a2a::card;
use crate::error::ApiError;

/// The A2A routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/agent-card.json", get(hub_card))
        .route("/a2a/{id}/.well-known/agent-card.json", get(agent_card))
        .route("/a2a/{id}", post(rpc::call))
        .route("/a2a/{id}/", post(rpc::call))
        .route("/a2a/{id}/rest/{*rest}", any(rest::call))
}

/// The URL clients reach this hub at.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let scheme = if state.config.tls_cert.is_some() { "https" } else { "http" };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// A card with its caching headers, or 304 when the client holds this version.
fn card_response(card: &serde_json::Value, headers: &HeaderMap, cache: &'static str) -> Response {
    let body = serde_json::to_vec(card).unwrap_or_default();
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", crate::token::hex(&digest[..16]));
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let common = [(header::ETAG, etag), (header::CACHE_CONTROL, HeaderValue::from_static(cache))];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

async fn hub_card(State(state): State<AppState>, headers: HeaderMap) -> Response {
    card_response(&card::hub_card(&base_url(&state, &headers)), &headers, "public, max-age=300")
}

async fn agent_card(
    State(state): State<AppState>,
    auth: Result<Auth, ApiError>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    let anonymous = !headers.contains_key(header::AUTHORIZATION) && !headers.contains_key("x-api-key");
    if anonymous {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ApiError::NotFound(format!("`{id}` is not an agent id")));
        }
        return Ok(card_response(&card::public_agent_card(&base, &id), &headers, "public, max-age=300"));
    }
    let agent = find_agent(&state, &auth?, &id).await?;
    Ok(card_response(&card::agent_card(&base, &agent), &headers, "private, max-age=60"))
}

/// The agent `id` of the caller's tenant, or 404.
async fn find_agent(state: &AppState, auth: &Auth, id: &str) -> Result<switchboard_store::AgentRecord, ApiError> {
    state.store.get_agent(auth.0.tenant.as_str(), id).await?.ok_or_else(|| {
        ApiError::NotFound(format!("agent {id} is not registered in your tenant; list agents with GET /v1/agents"))
    })
}
