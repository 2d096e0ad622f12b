//! Who is calling: bearer tokens (admin tokens, agent API keys, personal access tokens) and
//! session cookies to principals.
//!
//! A bearer token wins over a cookie. A request that authenticates by the `sb_session`
//! cookie with an unsafe method (POST, PUT, PATCH, DELETE) must carry the session's CSRF
//! token in `X-CSRF-Token`, else 403 `csrf_failed`: a browser sends cookies with requests
//! other sites make, but only this origin's scripts can read the token to put in a header.
//! Any cookie request, GET included, that the browser says another site made
//! (`Sec-Fetch-Site: cross-site`, or an `Origin` whose host is not the request's) is refused
//! the same way: a GET of `/v1/inbox` leases messages, and a stream opened from another site
//! would read them.
//!
//! Tokens are random with at least 256 bits of entropy, so a fast hash (SHA-256) is enough to
//! store them: there is no dictionary to attack. Look-ups are cached for 10 seconds because
//! every request authenticates. A cached key's expiry is checked on every hit, so a key in
//! its grace period stops at the end of it on every node. Deleting an agent or revoking a key
//! drops its entries at once on the node that did it; another node may still accept a key
//! revoked without grace (or a deleted agent's key) for at most those 10 seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use switchboard_core::principal::{Principal, PrincipalKind};
use switchboard_core::time::now_ms;
use switchboard_core::{AgentId, Recipient};
use switchboard_store::TokenRecord;

use crate::api::AppState;
use crate::error::ApiError;
pub use crate::token::{hex, new_token, token_hash};

const CACHE_TTL: Duration = Duration::from_secs(10);

/// Recently authenticated tokens.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (TokenRecord, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<TokenRecord> {
        let map = self.entries.lock().expect("token cache poisoned");
        map.get(hash).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(t, _)| t.clone())
    }

    fn put(&self, hash: String, t: TokenRecord) {
        let mut map = self.entries.lock().expect("token cache poisoned");
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        map.insert(hash, (t, Instant::now()));
    }

    /// Forgets every cached token of this agent (it was deleted).
    pub fn forget_agent(&self, tenant: &str, id: &str) {
        let mut map = self.entries.lock().expect("token cache poisoned");
        map.retain(|_, (t, _)| !(t.principal.tenant == tenant && t.principal.agent().is_some_and(|a| a == id)));
    }

    /// Forgets every cached token of this user (its role changed, or it was deleted): the
    /// next request with one reads the user's row again.
    pub fn forget_user(&self, tenant: &str, id: &str) {
        let mut map = self.entries.lock().expect("token cache poisoned");
        map.retain(|_, (t, _)| !(t.principal.tenant == tenant && t.principal.user().is_some_and(|u| u == id)));
    }

    /// Forgets the cached agent key `key_id` (it was revoked): the next request with it reads
    /// its expiry from the store.
    pub fn forget_key(&self, tenant: &str, key_id: &str) {
        let mut map = self.entries.lock().expect("token cache poisoned");
        map.retain(|_, (t, _)| !(t.principal.tenant == tenant && t.key_id.as_deref() == Some(key_id)));
    }
}

/// The authenticated caller of a request.
pub struct Auth(pub Principal);

impl Auth {
    /// The admin of the tenant, or `forbidden`.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() {
            return Ok(());
        }
        Err(ApiError::Forbidden(match self.0.role() {
            Some(role) => format!("your role `{role}` cannot do this; it needs an owner or admin of the tenant"),
            None => "this needs the tenant's admin token; agent keys cannot do it".into(),
        }))
    }

    /// The calling agent's id, or `forbidden` for everyone else.
    pub fn require_agent(&self) -> Result<&AgentId, ApiError> {
        self.0.agent().ok_or_else(|| {
            ApiError::Forbidden("only an agent can do this; use the API key returned when it was registered".into())
        })
    }

    /// Where the caller's deliveries are held (an agent's or a person's inbox), or
    /// `forbidden` for the admin, who has none.
    pub fn require_inbox(&self) -> Result<Recipient, ApiError> {
        self.0.recipient().ok_or_else(|| {
            ApiError::Forbidden(
                "only agents and people have an inbox; use an agent's API key, or sign in as a user".into(),
            )
        })
    }
}

/// The paths where a token may come as `?access_token=`: the streams, because browsers
/// cannot set headers on WebSocket and EventSource requests. Anywhere else a token in the
/// URL would only end up in proxy and access logs.
const TOKEN_IN_URL_PATHS: [&str; 2] = ["/v1/stream", "/v1/events"];

/// The `access_token` query parameter, if the URL carries one.
fn query_token(parts: &Parts) -> Option<&str> {
    parts.uri.query()?.split('&').find_map(|kv| kv.strip_prefix("access_token="))
}

/// The caller's token: the `Authorization` header, or `?access_token=` on the streams.
fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let in_url = query_token(parts);
    if in_url.is_some() && !TOKEN_IN_URL_PATHS.contains(&parts.uri.path()) {
        return Err(ApiError::Unauthenticated(
            "`access_token` in the URL is accepted only by GET /v1/stream and GET /v1/events (browsers cannot set \
             headers there); send the token as `Authorization: Bearer <token>` and take it out of the URL, which \
             proxies and access logs record"
                .into(),
        ));
    }
    let missing = || {
        ApiError::Unauthenticated(
            "send `Authorization: Bearer <token>` with an agent API key or the admin token".into(),
        )
    };
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let (scheme, token) = h.to_str().ok().and_then(|h| h.split_once(' ')).ok_or_else(missing)?;
        return if scheme.eq_ignore_ascii_case("bearer") { Ok(token.trim().to_owned()) } else { Err(missing()) };
    }
    // The A2A door's `apiKey` security scheme (see `domain::a2a::card`): the same keys in
    // `X-API-Key`, which A2A clients configured for an API key send.
    if parts.uri.path().starts_with("/a2a/")
        && let Some(key) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok())
    {
        return Ok(key.trim().to_owned());
    }
    in_url.map(str::to_owned).ok_or_else(missing)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Auth, ApiError> {
        let has_bearer = parts.headers.contains_key(axum::http::header::AUTHORIZATION) || query_token(parts).is_some();
        if !has_bearer && let Some(cookie) = session_cookie(&parts.headers) {
            return from_session(parts, state, cookie).await;
        }
        let token = bearer(parts)?;
        if crate::domain::oauth::looks_like_jwt(&token) {
            return from_jwt(parts, state, &token).await;
        }
        let hash = token_hash(&token);
        let token = match state.tokens.get(&hash) {
            Some(t) => t,
            None => {
                let t = state.store.token_for_hash(&hash).await?.ok_or_else(|| {
                    ApiError::Unauthenticated(
                        "the token is not valid: it may be mistyped, or its agent was deleted".into(),
                    )
                })?;
                state.tokens.put(hash.clone(), t.clone());
                t
            }
        };
        let now = now_ms();
        if !token.live_at(now) {
            return Err(ApiError::Unauthenticated(match token.principal.user() {
                Some(_) => format!(
                    "this personal access token expired at {}; create a new one with `switchboard login` or \
                     `switchboard token create`",
                    switchboard_core::time::rfc3339(token.expires_at.unwrap_or(now))
                ),
                None => "this agent key was revoked; use another of the agent's keys (`switchboard agent key create`)"
                    .into(),
            }));
        }
        let principal = token.principal;
        state.access.api_request(&principal).await?;
        // Presence, and the key's last use, are marked by `note_presence` once the request
        // has succeeded.
        if let Some(caller) = parts.extensions.get::<crate::api::Caller>() {
            let key = token.key_id.is_some().then_some(hash);
            match &principal.kind {
                PrincipalKind::Agent(id) => caller.set(principal.tenant.as_str(), Some(id.as_str()), key),
                PrincipalKind::User { .. } => caller.set(principal.tenant.as_str(), None, key),
                PrincipalKind::Admin | PrincipalKind::Operator => {}
            }
        }
        Ok(Auth(principal))
    }
}

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "sb_session";
/// The header carrying a cookie session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `sb_session` cookie's value, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// Equality that takes as long wherever the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses an unsafe request that does not carry the session's CSRF token.
pub fn check_csrf(
    method: &axum::http::Method,
    headers: &axum::http::HeaderMap,
    expected: &str,
) -> Result<(), ApiError> {
    use axum::http::Method;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    match headers.get(CSRF_HEADER) {
        Some(v) if same(v.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::CsrfFailed(
            "`X-CSRF-Token` is not this session's; send the `csrf_token` the sign-in answered".into(),
        )),
        None => Err(ApiError::CsrfFailed(
            "a request signed in by cookie must send `X-CSRF-Token` with the `csrf_token` the sign-in answered \
             (or use `Authorization: Bearer` instead of the cookie)"
                .into(),
        )),
    }
}

/// Refuses a cookie request that the browser says another site made: `Sec-Fetch-Site:
/// cross-site`, or an `Origin` whose host and port are not the `Host` the request went to.
/// Clients that are not browsers send neither header and pass.
pub fn check_same_site(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let refused = || {
        ApiError::CsrfFailed(
            "another site made this request with your session cookie; the hub answers cookie requests only from its \
             own pages (use `Authorization: Bearer` from elsewhere)"
                .into(),
        )
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return Err(refused());
    }
    if let Some(origin) = header("origin") {
        // `Origin: null` (sandboxed frames, some redirects) names no site: refused too.
        let host = origin.split_once("://").map(|(_, rest)| rest);
        if host.is_none_or(|h| Some(h) != header("host")) {
            return Err(refused());
        }
    }
    Ok(())
}

/// The `Auth` extractor's path for a bearer JWT: verified by [`crate::domain::oauth::OAuth`],
/// and left for the presence layer like an API key or a personal token (without a key to mark
/// used).
async fn from_jwt(parts: &Parts, state: &AppState, token: &str) -> Result<Auth, ApiError> {
    let principal = state.oauth.authenticate(token).await?;
    // The same rate as the principal's other credentials: one bucket per agent or person.
    state.access.api_request(&principal).await?;
    if let Some(caller) = parts.extensions.get::<crate::api::Caller>() {
        match &principal.kind {
            PrincipalKind::Agent(id) => caller.set(principal.tenant.as_str(), Some(id.as_str()), None),
            PrincipalKind::User { .. } => caller.set(principal.tenant.as_str(), None, None),
            PrincipalKind::Admin | PrincipalKind::Operator => {}
        }
    }
    Ok(Auth(principal))
}

/// The caller of a request signed in by the session cookie.
async fn from_session(parts: &Parts, state: &AppState, cookie: &str) -> Result<Auth, ApiError> {
    let session = state.sessions.session(cookie).await?.ok_or_else(|| {
        ApiError::Unauthenticated(
            "the session has ended (signed out, idle for 12 hours, or 7 days old); sign in again at POST /v1/auth/login"
                .into(),
        )
    })?;
    check_same_site(&parts.headers)?;
    check_csrf(&parts.method, &parts.headers, &session.csrf_token)?;
    let principal = crate::domain::people::sessions::principal_of(&session);
    state.access.api_request(&principal).await?;
    Ok(Auth(principal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = new_token("sbk_");
        assert!(a.starts_with("sbk_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, new_token("sbk_"));
        assert_eq!(token_hash("x").len(), 64);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::COOKIE, "a=1; sb_session=sbs_x; b=2".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("sbs_x"));
        h.insert(axum::http::header::COOKIE, "sb_sessionx=1; sb_session=".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }

    #[test]
    fn cookie_requests_from_another_site_are_refused() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = axum::http::HeaderMap::new();
            h.insert("host", "hub.example:7777".parse().unwrap());
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(check_same_site(&headers(&[])).is_ok(), "no browser headers: a script or the CLI");
        assert!(check_same_site(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(check_same_site(&headers(&[("origin", "https://hub.example:7777")])).is_ok());
        assert!(check_same_site(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(check_same_site(&headers(&[("origin", "https://evil.example")])).is_err());
        assert!(check_same_site(&headers(&[("origin", "https://hub.example:7777.evil")])).is_err());
        assert!(check_same_site(&headers(&[("origin", "null")])).is_err());
    }
}
