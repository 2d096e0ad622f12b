//! The client-credentials grant (RFC 6749 §4.4): an agent id and one of its live API keys
//! in, a short-lived JWT signed with the current key out, audited.

use jsonwebtoken::{Algorithm, Header};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::oauth::TokenResponse;
use switchboard_core::time::now_ms;
use switchboard_core::{Recipient, new_id};

use super::{HubClaims, OAuth};
use crate::error::ApiError;

/// Why no token was issued, as RFC 6749 §5.2 names it.
#[derive(Debug)]
pub enum TokenError {
    /// 400: a parameter is missing, repeated or malformed.
    InvalidRequest(String),
    /// 401: the client id and secret do not name an agent and one of its live keys.
    InvalidClient(String),
    /// 400: a grant type other than `client_credentials`.
    UnsupportedGrantType(String),
    /// The store or the signer failed (503 or 500).
    Server(ApiError),
}

impl From<ApiError> for TokenError {
    fn from(e: ApiError) -> TokenError {
        TokenError::Server(e)
    }
}

impl From<switchboard_store::StoreError> for TokenError {
    fn from(e: switchboard_store::StoreError) -> TokenError {
        TokenError::Server(e.into())
    }
}

impl OAuth {
    /// Issues an access token to agent `client_id` if `secret` is one of its live keys.
    pub async fn client_credentials(&self, client_id: &str, secret: &str) -> Result<TokenResponse, TokenError> {
        let now = now_ms();
        let record = self.store.token_for_hash(&crate::token::token_hash(secret)).await?;
        let record = record.filter(|t| {
            t.live_at(now) && t.key_id.is_some() && t.principal.agent().is_some_and(|a| a.as_str() == client_id)
        });
        let Some(record) = record else {
            return Err(TokenError::InvalidClient(
                "client_id must be an agent id and client_secret one of that agent's live API keys (a revoked key, \
                 a key of another agent or an admin token is refused)"
                    .into(),
            ));
        };
        let principal = record.principal;
        let agent = principal.agent().expect("filtered to agent keys above");
        let key = self.keys.current().await?;
        let iat = u64::try_from(now / 1000).unwrap_or_default();
        let jti = new_id().simple().to_string();
        let claims = HubClaims {
            iss: self.issuer.clone(),
            sub: Recipient::agent_text(agent),
            aud: self.issuer.clone(),
            tenant: principal.tenant.as_str().to_owned(),
            iat,
            nbf: iat,
            exp: iat + self.ttl_secs,
            jti: jti.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| ApiError::Internal(format!("could not sign an access token: {e}")))?;
        // Security relevant whatever the tenant's audit settings: who obtained credentials.
        let audit = NewAuditEvent::by(&principal, AuditAction::OAuthTokenIssue, Recipient::agent_text(agent), now)
            .with_detail(serde_json::json!({
                "jti": jti,
                "kid": key.kid,
                "key_id": record.key_id,
                "expires_at": switchboard_core::time::rfc3339(((iat + self.ttl_secs) * 1000) as i64),
            }));
        self.store.append_audit(audit).await?;
        Ok(TokenResponse { access_token, token_type: "Bearer".into(), expires_in: self.ttl_secs })
    }
}
