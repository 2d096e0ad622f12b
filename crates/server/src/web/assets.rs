//! The web app's static files, compiled into the binary. Each is served with its content
//! type and a short cache lifetime (the binary's version changes them; a page reload after an
//! upgrade picks them up within the hour).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::AppState;

/// (name, content type, bytes) of every asset under `/assets/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
    ("htmx.min.js", "text/javascript; charset=utf-8", include_bytes!("assets/htmx.min.js")),
    ("icon.svg", "image/svg+xml", include_bytes!("assets/icon.svg")),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/{name}", get(asset))
        .route("/manifest.webmanifest", get(|| async { file("application/manifest+json", MANIFEST) }))
        // The service worker is served from the root so that its scope is the whole app.
        .route("/sw.js", get(|| async { file("text/javascript; charset=utf-8", SERVICE_WORKER) }))
}

const MANIFEST: &[u8] = include_bytes!("assets/manifest.webmanifest");
const SERVICE_WORKER: &[u8] = include_bytes!("assets/sw.js");

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ty, bytes)) => file(ty, bytes),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn file(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}
