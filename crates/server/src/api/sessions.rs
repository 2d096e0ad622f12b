//! `/v1/auth`: signing in with a password (a session cookie and its CSRF token) and out.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_core::people::{Login, LoginAnswer};
use switchboard_core::time::rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, StoreUnavailable, TooManyRequests, Unauthenticated};
use super::parse_json;
use crate::api::auth::{SESSION_COOKIE, check_csrf, session_cookie};
use crate::domain::people::sessions::{ABSOLUTE_MS, principal_of};
use crate::error::ApiError;
use crate::listener::ClientAddr;

/// The `Set-Cookie` value for `value` living `max_age` seconds: `HttpOnly` (scripts cannot
/// read it), `SameSite=Lax` (not sent with other sites' POSTs), and `Secure` when this node
/// serves TLS itself. Behind a proxy that ends TLS the node cannot tell, and leaves it out.
pub(crate) fn cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("sb_session=; Max-Age=0"))
}

/// Signs in with an email and password. The session is the `sb_session` cookie; requests
/// made with it that change something must send the answer's `csrf_token` as `X-CSRF-Token`.
/// Repeated failures for one account or from one address answer 429 for up to 15 minutes.
#[utoipa::path(post, path = "/v1/auth/login", operation_id = "login", request_body = Login, security(()),
    responses((status = 200, description = "Signed in; the session is in the `sb_session` cookie", body = LoginAnswer,
               headers(("Set-Cookie" = String, description = "`sb_session=…; HttpOnly; SameSite=Lax; Path=/`"))),
              (status = 401, response = Unauthenticated), (status = 429, response = TooManyRequests),
              (status = 503, response = StoreUnavailable)))]
pub async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: Login = parse_json(body, 16 * 1024).await?;
    let client = client.map(|Extension(c)| c.to_string());
    let opened = state.sessions.login(req, client).await?;
    let tenant = opened.user.tenant.clone();
    let answer = LoginAnswer {
        user: super::users::view(opened.user),
        tenant,
        csrf_token: opened.csrf_token,
        expires_at: rfc3339(opened.expires_at),
    };
    let secure = state.config.tls_cert.is_some();
    let mut res = Json(answer).into_response();
    res.headers_mut().insert(SET_COOKIE, cookie(&opened.token, ABSOLUTE_MS / 1000, secure));
    Ok(res)
}

/// Signs out: ends the cookie's session (with its `X-CSRF-Token`) and clears the cookie.
/// Without an open session it only clears the cookie.
#[utoipa::path(post, path = "/v1/auth/logout", operation_id = "logout", security(()),
    responses((status = 204, description = "Signed out; the cookie is cleared",
               headers(("Set-Cookie" = String, description = "`sb_session=; Max-Age=0`"))),
              (status = 403, response = Forbidden), (status = 503, response = StoreUnavailable)))]
pub async fn logout(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers)
        && let Some(session) = state.sessions.session(token).await?
    {
        check_csrf(&method, &headers, &session.csrf_token)?;
        state.sessions.logout(&principal_of(&session), token).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(SET_COOKIE, cookie("", 0, state.config.tls_cert.is_some()));
    Ok(res)
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(logout))
}
