//! Templates: compiled into the binary, loaded once, auto-escaped (every `.html` template
//! escapes what it prints unless a value is marked safe, which none is).

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("inbox.html", include_str!("templates/inbox.html")),
    ("message.html", include_str!("templates/message.html")),
    ("parts.html", include_str!("templates/parts.html")),
    ("conversations.html", include_str!("templates/conversations.html")),
    ("conversation.html", include_str!("templates/conversation.html")),
    ("conversation_items.html", include_str!("templates/conversation_items.html")),
    ("conversation_statuses.html", include_str!("templates/conversation_statuses.html")),
    ("conversation_live.html", include_str!("templates/conversation_live.html")),
    ("triage.html", include_str!("templates/triage.html")),
    ("agents.html", include_str!("templates/agents.html")),
    ("agent.html", include_str!("templates/agent.html")),
    ("approvals.html", include_str!("templates/approvals.html")),
    ("approval.html", include_str!("templates/approval.html")),
    ("error.html", include_str!("templates/error.html")),
    ("admin_nav.html", include_str!("templates/admin_nav.html")),
    ("admin_form_error.html", include_str!("templates/admin_form_error.html")),
    ("admin_confirm.html", include_str!("templates/admin_confirm.html")),
    ("admin_users.html", include_str!("templates/admin_users.html")),
    ("admin_keys.html", include_str!("templates/admin_keys.html")),
    ("admin_policies.html", include_str!("templates/admin_policies.html")),
    ("admin_dead_letters.html", include_str!("templates/admin_dead_letters.html")),
    ("admin_dead_letter.html", include_str!("templates/admin_dead_letter.html")),
    ("admin_audit.html", include_str!("templates/admin_audit.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the binary; one that does not parse is a build bug,
            // which the web tests catch (every page is rendered there).
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a web template does not parse");
            }
        }
        env
    })
}

/// Renders `name` with `ctx` as an HTML page with `status`.
pub fn page(status: StatusCode, name: &str, ctx: impl Serialize) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "could not render a web page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>This page could not be shown.</p>"),
            )
                .into_response()
        }
    }
}
