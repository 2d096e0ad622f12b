//! The one place that maps errors to HTTP: status, problem `code`, and a message that says
//! what happened and what to do (RFC 9457 `application/problem+json`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_core::api::{FieldError, Problem};
use switchboard_store::{Conflict, StoreError};

/// Every error an API handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (syntax, truncation, trailing data): 400, as HTTP has it
    /// for a request that cannot be parsed, where a well-formed body with wrong fields is 422.
    #[error("{0}")]
    InvalidJson(String),
    #[error("{detail}")]
    InvalidBody { detail: String, errors: Vec<FieldError> },
    #[error("{0}")]
    InvalidQuery(String),
    /// A query or path parameter is wrong, each named with its path (e.g. `topic`).
    #[error("{detail}")]
    InvalidParams { detail: String, errors: Vec<FieldError> },
    /// A plain HTTP request to a WebSocket endpoint.
    #[error("{0}")]
    UpgradeRequired(String),
    /// A `data` part does not match the capability's `input_schema`; every failing location
    /// is named.
    #[error("{detail}")]
    SchemaViolation { detail: String, errors: Vec<FieldError> },
    #[error("{0}")]
    UnknownRecipient(String),
    /// A message's signature does not verify against the sender's registered key (or names
    /// no current key of the sender): 422 `bad_signature`, naming the field.
    #[error("{detail}")]
    BadSignature { detail: String, errors: Vec<FieldError> },
    /// A sealed part is sealed to a revoked key: 422 `revoked_key`, naming the entry.
    #[error("{detail}")]
    RevokedKey { detail: String, errors: Vec<FieldError> },
    /// A sealed part names a key the directory does not have: 422 `unknown_key`.
    #[error("{detail}")]
    UnknownKey { detail: String, errors: Vec<FieldError> },
    /// `capability:<name>` where no agent of the tenant has the capability at all (active or
    /// not): distinct from `unknown_recipient` so that auto-routing can send it to triage.
    #[error("{0}")]
    NoCapableAgent(String),
    /// `?wait=reply` ran out of time; the request is stored and stays delivered.
    #[error("{0}")]
    ReplyTimeout(String),
    #[error("{0}")]
    UnsupportedAddress(String),
    /// An `auto` message the hub cannot route and no person can take: the tenant's triage
    /// group does not exist or has no members.
    #[error("{0}")]
    NoTriage(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// A cookie-authenticated unsafe request without the session's `X-CSRF-Token`.
    #[error("{0}")]
    CsrfFailed(String),
    /// The tenant's policy refuses it; the text names the deciding rule.
    #[error("{0}")]
    PolicyDenied(String),
    /// Too many attempts or requests (a rate limit): 429 with `Retry-After`, `retry_after`
    /// seconds (at least 1) until the next is let through.
    #[error("{detail}")]
    RateLimited { detail: String, retry_after: u64 },
    /// A quota of the tenant (agents, messages stored, recipients, open streams).
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    StoreUnavailable(String),
    /// The request's headers did not arrive in time (answered by the listener).
    #[error("{0}")]
    RequestTimeout(String),
    /// The request URI is over the node's limit (answered by the listener).
    #[error("{0}")]
    UriTooLong(String),
    /// The request's header section is over the node's limit (answered by the listener).
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A body whose fields are wrong, each named with its path.
    pub fn fields(errors: Vec<FieldError>) -> ApiError {
        let detail = match errors.as_slice() {
            [one] => format!("`{}` {}", one.path, one.message),
            many => format!("{} fields are invalid; see `errors`", many.len()),
        };
        ApiError::InvalidBody { detail, errors }
    }

    /// URL parameters (path or query) that are wrong, each named.
    pub fn params(errors: Vec<FieldError>) -> ApiError {
        let detail = match errors.as_slice() {
            [one] => format!("`{}`: {}", one.path, one.message),
            many => format!("{} parameters are invalid; see `errors`", many.len()),
        };
        ApiError::InvalidParams { detail, errors }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json", "The request body is not valid JSON"),
            InvalidBody { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", "The request body is invalid"),
            InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query", "A query parameter is invalid"),
            InvalidParams { .. } => (StatusCode::BAD_REQUEST, "invalid_query", "A URL parameter is invalid"),
            UpgradeRequired(_) => {
                (StatusCode::UPGRADE_REQUIRED, "upgrade_required", "This endpoint speaks WebSocket only")
            }
            SchemaViolation { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "schema_violation",
                "A data part does not match the capability's schema",
            ),
            UnknownRecipient(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_recipient", "Unknown recipient"),
            BadSignature { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "bad_signature", "The message's signature does not verify")
            }
            RevokedKey { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "revoked_key", "The message is sealed to a revoked key")
            }
            UnknownKey { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_key", "The message names an unknown key"),
            NoTriage(_) => (StatusCode::UNPROCESSABLE_ENTITY, "no_triage", "No one can triage this message"),
            NoCapableAgent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "no_capable_agent", "No agent has the capability"),
            ReplyTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "reply_timeout", "No reply arrived in time"),
            UnsupportedAddress(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_address", "This kind of address is not available yet")
            }
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large"),
            Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated", "Missing or invalid credentials"),
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            CsrfFailed(_) => (StatusCode::FORBIDDEN, "csrf_failed", "The CSRF token is missing or wrong"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests"),
            PolicyDenied(_) => (StatusCode::FORBIDDEN, "policy_denied", "The tenant's policy does not allow this"),
            QuotaExceeded(_) => (StatusCode::FORBIDDEN, "quota_exceeded", "A quota of the tenant is reached"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            StoreUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "The store is unavailable; nothing was saved")
            }
            RequestTimeout(_) => {
                (StatusCode::REQUEST_TIMEOUT, "request_timeout", "The request took too long to arrive")
            }
            UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long", "The request URI is too long"),
            HeadersTooLarge(_) => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "The request headers are too large")
            }
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let errors = match self {
            ApiError::InvalidBody { errors, .. }
            | ApiError::InvalidParams { errors, .. }
            | ApiError::SchemaViolation { errors, .. }
            | ApiError::BadSignature { errors, .. }
            | ApiError::RevokedKey { errors, .. }
            | ApiError::UnknownKey { errors, .. } => errors.clone(),
            _ => Vec::new(),
        };
        let detail = match self {
            // Internal details go to the log, not to the caller.
            ApiError::Internal(_) => "the hub hit an unexpected error; it is logged, and retrying is safe".to_owned(),
            e => e.to_string(),
        };
        Problem {
            type_: format!("https://switchboard.dev/problems/{}", code.replace('_', "-")),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable { reason } => ApiError::StoreUnavailable(format!("{reason}; retry later")),
            StoreError::Conflict(Conflict::AgentNameTaken { name }) => {
                ApiError::Conflict(format!("an agent named `{name}` already exists in this tenant"))
            }
            StoreError::Conflict(Conflict::TenantNameTaken { name }) => ApiError::Conflict(format!(
                "a tenant named `{name}` already exists; choose another name, or list tenants with `switchboard tenant list`"
            )),
            StoreError::Conflict(Conflict::EmailTaken { email }) => ApiError::Conflict(format!(
                "a user with the email `{email}` already exists in this tenant; list users with `switchboard user list`"
            )),
            StoreError::Conflict(Conflict::IssuerTaken { issuer, audience }) => ApiError::Conflict(format!(
                "another tenant trusts the issuer `{issuer}` with the audience `{audience}`, and a token's issuer and \
                 audience must pick one tenant; ask the identity provider for an audience of your own"
            )),
            StoreError::Conflict(Conflict::Unique { constraint }) => ApiError::Conflict(format!(
                "this would duplicate a record already stored (unique rule `{constraint}`); nothing was saved"
            )),
            // Start-up refuses such a URL before any request is served.
            e @ StoreError::UnsupportedUrl => ApiError::Internal(e.to_string()),
            StoreError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(m) = &self {
            tracing::error!(error = %m, "internal error");
        }
        let p = self.problem();
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&p).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let ApiError::RateLimited { retry_after, .. } = &self {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::UPGRADE_REQUIRED {
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
            res.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: StoreError) -> (u16, String, String) {
        let p = ApiError::from(e).problem();
        (p.status, p.code, p.detail)
    }

    /// The store says which case it is; the words a client reads are chosen here.
    #[test]
    fn store_errors_become_their_status_code_and_text() {
        assert_eq!(
            answer(StoreError::Conflict(Conflict::AgentNameTaken { name: "bob".into() })),
            (409, "conflict".into(), "an agent named `bob` already exists in this tenant".into())
        );
        assert_eq!(
            answer(StoreError::Conflict(Conflict::Unique { constraint: "messages_pkey".into() })),
            (
                409,
                "conflict".into(),
                "this would duplicate a record already stored (unique rule `messages_pkey`); nothing was saved".into()
            )
        );
        assert_eq!(
            answer(StoreError::unavailable("the connection to PostgreSQL was lost")),
            (503, "store_unavailable".into(), "the connection to PostgreSQL was lost; retry later".into())
        );
        let internal = "the hub hit an unexpected error; it is logged, and retrying is safe".to_owned();
        assert_eq!(answer(StoreError::Internal("bad row".into())), (500, "internal".into(), internal.clone()));
        assert_eq!(answer(StoreError::UnsupportedUrl), (500, "internal".into(), internal));
    }
}
