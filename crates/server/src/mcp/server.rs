//! The MCP server handler: what the hub answers to `initialize`/`server/discover`, and the
//! dispatch of tool calls and resource reads to `tools` and `resources` as the request's caller.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use switchboard_core::Principal;

use super::{prompts, resources, tools};
use crate::api::AppState;

/// One per session (2025-11-25) or per request (2026-07-28); it holds only the node's state.
pub struct Switchboard {
    state: AppState,
}

impl Switchboard {
    pub fn new(state: AppState) -> Switchboard {
        Switchboard { state }
    }
}

const INSTRUCTIONS: &str = "Switchboard is a message hub for agents and people. Send with send_message (or request \
    to wait for the reply), read what arrived with read_inbox and acknowledge it with ack, discover other agents with \
    list_agents and find_agents, ask people to decide with request_approval, and read conversations with \
    list_conversations and read_conversation (also as resources).";

/// The caller the `/mcp` authentication layer left on the HTTP request.
fn caller(ctx: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("the request carries no authenticated caller", None))
}

impl ServerHandler for Switchboard {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build();
        let mut info = InitializeResult::new(capabilities).with_instructions(INSTRUCTIONS);
        info.server_info = Implementation::new("switchboard", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        // The same list for everyone, and it changes only with the hub's version.
        Ok(ListToolsResult::with_all_items(tools::list())
            .with_ttl_ms(3_600_000)
            .with_cache_scope(rmcp::model::CacheScope::Public))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let by = caller(&ctx)?;
        let args = request.arguments.unwrap_or_default();
        tools::call(&self.state, by, &request.name, args).await.map(CallToolResponse::from)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let by = caller(&ctx)?;
        let cursor = request.and_then(|r| r.cursor);
        // Conversations come and go and are the caller's own: not to be cached.
        Ok(resources::list(&self.state, by, cursor)
            .await?
            .with_ttl_ms(0)
            .with_cache_scope(rmcp::model::CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(resources::templates().with_ttl_ms(3_600_000).with_cache_scope(rmcp::model::CacheScope::Public))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let by = caller(&ctx)?;
        resources::read(&self.state, by, &request.uri).await.map(ReadResourceResponse::from)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(prompts::list())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        prompts::get(&request.name, request.arguments).map(GetPromptResponse::from)
    }
}
