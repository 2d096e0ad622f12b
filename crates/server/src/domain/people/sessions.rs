//! Signing in with a password: sessions, their CSRF tokens, and the throttle on failures.
//!
//! A session is a random token (`sbs_…`, 256 bits) in the `sb_session` cookie; the store
//! keeps its SHA-256 with the user, a CSRF token, and two ends: idle (12 hours after its last
//! use) and absolute (7 days after sign-in). Use moves the idle end on, written at most once
//! a minute per session. A changed password ends the user's sessions; so does deleting it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::people::{Login, normalize_email};
use switchboard_core::principal::{Principal, PrincipalKind};
use switchboard_core::time::{Millis, now_ms};
use switchboard_core::{DEFAULT_TENANT, Recipient, TenantId, UserId};
use switchboard_store::Store;
use switchboard_store::users::{NewSession, SessionRecord, UserRecord};

use super::password;
use super::throttle::Throttle;
use crate::error::ApiError;
use crate::token::{new_token, token_hash};

/// A session ends this long after its last use.
pub const IDLE_MS: Millis = 12 * 3_600_000;
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE_MS: Millis = 7 * 24 * 3_600_000;
/// The idle end is written again only once it is this much behind.
const TOUCH_EVERY_MS: Millis = 60_000;
/// Failed sign-ins allowed per (tenant, email) within [`WINDOW`].
pub const PER_ACCOUNT: u32 = 5;
/// Failed sign-ins allowed per client address within [`WINDOW`].
pub const PER_ADDRESS: u32 = 20;
/// The throttle's window, counted from a key's first failure.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// A session just opened: the cookie's token and the CSRF token are in this answer only.
pub struct Opened {
    pub user: UserRecord,
    pub token: String,
    pub csrf_token: String,
    pub expires_at: Millis,
}

fn wrong() -> ApiError {
    ApiError::Unauthenticated("the email or password is wrong (or the user cannot sign in with a password)".into())
}

/// The principal a session stands for: its user, with the role the user has now.
pub fn principal_of(s: &SessionRecord) -> Principal {
    Principal {
        tenant: TenantId::from(s.user.tenant.as_str()),
        kind: PrincipalKind::User { id: UserId::from(s.user.id.as_str()), role: s.user.role },
    }
}

/// Sign-in, sign-out and session look-up.
pub struct Sessions {
    store: Arc<dyn Store>,
    per_account: Throttle,
    per_address: Throttle,
}

impl Sessions {
    pub fn new(store: Arc<dyn Store>) -> Sessions {
        Sessions {
            store,
            per_account: Throttle::new(PER_ACCOUNT, WINDOW),
            per_address: Throttle::new(PER_ADDRESS, WINDOW),
        }
    }

    /// Checks the password of `req.email` in `req.tenant` (the default tenant if absent) and
    /// opens a session. `client` is the caller's address as the throttle counts it.
    ///
    /// A wrong password, an unknown email and a user without a password get the same 401,
    /// after the same argon2 work (a dummy hash is checked when there is no real one).
    pub async fn login(&self, req: Login, client: Option<String>) -> Result<Opened, ApiError> {
        let tenant = req.tenant.as_deref().unwrap_or(DEFAULT_TENANT).to_owned();
        let email = normalize_email(&req.email).unwrap_or_else(|_| req.email.clone());
        let account = format!("{tenant}\n{email}");
        let address = client.map(|c| format!("ip\n{c}"));
        let now = Instant::now();
        for (throttle, key) in [(&self.per_account, Some(&account)), (&self.per_address, address.as_ref())] {
            if let Some(key) = key
                && let Err(retry_after) = throttle.check(key, now)
            {
                return Err(ApiError::RateLimited {
                    detail: format!(
                        "too many failed sign-ins for this account or from this address; try again in {retry_after} s"
                    ),
                    retry_after,
                });
            }
        }
        let found = self.store.user_for_login(&tenant, &email).await?;
        let (user, stored) = match found {
            Some((u, h)) => (Some(u), h),
            None => (None, None),
        };
        if !password::verify(stored, req.password).await {
            self.per_account.fail(&account, now);
            if let Some(a) = &address {
                self.per_address.fail(a, now);
            }
            if let Some(u) = user {
                self.record_failure(u);
            } else {
                tracing::info!(tenant = %tenant, "sign-in refused: no such user");
            }
            return Err(wrong());
        }
        let Some(user) = user else { return Err(wrong()) };
        self.per_account.clear(&account);
        let token = new_token("sbs_");
        let csrf_token = new_token("");
        let at = now_ms();
        let session = NewSession {
            hash: token_hash(&token),
            csrf_token: csrf_token.clone(),
            created_at: at,
            idle_until: at + IDLE_MS,
            expires_at: at + ABSOLUTE_MS,
        };
        let expires_at = session.expires_at;
        let by = Principal {
            tenant: TenantId::from(user.tenant.as_str()),
            kind: PrincipalKind::User { id: UserId::from(user.id.as_str()), role: user.role },
        };
        let audit = NewAuditEvent::by(&by, AuditAction::Login, by.sender(), at)
            .with_detail(serde_json::json!({ "method": "password" }));
        if !self.store.create_session(&user.tenant, &user.id, session, Some(audit)).await? {
            return Err(wrong());
        }
        tracing::info!(user = %user.id, "signed in");
        Ok(Opened { user, token, csrf_token, expires_at })
    }

    /// Records a failed sign-in of a known user in its tenant's audit log, after the answer
    /// (so that a known email does not answer slower than an unknown one).
    fn record_failure(&self, u: UserRecord) {
        let store = self.store.clone();
        let event = NewAuditEvent {
            tenant: u.tenant.clone(),
            at: now_ms(),
            actor: Recipient::user_text(&UserId::from(u.id.as_str())),
            action: AuditAction::LoginFailed,
            target: Recipient::user_text(&UserId::from(u.id.as_str())),
            detail: serde_json::json!({ "reason": "wrong password" }),
        };
        tracing::info!(user = %u.id, "sign-in refused: wrong password");
        tokio::spawn(async move {
            if let Err(e) = store.append_audit(event).await {
                tracing::warn!(error = %e, "could not record a failed sign-in in the audit log");
            }
        });
    }

    /// The open session whose cookie carries `token`, with its user as it is now; its idle
    /// end moves on.
    pub async fn session(&self, token: &str) -> Result<Option<SessionRecord>, ApiError> {
        let hash = token_hash(token);
        let now = now_ms();
        let Some(s) = self.store.session_for_hash(&hash, now).await? else {
            return Ok(None);
        };
        if s.idle_until < now + IDLE_MS - TOUCH_EVERY_MS {
            self.store.touch_session(&hash, now + IDLE_MS).await?;
        }
        Ok(Some(s))
    }

    /// Ends the session whose cookie carries `token`; `false` if it was not open.
    pub async fn logout(&self, by: &Principal, token: &str) -> Result<bool, ApiError> {
        let audit = NewAuditEvent::by(by, AuditAction::Logout, by.sender(), now_ms());
        Ok(self.store.delete_session(&token_hash(token), Some(audit)).await?)
    }
}
