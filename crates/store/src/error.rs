//! What can go wrong in the store, as data: the server's `error.rs` decides what each case
//! means to a client (status, problem code, text); the store only says which case it is.

/// Errors of the storage layer. The server maps them to HTTP; none carries secrets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or cannot take writes now; nothing was committed, and
    /// retrying later may work. `reason` is for the operator (what the database said).
    #[error("the store is unavailable: {reason}")]
    Unavailable { reason: String },
    /// A uniqueness rule was broken; nothing was committed.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The database URL names no backend this build has; nothing was opened.
    #[error("database_url: use postgres://… (or leave it unset for the embedded store)")]
    UnsupportedUrl,
    /// A bug or corrupt data; logged, answered as 500.
    #[error("store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// [`StoreError::Unavailable`] with this reason.
    pub fn unavailable(reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable { reason: reason.into() }
    }
}

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Another agent in the tenant has this name.
    #[error("the agent name `{name}` is taken")]
    AgentNameTaken { name: String },
    /// Another tenant has this name.
    #[error("the tenant name `{name}` is taken")]
    TenantNameTaken { name: String },
    /// Another user in the tenant has this email.
    #[error("the email `{email}` is taken")]
    EmailTaken { email: String },
    /// Another tenant trusts this identity provider (issuer and audience) already.
    #[error("the issuer `{issuer}` with audience `{audience}` is configured by another tenant")]
    IssuerTaken { issuer: String, audience: String },
    /// A unique rule of the database that no caller is expected to meet (a colliding
    /// generated id), named by its constraint.
    #[error("unique rule `{constraint}`")]
    Unique { constraint: String },
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
