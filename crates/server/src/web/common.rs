//! What every page shares: the session of the request, the signed-in person as templates see
//! them (with their unread count for the header's badge), redirects, error pages, and
//! message parts made ready to show.

use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_core::Principal;
use switchboard_core::api::Part;
use switchboard_store::users::SessionRecord;

use super::render::page;
use crate::api::AppState;
use crate::api::auth::session_cookie;
use crate::domain::people::sessions::principal_of;
use crate::error::ApiError;

/// How many rows a page shows.
pub const PAGE: usize = 50;

/// The signed-in person, as the templates see them.
#[derive(Serialize)]
pub struct Me {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub tenant: String,
    pub csrf_token: String,
    /// Unread messages addressed to them (the header's badge).
    pub unread: i64,
    pub admin: bool,
}

/// A page's caller: the session and what the page needs of it.
pub struct Visitor {
    pub session: SessionRecord,
    pub principal: Principal,
}

impl Visitor {
    /// `user:<id>`: the person's address and inbox.
    pub fn address(&self) -> String {
        format!("user:{}", self.session.user.id)
    }

    pub fn tenant(&self) -> &str {
        &self.session.user.tenant
    }

    /// The person for the templates, with their unread count read now.
    pub async fn me(&self, state: &AppState) -> Me {
        let s = &self.session;
        // A count that cannot be read only hides the badge; the page itself still renders.
        let unread = state.store.person_unread(self.tenant(), &self.address()).await.unwrap_or(0);
        Me {
            id: s.user.id.clone(),
            name: s.user.name.clone(),
            email: s.user.email.clone(),
            role: s.user.role.as_str().to_owned(),
            tenant: s.user.tenant.clone(),
            csrf_token: s.csrf_token.clone(),
            unread,
            admin: self.principal.is_admin(),
        }
    }

    /// Refuses a form that does not carry the session's CSRF token.
    pub fn csrf(&self, token: &str) -> Result<(), ApiError> {
        if token == self.session.csrf_token {
            return Ok(());
        }
        Err(ApiError::CsrfFailed("this form is not from your session; reload the page and try again".into()))
    }
}

pub fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")));
    res
}

/// An error as a page, in words for a person (the API's problem detail).
pub fn error_page(e: ApiError) -> Response {
    let problem = e.problem();
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    page(status, "error.html", minijinja::context! { title => problem.title, detail => problem.detail })
}

/// The session of the request's cookie, or where to send the browser instead.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<SessionRecord, Response> {
    let Some(token) = session_cookie(headers) else { return Err(see_other("/sign-in")) };
    match state.sessions.session(token).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(see_other("/sign-in")),
        Err(e) => Err(error_page(e)),
    }
}

/// A page handler's `v: Visitor` argument: the signed-in person, or (as the rejection) the
/// redirect to the sign-in form or the error page.
impl axum::extract::FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        visitor(state, &parts.headers).await
    }
}

/// [`session`] with the principal it acts as.
pub async fn visitor(state: &AppState, headers: &HeaderMap) -> Result<Visitor, Response> {
    let session = session(state, headers).await?;
    let principal = principal_of(&session);
    Ok(Visitor { session, principal })
}

/// The first text of a message's parts (or what kinds of parts it has), for a one-line preview.
pub fn preview(parts_json: &str) -> String {
    let parts: Vec<Part> = serde_json::from_str(parts_json).unwrap_or_default();
    let text = parts.iter().find_map(|p| match p {
        Part::Text { text } => Some(text.clone()),
        _ => None,
    });
    match text {
        Some(t) if t.chars().count() > 160 => format!("{}…", t.chars().take(160).collect::<String>()),
        Some(t) => t,
        None if parts.is_empty() => "(no parts)".into(),
        None => "(data or file parts)".into(),
    }
}

/// One part of a message as a page shows it: text as text, data pretty-printed (shown as
/// data, never interpreted), a file by name and size with a link to download it.
#[derive(Serialize)]
pub struct PartView {
    pub kind: &'static str,
    pub text: Option<String>,
    pub data: Option<String>,
    pub file_name: Option<String>,
    pub file_type: Option<String>,
    pub file_size: Option<usize>,
    pub file_uri: Option<String>,
    pub index: usize,
}

pub fn part_views(parts_json: &str) -> Vec<PartView> {
    let parts: Vec<Part> = serde_json::from_str(parts_json).unwrap_or_default();
    parts
        .into_iter()
        .enumerate()
        .map(|(index, p)| {
            let mut v = PartView {
                kind: "text",
                text: None,
                data: None,
                file_name: None,
                file_type: None,
                file_size: None,
                file_uri: None,
                index,
            };
            match p {
                Part::Text { text } => v.text = Some(text),
                Part::Data { data } => {
                    v.kind = "data";
                    v.data = serde_json::to_string_pretty(&data).ok();
                }
                Part::File { file } => {
                    v.kind = "file";
                    v.file_name = Some(file.name.unwrap_or_else(|| format!("file-{index}")));
                    v.file_type = file.media_type;
                    // Standard base64: three bytes in four characters.
                    v.file_size = file.bytes.as_ref().map(|b| b.trim_end_matches('=').len() * 3 / 4);
                    // Only web links are offered as links.
                    v.file_uri = file.uri.filter(|u| u.starts_with("https://") || u.starts_with("http://"));
                }
                // The hub cannot read a sealed part: the page says so instead of showing ciphertext.
                Part::Sealed { .. } => {
                    v.text = Some("(sealed: end-to-end encrypted; open it with your own key)".into())
                }
            }
            v
        })
        .collect()
}
