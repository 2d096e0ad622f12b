//! Health, readiness, metrics and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use switchboard_core::api::Health;
use utoipa::OpenApi;

use crate::AppState;
use crate::metrics::StateLabels;

/// 200 while the process serves.
#[utoipa::path(get, path = "/health", security(()), responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// 200 when the store answers, 503 when it does not.
#[utoipa::path(get, path = "/ready", security(()), responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ready".into() })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "store unavailable".into() }))
        }
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

pub async fn openapi() -> impl IntoResponse {
    Json(super::ApiDoc::openapi())
}
