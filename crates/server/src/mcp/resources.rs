//! MCP resources: the caller's conversations (`switchboard://conversations/{id}`: the
//! conversation and its latest 100 messages) and messages (`switchboard://messages/{id}`), read
//! through the same handlers as `GET /v1/conversations…` and `GET /v1/messages/{id}`, so a
//! caller sees only what the API shows it.

use axum::Json;
use axum::extract::{Path, State};
use rmcp::ErrorData as McpError;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use serde_json::{Value, json};
use switchboard_core::Principal;

use crate::api::auth::Auth;
use crate::api::{AppState, Q};
use crate::error::ApiError;

const CONVERSATIONS: &str = "switchboard://conversations/";
const MESSAGES: &str = "switchboard://messages/";
const JSON: &str = "application/json";
/// Messages a conversation resource shows: the latest.
const LATEST: i64 = 100;

/// The API's refusal as an MCP error: not found stays not found (-32002), the rest are the
/// request's fault (-32602) or the hub's (-32603).
fn mcp_error(e: ApiError, uri: &str) -> McpError {
    let detail = e.problem().detail;
    match e {
        ApiError::NotFound(_) => McpError::resource_not_found(detail, Some(json!({ "uri": uri }))),
        ApiError::Internal(m) => {
            tracing::warn!(error = %m, "an MCP resource read failed");
            McpError::internal_error(detail, None)
        }
        _ => McpError::invalid_params(detail, None),
    }
}

/// A page of the caller's conversations (100 a page; the cursor is the API's).
pub async fn list(state: &AppState, by: Principal, cursor: Option<String>) -> Result<ListResourcesResult, McpError> {
    let q: crate::api::conversations::ListQuery = serde_json::from_value(json!({ "cursor": cursor }))
        .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
    let Json(page) =
        crate::api::conversations::list(State(state.clone()), Auth(by), Q(q)).await.map_err(|e| mcp_error(e, ""))?;
    let resources = page
        .conversations
        .into_iter()
        .map(|c| {
            let name = c.title.clone().unwrap_or_else(|| format!("conversation {}", c.id));
            let who: Vec<&str> = c.participants.iter().map(|p| p.address.as_str()).collect();
            Resource::new(format!("{CONVERSATIONS}{}", c.id), name)
                .with_description(format!(
                    "{} messages, {} unread; participants: {}",
                    c.last_seq,
                    c.unread.unwrap_or(0),
                    who.join(", ")
                ))
                .with_mime_type(JSON)
        })
        .collect();
    let mut result = ListResourcesResult::with_all_items(resources);
    result.next_cursor = page.next_cursor;
    Ok(result)
}

/// The URI templates: a conversation and a message by id.
pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(format!("{CONVERSATIONS}{{id}}"), "conversation")
            .with_title("A conversation")
            .with_description("A conversation you take part in: its participants and its latest 100 messages")
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{MESSAGES}{{id}}"), "message")
            .with_title("A message")
            .with_description("A message you sent or received, with the state of each delivery")
            .with_mime_type(JSON),
    ])
}

/// Reads a conversation or a message resource.
pub async fn read(state: &AppState, by: Principal, uri: &str) -> Result<ReadResourceResult, McpError> {
    let value = if let Some(id) = uri.strip_prefix(CONVERSATIONS).filter(|id| !id.is_empty()) {
        conversation(state, by, id).await.map_err(|e| mcp_error(e, uri))?
    } else if let Some(id) = uri.strip_prefix(MESSAGES).filter(|id| !id.is_empty()) {
        let Json(m) = crate::api::messages::show(State(state.clone()), Auth(by), Path(id.to_owned()))
            .await
            .map_err(|e| mcp_error(e, uri))?;
        serde_json::to_value(m).map_err(|e| McpError::internal_error(e.to_string(), None))?
    } else {
        return Err(McpError::resource_not_found(
            format!(
                "no resource `{uri}`; resources are {CONVERSATIONS}<id> and {MESSAGES}<id> (see resources/list and \
                 resources/templates/list)"
            ),
            Some(json!({ "uri": uri })),
        ));
    };
    // The caller's own data, changing with every message: not to be cached.
    Ok(ReadResourceResult::new(vec![ResourceContents::text(value.to_string(), uri).with_mime_type(JSON)])
        .with_ttl_ms(0)
        .with_cache_scope(rmcp::model::CacheScope::Private))
}

async fn conversation(state: &AppState, by: Principal, id: &str) -> Result<Value, ApiError> {
    let Json(c) = crate::api::conversations::show(State(state.clone()), Auth(by.clone()), Path(id.to_owned())).await?;
    let from = (c.last_seq - LATEST).max(0);
    let q: crate::api::conversations::HistoryParams =
        serde_json::from_value(json!({ "cursor": from.to_string(), "limit": LATEST }))
            .map_err(|e| ApiError::Internal(format!("history query: {e}")))?;
    let Json(history) =
        crate::api::conversations::history(State(state.clone()), Auth(by), Path(id.to_owned()), Q(q)).await?;
    Ok(json!({ "conversation": c, "messages": history.messages }))
}
