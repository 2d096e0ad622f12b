//! The HTTP API: one module per resource, each thin (parse, authorize, call the store, map).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;
use switchboard_core::api as wire;

pub mod agents;
pub mod deliveries;
pub mod inbox;
pub mod messages;
pub mod openapi;
pub mod ops;
pub mod stream;
pub mod tenant;
pub mod topics;
pub mod whoami;

pub use openapi::ApiDoc;

/// Builds the node's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/v1/agents", post(agents::register).get(agents::list))
        .route("/v1/agents/{id}", get(agents::show).put(agents::update).delete(agents::remove))
        .route("/v1/agents/{id}/heartbeat", post(agents::heartbeat))
        .route("/v1/agents/{id}/webhook-secret", get(agents::webhook_secret))
        .route("/v1/agents/{id}/webhook-secret:rotate", post(agents::rotate_webhook_secret))
        .route("/v1/tenant/push-settings", get(tenant::push_settings).put(tenant::put_push_settings))
        .route("/.well-known/switchboard-keys.json", get(tenant::keys))
        .route("/v1/deliveries", get(deliveries::list))
        .route("/v1/dead-letters", get(deliveries::dead_letters))
        .route("/v1/dead-letters:replay", post(deliveries::replay))
        .route("/v1/dead-letters:purge", post(deliveries::purge))
        .route("/v1/messages", post(messages::send))
        .route("/v1/messages:batch", post(messages::send_batch))
        .route("/v1/messages/{id}", get(messages::show))
        .route("/v1/whoami", get(whoami::whoami))
        .route("/v1/topics", get(topics::list))
        .route("/v1/topics/{topic}/subscribers", get(topics::subscribers))
        .route("/v1/topics/{topic}/subscribers/{agent_id}", put(topics::subscribe).delete(topics::unsubscribe))
        .route("/v1/inbox", get(inbox::fetch))
        .route("/v1/inbox/ack", post(inbox::ack))
        .route("/v1/inbox/nack", post(inbox::nack))
        .route("/v1/stream", get(stream::websocket))
        .route("/v1/events", get(stream::events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_http))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such path; the API is described at /openapi.json".into())
}

async fn method_not_allowed() -> Response {
    let mut res =
        ApiError::InvalidQuery("this method is not allowed on this path; see /openapi.json".into()).into_response();
    *res.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    res
}

async fn record_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "other".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let labels = crate::metrics::HttpLabels { method, route, status: res.status().as_u16() };
    state.metrics.http.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    res
}

/// Reads a JSON body of at most `limit` bytes into `T`, reporting the failing path.
pub async fn parse_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody {
            detail: format!("could not read the request body: {e}"),
            errors: Vec::new(),
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is larger than the limit of {limit} bytes; send large files by `uri`, or raise max_message_bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::InvalidBody {
            detail: "the request body is empty; send a JSON object".into(),
            errors: vec![],
        });
    }
    // A valid body, the common case, parses once without path tracking, which cost about a
    // third of the parse (callgrind, `http` workload); a refused one is parsed again with it,
    // so that the error names the failing field.
    if let Ok(v) = serde_json::from_slice(&bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::InvalidBody { detail: format!("the body is not valid JSON: {inner}"), errors: vec![] }
        } else {
            let path = if path == "." { String::new() } else { path };
            let message = inner.to_string();
            ApiError::InvalidBody {
                detail: if path.is_empty() { message.clone() } else { format!("`{path}`: {message}") },
                errors: vec![wire::FieldError { path, message }],
            }
        }
    })
}

/// Query parameters, with errors as problem documents.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Q<T>, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Q(v)),
            Err(e) => Err(ApiError::InvalidQuery(e.body_text())),
        }
    }
}
