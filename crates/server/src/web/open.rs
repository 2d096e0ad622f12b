//! `/open/<token>`: the one-click link of a notification e-mail. A good link leads to the
//! request (`/approvals/<id>` for an approval request, else `/messages/<id>`), through the
//! sign-in form when the browser has no session; a bad or expired one gets a page that says
//! so and what to do instead. The link decides no access: the page it leads to does.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use switchboard_core::time::now_ms;

use super::common::{error_page, see_other};
use super::render::page;
use crate::api::AppState;
use crate::api::auth::session_cookie;
use crate::domain::notify::links::LinkError;

/// `GET /open/{token}`.
pub async fn open(State(state): State<AppState>, headers: HeaderMap, Path(token): Path<String>) -> Response {
    let followed = match state.notifications.follow(&token, now_ms()).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return refused(e),
        Err(e) => return error_page(e),
    };
    let signed_in = match session_cookie(&headers) {
        Some(t) => matches!(state.sessions.session(t).await, Ok(Some(_))),
        None => false,
    };
    if signed_in {
        return see_other(&followed.path);
    }
    let next: String = form_urlencoded::byte_serialize(followed.path.as_bytes()).collect();
    see_other(&format!("/sign-in?next={next}"))
}

fn refused(e: LinkError) -> Response {
    let (status, title, detail) = match e {
        LinkError::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Links in notification e-mails work for 72 hours. Sign in to find the request in your inbox.",
        ),
        LinkError::Invalid => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "It may have been cut short when it was copied, or the request is gone. Sign in to find the request in \
             your inbox.",
        ),
    };
    page(status, "error.html", minijinja::context! { title, detail })
}
