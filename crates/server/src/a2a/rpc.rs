//! The JSON-RPC 2.0 binding (A2A 1.0 section 9) at `POST /a2a/{id}`.
//!
//! Order of checks: authentication (HTTP 401 problem, as the API), the agent exists in the
//! caller's tenant (HTTP 404 problem), a JSON content type when one is named (`-32005`), the
//! body is JSON (`-32700`), a JSON-RPC request
//! (`-32600`), the `A2A-Version` header (`-32009`), the method (`-32601`), its params
//! (`-32602`). Every JSON-RPC answer is HTTP 200.
//!
//! Versions: no header (or an empty one) means 0.3; `0.3`, `1.0` and `1.0.<patch>` are
//! served. Method names of both generations are taken (`SendMessage` / `message/send`,
//! `GetTask` / `tasks/get`) and each answers in its own generation's shape.
//!
//! Errors the hub would answer through the API keep their meaning: invalid input is
//! `-32602`, any other refusal (policy, rate limit, quota, a viewer sending) `-32600`, a
//! failure `-32603`. Each carries a `google.rpc.ErrorInfo` in `data` whose `reason` is the
//! A2A error (`TASK_NOT_FOUND`) or the API's problem code in upper case (`POLICY_DENIED`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::find_agent;
use super::ops::{self, Done, Op};
use crate::api::AppState;
use crate::api::auth::Auth;
use crate::domain::a2a::A2aError;
use crate::error::ApiError;

/// An error answer: code, message, and the `ErrorInfo` reason (with its domain).
struct RpcError {
    code: i64,
    message: String,
    reason: String,
    domain: &'static str,
}

const A2A_DOMAIN: &str = "a2a-protocol.org";

impl RpcError {
    fn a2a(code: i64, reason: &str, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into(), reason: reason.into(), domain: A2A_DOMAIN }
    }

    fn body(self, id: Value) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": self.code,
                "message": self.message,
                "data": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": self.reason,
                    "domain": self.domain,
                }],
            },
        })
    }
}

impl From<A2aError> for RpcError {
    fn from(e: A2aError) -> RpcError {
        match e {
            A2aError::TaskNotFound(m) => RpcError::a2a(-32001, "TASK_NOT_FOUND", m),
            A2aError::InvalidParams(m) => RpcError::a2a(-32602, "INVALID_PARAMS", m),
            A2aError::NotCancelable(m) => RpcError::a2a(-32002, "TASK_NOT_CANCELABLE", m),
            A2aError::Unsupported(m) => RpcError::a2a(-32004, "UNSUPPORTED_OPERATION", m),
            A2aError::Api(e) => {
                let p = e.problem();
                let code = match p.status {
                    400 | 413 | 422 => -32602,
                    s if s >= 500 => -32603,
                    _ => -32600,
                };
                let mut message = p.detail;
                for f in &p.errors {
                    message.push_str(&format!("; {}: {}", f.path, f.message));
                }
                RpcError { code, message, reason: p.code.to_ascii_uppercase(), domain: "switchboard.dev" }
            }
        }
    }
}

/// The generation the `A2A-Version` header asks for, or `None` when it is not served.
pub(super) fn version(headers: &HeaderMap) -> Result<(), String> {
    let v = match headers.get("a2a-version") {
        None => return Ok(()),
        Some(v) => v.to_str().map_err(|_| "the A2A-Version header is not text".to_owned())?.trim(),
    };
    let served = v.is_empty()
        || v == "0.3"
        || v == "0.3.0"
        || v == "1.0"
        || v.strip_prefix("1.0.").is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if served { Ok(()) } else { Err(format!("A2A version `{v}` is not supported; this hub speaks 1.0 and 0.3")) }
}

fn answer(v: Value) -> Response {
    Json(v).into_response()
}

fn fail(id: Value, e: RpcError) -> Response {
    answer(e.body(id))
}

pub(super) async fn call(
    State(state): State<AppState>,
    auth: Auth,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let agent = find_agent(&state, &auth, &agent_id).await?;
    let limit = state.config.max_message_bytes.saturating_mul(2).saturating_add(64 * 1024);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = RpcError::a2a(-32600, "INVALID_REQUEST", format!("the request is over {limit} bytes or broken"));
            return Ok(fail(Value::Null, e));
        }
    };
    let ctype = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ctype.is_empty() && !ctype.to_ascii_lowercase().contains("json") {
        let m = format!("content type `{ctype}` is not served; send `application/json`");
        return Ok(fail(Value::Null, RpcError::a2a(-32005, "CONTENT_TYPE_NOT_SUPPORTED", m)));
    }
    let Ok(req) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(fail(Value::Null, RpcError::a2a(-32700, "PARSE_ERROR", "Invalid JSON payload")));
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = matches!(id, Value::String(_) | Value::Number(_));
    let method = req.get("method").and_then(Value::as_str);
    let (true, Some(method), true) = (req.get("jsonrpc") == Some(&json!("2.0")), method, id_ok) else {
        let id = if id_ok { id } else { Value::Null };
        let e = RpcError::a2a(
            -32600,
            "INVALID_REQUEST",
            "Request payload validation error: a JSON-RPC 2.0 request needs `jsonrpc: \"2.0\"`, a string `method` \
             and a string or number `id`",
        );
        return Ok(fail(id, e));
    };
    if let Err(m) = version(&headers) {
        return Ok(fail(id, RpcError::a2a(-32009, "VERSION_NOT_SUPPORTED", m)));
    }
    let params = match req.get("params") {
        None | Some(Value::Null) => json!({}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => return Ok(fail(id, RpcError::a2a(-32602, "INVALID_PARAMS", "`params` must be an object"))),
    };
    let Some((op, dialect)) = Op::from_method(method) else {
        let e = RpcError::a2a(-32601, "METHOD_NOT_FOUND", format!("Method not found: {method}"));
        return Ok(fail(id, e));
    };
    let base = super::base_url(&state, &headers);
    match ops::run(&state, &auth.0, &agent, &base, op, &params, dialect).await {
        Ok(Done::Value(v)) => Ok(answer(json!({ "jsonrpc": "2.0", "id": id, "result": v }))),
        Ok(Done::Stream(rx)) => Ok(ops::sse(rx, move |v| json!({ "jsonrpc": "2.0", "id": id.clone(), "result": v }))),
        Err(e) => Ok(fail(id, e.into())),
    }
}
