//! `/admin/users`: the tenant's people and their roles; create one, change a role, delete one
//! (after a confirmation). The rules are `domain::people::users`' (only an owner makes or
//! removes an owner, a password has at least 12 characters, …).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_core::api::FieldError;
use switchboard_core::people::{CreateUser, UpdateUser};
use switchboard_core::principal::Role;
use switchboard_core::time::rfc3339;

use super::{Admin, Confirm, Done, FormError, admin, confirm_page, form_error, given};
use crate::api::AppState;
use crate::domain::people::users::no_such_user;
use crate::error::ApiError;
use crate::web::common::{PAGE, error_page, see_other};
use crate::web::render::page;

#[derive(Serialize)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    role: &'static str,
    has_password: bool,
    created_at: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    #[serde(flatten)]
    done: Done,
}

/// What the create form held, to show it again with its errors.
#[derive(Serialize, Default)]
struct Draft {
    email: String,
    name: String,
    role: String,
}

/// Renders the page: the users after `after`, the create form (with a draft and its errors).
async fn render(
    state: &AppState,
    a: &Admin,
    after: Option<String>,
    status: StatusCode,
    draft: Draft,
    error: Option<FormError>,
    done: Option<String>,
) -> Response {
    let after = match crate::api::agent_cursor("after", after) {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let rows = match state.store.list_users(a.tenant(), after, PAGE).await {
        Ok(rows) => rows,
        Err(e) => return error_page(e.into()),
    };
    let next = (rows.len() == PAGE).then(|| rows.last().map(|u| u.id.clone())).flatten();
    let users: Vec<UserRow> = rows
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role.as_str(),
            has_password: u.has_password,
            created_at: rfc3339(u.created_at),
        })
        .collect();
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let ctx = minijinja::context! {
        me => a.me(state).await, nav => "admin", section => "users", users, next, roles, draft, error, done,
    };
    page(status, "admin_users.html", ctx)
}

/// `GET /admin/users`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    render(&state, &a, q.after, StatusCode::OK, Draft::default(), None, q.done.sentence()).await
}

/// A role named in a form, or the field error naming the choices.
fn role(path: &str, s: &str) -> Result<Role, ApiError> {
    Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
        ApiError::fields(vec![FieldError {
            path: path.into(),
            message: "must be one of owner, admin, member, viewer".into(),
        }])
    })
}

#[derive(Deserialize)]
pub struct CreateForm {
    csrf_token: String,
    email: String,
    name: String,
    role: String,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /admin/users`: creates a user as `POST /v1/users` does; a refused one shows the form
/// again with each field at fault.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<CreateForm>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = a.forged(&f.csrf_token) {
        return r;
    }
    let draft = Draft { email: f.email.clone(), name: f.name.clone(), role: f.role.clone() };
    let created = async {
        let req =
            CreateUser { email: f.email, name: f.name, role: role("role", &f.role)?, password: given(f.password) };
        let errors = switchboard_core::validate::strings(&req);
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        state.users.create(a.by(), req).await
    }
    .await;
    match created {
        Ok(_) => see_other("/admin/users?done=user_created"),
        Err(e) => match form_error(e) {
            Ok((status, error)) => render(&state, &a, None, status, draft, Some(error), None).await,
            Err(e) => error_page(e),
        },
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf_token: String,
    role: String,
}

/// `POST /admin/users/{id}/role`: changes a user's role as `PUT /v1/users/{id}` does.
pub async fn change_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = a.forged(&f.csrf_token) {
        return r;
    }
    let changed = async {
        let req = UpdateUser { role: Some(role("role", &f.role)?), ..Default::default() };
        state.users.update(a.by(), &id, req).await
    }
    .await;
    match changed {
        Ok(_) => {
            // As the API does: this node reads the new role at the next request.
            state.tokens.forget_user(a.tenant(), &id);
            see_other("/admin/users?done=role_changed")
        }
        Err(e) => error_page(e),
    }
}

/// `GET /admin/users/{id}/delete`: asks before deleting.
pub async fn confirm_delete(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let user = match state.store.get_user(a.tenant(), &id).await {
        Ok(Some(u)) => u,
        Ok(None) => return error_page(no_such_user(&id)),
        Err(e) => return error_page(e.into()),
    };
    confirm_page(
        &state,
        &a,
        Confirm {
            heading: "Delete a user",
            text: format!(
                "Delete {} <{}>? Their sessions and personal access tokens end with them; this cannot be undone.",
                user.name, user.email
            ),
            action: format!("/admin/users/{id}/delete"),
            hidden: vec![],
            button: "Delete the user",
            cancel: "/admin/users".into(),
            grace: false,
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf_token: String,
}

/// `POST /admin/users/{id}/delete`: deletes the user as `DELETE /v1/users/{id}` does.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let a = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = a.forged(&f.csrf_token) {
        return r;
    }
    if let Err(e) = state.users.remove(a.by(), &id, false).await {
        return error_page(e);
    }
    state.tokens.forget_user(a.tenant(), &id);
    see_other("/admin/users?done=user_deleted")
}
