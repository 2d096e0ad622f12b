//! `/v1/users/me/notifications`: the calling person's e-mail notification preferences. The
//! rules are `domain::notify`'s.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use switchboard_core::api::NotificationPrefs;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, Unprocessable};
use super::parse_json;
use crate::api::auth::Auth;
use crate::error::ApiError;

/// The calling person's notification preferences: e-mail on or off, and quiet hours. Until
/// they set any, e-mail is on with no quiet hours (e-mail goes out only where the hub's
/// operator configured an SMTP server).
#[utoipa::path(get, path = "/v1/users/me/notifications", operation_id = "getNotificationPrefs",
    responses((status = 200, description = "The preferences", body = NotificationPrefs),
              (status = 403, response = Forbidden)))]
pub async fn show(State(state): State<AppState>, auth: Auth) -> Result<Json<NotificationPrefs>, ApiError> {
    Ok(Json(state.notifications.prefs(&auth.0).await?))
}

/// Replaces the calling person's notification preferences. Requests that arrive in quiet
/// hours are e-mailed as one digest when they end.
#[utoipa::path(put, path = "/v1/users/me/notifications", operation_id = "putNotificationPrefs",
    request_body = NotificationPrefs,
    responses((status = 200, description = "The preferences as stored", body = NotificationPrefs),
              (status = 403, response = Forbidden), (status = 422, response = Unprocessable)))]
pub async fn put(State(state): State<AppState>, auth: Auth, body: Body) -> Result<Json<NotificationPrefs>, ApiError> {
    // Refuse agents and the admin before reading the body, as the token routes do.
    crate::domain::people::users::me(&auth.0)?;
    let req: NotificationPrefs = parse_json(body, 4096).await?;
    Ok(Json(state.notifications.put_prefs(&auth.0, req).await?))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, put))
}
