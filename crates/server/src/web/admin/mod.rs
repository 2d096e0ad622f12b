//! The admin pages (owners and admins of a tenant): users and roles, agent keys, the policy,
//! dead letters and the audit log.
//!
//! They decide nothing of their own: each calls the domain function its API handler calls,
//! as the signed-in person's principal (`web::common::visitor`), so roles and tenancy are the
//! domain's (another tenant's ids answer 404 there). A person who is not an owner or admin
//! gets the 403 page before anything is read. Forms that change something carry the
//! session's CSRF token (checked before anything else) and answer with a redirect to the page
//! with a `done=` confirmation (post/redirect/get); destructive ones (delete, revoke, purge)
//! first show a confirmation page whose form does it. The one exception to the redirect is a
//! new agent key: it is shown once, in the answer to its form, never put in a URL.

mod audit;
mod dead_letters;
mod keys;
mod policies;
mod users;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use switchboard_core::Principal;
use switchboard_core::api::FieldError;

use super::common::{Me, Visitor, error_page, visitor};
use super::render::page;
use crate::api::AppState;
use crate::error::ApiError;

/// The admin pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { super::common::see_other("/admin/users") }))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{id}/role", post(users::change_role))
        .route("/admin/users/{id}/delete", get(users::confirm_delete).post(users::delete))
        .route("/admin/agents/{id}/keys", get(keys::list).post(keys::create))
        .route("/admin/agents/{id}/keys/{key_id}/revoke", get(keys::confirm_revoke).post(keys::revoke))
        .route("/admin/policies", get(policies::show).post(policies::put))
        .route("/admin/dead-letters", get(dead_letters::list))
        .route("/admin/dead-letters/replay", post(dead_letters::replay))
        .route("/admin/dead-letters/purge", post(dead_letters::purge))
        .route("/admin/dead-letters/{id}", get(dead_letters::inspect))
        .route("/admin/audit", get(audit::list))
}

/// A signed-in owner or admin: the session and the principal the domain is called as.
struct Admin(Visitor);

/// The request's visitor if an owner or admin; otherwise where the browser goes (sign-in) or
/// the 403 page.
async fn admin(state: &AppState, headers: &HeaderMap) -> Result<Admin, Response> {
    let v = visitor(state, headers).await?;
    if !v.principal.is_admin() {
        return Err(error_page(ApiError::Forbidden(format!(
            "the admin pages are for a tenant's owners and admins; your role is `{}`",
            v.session.user.role
        ))));
    }
    Ok(Admin(v))
}

impl Admin {
    /// The refusal of a form that does not carry this session's CSRF token (checked before
    /// anything changes), or `None` when it does.
    fn forged(&self, token: &str) -> Option<Response> {
        (token != self.0.session.csrf_token)
            .then(|| error_page(ApiError::CsrfFailed("this form is not from your session; reload the page".into())))
    }

    fn tenant(&self) -> &str {
        self.0.tenant()
    }

    /// Who the domain is called as.
    fn by(&self) -> &Principal {
        &self.0.principal
    }

    /// The person for the templates.
    async fn me(&self, state: &AppState) -> Me {
        self.0.me(state).await
    }
}

/// What went wrong with a form, for the page that shows it again: the problem's detail and
/// each field at fault.
#[derive(Serialize, Default)]
struct FormError {
    detail: String,
    errors: Vec<FieldError>,
}

/// An error the form's page can show (a refusal of the input), with the status to answer;
/// anything else (forbidden, not found, the store failing) is given back for the error page.
fn form_error(e: ApiError) -> Result<(StatusCode, FormError), ApiError> {
    let problem = e.problem();
    match problem.status {
        400 | 409 | 413 | 422 => Ok((
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            FormError { detail: problem.detail, errors: problem.errors },
        )),
        _ => Err(e),
    }
}

/// The confirmation a page shows after a post/redirect/get: `?done=<what>&count=<n>`.
#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
    /// Text, not a number: a flattened query field reaches serde as a string.
    count: Option<String>,
}

impl Done {
    /// The sentence for the page, from a fixed list (never text from the URL).
    fn sentence(&self) -> Option<String> {
        let n: u64 = self.count.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        let s = match self.done.as_deref()? {
            "user_created" => "The user was created.".to_owned(),
            "role_changed" => "The role was changed.".to_owned(),
            "user_deleted" => "The user was deleted, with their sessions and tokens.".to_owned(),
            "key_revoked" => "The key was revoked.".to_owned(),
            "policy_saved" => "The policy was saved; it is in force on every node within a second.".to_owned(),
            "replayed" => format!("{n} dead {} pending again.", if n == 1 { "delivery is" } else { "deliveries are" }),
            "purged" => format!("{n} dead {} deleted.", if n == 1 { "delivery was" } else { "deliveries were" }),
            _ => return None,
        };
        Some(s)
    }
}

/// A confirmation page for a destructive action: its form posts `hidden` with the CSRF token
/// and `confirm=yes` to `action`.
struct Confirm<'a> {
    heading: &'a str,
    text: String,
    action: String,
    hidden: Vec<(String, String)>,
    button: &'a str,
    cancel: String,
    /// Ask for the grace seconds of a key revocation.
    grace: bool,
}

async fn confirm_page(state: &AppState, a: &Admin, c: Confirm<'_>) -> Response {
    let hidden: Vec<[String; 2]> = c.hidden.into_iter().map(|(k, v)| [k, v]).collect();
    let ctx = minijinja::context! {
        me => a.me(state).await, nav => "admin", heading => c.heading, text => c.text, action => c.action,
        hidden, button => c.button, cancel => c.cancel, grace => c.grace,
    };
    page(StatusCode::OK, "admin_confirm.html", ctx)
}

/// A form's text field: `None` when left empty.
fn given(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}
