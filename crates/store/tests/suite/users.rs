//! People on every backend: users unique by email per tenant, tokens that carry the user's
//! current role, sessions that end on their own or with their user, and audit entries only
//! for what changed.

use serde_json::json;
use switchboard_core::PrincipalKind;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::principal::Role;
use switchboard_store::audit::AuditFilter;
use switchboard_store::prelude::*;
use switchboard_store::users::{NewSession, NewUserToken, UserRecord};
use switchboard_store::{Conflict, StoreError, TenantRecord};

use super::T;

fn by(action: AuditAction) -> Option<NewAuditEvent> {
    Some(NewAuditEvent {
        tenant: T.into(),
        at: 1,
        actor: "admin".into(),
        action,
        target: "user:u1".into(),
        detail: json!({}),
    })
}

fn user(tenant: &str, id: &str, email: &str, role: Role) -> UserRecord {
    UserRecord {
        tenant: tenant.into(),
        id: id.into(),
        email: email.into(),
        name: "Ann".into(),
        role,
        has_password: true,
        created_at: 1,
        updated_at: 1,
    }
}

fn session(hash: &str, at: i64) -> NewSession {
    NewSession {
        hash: hash.into(),
        csrf_token: "csrf".into(),
        created_at: at,
        idle_until: at + 100,
        expires_at: at + 1000,
    }
}

fn pat(id: &str, hash: &str, expires_at: Option<i64>) -> NewUserToken {
    NewUserToken { id: id.into(), name: "laptop".into(), hash: hash.into(), created_at: 5, expires_at }
}

async fn role_of(s: &dyn Store, hash: &str) -> Option<Role> {
    match s.token_for_hash(hash).await.unwrap().map(|t| t.principal.kind) {
        Some(PrincipalKind::User { role, .. }) => Some(role),
        _ => None,
    }
}

async fn actions(s: &dyn Store) -> Vec<String> {
    s.list_audit(T, AuditFilter { limit: 100, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

pub(super) async fn emails_are_unique_per_tenant(s: &dyn Store) {
    s.create_tenant(TenantRecord { id: T.into(), name: "one".into(), created_at: 1 }, "adm1".into(), None)
        .await
        .unwrap();
    s.create_tenant(TenantRecord { id: "t2".into(), name: "two".into(), created_at: 1 }, "adm2".into(), None)
        .await
        .unwrap();
    s.create_user(user(T, "u1", "ann@x", Role::Member), Some("hash".into()), by(AuditAction::UserCreate))
        .await
        .unwrap();
    let again = s.create_user(user(T, "u2", "ann@x", Role::Viewer), None, by(AuditAction::UserCreate)).await;
    assert_eq!(again, Err(StoreError::Conflict(Conflict::EmailTaken { email: "ann@x".into() })));
    s.create_user(user("t2", "u2", "ann@x", Role::Viewer), None, None).await.expect("another tenant's Ann");
    assert_eq!(actions(s).await, ["user.create"], "the refused one wrote no entry");
    let got = s.get_user(T, "u1").await.unwrap().unwrap();
    assert_eq!((got.email.as_str(), got.role, got.has_password), ("ann@x", Role::Member, true));
    assert!(s.get_user(T, "u2").await.unwrap().is_none(), "t2's user is not t1's");
    let (found, hash) = s.user_for_login("two", "ann@x").await.unwrap().expect("by tenant name");
    assert_eq!((found.id.as_str(), hash), ("u2", None));
    assert_eq!(s.user_for_login(T, "ann@x").await.unwrap().unwrap().1.as_deref(), Some("hash"), "by tenant id");
    assert!(s.user_for_login("nope", "ann@x").await.unwrap().is_none());
    let page = s.list_users(T, None, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(s.list_users(T, Some("u1".into()), 10).await.unwrap().is_empty());
}

pub(super) async fn a_token_carries_its_users_current_role(s: &dyn Store) {
    s.create_user(user(T, "u1", "ann@x", Role::Viewer), None, None).await.unwrap();
    let t = s.create_user_token(T, "u1", pat("tok_1", "h1", None), by(AuditAction::TokenCreate)).await.unwrap();
    assert_eq!(t.unwrap().id, "tok_1");
    assert!(s.create_user_token(T, "nobody", pat("tok_2", "h2", None), None).await.unwrap().is_none());
    assert_eq!(role_of(s, "h1").await, Some(Role::Viewer));
    let promoted = UserRecord { role: Role::Admin, updated_at: 2, ..user(T, "u1", "ann@x", Role::Admin) };
    s.update_user(promoted, None, by(AuditAction::UserUpdate)).await.unwrap().unwrap();
    assert_eq!(role_of(s, "h1").await, Some(Role::Admin), "read from the user's row at each look-up");
    // Expiry is kept, and judged by the caller.
    s.create_user_token(T, "u1", pat("tok_3", "h3", Some(7)), None).await.unwrap();
    let t = s.token_for_hash("h3").await.unwrap().unwrap();
    assert!(t.live_at(6) && !t.live_at(7));
    let listed: Vec<_> = s.list_user_tokens(T, "u1").await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(listed, ["tok_1", "tok_3"]);
    assert!(!s.revoke_user_token(T, "u1", "tok_9", by(AuditAction::TokenRevoke)).await.unwrap());
    assert!(s.revoke_user_token(T, "u1", "tok_1", by(AuditAction::TokenRevoke)).await.unwrap());
    assert!(s.token_for_hash("h1").await.unwrap().is_none());
    assert_eq!(actions(s).await, ["token.create", "user.update", "token.revoke"]);
}

pub(super) async fn sessions_end_idle_absolute_or_with_their_user(s: &dyn Store) {
    s.create_user(user(T, "u1", "ann@x", Role::Member), Some("hash".into()), None).await.unwrap();
    assert!(s.create_session(T, "u1", session("s1", 10), by(AuditAction::Login)).await.unwrap());
    assert!(!s.create_session(T, "nobody", session("s0", 10), by(AuditAction::Login)).await.unwrap());
    let open = s.session_for_hash("s1", 50).await.unwrap().expect("open");
    assert_eq!((open.user.id.as_str(), open.csrf_token.as_str(), open.idle_until), ("u1", "csrf", 110));
    assert!(s.session_for_hash("s1", 110).await.unwrap().is_none(), "idle for too long");
    s.touch_session("s1", 5000).await.unwrap();
    let touched = s.session_for_hash("s1", 500).await.unwrap().expect("moved on");
    assert_eq!(touched.idle_until, 1010, "never past the absolute end");
    assert!(s.session_for_hash("s1", 1010).await.unwrap().is_none(), "the absolute end");
    // A new password ends the sessions; so does deleting the user, with its tokens.
    s.create_session(T, "u1", session("s2", 2000), None).await.unwrap();
    let u = user(T, "u1", "ann@x", Role::Member);
    s.update_user(u, Some("new".into()), None).await.unwrap();
    assert!(s.session_for_hash("s2", 2001).await.unwrap().is_none());
    s.create_session(T, "u1", session("s3", 3000), None).await.unwrap();
    s.create_user_token(T, "u1", pat("tok_1", "h1", None), None).await.unwrap();
    assert!(s.delete_user(T, "u1", by(AuditAction::UserDelete)).await.unwrap());
    assert!(s.session_for_hash("s3", 3001).await.unwrap().is_none());
    assert!(s.token_for_hash("h1").await.unwrap().is_none());
    assert!(!s.delete_user(T, "u1", by(AuditAction::UserDelete)).await.unwrap());
    assert!(!s.delete_session("s3", by(AuditAction::Logout)).await.unwrap());
    assert_eq!(actions(s).await, ["auth.login", "user.delete"]);
}
