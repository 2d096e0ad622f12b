//! The HTTP+JSON binding (A2A 1.0.1 section 11) under `/a2a/{id}/rest`: the same operations
//! as JSON-RPC, on the spec's paths (`POST /message:send`, `GET /tasks/{id}`, …; a leading
//! `/v1` as 0.3 wrote them is taken too). Answers are `application/a2a+json`; errors are a
//! `google.rpc.Status` (`{"error": {code, status, message, details}}`) whose details carry
//! a `google.rpc.ErrorInfo` naming the A2A error, with 1.0.1's statuses: 404 for
//! `TaskNotFoundError`, 400 for the other A2A errors and invalid params, 500 for failures.
//! Requests may be `application/json` or `application/a2a+json` (another type: 415).
//! `A2A-Version: 0.3` answers in 0.3's shapes; no header, or 1.0, in 1.0's.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::find_agent;
use super::ops::{self, Done, Op};
use crate::api::AppState;
use crate::api::auth::Auth;
use crate::domain::a2a::{A2aError, Dialect};
use crate::error::ApiError;

const A2A_JSON: &str = "application/a2a+json";

fn reply(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(A2A_JSON))], body).into_response()
}

/// A `google.rpc.Status` error with an `ErrorInfo` detail.
fn error(status: StatusCode, grpc: &str, reason: &str, domain: &str, message: String) -> Response {
    let v = json!({ "error": {
        "code": status.as_u16(),
        "status": grpc,
        "message": message,
        "details": [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain }],
    }});
    reply(status, &v)
}

fn a2a_error(e: A2aError) -> Response {
    let bad = StatusCode::BAD_REQUEST;
    const D: &str = "a2a-protocol.org";
    match e {
        A2aError::TaskNotFound(m) => error(StatusCode::NOT_FOUND, "NOT_FOUND", "TASK_NOT_FOUND", D, m),
        A2aError::InvalidParams(m) => error(bad, "INVALID_ARGUMENT", "INVALID_PARAMS", D, m),
        A2aError::NotCancelable(m) => error(bad, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE", D, m),
        A2aError::Unsupported(m) => error(bad, "UNIMPLEMENTED", "UNSUPPORTED_OPERATION", D, m),
        A2aError::Api(e) => {
            let p = e.problem();
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let grpc = match p.status {
                400 | 413 | 422 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                409 => "ABORTED",
                429 => "RESOURCE_EXHAUSTED",
                s if s >= 500 => "INTERNAL",
                _ => "FAILED_PRECONDITION",
            };
            let mut message = p.detail;
            for f in &p.errors {
                message.push_str(&format!("; {}: {}", f.path, f.message));
            }
            error(status, grpc, &p.code.to_ascii_uppercase(), "switchboard.dev", message)
        }
    }
}

/// The operation a method and path name, and the params the path gives.
fn route(method: &Method, path: &str) -> Option<(Op, Map<String, Value>)> {
    let path = path.trim_matches('/');
    let path = path.strip_prefix("v1/").unwrap_or(path);
    let mut p = Map::new();
    let segs: Vec<&str> = path.split('/').collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let op = match segs.as_slice() {
        ["message:send"] if post => Op::SendMessage,
        ["message:stream"] if post => Op::SendStreamingMessage,
        ["tasks"] if get => Op::ListTasks,
        ["extendedAgentCard"] | ["card"] if get => Op::GetExtendedAgentCard,
        ["tasks", t] => {
            let (id, op) = if let Some(id) = t.strip_suffix(":cancel") {
                (id, post.then_some(Op::CancelTask)?)
            } else if let Some(id) = t.strip_suffix(":subscribe") {
                (id, (post || get).then_some(Op::SubscribeToTask)?)
            } else {
                (*t, get.then_some(Op::GetTask)?)
            };
            p.insert("id".into(), json!(id));
            op
        }
        ["tasks", t, "pushNotificationConfigs"] => {
            p.insert("taskId".into(), json!(t));
            if post {
                Op::CreatePushConfig
            } else if get {
                Op::ListPushConfigs
            } else {
                return None;
            }
        }
        ["tasks", t, "pushNotificationConfigs", c] => {
            p.insert("taskId".into(), json!(t));
            p.insert("id".into(), json!(c));
            if get {
                Op::GetPushConfig
            } else if method == Method::DELETE {
                Op::DeletePushConfig
            } else {
                return None;
            }
        }
        _ => return None,
    };
    Some((op, p))
}

pub(super) async fn call(
    State(state): State<AppState>,
    auth: Auth,
    Path((agent_id, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let agent = find_agent(&state, &auth, &agent_id).await?;
    let Some((op, path_params)) = route(&method, &rest) else {
        let m =
            format!("{method} /{rest} is not an A2A HTTP+JSON operation; see section 11.3 of the A2A specification");
        return Ok(error(StatusCode::NOT_FOUND, "NOT_FOUND", "METHOD_NOT_FOUND", "a2a-protocol.org", m));
    };
    let dialect = match super::rpc::version(&headers) {
        Err(m) => {
            return Ok(error(StatusCode::BAD_REQUEST, "UNIMPLEMENTED", "VERSION_NOT_SUPPORTED", "a2a-protocol.org", m));
        }
        Ok(()) => {
            let v = headers.get("a2a-version").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
            if v.starts_with("0.3") { Dialect::V03 } else { Dialect::V10 }
        }
    };
    let limit = state.config.max_message_bytes.saturating_mul(2).saturating_add(64 * 1024);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let m = format!("the request body is over {limit} bytes or broken");
        return Ok(error(StatusCode::PAYLOAD_TOO_LARGE, "INVALID_ARGUMENT", "INVALID_REQUEST", "a2a-protocol.org", m));
    };
    let mut params = Map::new();
    if !bytes.is_empty() {
        let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !essence.is_empty() && essence != "application/json" && essence != A2A_JSON {
            let m = format!("content type `{ctype}` is not served; send `{A2A_JSON}` or `application/json`");
            return Ok(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_ARGUMENT",
                "CONTENT_TYPE_NOT_SUPPORTED",
                "a2a-protocol.org",
                m,
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(o)) => params = o,
            _ => {
                let m = "the request body must be a JSON object".to_owned();
                return Ok(error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "PARSE_ERROR", "a2a-protocol.org", m));
            }
        }
    }
    if let Some(q) = uri.query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            params.entry(k.into_owned()).or_insert(Value::String(v.into_owned()));
        }
    }
    params.extend(path_params);
    let params = Value::Object(params);
    let base = super::base_url(&state, &headers);
    Ok(match ops::run(&state, &auth.0, &agent, &base, op, &params, dialect).await {
        Ok(Done::Value(v)) => reply(StatusCode::OK, &v),
        Ok(Done::Stream(rx)) => ops::sse(rx, |v| v),
        Err(e) => a2a_error(e),
    })
}
