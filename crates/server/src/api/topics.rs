//! `/v1/topics`: subscriptions to `topic:<name>` addresses. Publishing is an ordinary send
//! (`api/messages.rs::route` turns a topic into its subscribers); this module only keeps the
//! list of who subscribes to what.
//!
//! A topic exists while it has subscribers: there is nothing to create or delete, as in NATS.
//! Topic names follow the address rule (`core::address::check_name`) and may contain `/`, so
//! clients percent-encode them in the path (`alerts%2Feu`); axum decodes the segment. A
//! subscription may be to a wildcard pattern instead (`orders.*`, `orders.>`;
//! `core::subject::check_pattern`), which is listed and removed by the same path.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::api::{FieldError, Problem, Subscribed, SubscriberList, Subscription, Topic, TopicList};
use switchboard_core::principal::PrincipalKind;
use switchboard_core::subject::check_pattern;
use switchboard_core::time::rfc3339;
use switchboard_store::SubscriptionRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::Q;
use super::openapi::{BadRequest, Forbidden, NotFound, SubscriptionPath, TopicPath};
use crate::api::auth::Auth;
use crate::domain::topics;
use crate::error::ApiError;

/// The topic from the path: a name, checked with the same rule as `topic:<name>` addresses,
/// or a wildcard pattern.
fn topic_name(topic: &str) -> Result<(), ApiError> {
    check_pattern(topic)
        .map_err(|e| ApiError::params(vec![FieldError { path: "topic".into(), message: e.to_string() }]))
}

/// An agent manages its own subscriptions; the admin manages anyone's.
fn require_self_or_admin(auth: &Auth, agent_id: &str) -> Result<(), ApiError> {
    match &auth.0.kind {
        _ if auth.0.is_admin() => Ok(()),
        PrincipalKind::Agent(me) if me == agent_id => Ok(()),
        PrincipalKind::Agent(me) => Err(ApiError::Forbidden(format!(
            "an agent may subscribe or unsubscribe only itself (you are agent {me}); use agent {agent_id}'s own API key or the admin token"
        ))),
        _ => Err(ApiError::Forbidden(format!(
            "only agent {agent_id} itself or the admin may change its subscriptions; use its API key or the admin token"
        ))),
    }
}

fn view(s: SubscriptionRecord) -> Subscription {
    Subscription { topic: s.topic, agent_id: s.agent_id, created_at: rfc3339(s.created_at) }
}

/// Subscribes an agent to a topic (the agent itself, or the admin). 201 when new; 200 with
/// the existing subscription when it was already there.
#[utoipa::path(put, path = "/v1/topics/{topic}/subscribers/{agent_id}", operation_id = "subscribe",
    params(SubscriptionPath),
    responses((status = 201, description = "Subscribed", body = Subscribed),
              (status = 200, description = "Already subscribed: the existing subscription", body = Subscribed),
              (status = 400, response = BadRequest),
              (status = 403, description = "Not this agent's, or the tenant's policy denies it (`policy_denied`)",
               body = Problem, content_type = "application/problem+json"),
              (status = 404, response = NotFound)))]
pub async fn subscribe(
    State(state): State<AppState>,
    auth: Auth,
    Path((topic, agent_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Subscribed>), ApiError> {
    topic_name(&topic)?;
    require_self_or_admin(&auth, &agent_id)?;
    state.access.authorize_subscribe(&auth.0.tenant, &agent_id, &topic).await?;
    let Some((record, created)) =
        topics::subscribe(state.store.as_ref(), &state.patterns, &auth.0, &topic, &agent_id).await?
    else {
        return Err(ApiError::NotFound(format!(
            "agent {agent_id} is not registered in this tenant; list agents with `switchboard agent list`"
        )));
    };
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Subscribed { subscription: view(record) })))
}

/// Ends an agent's subscription (the agent itself, or the admin). Messages already accepted
/// for it are still delivered.
#[utoipa::path(delete, path = "/v1/topics/{topic}/subscribers/{agent_id}", operation_id = "unsubscribe",
    params(SubscriptionPath),
    responses((status = 204, description = "Unsubscribed"), (status = 400, response = BadRequest),
              (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    auth: Auth,
    Path((topic, agent_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    topic_name(&topic)?;
    require_self_or_admin(&auth, &agent_id)?;
    if !topics::unsubscribe(state.store.as_ref(), &state.patterns, &auth.0, &topic, &agent_id).await? {
        return Err(ApiError::NotFound(format!(
            "agent {agent_id} is not subscribed to topic `{topic}`; see `switchboard topic subscribers {topic}`"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubscribersQuery {
    /// `next_cursor` of the previous page.
    after: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A topic's subscribers in agent id order (any principal of the tenant). An unknown topic
/// has none.
#[utoipa::path(get, path = "/v1/topics/{topic}/subscribers", operation_id = "listSubscribers",
    params(TopicPath, SubscribersQuery),
    responses((status = 200, description = "A page of subscriptions, by agent id", body = SubscriberList),
              (status = 400, response = BadRequest)))]
pub async fn subscribers(
    State(state): State<AppState>,
    auth: Auth,
    Path(topic): Path<String>,
    Q(q): Q<SubscribersQuery>,
) -> Result<Json<SubscriberList>, ApiError> {
    topic_name(&topic)?;
    let limit = super::page_limit(q.limit)?;
    let after = super::agent_cursor("after", q.after)?;
    let page = state.store.topic_subscribers(auth.0.tenant.as_str(), &topic, after, limit).await?;
    let next_cursor = (page.len() == limit).then(|| page.last().map(|s| s.agent_id.clone())).flatten();
    Ok(Json(SubscriberList { subscribers: page.into_iter().map(view).collect(), next_cursor }))
}

/// The tenant's topics that have subscribers, by name, with how many each (any principal).
#[utoipa::path(get, path = "/v1/topics", operation_id = "listTopics",
    responses((status = 200, description = "The topics that have subscribers, by name", body = TopicList)))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> Result<Json<TopicList>, ApiError> {
    let topics = state.store.topics(auth.0.tenant.as_str()).await?;
    Ok(Json(TopicList {
        topics: topics.into_iter().map(|t| Topic { name: t.name, subscribers: t.subscribers }).collect(),
    }))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(subscribers)).routes(routes!(subscribe, unsubscribe))
}
