//! The hub as an OAuth2 authorization server for machines, and as a verifier of bearer JWTs.
//!
//! `keys` holds the hub's Ed25519 signing keys; `external` the key sets of the identity
//! providers tenants trust; `issue` the client-credentials grant. [`OAuth::authenticate`]
//! turns a JWT into a principal: by its `iss` either the hub's own (its keys, `sub` =
//! `agent:<id>`, `tenant`) or an external issuer's (the tenant whose provider has that issuer
//! and one of the token's audiences; its claims name an agent or a person).
//!
//! What is checked, on every path: the algorithm is one the key is for (EdDSA for the hub;
//! EdDSA, RS256 or ES256 as the issuer's JWK says; never `none` or an HMAC, so a public key
//! can never serve as an HMAC secret), the signature, `exp` (required) and `nbf` with
//! [`LEEWAY_SECS`], `iss` and `aud`. A verified token is remembered for 10 seconds (by its
//! hash), never beyond its `exp`.

mod external;
mod issue;
mod keys;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::oauth::{
    AuthorizationServerMetadata, ClaimMapping, IdentityProvider, IdentityProviders, KeyRotated, PublicJwks,
    validate_identity_providers,
};
use switchboard_core::time::{Millis, now_ms};
use switchboard_core::{Principal, PrincipalKind, Recipient, TenantId, UserId};
use switchboard_store::Store;
use switchboard_store::oauth::IdentityProviderRecord;

pub use issue::TokenError;

use crate::error::ApiError;

/// Clock skew tolerated on `exp` and `nbf`, seconds.
pub const LEEWAY_SECS: u64 = 5;
/// How long a verified token, and an issuer's providers, are remembered.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// Why a bearer JWT was refused (401); each says what to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Malformed(String),
    UnsupportedAlg(String),
    Expired(String),
    NotYetValid(String),
    WrongIssuer(String),
    WrongAudience(String),
    BadSignature(String),
    IssuerUnreachable(String),
    NoPrincipal(String),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let (what, detail) = match r {
            Refusal::Malformed(d) => ("malformed", d),
            Refusal::UnsupportedAlg(d) => ("unsupported alg", d),
            Refusal::Expired(d) => ("expired", d),
            Refusal::NotYetValid(d) => ("not valid yet", d),
            Refusal::WrongIssuer(d) => ("wrong issuer", d),
            Refusal::WrongAudience(d) => ("wrong audience", d),
            Refusal::BadSignature(d) => ("bad signature", d),
            Refusal::IssuerUnreachable(d) => ("issuer unreachable", d),
            Refusal::NoPrincipal(d) => ("no principal", d),
        };
        ApiError::Unauthenticated(format!("JWT refused ({what}): {detail}"))
    }
}

/// The claims of the hub's own access tokens.
#[derive(Debug, Serialize, Deserialize)]
struct HubClaims {
    iss: String,
    /// `agent:<id>`.
    sub: String,
    aud: String,
    tenant: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

/// Whether a bearer token is a JWT (three base64url segments; the signature may be empty, as
/// in an `alg: none` token, which is then refused by name) rather than one of the hub's opaque
/// tokens (`sbk_…`, `sba_…`), which never hold a dot.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut n = 0;
    for seg in token.split('.') {
        n += 1;
        let b64url = seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if n > 3 || (seg.is_empty() && n < 3) || !b64url {
            return false;
        }
    }
    n == 3
}

/// The JSON object of one segment, unverified: enough to choose the key.
fn segment(token: &str, i: usize, what: &str) -> Result<serde_json::Map<String, Value>, Refusal> {
    let seg = token.split('.').nth(i).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg)
        .map_err(|_| Refusal::Malformed(format!("its {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Refusal::Malformed(format!("its {what} is not a JSON object"))),
    }
}

/// What a failed `jsonwebtoken::decode` means to the caller.
fn refusal(e: jsonwebtoken::errors::Error, issuer: &str, audience: &str) -> Refusal {
    match e.kind() {
        ErrorKind::ExpiredSignature => {
            Refusal::Expired("its `exp` has passed; get a new token (POST /oauth/token for the hub's own)".into())
        }
        ErrorKind::ImmatureSignature => Refusal::NotYetValid("its `nbf` is in the future; check the clocks".into()),
        ErrorKind::InvalidIssuer => Refusal::WrongIssuer(format!("its `iss` is not `{issuer}`")),
        ErrorKind::InvalidAudience => Refusal::WrongAudience(format!("its `aud` does not include `{audience}`")),
        ErrorKind::InvalidSignature => {
            Refusal::BadSignature("the signature does not verify with the issuer's key".into())
        }
        ErrorKind::InvalidAlgorithm => Refusal::UnsupportedAlg("the key is for another algorithm".into()),
        ErrorKind::MissingRequiredClaim(c) => Refusal::Malformed(format!("it has no `{c}` claim")),
        _ => Refusal::Malformed(format!("it cannot be verified: {e}")),
    }
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v
}

type Providers = Arc<Vec<IdentityProviderRecord>>;

/// The OAuth2 side of the hub: what handlers and the `Auth` extractor call.
pub struct OAuth {
    store: Arc<dyn Store>,
    /// The `iss` of the hub's tokens (and their `aud`): its public base URL.
    issuer: String,
    ttl_secs: u64,
    /// Whether key sets may be fetched from loopback, private and other special addresses.
    allow_private: bool,
    keys: keys::HubKeys,
    sets: external::KeySets,
    /// Identity providers by issuer, and when they were read.
    providers: Mutex<HashMap<String, (Providers, Instant)>>,
    /// Verified tokens by hash: who, until when (`exp`), and when verified.
    verified: Mutex<HashMap<String, (Principal, Millis, Instant)>>,
}

impl OAuth {
    /// Loads (or, on the first start, creates) the signing keys.
    pub async fn open(
        store: Arc<dyn Store>,
        issuer: String,
        config: &crate::Config,
    ) -> Result<OAuth, switchboard_store::StoreError> {
        let keys = keys::HubKeys::open(store.clone()).await.map_err(|e| match e {
            ApiError::StoreUnavailable(m) => switchboard_store::StoreError::unavailable(m),
            e => switchboard_store::StoreError::Internal(e.to_string()),
        })?;
        Ok(OAuth {
            store,
            issuer,
            ttl_secs: config.oauth_token_ttl_secs,
            allow_private: config.allow_private_endpoints,
            keys,
            sets: external::KeySets::new(
                config.allow_private_endpoints,
                Duration::from_millis(config.jwks_refresh_min_ms),
            ),
            providers: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The hub's issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The published signing keys (`/.well-known/jwks.json`).
    pub async fn jwks(&self) -> Result<PublicJwks, ApiError> {
        Ok(PublicJwks { keys: self.keys.published().await?.iter().map(|k| k.jwk()).collect() })
    }

    /// RFC 8414 metadata.
    pub fn metadata(&self) -> AuthorizationServerMetadata {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect();
        AuthorizationServerMetadata {
            issuer: self.issuer.clone(),
            token_endpoint: format!("{}/oauth/token", self.issuer),
            jwks_uri: format!("{}/.well-known/jwks.json", self.issuer),
            grant_types_supported: s(&["client_credentials"]),
            token_endpoint_auth_methods_supported: s(&["client_secret_basic", "client_secret_post"]),
            // No authorization endpoint: machines only, by client credentials.
            response_types_supported: Vec::new(),
            access_token_signing_alg_values_supported: s(&["EdDSA"]),
            service_documentation: format!("{}/openapi.json", self.issuer),
        }
    }

    /// Rotates the signing key (the operator alone). The old key stays published while a
    /// token it signed may still be accepted anywhere.
    pub async fn rotate(&self, by: &Principal) -> Result<KeyRotated, ApiError> {
        let keep = Duration::from_secs(self.ttl_secs + LEEWAY_SECS) + keys::KEY_REFRESH;
        self.keys.rotate(by, keep).await
    }

    /// Who a bearer JWT acts as, or why it is refused.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let hash = crate::token::token_hash(token);
        let now = now_ms();
        if let Some(p) = self.remembered(&hash, now) {
            return Ok(p);
        }
        let header = segment(token, 0, "header")?;
        let claims = segment(token, 1, "payload")?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("(none given)");
        let alg = match alg {
            "EdDSA" => Algorithm::EdDSA,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(Refusal::UnsupportedAlg(format!(
                    "`{other}` is not accepted; the hub's tokens are EdDSA, an identity provider's EdDSA, RS256 or ES256"
                ))
                .into());
            }
        };
        // jsonwebtoken 9 skips the `nbf` check (and `exp`'s, were it not required) for a claim
        // of the wrong JSON type, as if it were absent (CVE-2026-25537, fixed in 10.3): such a
        // token is refused here, before the library sees it.
        for c in ["exp", "nbf", "iat"] {
            if claims.get(c).is_some_and(|v| !v.is_number()) {
                return Err(Refusal::Malformed(format!("its `{c}` is not a NumericDate (a number of seconds)")).into());
            }
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let iss =
            claims.get("iss").and_then(Value::as_str).ok_or_else(|| Refusal::Malformed("it has no `iss`".into()))?;
        let (principal, exp) = if iss == self.issuer {
            // Past its `exp` (unverified): said so even when its key has left the set since.
            let lapsed =
                claims.get("exp").and_then(Value::as_i64).is_some_and(|e| (e + LEEWAY_SECS as i64) * 1000 < now);
            self.hub_token(token, alg, kid, lapsed).await?
        } else {
            let aud = claims.get("aud").cloned().unwrap_or(Value::Null);
            self.external_token(token, iss, &aud, alg, kid).await?
        };
        let mut seen = self.verified.lock().expect("jwt cache poisoned");
        if seen.len() > 100_000 {
            seen.retain(|_, (_, _, at)| at.elapsed() < CACHE_TTL);
        }
        seen.insert(hash, (principal.clone(), exp, Instant::now()));
        Ok(principal)
    }

    /// Forgets the verified tokens of this agent (it was deleted): its next request with one
    /// finds it gone. Other nodes forget within 10 seconds.
    pub fn forget_agent(&self, tenant: &str, id: &str) {
        let mut seen = self.verified.lock().expect("jwt cache poisoned");
        seen.retain(|_, (p, _, _)| !(p.tenant == tenant && p.agent().is_some_and(|a| a == id)));
    }

    fn remembered(&self, hash: &str, now: Millis) -> Option<Principal> {
        let seen = self.verified.lock().expect("jwt cache poisoned");
        let (p, exp, at) = seen.get(hash)?;
        (at.elapsed() < CACHE_TTL && *exp + (LEEWAY_SECS as i64) * 1000 > now).then(|| p.clone())
    }

    /// A token the hub signed: its key, its claims, and its agent, which must still exist.
    async fn hub_token(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
        lapsed: bool,
    ) -> Result<(Principal, Millis), ApiError> {
        if alg != Algorithm::EdDSA {
            return Err(
                Refusal::UnsupportedAlg(format!("the hub signs with EdDSA only, and this token says {alg:?}")).into()
            );
        }
        let kid = kid.ok_or_else(|| Refusal::Malformed("it names no `kid`".into()))?;
        let key = self.keys.find(kid).await?.ok_or_else(|| {
            if lapsed {
                return Refusal::Expired("its `exp` has passed (and its signing key has been retired since)".into());
            }
            Refusal::BadSignature(format!(
                "it names the key `{kid}`, which this hub does not publish (see /.well-known/jwks.json)"
            ))
        })?;
        let data =
            jsonwebtoken::decode::<HubClaims>(token, &key.decoding, &validation(alg, &self.issuer, &self.issuer))
                .map_err(|e| refusal(e, &self.issuer, &self.issuer))?;
        let c = data.claims;
        let Ok(Recipient::Agent(id)) = c.sub.parse::<Recipient>() else {
            return Err(Refusal::NoPrincipal(format!("its `sub` `{}` is not an agent", c.sub)).into());
        };
        let tenant = TenantId::from(c.tenant);
        if self.store.get_agent(tenant.as_str(), id.as_str()).await?.is_none() {
            return Err(Refusal::NoPrincipal("its agent no longer exists".into()).into());
        }
        Ok((Principal { tenant, kind: PrincipalKind::Agent(id) }, (c.exp as i64) * 1000))
    }

    /// A token of an identity provider some tenant trusts.
    async fn external_token(
        &self,
        token: &str,
        iss: &str,
        aud: &Value,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<(Principal, Millis), ApiError> {
        let providers = self.providers_of(iss).await?;
        if providers.is_empty() {
            return Err(Refusal::WrongIssuer(format!(
                "`{iss}` is neither this hub (`{}`) nor an identity provider a tenant configured \
                 (PUT /v1/identity-providers)",
                self.issuer
            ))
            .into());
        }
        let p = external::provider_for(&providers, aud).ok_or_else(|| {
            Refusal::WrongAudience(format!(
                "its `aud` names no audience a tenant trusts `{iss}` for; the identity provider must issue it for the \
                 audience configured with it"
            ))
        })?;
        let key = self.sets.key(&p.jwks_url, kid, alg).await?;
        let data = jsonwebtoken::decode::<Value>(token, &key.key, &validation(alg, iss, &p.audience))
            .map_err(|e| refusal(e, iss, &p.audience))?;
        let exp = data.claims.get("exp").and_then(Value::as_i64).unwrap_or(0) * 1000;
        let principal = self.principal_of(p, &data.claims).await?;
        Ok((principal, exp))
    }

    /// The principal an external token's claims name: the agent of the `agent` claim, if the
    /// provider maps one and the token carries it; else the person of the `user` claim (`sub`:
    /// their user id; `email`: their email, unless `email_verified` is false), with the role
    /// they have now.
    async fn principal_of(&self, p: &IdentityProviderRecord, claims: &Value) -> Result<Principal, ApiError> {
        let tenant = TenantId::from(p.tenant.as_str());
        if let Some(name) = &p.agent_claim
            && let Some(v) = claims.get(name)
        {
            let id = v.as_str().and_then(|s| format!("agent:{s}").parse::<Recipient>().ok());
            let Some(Recipient::Agent(id)) = id else {
                return Err(Refusal::NoPrincipal(format!("its `{name}` claim is not an agent id")).into());
            };
            if self.store.get_agent(tenant.as_str(), id.as_str()).await?.is_none() {
                return Err(Refusal::NoPrincipal(format!(
                    "its `{name}` claim names agent `{id}`, which is not registered in the tenant that trusts this issuer"
                ))
                .into());
            }
            return Ok(Principal { tenant, kind: PrincipalKind::Agent(id) });
        }
        if let Some(claim) = &p.user_claim
            && let Some(v) = claims.get(claim)
        {
            let v = v.as_str().ok_or_else(|| Refusal::NoPrincipal(format!("its `{claim}` claim is not text")))?;
            let user = if claim == "email" {
                // An address the provider has not verified names nobody.
                if claims.get("email_verified") == Some(&Value::Bool(false)) {
                    return Err(Refusal::NoPrincipal("its `email_verified` is false".into()).into());
                }
                self.store.user_for_login(tenant.as_str(), &v.to_lowercase()).await?.map(|(u, _)| u)
            } else {
                self.store.get_user(tenant.as_str(), v).await?
            };
            let user = user.ok_or_else(|| {
                Refusal::NoPrincipal(format!(
                    "its `{claim}` claim names no person of the tenant that trusts this issuer; an owner or admin adds \
                     them with `switchboard user add`"
                ))
            })?;
            return Ok(Principal { tenant, kind: PrincipalKind::User { id: UserId::from(user.id), role: user.role } });
        }
        Err(Refusal::NoPrincipal(format!(
            "it carries none of the claims its identity provider maps to a principal ({})",
            [p.agent_claim.as_deref(), p.user_claim.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(", ")
        ))
        .into())
    }

    /// The providers configured for `iss`, remembered for 10 seconds (also when there are
    /// none, so tokens of unknown issuers do not each cost a store read).
    async fn providers_of(&self, iss: &str) -> Result<Providers, ApiError> {
        if let Some((p, at)) = self.providers.lock().expect("provider cache poisoned").get(iss)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(p.clone());
        }
        let found = Arc::new(self.store.identity_providers_for_issuer(iss).await?);
        let mut cache = self.providers.lock().expect("provider cache poisoned");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(iss.to_owned(), (found.clone(), Instant::now()));
        Ok(found)
    }

    /// The tenant's identity providers (its admin).
    pub async fn identity_providers(&self, by: &Principal) -> Result<IdentityProviders, ApiError> {
        let records = self.store.identity_providers(by.tenant.as_str()).await?;
        Ok(IdentityProviders {
            providers: records
                .into_iter()
                .map(|r| IdentityProvider {
                    issuer: r.issuer,
                    audience: r.audience,
                    jwks_url: r.jwks_url,
                    claims: ClaimMapping { user: r.user_claim, agent: r.agent_claim },
                })
                .collect(),
        })
    }

    /// Replaces the tenant's identity providers (its admin), audited. This node forgets what it
    /// cached of the issuers involved; other nodes see the change within 10 seconds.
    pub async fn put_identity_providers(&self, by: &Principal, list: IdentityProviders) -> Result<(), ApiError> {
        let mut errors = validate_identity_providers(&list, &self.issuer);
        if !self.allow_private {
            // Names are checked when fetched (the resolver refuses private answers then);
            // an address written out is refused now.
            for (i, p) in list.providers.iter().enumerate() {
                if let Err(e) = crate::domain::push::endpoint::check_literal(&p.jwks_url) {
                    errors.push(switchboard_core::api::FieldError {
                        path: format!("providers[{i}].jwks_url"),
                        message: format!(
                            "{e}; the node fetches key sets from such addresses only when it allows private endpoints \
                             (SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true)"
                        ),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let before = self.store.identity_providers(by.tenant.as_str()).await?;
        let records: Vec<IdentityProviderRecord> = list
            .providers
            .iter()
            .map(|p| IdentityProviderRecord {
                tenant: by.tenant.as_str().to_owned(),
                issuer: p.issuer.clone(),
                audience: p.audience.clone(),
                jwks_url: p.jwks_url.clone(),
                user_claim: p.claims.user.clone(),
                agent_claim: p.claims.agent.clone(),
            })
            .collect();
        let detail = serde_json::json!({
            "issuers": list.providers.iter().map(|p| serde_json::json!({ "issuer": p.issuer, "audience": p.audience })).collect::<Vec<_>>(),
        });
        let audit = switchboard_core::audit::NewAuditEvent::by(
            by,
            switchboard_core::audit::AuditAction::IdentityProvidersUpdate,
            "identity_providers",
            now_ms(),
        )
        .with_detail(detail);
        self.store.put_identity_providers(by.tenant.as_str(), records, Some(audit)).await?;
        let mut cache = self.providers.lock().expect("provider cache poisoned");
        for p in before.iter().map(|p| &p.issuer).chain(list.providers.iter().map(|p| &p.issuer)) {
            cache.remove(p);
        }
        drop(cache);
        // Tokens verified under the old list must not outlive it on this node.
        self.verified.lock().expect("jwt cache poisoned").retain(|_, (p, _, _)| p.tenant != by.tenant);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_are_told_from_opaque_tokens() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJi."), "alg none: refused by name, not as an unknown opaque token");
        for not in ["sbk_abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.c d", "a.b+/.c"] {
            assert!(!looks_like_jwt(not), "{not}");
        }
    }
}
