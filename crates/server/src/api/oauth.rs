//! The hub as an OAuth2 authorization server: `POST /oauth/token` (client credentials; it
//! answers RFC 6749 errors, not problem+json, so that OAuth2 client libraries understand
//! them), the key set and the RFC 8414 metadata (both public), the operator's key rotation,
//! and the `Auth` extractor's door for bearer JWTs.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use switchboard_core::oauth::{AuthorizationServerMetadata, KeyRotated, OAuthError, PublicJwks, TokenResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{Forbidden, StoreUnavailable};
use crate::api::auth::Auth;
use crate::domain::oauth::TokenError;
use crate::error::ApiError;

/// Largest token request body read.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The form of `POST /oauth/token` (RFC 6749 §4.4.2), for the document.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `client_credentials`.
    grant_type: String,
    /// The agent id, unless sent with HTTP Basic.
    client_id: Option<String>,
    /// One of the agent's live API keys (`sbk_…`), unless sent with HTTP Basic.
    client_secret: Option<String>,
    /// Ignored: a token acts as its agent, with the agent's rights.
    scope: Option<String>,
}

/// An RFC 6749 §5.2 answer. A 401 after HTTP Basic carries `WWW-Authenticate: Basic`.
fn oauth_error(status: StatusCode, error: &str, description: String, basic: bool) -> Response {
    let body = OAuthError { error: error.to_owned(), error_description: description };
    let mut res = (status, Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED && basic {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"switchboard\""));
    }
    res
}

fn invalid_request(d: impl Into<String>) -> TokenError {
    TokenError::InvalidRequest(d.into())
}

/// The client credentials of a token request: HTTP Basic (each half form-urlencoded, RFC 6749
/// §2.3.1) or `client_id`/`client_secret` in the form; never both.
fn credentials(headers: &HeaderMap, form: &[(String, String)]) -> Result<(String, String, bool), TokenError> {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(h) => {
            let h = h.to_str().map_err(|_| invalid_request("the Authorization header is not text"))?;
            let (scheme, b64) = h.split_once(' ').unwrap_or((h, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(TokenError::InvalidClient(
                    "authenticate with HTTP Basic (client_secret_basic) or in the form (client_secret_post)".into(),
                ));
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    TokenError::InvalidClient("the Basic credentials are not base64 of `id:secret`".into())
                })?;
            let (id, secret) = raw
                .split_once(':')
                .ok_or_else(|| TokenError::InvalidClient("the Basic credentials are not `id:secret`".into()))?;
            let decode = |s: &str| -> String {
                form_urlencoded::parse(format!("v={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Some((decode(id), decode(secret)))
        }
    };
    match (basic, field("client_id"), field("client_secret")) {
        (Some(_), _, Some(_)) => Err(invalid_request(
            "the client authenticated twice (HTTP Basic and client_secret in the form); use one method",
        )),
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(invalid_request("client_id in the form differs from the one in HTTP Basic"));
            }
            Ok((id, secret, true))
        }
        (None, Some(id), Some(secret)) => Ok((id, secret, false)),
        (None, _, _) => Err(TokenError::InvalidClient(
            "no client credentials: send the agent id and one of its API keys as HTTP Basic, or as client_id and \
             client_secret in the form"
                .into(),
        )),
    }
}

/// Reads and checks the form, then asks the domain for a token.
async fn token_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(TokenResponse, bool), (TokenError, bool)> {
    let basic = headers.contains_key(header::AUTHORIZATION);
    let fail = |e| (e, basic);
    let form_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if !form_type {
        return Err(fail(invalid_request(
            "send the parameters as a form: Content-Type: application/x-www-form-urlencoded",
        )));
    }
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| fail(invalid_request(format!("could not read the request body: {e}"))))?;
        if bytes.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(fail(invalid_request(format!("the form is larger than {MAX_FORM_BYTES} bytes"))));
        }
        bytes.extend_from_slice(&chunk);
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    for (i, (k, _)) in form.iter().enumerate() {
        if form[..i].iter().any(|(j, _)| j == k) {
            return Err(fail(invalid_request(format!("the parameter `{k}` is repeated; send each once"))));
        }
    }
    match form.iter().find(|(k, _)| k == "grant_type").map(|(_, v)| v.as_str()) {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(fail(TokenError::UnsupportedGrantType(format!(
                "grant_type `{other}` is not supported; this hub issues tokens for client_credentials only"
            ))));
        }
        None => return Err(fail(invalid_request("grant_type is missing; send grant_type=client_credentials"))),
    }
    let (id, secret, basic) = credentials(headers, &form).map_err(fail)?;
    let token = state.oauth.client_credentials(&id, &secret).await.map_err(|e| (e, basic))?;
    Ok((token, basic))
}

/// Issues an access token for an agent (OAuth2 client credentials, RFC 6749 §4.4). The client
/// id is the agent id and the secret one of its live API keys, sent with HTTP Basic or in the
/// form. Errors are RFC 6749 §5.2 JSON (`{error, error_description}`), not problem+json.
#[utoipa::path(post, path = "/oauth/token", operation_id = "issueToken", security(()),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "A JWT access token (EdDSA)", body = TokenResponse),
              (status = 400, description = "`invalid_request` or `unsupported_grant_type` (RFC 6749 §5.2, not problem+json)", body = OAuthError),
              (status = 401, description = "`invalid_client` (RFC 6749 §5.2, not problem+json)", body = OAuthError),
              (status = 503, description = "`temporarily_unavailable`: the store cannot be reached", body = OAuthError)))]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match token_request(&state, &headers, body).await {
        Ok((t, _)) => {
            let mut res = Json(t).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err((TokenError::InvalidRequest(d), b)) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d, b),
        Err((TokenError::UnsupportedGrantType(d), b)) => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", d, b)
        }
        Err((TokenError::InvalidClient(d), b)) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", d, b),
        Err((TokenError::Server(e), b)) => {
            let p = e.problem();
            if let ApiError::Internal(m) = &e {
                tracing::error!(error = %m, "internal error issuing a token");
            }
            let (status, code) = if p.status == 503 {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            };
            oauth_error(status, code, p.detail, b)
        }
    }
}

/// The hub's token signing keys (RFC 7517; no authentication): the current key first, then
/// retired keys until the tokens they signed have expired.
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "getJwks", security(()),
    responses((status = 200, description = "The published keys", body = PublicJwks),
              (status = 503, response = StoreUnavailable)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<PublicJwks>, ApiError> {
    Ok(Json(state.oauth.jwks().await?))
}

/// RFC 8414 authorization server metadata (no authentication).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", operation_id = "getOAuthMetadata", security(()),
    responses((status = 200, description = "Issuer, endpoints and what they support", body = AuthorizationServerMetadata)))]
pub async fn metadata(State(state): State<AppState>) -> Json<AuthorizationServerMetadata> {
    Json(state.oauth.metadata())
}

/// Rotates the hub's token signing key (the platform operator alone): the new key signs from
/// now on; the old one stays in the key set until every token it signed has expired.
#[utoipa::path(post, path = "/v1/oauth/keys:rotate", operation_id = "rotateOAuthKey",
    responses((status = 200, description = "The new key, and the one it retired", body = KeyRotated),
              (status = 403, response = Forbidden)))]
pub async fn rotate(State(state): State<AppState>, auth: Auth) -> Result<Json<KeyRotated>, ApiError> {
    Ok(Json(state.oauth.rotate(&auth.0).await?))
}

/// This resource's routes, each with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token)).routes(routes!(jwks)).routes(routes!(metadata)).routes(routes!(rotate))
}
