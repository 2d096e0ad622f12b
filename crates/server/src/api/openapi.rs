//! The OpenAPI 3.1 document served at `/openapi.json`, assembled from the handlers'
//! `#[utoipa::path]` attributes and the wire types' `ToSchema` derives.
//!
//! Every error answer is an `application/problem+json` [`Problem`]; the responses below are
//! the reusable components the operations point at (`#/components/responses/…`), so that a
//! generated client learns one error type and a fuzzer knows which statuses are legitimate.
//! Errors that come from an extractor rather than from a handler's own decisions (the bearer
//! token, the query string, the JSON body) are added to every operation that uses that
//! extractor by [`ExtractorErrors`], so a new endpoint cannot forget them.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{OpenApi, ToResponse};
use utoipa_axum::router::OpenApiRouter;

use switchboard_core::api::{self as wire, Problem};

/// `400`: a query or path parameter is wrong (`invalid_query`, the parameter named in
/// `errors`), or the body is not JSON at all (`invalid_json`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(pub Problem);

/// `401 unauthenticated`: no `Authorization: Bearer <token>` header, or a token that is not
/// valid (mistyped, or its agent was deleted).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthenticated(pub Problem);

/// `403 forbidden`: the token is valid but may not do this (an agent key on an admin call, an
/// agent acting for another agent, the admin token on an agent's inbox); `policy_denied`: the
/// tenant's policy refuses it (the detail names the rule); `quota_exceeded`: a quota of the
/// tenant is reached (agents, messages stored, recipients per message, open streams).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(pub Problem);

/// `404 not_found`: the id names nothing the caller can see.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// `409 conflict`: the agent name is taken, or an idempotency key was reused for a different
/// message.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(pub Problem);

/// `413 payload_too_large`: the body is over the node's limit (`max_message_bytes` for
/// messages); send large files by `uri`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem);

/// `422`: the body is JSON but not a valid request (`invalid_body`, every wrong field in
/// `errors`), or names a recipient that does not exist (`unknown_recipient`) or is not served
/// yet (`unsupported_address`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unprocessable(pub Problem);

/// `426 upgrade_required`: a plain request to the WebSocket endpoint; connect with a
/// WebSocket client, or read by SSE (`/v1/events`) or long-poll (`/v1/inbox`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UpgradeRequired(pub Problem);

/// `429 rate_limited`: the caller is over one of the tenant's rate limits (API requests or
/// sends), or too many sign-ins failed; retry after `Retry-After` seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Whole seconds to wait before retrying, at least 1"))
)]
pub struct TooManyRequests(pub Problem);

/// `503 store_unavailable`: the store cannot be reached or written; nothing was saved, and
/// retrying later is safe.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct StoreUnavailable(pub Problem);

/// The frame of the OpenAPI 3.1 document: info, shared components, security. The paths come
/// from each resource module's router (`api::routes`), and [`finish`] adds the extractors'
/// errors to them.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Messaging hub for AI agents and the people who work with them."),
    components(
        schemas(wire::StreamFrame),
        responses(BadRequest, Unauthenticated, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable, UpgradeRequired,
                  StoreUnavailable, TooManyRequests, ReplyTimeout),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Every operation of a document.
fn operations(doc: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// Tags each operation of a resource's router with the resource's name (its module's), as
/// the document has always grouped them.
pub fn tagged<S>(mut router: OpenApiRouter<S>, tag: &str) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    for op in operations(router.get_openapi_mut()) {
        op.tags.get_or_insert_with(Vec::new).push(tag.to_owned());
    }
    router
}

/// The document once the routers' paths are in: each operation gets its extractors' errors.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    utoipa::Modify::modify(&ExtractorErrors, &mut doc);
    doc
}

/// Declares the `bearer` scheme that the document-wide `security` refers to: admin tokens
/// (`sba_…`) and agent API keys (`sbk_…`) alike.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An agent API key (`sbk_…`), a personal access token (`sbp_…`) or the tenant's admin token \
                         (`sba_…`). A browser may instead send the `sb_session` cookie from `POST /v1/auth/login`, \
                         with `X-CSRF-Token` on POST, PUT, PATCH and DELETE (else 403 `csrf_failed`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the error answers that extractors give, to every operation using that extractor:
/// the bearer token (`401`, `429` from the tenant's API rate limit, and `503` because an uncached token is looked up in the store),
/// the query string (`400`), the JSON body (`400`, `413`, `422`). An operation's own entry
/// for a status wins.
struct ExtractorErrors;

impl utoipa::Modify for ExtractorErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        operations(openapi).for_each(add_extractor_errors);
    }
}

fn add_extractor_errors(op: &mut Operation) {
    // An operation with its own `security(())` is public; without one it inherits the
    // document's bearer requirement.
    let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
    // The OAuth2 token endpoint reads a form and answers every error as RFC 6749 has it,
    // never as a problem: it lists its own.
    if op.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/x-www-form-urlencoded")) {
        return;
    }
    let query = op.parameters.iter().flatten().any(|p| p.parameter_in == ParameterIn::Query);
    let body = op.request_body.is_some();
    let mut add = |status: &str, (name, _): (&str, RefOr<Response>)| {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    if !public {
        add("401", Unauthenticated::response());
        add("429", TooManyRequests::response());
        add("503", StoreUnavailable::response());
    }
    if query || body {
        add("400", BadRequest::response());
    }
    if body {
        add("413", PayloadTooLarge::response());
        add("422", Unprocessable::response());
    }
}

/// `{id}` of an agent in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AgentPath {
    /// The agent's id, as returned when it was registered.
    pub id: String,
}

/// `{id}` of an agent and `{key_id}` of one of its keys in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AgentKeyPath {
    /// The agent's id, as returned when it was registered.
    pub id: String,
    /// The key's id (`key_…`), as `GET /v1/agents/{id}/keys` lists it.
    pub key_id: String,
}

/// `{id}` of a message in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The message's id, as returned when it was accepted.
    pub id: String,
}

/// `{topic}` in a path: the address rule for names, percent-encoded (`/` as `%2F`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TopicPath {
    /// Topic name: 1 to 200 letters, digits or `-_/@`, in tokens separated by single dots
    /// (`orders.eu`), percent-encoded in the path; or a wildcard pattern, whose tokens may be
    /// `*` (one token) and, last, `>` (one or more): `orders.*`, `orders.>`.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^(([A-Za-z0-9_/@-]+|\\*)(\\.([A-Za-z0-9_/@-]+|\\*))*(\\.>)?|>)$"
    )]
    pub topic: String,
}

/// `{topic}` and `{agent_id}` of a subscription in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubscriptionPath {
    /// Topic name: 1 to 200 letters, digits or `-_/@`, in tokens separated by single dots
    /// (`orders.eu`), percent-encoded in the path; or a wildcard pattern (`orders.*` one
    /// token, `orders.>` one or more): a publish to a matching name reaches the agent.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^(([A-Za-z0-9_/@-]+|\\*)(\\.([A-Za-z0-9_/@-]+|\\*))*(\\.>)?|>)$"
    )]
    pub topic: String,
    /// The subscribing agent's id.
    pub agent_id: String,
}

// Documentation only: the handler reads `wait` as text, so that it can name a wrong value.
/// What a send waits for before answering.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Wait {
    /// Every recipient has been handed the message, or `wait_ms` has passed.
    Delivered,
    /// The first reply (a message `in_reply_to` this one) arrived: 200 with both, or 504
    /// `reply_timeout` after `timeout_ms`. Agents and people only.
    Reply,
}

/// `504 reply_timeout`: no reply arrived within `timeout_ms`. The message is stored and stays
/// delivered; a later reply reaches the sender's inbox like any message.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct ReplyTimeout(pub Problem);
