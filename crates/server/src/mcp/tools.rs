//! The MCP tools: each a thin call of the REST resource handler (or domain function) that does
//! the same, as the caller, so that validation, policies, limits and audit are the API's. Tool
//! arguments become the handler's query or body (`deny_unknown_fields` there names a stray
//! argument); an error the API would answer becomes an `isError: true` result whose text is the
//! problem's `detail`, which says what to do.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_core::Principal;
use switchboard_core::api::{Agent, AgentList};

use super::schemas;
use crate::api::auth::Auth;
use crate::api::{AppState, Q};
use crate::error::ApiError;

/// Every tool, with its input schema.
pub fn list() -> Vec<Tool> {
    schemas::TOOLS.iter().map(|(name, description, schema)| tool(name, description, schema())).collect()
}

fn tool(name: &'static str, description: &'static str, schema: Value) -> Tool {
    let schema = match schema {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    };
    Tool::new(name, description, std::sync::Arc::new(schema))
}

/// Calls tool `name` as `by`. An unknown tool is a protocol error (-32602), as the spec has
/// it; everything the tool itself refuses is an `isError` result.
pub async fn call(state: &AppState, by: Principal, name: &str, args: JsonObject) -> Result<CallToolResult, McpError> {
    let nul = switchboard_core::validate::strings(&args);
    if !nul.is_empty() {
        return Ok(refused(&ApiError::fields(nul)));
    }
    let answer = match name {
        "send_message" => send(state, by, args, false).await,
        "request" => send(state, by, args, true).await,
        "read_inbox" => read_inbox(state, by, args).await,
        "ack" => ack(state, by, args).await,
        "list_agents" => list_agents(state, by, args).await,
        "find_agents" => find_agents(state, by, args).await,
        "request_approval" => request_approval(state, by, args).await,
        "get_message" => get_message(state, by, args).await,
        "list_conversations" => list_conversations(state, by, args).await,
        "read_conversation" => read_conversation(state, by, args).await,
        other => {
            return Err(McpError::invalid_params(
                format!("there is no tool `{other}`; list the tools with tools/list"),
                None,
            ));
        }
    };
    Ok(match answer {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => refused(&e),
    })
}

/// An error the API would have answered, as a tool result the model can read and act on.
fn refused(e: &ApiError) -> CallToolResult {
    if let ApiError::Internal(m) = e {
        tracing::warn!(error = %m, "an MCP tool failed");
    }
    let p = e.problem();
    let mut text = format!("{} ({})", p.detail, p.code);
    for f in &p.errors {
        if !p.detail.contains(&f.message) {
            text.push_str(&format!("\n- `{}`: {}", f.path, f.message));
        }
    }
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn to_value<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(format!("could not write a tool's answer: {e}")))
}

/// The arguments as a handler's query type, refusing what it does not take by name.
fn query<T: DeserializeOwned>(args: JsonObject) -> Result<Q<T>, ApiError> {
    let de = Value::Object(args);
    serde_path_to_error::deserialize::<_, T>(de).map(Q).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let path = if path == "." { String::new() } else { path };
        ApiError::fields(vec![switchboard_core::api::FieldError { path, message }])
    })
}

/// The arguments as a request body for a handler that reads one.
fn body(args: &JsonObject) -> Result<Body, ApiError> {
    serde_json::to_vec(args)
        .map(Body::from)
        .map_err(|e| ApiError::Internal(format!("could not write the arguments as JSON: {e}")))
}

/// Takes argument `key` out of `args` as a `T`.
fn take<T: DeserializeOwned>(args: &mut JsonObject, key: &str) -> Result<Option<T>, ApiError> {
    let Some(v) = args.remove(key) else { return Ok(None) };
    serde_json::from_value(v).map(Some).map_err(|e| {
        ApiError::fields(vec![switchboard_core::api::FieldError { path: key.into(), message: e.to_string() }])
    })
}

/// A JSON answer of a handler that answers a `Response`.
async fn response_json(res: axum::response::Response) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(format!("could not read a handler's answer: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(format!("a handler's answer is not JSON: {e}")))
}

/// `send_message` and `request`: `POST /v1/messages`, with `?wait=reply` for `request`. The
/// shorthands `text` and `data` become parts after any `parts` given.
async fn send(state: &AppState, by: Principal, mut args: JsonObject, wait: bool) -> Result<Value, ApiError> {
    let timeout_ms: Option<u64> = if wait { take(&mut args, "timeout_ms")? } else { None };
    let text: Option<String> = take(&mut args, "text")?;
    let data: Option<Value> = take(&mut args, "data")?;
    let mut parts: Vec<Value> = take(&mut args, "parts")?.unwrap_or_default();
    if let Some(text) = text {
        parts.push(json!({"kind": "text", "text": text}));
    }
    if let Some(data) = data {
        parts.push(json!({"kind": "data", "data": data}));
    }
    if parts.is_empty() {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "text".into(),
            message: "give the message's `text` (or `data`, or `parts`)".into(),
        }]));
    }
    args.insert("parts".into(), Value::Array(parts));
    let q = match (wait, timeout_ms) {
        (false, _) => json!({}),
        (true, None) => json!({"wait": "reply"}),
        (true, Some(ms)) => json!({"wait": "reply", "timeout_ms": ms}),
    };
    let q = query(q.as_object().cloned().unwrap_or_default())?;
    let res = crate::api::messages::send(State(state.clone()), Auth(by), q, body(&args)?).await?;
    response_json(res).await
}

async fn read_inbox(state: &AppState, by: Principal, args: JsonObject) -> Result<Value, ApiError> {
    let Json(inbox) = crate::api::inbox::fetch(State(state.clone()), Auth(by), query(args)?).await?;
    let mut v = to_value(inbox)?;
    if v["messages"].as_array().is_some_and(|m| !m.is_empty()) {
        v["hint"] = json!(
            "each message is leased to you: acknowledge it with the `ack` tool once handled, or it is delivered again \
             when its lease expires; answer with `send_message` and `in_reply_to` set to its id"
        );
    }
    Ok(v)
}

async fn ack(state: &AppState, by: Principal, args: JsonObject) -> Result<Value, ApiError> {
    let Json(result) = crate::api::inbox::ack(State(state.clone()), Auth(by), body(&args)?).await?;
    to_value(result)
}

async fn list_agents(state: &AppState, by: Principal, args: JsonObject) -> Result<Value, ApiError> {
    let Json(page) = crate::api::agents::list(State(state.clone()), Auth(by), query(args)?).await?;
    to_value(page)
}

/// Most agents `find_agents` looks through for a text match (ten pages of the registry).
const FIND_SCAN: usize = 10;

/// `find_agents`: by capability (the registry's filter), by text (a case-insensitive match in
/// the id, name, description and capabilities, over at most ten pages of 1000), or both.
async fn find_agents(state: &AppState, by: Principal, mut args: JsonObject) -> Result<Value, ApiError> {
    let text: Option<String> = take(&mut args, "text")?;
    let limit: usize = take(&mut args, "limit")?.unwrap_or(20);
    let capability: Option<String> = take(&mut args, "capability")?;
    if let Some(k) = args.keys().next() {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: k.clone(),
            message: "is not an argument of find_agents; use `capability`, `text` or `limit`".into(),
        }]));
    }
    if text.as_deref().is_none_or(str::is_empty) && capability.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "text".into(),
            message: "give `capability` (an exact capability name) or `text` (words to look for), or both; \
                      list_agents lists every agent"
                .into(),
        }]));
    }
    if !(1..=100).contains(&limit) {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "limit".into(),
            message: "must be between 1 and 100 (default 20)".into(),
        }]));
    }
    let needle = text.map(|t| t.to_lowercase());
    let mut found: Vec<Agent> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..FIND_SCAN {
        let q = json!({"capability": capability, "limit": 1000, "cursor": cursor});
        let q = query(q.as_object().cloned().unwrap_or_default().into_iter().filter(|(_, v)| !v.is_null()).collect())?;
        let Json(AgentList { agents, next_cursor }) =
            crate::api::agents::list(State(state.clone()), Auth(by.clone()), q).await?;
        found.extend(agents.into_iter().filter(|a| needle.as_deref().is_none_or(|n| matches(a, n))));
        cursor = next_cursor;
        if cursor.is_none() || found.len() >= limit {
            break;
        }
    }
    found.truncate(limit);
    to_value(json!({ "agents": found }))
}

/// Whether an agent's id, name, description or capabilities hold `needle` (lower case).
fn matches(a: &Agent, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(&a.id)
        || has(&a.name)
        || a.description.as_deref().is_some_and(has)
        || a.capabilities
            .iter()
            .any(|c| has(&c.name) || c.description.as_deref().is_some_and(has) || c.tags.iter().any(|t| has(t)))
}

/// `request_approval`: `POST /v1/approvals`, then, with `timeout_ms`, waits for the outcome
/// (the approval's request message gets its outcome as a reply, as `?wait=reply` has it).
async fn request_approval(state: &AppState, by: Principal, mut args: JsonObject) -> Result<Value, ApiError> {
    let timeout_ms: Option<u64> = take(&mut args, "timeout_ms")?;
    let expires_in: Option<u64> = take(&mut args, "expires_in_seconds")?;
    if let Some(s) = expires_in {
        if args.contains_key("deadline") {
            return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
                path: "expires_in_seconds".into(),
                message: "give `deadline` or `expires_in_seconds`, not both".into(),
            }]));
        }
        let at = switchboard_core::time::now_ms().saturating_add(s.saturating_mul(1000) as i64);
        args.insert("deadline".into(), json!(switchboard_core::time::rfc3339(at)));
    }
    if let Some(ms) = timeout_ms
        && ms > crate::domain::reply::MAX_REPLY_WAIT_MS
    {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "timeout_ms".into(),
            message: format!(
                "must be at most {} (milliseconds); wait less, then look the approval up again",
                crate::domain::reply::MAX_REPLY_WAIT_MS
            ),
        }]));
    }
    let (_, Json(created)) =
        crate::api::approvals::create(State(state.clone()), Auth(by.clone()), body(&args)?).await?;
    let Some(ms) = timeout_ms.filter(|ms| *ms > 0) else { return to_value(created) };
    if by.recipient().is_none() {
        return Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: "timeout_ms".into(),
            message: "only an agent or a person can wait for the outcome; the approval was created".into(),
        }]));
    }
    let message = created.approval.message_id.clone();
    let timeout = std::time::Duration::from_millis(ms);
    let outcome = crate::domain::reply::await_reply(
        state.store.as_ref(),
        &state.deliveries,
        &by,
        &message,
        timeout,
        state.shutdown.clone(),
    )
    .await?;
    let approval = state.approvals.get(&by, &created.approval.id).await?;
    let mut v = to_value(json!({ "approval": crate::domain::approvals::view(&approval) }))?;
    if outcome.is_none() {
        v["note"] = json!(format!(
            "no outcome within {ms} ms; the approval stays {} until its deadline, and its outcome reaches your inbox",
            crate::domain::approvals::view(&approval).state
        ));
    }
    Ok(v)
}

async fn get_message(state: &AppState, by: Principal, mut args: JsonObject) -> Result<Value, ApiError> {
    let id = required_id(&mut args, "id", "the message's id, as `send_message` or `read_inbox` answered it")?;
    let Json(m) = crate::api::messages::show(State(state.clone()), Auth(by), Path(id)).await?;
    to_value(m)
}

async fn list_conversations(state: &AppState, by: Principal, args: JsonObject) -> Result<Value, ApiError> {
    let Json(page) = crate::api::conversations::list(State(state.clone()), Auth(by), query(args)?).await?;
    to_value(page)
}

async fn read_conversation(state: &AppState, by: Principal, mut args: JsonObject) -> Result<Value, ApiError> {
    let id = required_id(&mut args, "conversation_id", "a conversation's id, as list_conversations answers it")?;
    let Json(history) =
        crate::api::conversations::history(State(state.clone()), Auth(by), Path(id), query(args)?).await?;
    to_value(history)
}

/// A required string argument naming something by id.
fn required_id(args: &mut JsonObject, key: &str, what: &str) -> Result<String, ApiError> {
    match take::<String>(args, key)? {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err(ApiError::fields(vec![switchboard_core::api::FieldError {
            path: key.into(),
            message: format!("is required: {what}"),
        }])),
    }
}
