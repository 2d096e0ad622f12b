//! `ListTasks` (A2A 1.0 section 3.1.4): the caller's tasks at one agent (every sender's for
//! the tenant's administrators), filtered by context, state and status time, newest status
//! first, in pages with an opaque cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use switchboard_core::Principal;
use switchboard_store::Store;
use switchboard_store::a2a::A2aTaskFilter;

use super::tasks::{history_length, invalid};
use super::view::Facts;
use super::{A2aError, Dialect, TaskState};

/// The most tasks of one agent and caller considered (the newest).
const SCAN_LIMIT: usize = 1000;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;

/// A field of the request, whether given as JSON (JSON-RPC) or as query text (HTTP+JSON).
fn text<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn whole(params: &Value, key: &str) -> Result<Option<i64>, A2aError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| invalid(format!("`{key}` must be a whole number"))),
    }
}

/// The sort key of a task: newest status first, then by id.
fn key(f: &Facts) -> (i64, String) {
    (f.timestamp(), f.original.id.clone())
}

fn cursor(k: &(i64, String)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", k.0, k.1))
}

fn parse_cursor(token: &str) -> Result<(i64, String), A2aError> {
    let bad = || invalid("`pageToken` is not one this hub gave; leave it out to start from the first page");
    let text = URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad)?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_owned()))
}

/// The ListTasks answer (`tasks`, `nextPageToken` always present, `pageSize`, `totalSize`).
pub async fn list(
    store: &dyn Store,
    by: &Principal,
    agent_id: &str,
    params: &Value,
    dialect: Dialect,
) -> Result<Value, A2aError> {
    let page = match whole(params, "pageSize")? {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => n as usize,
        Some(n) => return Err(invalid(format!("`pageSize` must be between 1 and {MAX_PAGE}, got {n}"))),
    };
    if whole(params, "historyLength")?.is_some_and(|n| n < 0) {
        return Err(invalid("`historyLength` must be a whole number, 0 or more"));
    }
    let history = history_length(params.get("historyLength"))?;
    let state = match text(params, "status") {
        None => None,
        Some("TASK_STATE_UNSPECIFIED") => None,
        Some(s) => Some(TaskState::parse(s).ok_or_else(|| {
            invalid(format!(
                "`status` `{s}` is not a task state; use one of TASK_STATE_SUBMITTED, TASK_STATE_WORKING, …"
            ))
        })?),
    };
    let after = match text(params, "statusTimestampAfter") {
        None => None,
        Some(t) => Some(
            switchboard_core::time::parse_rfc3339(t)
                .ok_or_else(|| invalid(format!("`statusTimestampAfter` `{t}` is not an RFC 3339 time")))?,
        ),
    };
    let artifacts = match params.get("includeArtifacts") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => return Err(invalid("`includeArtifacts` must be true or false")),
    };
    let from = text(params, "pageToken").map(parse_cursor).transpose()?;
    let filter = A2aTaskFilter {
        agent_id: agent_id.to_owned(),
        owner: (!by.is_admin()).then(|| by.sender()),
        context_id: text(params, "contextId").map(str::to_owned),
        limit: SCAN_LIMIT,
    };
    let mut all = Vec::new();
    for t in store.list_a2a_tasks(by.tenant.as_str(), filter).await? {
        let Some((m, d)) = store.get_message(by.tenant.as_str(), &t.id).await? else { continue };
        let f = Facts::read(store, m, d).await?;
        if state.is_some_and(|s| f.state() != s) || after.is_some_and(|a| f.timestamp() <= a) {
            continue;
        }
        all.push(f);
    }
    all.sort_by_key(|f| std::cmp::Reverse(key(f)));
    let total = all.len();
    let start = match &from {
        None => 0,
        Some(c) => all.iter().position(|f| key(f) < *c).unwrap_or(total),
    };
    let end = (start + page).min(total);
    let next = if end < total { cursor(&key(&all[end - 1])) } else { String::new() };
    let tasks: Vec<Value> = all[start..end].iter().map(|f| f.task(history, artifacts, dialect)).collect();
    Ok(json!({ "tasks": tasks, "nextPageToken": next, "pageSize": page, "totalSize": total }))
}
