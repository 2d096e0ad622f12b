//! `/v1/agents`: the registry.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{
    Agent, AgentList, AgentRegistered, AgentStatus, Problem, RegisterAgent, UpdateAgent,
};
use switchboard_core::time::{now_ms, rfc3339};
use switchboard_core::{API_KEY_PREFIX, validate};
use switchboard_store::{AgentFilter, AgentRecord, PrincipalKind};

use super::{Q, parse_json};
use crate::AppState;
use crate::auth::{Auth, new_token, token_hash};
use crate::error::ApiError;

const CARD_LIMIT: usize = 256 * 1024;

/// The API view of an agent, with its status derived from when it was last seen.
pub fn view(a: AgentRecord, heartbeat_window_ms: u64) -> Agent {
    let now = now_ms();
    let status = match a.last_seen_at {
        Some(t) if now - t <= heartbeat_window_ms as i64 => AgentStatus::Active,
        _ => AgentStatus::Inactive,
    };
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

fn not_registered(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "agent {id} is not registered in this tenant; list agents with `switchboard agent list`"
    ))
}

/// Registers an agent (admin). The API key is in this answer only.
#[utoipa::path(post, path = "/v1/agents", request_body = RegisterAgent,
    responses((status = 201, body = AgentRegistered), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> Result<(StatusCode, Json<AgentRegistered>), ApiError> {
    auth.require_admin()?;
    let req: RegisterAgent = parse_json(body, CARD_LIMIT).await?;
    validate::register_agent(&req).map_err(ApiError::fields)?;
    let now = now_ms();
    let record = AgentRecord {
        tenant: auth.0.tenant.clone(),
        id: switchboard_core::new_id().to_string(),
        name: req.name,
        description: req.description,
        version: req.version,
        endpoint: req.endpoint,
        capabilities: req.capabilities,
        metadata: req.metadata,
        created_at: now,
        updated_at: now,
        last_seen_at: None,
    };
    let api_key = new_token(API_KEY_PREFIX);
    state
        .store
        .create_agent(record.clone(), token_hash(&api_key))
        .await?;
    tracing::info!(agent = %record.id, name = %record.name, "agent registered");
    Ok((
        StatusCode::CREATED,
        Json(AgentRegistered {
            agent: view(record, state.config.heartbeat_window_ms),
            api_key,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only agents offering this capability.
    capability: Option<String>,
    /// `active`, `inactive` or `error`.
    status: Option<AgentStatus>,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists agents, optionally by capability and status.
#[utoipa::path(get, path = "/v1/agents", params(ListQuery), responses((status = 200, body = AgentList)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Q(q): Q<ListQuery>,
) -> Result<Json<AgentList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::InvalidQuery(
            "`limit` must be between 1 and 1000".into(),
        ));
    }
    let filter = AgentFilter {
        capability: q.capability,
        after: q.cursor,
        limit,
    };
    let page = state.store.list_agents(&auth.0.tenant, filter).await?;
    let next_cursor = (page.len() == limit)
        .then(|| page.last().map(|a| a.id.clone()))
        .flatten();
    let agents = page
        .into_iter()
        .map(|a| view(a, state.config.heartbeat_window_ms))
        .filter(|a| q.status.is_none_or(|s| a.status == s))
        .collect();
    Ok(Json(AgentList {
        agents,
        next_cursor,
    }))
}

/// One agent's card and status.
#[utoipa::path(get, path = "/v1/agents/{id}", responses((status = 200, body = Agent), (status = 404, body = Problem)))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    let a = state
        .store
        .get_agent(&auth.0.tenant, &id)
        .await?
        .ok_or_else(|| not_registered(&id))?;
    Ok(Json(view(a, state.config.heartbeat_window_ms)))
}

fn require_self_or_admin(auth: &Auth, id: &str) -> Result<(), ApiError> {
    match &auth.0.kind {
        PrincipalKind::Admin => Ok(()),
        PrincipalKind::Agent(me) if me == id => Ok(()),
        PrincipalKind::Agent(_) => Err(ApiError::Forbidden(
            "an agent may change only its own card".into(),
        )),
    }
}

/// Replaces an agent's card (admin, or the agent itself).
#[utoipa::path(put, path = "/v1/agents/{id}", request_body = RegisterAgent,
    responses((status = 200, body = Agent), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Agent>, ApiError> {
    require_self_or_admin(&auth, &id)?;
    let req: UpdateAgent = parse_json(body, CARD_LIMIT).await?;
    validate::register_agent(&req).map_err(ApiError::fields)?;
    let existing = state
        .store
        .get_agent(&auth.0.tenant, &id)
        .await?
        .ok_or_else(|| not_registered(&id))?;
    let record = AgentRecord {
        name: req.name,
        description: req.description,
        version: req.version,
        endpoint: req.endpoint,
        capabilities: req.capabilities,
        metadata: req.metadata,
        updated_at: now_ms(),
        ..existing
    };
    let updated = state
        .store
        .update_agent(record)
        .await?
        .ok_or_else(|| not_registered(&id))?;
    Ok(Json(view(updated, state.config.heartbeat_window_ms)))
}

/// Deletes an agent (admin); its key stops working and its open deliveries go to `dead`.
#[utoipa::path(delete, path = "/v1/agents/{id}", responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    if !state
        .store
        .delete_agent(&auth.0.tenant, &id, now_ms())
        .await?
    {
        return Err(not_registered(&id));
    }
    state.tokens.forget_agent(&auth.0.tenant, &id);
    tracing::info!(agent = %id, "agent deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Marks the agent alive now (the agent itself).
#[utoipa::path(post, path = "/v1/agents/{id}/heartbeat", responses((status = 200, body = Agent), (status = 403, body = Problem)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    match &auth.0.kind {
        PrincipalKind::Agent(me) if *me == id => {}
        _ => {
            return Err(ApiError::Forbidden(
                "only the agent itself can send its heartbeat".into(),
            ));
        }
    }
    state
        .store
        .touch_agents(vec![(auth.0.tenant.clone(), id.clone(), now_ms())])
        .await?;
    let a = state
        .store
        .get_agent(&auth.0.tenant, &id)
        .await?
        .ok_or_else(|| not_registered(&id))?;
    Ok(Json(view(a, state.config.heartbeat_window_ms)))
}
