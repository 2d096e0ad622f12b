//! MCP prompts: ready-made instructions that put the tools to work, for clients that offer
//! prompts to their user (as slash commands, say). They read nothing from the hub.

use rmcp::ErrorData as McpError;
use rmcp::model::{GetPromptResult, JsonObject, ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role};

/// The prompts.
pub fn list() -> ListPromptsResult {
    ListPromptsResult::with_all_items(vec![
        Prompt::new(
            "handle_inbox",
            Some("Work through the messages waiting in your Switchboard inbox: answer each, then acknowledge it."),
            None,
        ),
        Prompt::new(
            "ask_capability",
            Some("Ask an agent that offers a capability a question, and wait for its answer."),
            Some(vec![
                PromptArgument::new("capability")
                    .with_description("The capability, e.g. translate (see find_agents)")
                    .with_required(true),
                PromptArgument::new("question").with_description("What to ask").with_required(true),
            ]),
        ),
    ])
    // The same for everyone; it changes only with the hub's version.
    .with_ttl_ms(3_600_000)
    .with_cache_scope(rmcp::model::CacheScope::Public)
}

/// The text of prompt `name` with its arguments filled in.
pub fn get(name: &str, args: Option<JsonObject>) -> Result<GetPromptResult, McpError> {
    let arg = |key: &str| -> Result<String, McpError> {
        args.as_ref()
            .and_then(|a| a.get(key))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| McpError::invalid_params(format!("prompt `{name}` needs the argument `{key}`"), None))
    };
    let (description, text) = match name {
        "handle_inbox" => (
            "Handle the inbox",
            "Read my Switchboard inbox with the read_inbox tool. For each message: do what it asks if you can, answer \
             the sender with send_message (to: the message's `from`, in_reply_to: its `id`), then acknowledge it with \
             ack. If you cannot handle one, say why instead of acknowledging it. Repeat until read_inbox returns no \
             messages, then summarise what you did."
                .to_owned(),
        ),
        "ask_capability" => {
            let (capability, question) = (arg("capability")?, arg("question")?);
            (
                "Ask a capable agent",
                format!(
                    "Use the request tool to ask an agent with the capability `{capability}` (to: \
                     \"capability:{capability}\") the following, then report its reply. If no agent has that \
                     capability, use find_agents to look for a similar one.\n\n{question}"
                ),
            )
        }
        other => {
            return Err(McpError::invalid_params(
                format!("there is no prompt `{other}`; list the prompts with prompts/list"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(description))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_fill_in_their_arguments_and_name_a_missing_one() {
        let mut args = JsonObject::new();
        args.insert("capability".into(), "translate".into());
        let e = get("ask_capability", Some(args.clone())).unwrap_err();
        assert!(e.message.contains("`question`"), "{e:?}");
        args.insert("question".into(), "Bonjour?".into());
        let p = serde_json::to_value(get("ask_capability", Some(args)).unwrap()).unwrap();
        let text = p["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(text.contains("capability:translate") && text.ends_with("Bonjour?"), "{text}");
        assert!(get("nope", None).is_err());
    }
}
