//! `/v1/agents`: the registry.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{
    Agent, AgentImported, AgentList, AgentRegistered, AgentStatus, ImportAgent, RegisterAgent, UpdateAgent,
};
use switchboard_core::api::{AgentKey, AgentKeyCreated, AgentKeyList, FieldError, WebhookSecret};
use switchboard_core::principal::PrincipalKind;
use switchboard_core::time::{now_ms, rfc3339};
use switchboard_store::push::PushSettings;
use switchboard_store::{AgentFilter, AgentKeyRecord, AgentRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{AgentKeyPath, AgentPath, Conflict, Forbidden, NotFound, Unprocessable};
use super::{Q, parse_json};
use crate::api::auth::Auth;
use crate::domain::agents::{MAX_KEY_GRACE_SECONDS, not_registered};
use crate::error::ApiError;

const CARD_LIMIT: usize = 256 * 1024;

/// The API view of an agent. Its status is `error` while its push endpoint is failing or
/// disabled, otherwise derived from when it was last seen.
pub fn view(a: AgentRecord, heartbeat_window_ms: u64, push: Option<&PushSettings>) -> Agent {
    let status = crate::domain::presence::status(&a, heartbeat_window_ms, push, now_ms());
    Agent {
        id: a.id,
        name: a.name,
        description: a.description,
        version: a.version,
        endpoint: a.endpoint,
        capabilities: a.capabilities,
        metadata: a.metadata,
        status,
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
        last_seen_at: a.last_seen_at.map(rfc3339),
    }
}

/// Push settings of these agents (empty where the store has no push support).
pub async fn settings_of(
    state: &AppState,
    tenant: &str,
    ids: &[String],
) -> Result<Vec<(String, PushSettings)>, ApiError> {
    Ok(state.store.push_settings(tenant, ids).await?)
}

async fn view_one(state: &AppState, a: AgentRecord) -> Result<Agent, ApiError> {
    let settings = settings_of(state, &a.tenant, std::slice::from_ref(&a.id)).await?;
    Ok(view(a, state.config.heartbeat_window_ms, settings.first().map(|(_, s)| s)))
}

/// Registers an agent (admin). The API key is in this answer only.
#[utoipa::path(post, path = "/v1/agents", operation_id = "registerAgent", request_body = RegisterAgent,
    responses((status = 201, description = "Registered; the API key is shown only here", body = AgentRegistered),
              (status = 403, response = Forbidden), (status = 409, response = Conflict),
              (status = 422, response = Unprocessable)))]
pub async fn register(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<AgentRegistered>), ApiError> {
    auth.require_admin()?;
    let req: RegisterAgent = parse_json(body, CARD_LIMIT).await?;
    state.access.register_agent(&auth.0).await?;
    let r = state.agents.register(&auth.0, req).await?;
    let agent = view(r.record, state.config.heartbeat_window_ms, None);
    Ok((StatusCode::CREATED, Json(AgentRegistered { agent, api_key: r.api_key, webhook_secret: r.webhook_secret })))
}

/// Imports an external A2A agent from its Agent Card (admin): it is registered with the
/// card's skills as capabilities, and messages to it are forwarded with the A2A client
/// binding by the push engine; its answers come back as replies.
#[utoipa::path(post, path = "/v1/agents:import", operation_id = "importAgent", request_body = ImportAgent,
    responses((status = 201, description = "Imported", body = AgentImported),
              (status = 403, response = Forbidden), (status = 409, response = Conflict),
              (status = 422, response = Unprocessable)))]
pub async fn import(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<AgentImported>), ApiError> {
    auth.require_admin()?;
    let req: ImportAgent = parse_json(body, CARD_LIMIT).await?;
    state.access.register_agent(&auth.0).await?;
    let (r, remote) = crate::domain::a2a::import::import(&state.agents, &auth.0, req).await?;
    let agent = view(r.record, state.config.heartbeat_window_ms, None);
    Ok((StatusCode::CREATED, Json(AgentImported { agent, a2a: remote.view() })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only agents offering this capability.
    capability: Option<String>,
    /// `active`, `inactive` or `error`.
    status: Option<AgentStatus>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists agents, optionally by capability and status.
#[utoipa::path(get, path = "/v1/agents", operation_id = "listAgents", params(ListQuery),
    responses((status = 200, description = "A page of agents, by id", body = AgentList)))]
pub async fn list(State(state): State<AppState>, auth: Auth, Q(q): Q<ListQuery>) -> Result<Json<AgentList>, ApiError> {
    let limit = super::page_limit(q.limit)?;
    let after = super::agent_cursor("cursor", q.cursor)?;
    let filter = AgentFilter { capability: q.capability, after, limit };
    let page = state.store.list_agents(auth.0.tenant.as_str(), filter).await?;
    let next_cursor = (page.len() == limit).then(|| page.last().map(|a| a.id.clone())).flatten();
    let ids: Vec<String> = page.iter().filter(|a| a.endpoint.is_some()).map(|a| a.id.clone()).collect();
    let settings: std::collections::HashMap<String, PushSettings> =
        settings_of(&state, auth.0.tenant.as_str(), &ids).await?.into_iter().collect();
    let agents = page
        .into_iter()
        .map(|a| {
            let s = settings.get(&a.id);
            view(a, state.config.heartbeat_window_ms, s)
        })
        .filter(|a| q.status.is_none_or(|s| a.status == s))
        .collect();
    Ok(Json(AgentList { agents, next_cursor }))
}

/// One agent's card and status.
#[utoipa::path(get, path = "/v1/agents/{id}", operation_id = "getAgent", params(AgentPath),
    responses((status = 200, description = "The agent", body = Agent), (status = 404, response = NotFound)))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> Result<Json<Agent>, ApiError> {
    let a = state.store.get_agent(auth.0.tenant.as_str(), &id).await?.ok_or_else(|| not_registered(&id))?;
    Ok(Json(view_one(&state, a).await?))
}

fn require_self_or_admin(auth: &Auth, id: &str) -> Result<(), ApiError> {
    match &auth.0.kind {
        _ if auth.0.is_admin() => Ok(()),
        PrincipalKind::Agent(me) if me == id => Ok(()),
        _ => Err(ApiError::Forbidden(
            "an agent may change only its own card; use the admin token to change another agent".into(),
        )),
    }
}

/// Replaces an agent's card (admin, or the agent itself).
#[utoipa::path(put, path = "/v1/agents/{id}", operation_id = "updateAgent", params(AgentPath), request_body = RegisterAgent,
    responses((status = 200, description = "The agent as it is now", body = Agent),
              (status = 403, response = Forbidden), (status = 404, response = NotFound),
              (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Agent>, ApiError> {
    require_self_or_admin(&auth, &id)?;
    let req: UpdateAgent = parse_json(body, CARD_LIMIT).await?;
    let updated = state.agents.update(&auth.0, &id, req).await?;
    state.access.forget_agent(auth.0.tenant.as_str(), &id);
    Ok(Json(view_one(&state, updated).await?))
}

/// Deletes an agent (admin); its key stops working and its open deliveries go to `dead`.
/// With `?erase=true`, the payloads of its messages are erased first.
#[utoipa::path(delete, path = "/v1/agents/{id}", operation_id = "deleteAgent", params(AgentPath, super::EraseQuery),
    responses((status = 204, description = "Deleted"), (status = 403, response = Forbidden),
              (status = 404, response = NotFound)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Q(q): Q<super::EraseQuery>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    state.agents.remove(&auth.0, &id, q.erase).await?;
    state.tokens.forget_agent(auth.0.tenant.as_str(), &id);
    state.access.forget_agent(auth.0.tenant.as_str(), &id);
    state.oauth.forget_agent(auth.0.tenant.as_str(), &id);
    Ok(StatusCode::NO_CONTENT)
}

/// Marks the agent alive now (the agent itself).
#[utoipa::path(post, path = "/v1/agents/{id}/heartbeat", operation_id = "heartbeat", params(AgentPath),
    responses((status = 200, description = "The agent, now active", body = Agent),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    match &auth.0.kind {
        PrincipalKind::Agent(me) if *me == *id => {}
        _ => {
            return Err(ApiError::Forbidden(
                "only the agent itself can send its heartbeat: call it with that agent's API key".into(),
            ));
        }
    }
    let a = state.agents.heartbeat(&auth.0, &id).await?;
    Ok(Json(view_one(&state, a).await?))
}

fn secret_view(s: &PushSettings) -> WebhookSecret {
    let live = s.previous_until.filter(|u| *u > now_ms());
    WebhookSecret {
        secret: s.secret.clone(),
        previous: s.previous.clone().filter(|_| live.is_some()),
        previous_expires_at: live.map(rfc3339),
    }
}

async fn push_settings(state: &AppState, auth: &Auth, id: &str) -> Result<PushSettings, ApiError> {
    require_self_or_admin(auth, id)?;
    state.agents.push_settings(&auth.0, id).await
}

/// The agent's webhook signing secret (the agent itself, or the admin).
#[utoipa::path(get, path = "/v1/agents/{id}/webhook-secret", operation_id = "getWebhookSecret", params(AgentPath),
    responses((status = 200, description = "The signing secret(s)", body = WebhookSecret),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn webhook_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<WebhookSecret>, ApiError> {
    let s = push_settings(&state, &auth, &id).await?;
    Ok(Json(secret_view(&s)))
}

/// Rotates the signing secret. For 24 hours pushes carry signatures with both the new and
/// the previous secret, so receivers can switch without losing a message.
#[utoipa::path(post, path = "/v1/agents/{id}/webhook-secret:rotate", operation_id = "rotateWebhookSecret",
    params(AgentPath),
    responses((status = 200, description = "The new secret and the previous one", body = WebhookSecret),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<WebhookSecret>, ApiError> {
    require_self_or_admin(&auth, &id)?;
    let s = state.agents.rotate_secret(&auth.0, &id).await?;
    Ok(Json(secret_view(&s)))
}

fn key_view(k: AgentKeyRecord) -> AgentKey {
    AgentKey {
        id: k.id,
        created_at: rfc3339(k.created_at),
        expires_at: k.expires_at.map(rfc3339),
        last_used_at: k.last_used_at.map(rfc3339),
    }
}

/// Creates one more API key for the agent (admin, or the agent itself); its other keys keep
/// working. The key is in this answer only.
#[utoipa::path(post, path = "/v1/agents/{id}/keys", operation_id = "createAgentKey", params(AgentPath),
    responses((status = 201, description = "The new key, shown only this once", body = AgentKeyCreated),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<AgentKeyCreated>), ApiError> {
    let (k, key) = state.agents.create_key(&auth.0, &id).await?;
    Ok((StatusCode::CREATED, Json(AgentKeyCreated { id: k.id, key, created_at: rfc3339(k.created_at) })))
}

/// Lists the agent's keys that still work, with their last use (admin, or the agent itself).
/// Never the keys themselves.
#[utoipa::path(get, path = "/v1/agents/{id}/keys", operation_id = "listAgentKeys", params(AgentPath),
    responses((status = 200, description = "The agent's keys, oldest first", body = AgentKeyList),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<AgentKeyList>, ApiError> {
    let keys = state.agents.list_keys(&auth.0, &id).await?;
    Ok(Json(AgentKeyList { keys: keys.into_iter().map(key_view).collect() }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RevokeQuery {
    /// Seconds the key keeps working after the revocation, 0 to 604800 (7 days); default 0:
    /// it stops at once.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 604800)]
    grace_seconds: Option<String>,
}

pub(crate) fn grace_seconds(asked: Option<&str>) -> Result<u64, ApiError> {
    match asked.map(str::parse::<u64>) {
        None => Ok(0),
        Some(Ok(n)) if n <= MAX_KEY_GRACE_SECONDS => Ok(n),
        Some(_) => Err(ApiError::params(vec![FieldError {
            path: "grace_seconds".to_owned(),
            message: format!(
                "must be a whole number of seconds from 0 (stop at once) to {MAX_KEY_GRACE_SECONDS} (7 days)"
            ),
        }])),
    }
}

/// Revokes one of the agent's keys (admin, or the agent itself), at once or after
/// `grace_seconds`, so its holder can switch to a new key first.
#[utoipa::path(delete, path = "/v1/agents/{id}/keys/{key_id}", operation_id = "revokeAgentKey",
    params(AgentKeyPath, RevokeQuery),
    responses((status = 204, description = "Revoked: the key stops working now, or when its grace period ends"),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, key_id)): Path<(String, String)>,
    Q(q): Q<RevokeQuery>,
) -> Result<StatusCode, ApiError> {
    let grace = grace_seconds(q.grace_seconds.as_deref())?;
    state.agents.revoke_key(&auth.0, &id, &key_id, grace).await?;
    // This node stops accepting it now (its cache would keep it for up to 10 s); a key in
    // grace is checked against its new expiry on each request.
    state.tokens.forget_key(auth.0.tenant.as_str(), &key_id);
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list))
        .routes(routes!(import))
        .routes(routes!(show, update, remove))
        .routes(routes!(heartbeat))
        .routes(routes!(webhook_secret))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}
