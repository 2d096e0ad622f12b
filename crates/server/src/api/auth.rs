//! Who is calling: bearer tokens (admin tokens and agent API keys) to principals.
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
use switchboard_core::AgentId;
use switchboard_core::principal::{Principal, PrincipalKind};
use switchboard_core::time::now_ms;
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
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs the tenant's admin token; agent keys cannot do it".into()))
        }
    }

    /// The calling agent's id, or `forbidden` for the admin.
    pub fn require_agent(&self) -> Result<&AgentId, ApiError> {
        self.0.agent().ok_or_else(|| {
            ApiError::Forbidden(
                "only agents have an inbox; use the API key returned when the agent was registered".into(),
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
    in_url.map(str::to_owned).ok_or_else(missing)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Auth, ApiError> {
        let token = bearer(parts)?;
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
            return Err(ApiError::Unauthenticated(
                "this agent key was revoked; use another of the agent's keys (`switchboard agent key create`)".into(),
            ));
        }
        let principal = token.principal;
        // Presence, and the key's last use, are marked by `note_presence` once the request
        // has succeeded.
        if let PrincipalKind::Agent(id) = &principal.kind
            && let Some(caller) = parts.extensions.get::<crate::api::Caller>()
        {
            caller.set(principal.tenant.as_str(), id.as_str(), token.key_id.is_some().then_some(hash));
        }
        Ok(Auth(principal))
    }
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
}
