//! The HTTP API: one module per resource, each thin (parse, authorize, call the store, map).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use switchboard_core::validate;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use switchboard_core::api as wire;

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod conversations;
pub mod deliveries;
pub mod groups;
pub mod identity_providers;
pub mod inbox;
pub mod limits;
pub mod messages;
pub mod notifications;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod policies;
pub mod routing;
pub mod sessions;
pub mod state;
pub mod stream;
pub mod tenant;
pub mod tenants;
pub mod tokens;
pub mod topics;
pub mod users;
pub mod whoami;

pub use openapi::ApiDoc;
pub use state::{AppState, Caller, note_presence};

/// Every route with its OpenAPI operation, written once in its resource module: the
/// resources' routers merged over the document's frame ([`ApiDoc`]).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(openapi::tagged(ops::router(), "ops"))
        .merge(openapi::tagged(agents::router(), "agents"))
        .merge(openapi::tagged(tenant::router(), "tenant"))
        .merge(openapi::tagged(tenants::router(), "tenants"))
        .merge(openapi::tagged(deliveries::router(), "deliveries"))
        .merge(openapi::tagged(audit::router(), "audit"))
        .merge(openapi::tagged(messages::router(), "messages"))
        .merge(openapi::tagged(whoami::router(), "whoami"))
        .merge(openapi::tagged(users::router(), "users"))
        .merge(openapi::tagged(groups::router(), "groups"))
        .merge(openapi::tagged(routing::router(), "routing"))
        .merge(openapi::tagged(tokens::router(), "tokens"))
        .merge(openapi::tagged(notifications::router(), "notifications"))
        .merge(openapi::tagged(sessions::router(), "auth"))
        .merge(openapi::tagged(topics::router(), "topics"))
        .merge(openapi::tagged(conversations::router(), "conversations"))
        .merge(openapi::tagged(approvals::router(), "approvals"))
        .merge(openapi::tagged(inbox::router(), "inbox"))
        .merge(openapi::tagged(stream::router(), "stream"))
        .merge(openapi::tagged(policies::router(), "policies"))
        .merge(openapi::tagged(limits::router(), "limits"))
        .merge(openapi::tagged(oauth::router(), "oauth"))
        .merge(openapi::tagged(identity_providers::router(), "identity-providers"))
}

/// The OpenAPI document served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::finish(routes().split_for_parts().1)
}

/// Builds the node's router: the API, and `pages` (the web app's routes) beside it.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let (router, doc) = routes().split_for_parts();
    let router = router.merge(pages);
    let doc = axum::body::Bytes::from(serde_json::to_vec(&openapi::finish(doc)).unwrap_or_default());
    router
        .route("/openapi.json", get(move || ops::openapi(doc.clone())))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(refuse_nul_in_url))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_http))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such path; the API is described at /openapi.json".into())
}

async fn method_not_allowed() -> Response {
    let mut res =
        ApiError::InvalidQuery("this method is not allowed on this path; see /openapi.json".into()).into_response();
    *res.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    res
}

async fn record_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "other".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let labels = crate::metrics::HttpLabels { method, route, status: res.status().as_u16() };
    state.metrics.http.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    res
}

/// Reads a JSON body of at most `limit` bytes into `T` and applies the string rule
/// (`core::validate::strings`: no NUL) to every string in it. The way request bodies enter
/// the hub, so that every endpoint refuses the same things with the same answers.
pub async fn parse_json<T: DeserializeOwned + Serialize>(body: Body, limit: usize) -> Result<T, ApiError> {
    let v: T = read_json(body, limit).await?;
    let errors = validate::strings(&v);
    if errors.is_empty() { Ok(v) } else { Err(ApiError::fields(errors)) }
}

/// [`parse_json`] without the string rule, for bodies whose validation applies it itself,
/// item by item: sends (`core::validate::send_message`), so that a batch refuses only the
/// message at fault and a single send walks its strings once.
///
/// Exactly one JSON document is accepted: anything after it, even a second document, makes
/// the body invalid. Unparseable bodies are 400 `invalid_json`; well-formed ones that do not
/// fit `T` are 422 `invalid_body` naming the failing field.
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(format!("could not read the request body: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is larger than the limit of {limit} bytes; send large files by `uri`, or raise max_message_bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::InvalidJson("the request body is empty; send a JSON object".into()));
    }
    // Every request body is a JSON object. serde would also read a struct from an array of
    // its fields in order (`[]` for one whose fields all have defaults), which the documented
    // schema does not allow; one look at the first byte refuses that.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(&bytes) {
            Err(e) => ApiError::InvalidJson(format!(
                "the body is not valid JSON ({e}); send exactly one JSON object and nothing after it"
            )),
            Ok(_) => ApiError::InvalidBody {
                detail: "the body must be a JSON object ({…}); see /openapi.json for its fields".into(),
                errors: vec![wire::FieldError { path: String::new(), message: "must be a JSON object".into() }],
            },
        });
    }
    // A valid body, the common case, parses once without path tracking, which cost about a
    // third of the parse (callgrind, `http` workload); a refused one is looked at again to
    // tell bad syntax from bad fields and to name the field. `from_slice` also refuses
    // trailing input, which a bare `Deserializer` would leave unread.
    serde_json::from_slice(&bytes).map_err(|e| refused::<T>(&bytes, e))
}

/// Why `bytes` did not parse into `T`: bad syntax (400) or the failing field (422).
fn refused<T: DeserializeOwned>(bytes: &[u8], first: serde_json::Error) -> ApiError {
    // The typed parse stops at its first problem, which may be a field although the body
    // is broken further on; whether the body is JSON at all is a question for the syntax
    // alone.
    let syntax = if first.is_syntax() || first.is_eof() {
        Some(first)
    } else {
        serde_json::from_slice::<IgnoredAny>(bytes).err()
    };
    if let Some(e) = syntax {
        return ApiError::InvalidJson(format!(
            "the body is not valid JSON ({e}); send exactly one JSON object and nothing after it"
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let Err(e) = serde_path_to_error::deserialize::<_, T>(de) else {
        return ApiError::InvalidBody {
            detail: "the body does not fit this endpoint; see /openapi.json".into(),
            errors: vec![],
        };
    };
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let message = e.into_inner().to_string();
    ApiError::InvalidBody {
        detail: if path.is_empty() { message.clone() } else { format!("`{path}`: {message}") },
        errors: vec![wire::FieldError { path, message }],
    }
}

/// How long a request may wait for something to happen (`wait_ms`): `default` when not
/// given, refused above `max`. One rule and one text for every endpoint that waits.
pub fn wait_ms(asked: Option<u64>, default: u64, max: u64) -> Result<u64, ApiError> {
    match asked.unwrap_or(default) {
        ms if ms > max => Err(ApiError::InvalidQuery(format!(
            "`wait_ms` must be at most {max} (milliseconds); wait less and ask again to wait longer"
        ))),
        ms => Ok(ms),
    }
}

/// How many items a page of a list holds (`limit`): 100 when not given, 1 to 1000 when given.
/// One rule and one answer for every list.
pub fn page_limit(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked.unwrap_or(100) {
        n if (1..=1000).contains(&n) => Ok(n),
        _ => Err(ApiError::params(vec![wire::FieldError {
            path: "limit".to_owned(),
            message: "must be between 1 and 1000 (default 100); page through longer lists with `cursor`".into(),
        }])),
    }
}

/// A `cursor`-style query parameter that is not the `next_cursor` of an earlier page.
pub fn bad_cursor(param: &str) -> ApiError {
    ApiError::params(vec![wire::FieldError {
        path: param.to_owned(),
        message: "is not a cursor from a previous page; pass `next_cursor` as it came, or leave it out to start at the first page".into(),
    }])
}

/// A cursor over agents (`next_cursor` of agent and subscriber lists: the last agent id of
/// the page), in the form agent ids are stored.
pub fn agent_cursor(param: &str, cursor: Option<String>) -> Result<Option<String>, ApiError> {
    cursor.map(|c| uuid::Uuid::parse_str(&c).map(|id| id.to_string()).map_err(|_| bad_cursor(param))).transpose()
}

/// The string rule for URLs: a NUL (`%00`) anywhere in the path or the query is refused
/// before a handler sees it, whatever the parameter (ids, names, cursors, filters).
async fn refuse_nul_in_url(req: Request, next: Next) -> Response {
    let nul = |s: &str| s.contains("%00");
    if nul(req.uri().path()) || req.uri().query().is_some_and(nul) {
        return ApiError::InvalidQuery(
            "the URL holds a NUL character (%00), which no id, name or parameter may contain; remove it".into(),
        )
        .into_response();
    }
    next.run(req).await
}

/// Query parameters, with errors as problem documents.
pub struct Q<T>(pub T);

/// `?erase=true` on deleting an agent or a person: their messages' payloads go too.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EraseQuery {
    /// Also erase the payload (parts, metadata) of every message they sent or were sent
    /// directly, leaving a tombstone (ids, addresses and times; `erased_at` set). Cannot be
    /// undone.
    #[serde(default)]
    pub erase: bool,
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Q<T>, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Q(v)),
            Err(e) => Err(ApiError::InvalidQuery(e.body_text())),
        }
    }
}
