//! The MCP door, beside `api/`, `web/` and `a2a/`: an MCP server at `/mcp` (Streamable HTTP)
//! so that any LLM agent with an MCP client can send, request, read its inbox, find agents and
//! ask people for approvals. It decides nothing of its own: every tool calls the same domain
//! functions (or the same resource handlers) as the REST API, as the caller, so policies,
//! limits and audit apply unchanged.
//!
//! - Framing is the `rmcp` crate's: protocol revision 2025-11-25 (and older) with sessions
//!   (`Mcp-Session-Id`), 2026-07-28 stateless with `server/discover`. Sessions live in this
//!   node's memory (idle ones end after 5 minutes) with the caller that opened them
//!   (`sessions.rs`: anyone else gets 404); a stateless (2026-07-28) request works on any node.
//! - Authentication is the API's (`api::auth::Auth`: agent API keys, personal access tokens,
//!   OAuth2 bearer JWTs), on every request, session or not; the principal rides in the request's
//!   extensions to the tools. A request without a valid token is 401 with
//!   `WWW-Authenticate: Bearer resource_metadata="<base>/.well-known/oauth-protected-resource/mcp"`
//!   (RFC 9728, as the MCP authorization spec asks). The metadata names the hub itself as the
//!   authorization server (`/.well-known/oauth-authorization-server`).
//! - DNS rebinding: rmcp refuses a `Host` that is not localhost, 127.0.0.1, [::1] or the host of
//!   `public_url` (403), and an `Origin` that is not one of those (any port).

mod prompts;
mod resources;
mod schemas;
mod server;
mod sessions;
mod tools;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::api::AppState;
use crate::api::auth::Auth;

/// The path of the MCP endpoint.
pub const PATH: &str = "/mcp";

/// The MCP routes: the endpoint and its protected-resource metadata.
pub fn router(state: &AppState) -> Router<AppState> {
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(server::Switchboard::new(handler_state.clone())),
        std::sync::Arc::new(LocalSessionManager::default()),
        transport_config(state),
    );
    let door = Door { state: state.clone(), sessions: std::sync::Arc::new(sessions::SessionOwners::default()) };
    Router::new()
        .route_service(PATH, service)
        .route_layer(axum::middleware::from_fn_with_state(door, authenticate))
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(resource_metadata))
}

/// The hosts a request may name: loopback, and `public_url`'s.
fn allowed_hosts(state: &AppState) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into(), "[::1]".into()];
    if let Some(host) = state.config.public_url.as_deref().and_then(authority_of) {
        hosts.push(host.to_owned());
    }
    hosts
}

/// `host[:port]` of a URL.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then_some(authority)
}

fn transport_config(state: &AppState) -> StreamableHttpServerConfig {
    let mut origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .flat_map(|h| [format!("http://{h}:*"), format!("https://{h}:*")])
        .collect();
    if let Some(url) = &state.config.public_url
        && let Some(authority) = authority_of(url)
    {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("https");
        let port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit())) {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if scheme == "http" { 80 } else { 443 })
        };
        origins.push(format!("{scheme}://{port}"));
    }
    StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(state))
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_json_response(true)
        .with_cancellation_token(cancel_on_shutdown(state.shutdown.clone()))
        .with_max_request_body_bytes(state.config.max_message_bytes.saturating_add(64 * 1024))
}

/// A token cancelled when the node shuts down, so that open sessions and their streams end.
fn cancel_on_shutdown(mut shutdown: tokio::sync::watch::Receiver<bool>) -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let child = token.clone();
    // Owned by the node's shutdown signal: it ends when the node stops (or the sender is gone).
    tokio::spawn(async move {
        crate::shutdown::stopped(&mut shutdown).await;
        child.cancel();
    });
    token
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

/// What the authentication layer of `/mcp` holds.
#[derive(Clone)]
struct Door {
    state: AppState,
    sessions: std::sync::Arc<sessions::SessionOwners>,
}

const SESSION_HEADER: &str = "mcp-session-id";

/// Authenticates every request to `/mcp` as the API does, and leaves the principal in the
/// request's extensions for the tools (rmcp hands the request's parts to them). A session
/// (2025-11-25) answers only the caller that opened it: anyone else gets 404, as for a session
/// that does not exist.
async fn authenticate(State(door): State<Door>, req: Request, next: Next) -> Response {
    let state = &door.state;
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, state).await {
        Ok(Auth(principal)) => {
            let session = parts.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            if let Some(id) = &session
                && !door.sessions.may_use(id, &principal)
            {
                return crate::error::ApiError::NotFound(
                    "no such MCP session for this caller; send `initialize` without `Mcp-Session-Id` to open one"
                        .into(),
                )
                .into_response();
            }
            parts.extensions.insert(principal.clone());
            let res = next.run(Request::from_parts(parts, body)).await;
            if session.is_none()
                && let Some(opened) = res.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok())
            {
                door.sessions.opened(opened, &principal);
            }
            res
        }
        Err(e) => {
            let unauthenticated = matches!(e, crate::error::ApiError::Unauthenticated(_));
            let mut res = e.into_response();
            if unauthenticated {
                let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", base_url(state, &parts.headers));
                let challenge = format!("Bearer resource_metadata=\"{metadata}\"");
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            res
        }
    }
}

/// RFC 9728 protected-resource metadata for `/mcp`: the resource, the hub as its
/// authorization server, bearer tokens in the header only.
async fn resource_metadata(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let body = serde_json::json!({
        "resource": format!("{base}{PATH}"),
        "authorization_servers": [state.oauth.issuer()],
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard",
        "resource_documentation": format!("{base}/openapi.json"),
    });
    ([(header::CACHE_CONTROL, "public, max-age=3600")], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::authority_of;

    #[test]
    fn the_authority_of_a_url_is_its_host_and_port() {
        assert_eq!(authority_of("https://hub.example.com/base"), Some("hub.example.com"));
        assert_eq!(authority_of("http://hub.example.com:8080"), Some("hub.example.com:8080"));
        assert_eq!(authority_of("hub.example.com"), None);
        assert_eq!(authority_of("https:///x"), None);
    }
}
