//! The web app for people: server-rendered pages at `/` (sign-in, inbox, messages,
//! conversations with live updates, triage, agent directory, approvals, the one-click links
//! of notification e-mails),
//! their assets embedded in the binary, no build step.
//!
//! A door beside `api/`: it uses the API's [`AppState`] and its session cookie rules
//! (`api::auth`), decides nothing of its own (sign-in, sessions and reads go through `domain`
//! and the store), and renders with [minijinja] templates compiled into the binary. Pages work
//! without JavaScript; `htmx` (vendored, `assets/htmx.min.js`) only enhances them.
//!
//! Security: every page answers with a strict `Content-Security-Policy` (scripts and styles
//! only from this origin), `X-Frame-Options: DENY`, `nosniff` and `Referrer-Policy:
//! same-origin`. Forms that change something carry the session's CSRF token in a hidden
//! field; the sign-in form is refused when the browser says another site sent it.

mod admin;
mod approvals;
mod assets;
mod common;
mod conversations;
mod inbox;
mod live;
mod messages;
mod open;
mod pages;
mod render;
mod triage;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};

use crate::api::AppState;

/// The web app's routes: pages, the sign-in and sign-out forms, and the embedded assets.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(inbox::home))
        .route("/live", get(live::live))
        .route("/messages/{id}", get(messages::show))
        .route("/messages/{id}/reply", post(messages::reply))
        .route("/messages/{id}/files/{index}", get(messages::file))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", get(conversations::show))
        .route("/conversations/{id}/live", get(conversations::live))
        .route("/conversations/{id}/send", post(conversations::send))
        .route("/triage", get(triage::list))
        .route("/triage/{id}/route", post(triage::route))
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/agents", get(pages::agents))
        .route("/agents/{id}", get(pages::agent))
        .route("/agents/{id}/message", post(messages::to_agent))
        .merge(admin::router())
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", get(approvals::one))
        .route("/approvals/{id}/decide", post(approvals::decide))
        .route("/open/{token}", get(open::open))
        .layer(axum::middleware::map_response(secure_headers));
    pages.merge(assets::router())
}

/// The headers every page carries.
async fn secure_headers(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    res
}
