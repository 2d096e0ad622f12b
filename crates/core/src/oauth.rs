//! Wire types of the hub as an OAuth2 authorization server (RFC 6749 client credentials,
//! RFC 8414 metadata, RFC 7517 key sets) and of the external issuers a tenant trusts, with
//! the checks of an issuer list that need no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::FieldError;

/// The answer of `POST /oauth/token` (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT signed with EdDSA (Ed25519); send it as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// An error of `POST /oauth/token` (RFC 6749 §5.2): that endpoint answers these, not
/// problem+json, so that OAuth2 client libraries understand it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `invalid_scope`, …
    pub error: String,
    /// What went wrong and what to do, for people.
    pub error_description: String,
}

/// One public key of a key set (RFC 7517), as the hub publishes its own: `OKP`/`Ed25519`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    /// The public key, base64url without padding.
    pub x: String,
}

/// The hub's token signing keys (`GET /.well-known/jwks.json`): the current key first, then
/// retired keys until every token they signed has expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicJwks {
    pub keys: Vec<PublicJwk>,
}

/// RFC 8414 authorization server metadata (`GET /.well-known/oauth-authorization-server`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Required by RFC 8414, and empty: the hub has no authorization endpoint.
    pub response_types_supported: Vec<String>,
    /// Not in RFC 8414 (which names the endpoint-auth signing algs); the algorithm of the
    /// access tokens, as OpenID Connect discovery spells it for ID tokens.
    pub access_token_signing_alg_values_supported: Vec<String>,
    pub service_documentation: String,
}

/// The answer of a signing key rotation (`POST /v1/oauth/keys:rotate`, operator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotated {
    /// The key that signs from now on.
    pub kid: String,
    /// The key it replaced, published until every token it signed has expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_kid: Option<String>,
    /// When the retired key leaves `/.well-known/jwks.json` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub retired_until: Option<String>,
}

/// Which claim of an external token names the principal it acts as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    /// `sub` or `email`: the claim that names a person of the tenant (their user id for
    /// `sub`, their email for `email`, unless the token says `email_verified: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A claim whose value is the id of one of the tenant's agents (e.g. `agent_id`). Checked
    /// first: a token with it acts as that agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// An identity provider a tenant trusts: JWTs with this `iss` and this `aud` are verified
/// against the keys at `jwks_url` and act as the principal their claims name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityProvider {
    /// The `iss` of its tokens, exactly.
    pub issuer: String,
    /// The `aud` its tokens must carry (one of them, if a list). Together with `issuer` it
    /// picks the tenant, so no two tenants may configure the same pair.
    pub audience: String,
    /// Where its public keys are (`http://` or `https://`; loopback and private addresses
    /// only where the node allows private endpoints).
    pub jwks_url: String,
    pub claims: ClaimMapping,
}

/// A tenant's identity providers (`GET`/`PUT /v1/identity-providers`, admin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviders {
    pub providers: Vec<IdentityProvider>,
}

/// Most identity providers a tenant may configure.
pub const MAX_IDENTITY_PROVIDERS: usize = 16;

/// Every wrong field of a tenant's identity provider list, each named by its path. `hub_issuer`
/// is the hub's own issuer, which no tenant may configure as an external one.
pub fn validate_identity_providers(list: &IdentityProviders, hub_issuer: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: &str| errors.push(FieldError { path, message: message.to_owned() });
    if list.providers.len() > MAX_IDENTITY_PROVIDERS {
        err("providers".into(), "has more than 16 entries; configure at most 16 identity providers");
    }
    for (i, p) in list.providers.iter().enumerate() {
        let at = |f: &str| format!("providers[{i}].{f}");
        for (field, value) in [("issuer", &p.issuer), ("audience", &p.audience), ("jwks_url", &p.jwks_url)] {
            if value.trim().is_empty() {
                err(at(field), "must not be empty");
            } else if value.len() > 2048 {
                err(at(field), "must be at most 2048 bytes");
            }
        }
        if p.issuer.trim_end_matches('/') == hub_issuer.trim_end_matches('/') {
            err(at("issuer"), "is this hub's own issuer; its tokens are verified with the hub's keys already");
        }
        if !(p.jwks_url.starts_with("https://") || p.jwks_url.starts_with("http://")) {
            err(at("jwks_url"), "must be an https:// (or http://) URL");
        }
        match p.claims.user.as_deref() {
            None | Some("sub") | Some("email") => {}
            Some(_) => err(at("claims.user"), "must be `sub` or `email`"),
        }
        if let Some(a) = &p.claims.agent
            && (a.is_empty() || a.len() > 256)
        {
            err(at("claims.agent"), "must be a claim name of 1 to 256 bytes");
        }
        if p.claims.user.is_none() && p.claims.agent.is_none() {
            err(at("claims"), "names no claim; set `user` (`sub` or `email`), `agent` (a claim name), or both");
        }
        if list.providers[..i].iter().any(|q| q.issuer == p.issuer && q.audience == p.audience) {
            err(at("audience"), "repeats an earlier provider's issuer and audience; each pair may appear once");
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> IdentityProvider {
        IdentityProvider {
            issuer: "https://idp.example".into(),
            audience: "switchboard".into(),
            jwks_url: "https://idp.example/jwks".into(),
            claims: ClaimMapping { user: Some("email".into()), agent: None },
        }
    }

    #[test]
    fn a_good_list_passes() {
        let list = IdentityProviders { providers: vec![provider()] };
        assert_eq!(validate_identity_providers(&list, "https://hub.example"), vec![]);
    }

    #[test]
    fn each_wrong_field_is_named() {
        let mut bad = provider();
        bad.issuer = "https://hub.example/".into();
        bad.jwks_url = "ftp://x".into();
        bad.claims = ClaimMapping { user: Some("name".into()), agent: None };
        let list = IdentityProviders { providers: vec![provider(), bad, provider()] };
        let paths: Vec<String> =
            validate_identity_providers(&list, "https://hub.example").into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            ["providers[1].issuer", "providers[1].jwks_url", "providers[1].claims.user", "providers[2].audience"]
        );
        let none =
            IdentityProviders { providers: vec![IdentityProvider { claims: ClaimMapping::default(), ..provider() }] };
        let paths: Vec<String> =
            validate_identity_providers(&none, "https://hub.example").into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["providers[0].claims"]);
    }
}
