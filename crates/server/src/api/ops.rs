//! Health, readiness, metrics and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_core::api::Health;
use switchboard_core::time::now_ms;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::StoreUnavailable;
use crate::error::ApiError;
use crate::metrics::StateLabels;

/// 200 while the process serves.
#[utoipa::path(get, path = "/health", security(()), responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// 200 when the node can serve and commit; 503 with the reason when the store does not
/// answer, or when its latest write failed (a full disk, a read-only database), until a write
/// succeeds again. An idle node, or one whose writes failed a moment ago, commits a probe write
/// first (at most one a second), so a node nobody sends to still learns when it can write.
#[utoipa::path(get, path = "/ready", security(()), responses(
    (status = 200, body = Health),
    (status = 503, response = StoreUnavailable),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "not ready");
        return ApiError::StoreUnavailable(format!("{e}; the node is ready again once the store answers"))
            .into_response();
    }
    let mut status = state.store.write_status();
    if status.needs_probe(now_ms()) {
        state.store.probe_write().await;
        status = state.store.write_status();
    }
    match status.failure {
        None => (StatusCode::OK, Json(Health { status: "ready".into() })).into_response(),
        Some(f) => ApiError::StoreUnavailable(format!(
            "the store cannot commit writes ({}, failing for {} ms); free disk space or make the database writable: the node is ready again once a write succeeds",
            f.reason,
            (now_ms() - f.since).max(0)
        ))
        .into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(c) = state.store.delivery_counts().await {
        state.metrics.inbox_depth.get_or_create(&StateLabels { state: "pending" }).set(c.pending);
        state.metrics.inbox_depth.get_or_create(&StateLabels { state: "in_flight" }).set(c.in_flight);
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry) {
        tracing::error!(error = %e, "could not encode metrics");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}

/// The API description, encoded once when the router is built.
pub async fn openapi(doc: axum::body::Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc)
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        // Not in the document: Prometheus text, and the document itself (see `api::router`).
        .route("/metrics", axum::routing::get(metrics))
}
