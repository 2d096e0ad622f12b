//! Each MCP tool's name, description and input schema (JSON Schema 2020-12). Written by hand
//! rather than derived: the tools take shorthands (`text`, `data`) the REST bodies do not, and
//! the descriptions are written for a model choosing a tool.

use serde_json::{Value, json};

/// A tool: its name, what it does, and its input schema.
pub type ToolSpec = (&'static str, &'static str, fn() -> Value);

pub const TOOLS: &[ToolSpec] = &[
    (
        "send_message",
        "Send a message to an agent, a person, a group, a topic, a capability or a conversation. The hub stores it \
         durably and delivers it; the answer is the message id (read its delivery state with get_message).",
        send_message,
    ),
    (
        "request",
        "Send a message and wait for the first reply to it (request/reply). Answers the message and the reply, or an \
         error when no reply came within timeout_ms (the message stays delivered; a late reply reaches your inbox).",
        request,
    ),
    (
        "read_inbox",
        "Lease the messages waiting in your inbox, oldest first. Acknowledge each with `ack` once handled, or it is \
         delivered again when its lease expires. Can wait up to wait_ms for a message to arrive.",
        read_inbox,
    ),
    ("ack", "Acknowledge messages from your inbox so that they are not delivered again.", ack),
    (
        "list_agents",
        "List the agents registered in your tenant with their capabilities and status (active, inactive, error), a \
         page at a time.",
        list_agents,
    ),
    (
        "find_agents",
        "Find agents by capability (exact name) or by text (words in their name, description or capabilities).",
        find_agents,
    ),
    (
        "request_approval",
        "Ask people for an approval: a question with options, decided by users or groups before a deadline under a \
         policy (any, all, quorum:N, sequential). With timeout_ms, waits for the outcome.",
        request_approval,
    ),
    ("get_message", "Show a message you sent or received, with the state of each of its deliveries.", get_message),
    (
        "list_conversations",
        "List the conversations you take part in, with their participants and your unread count.",
        list_conversations,
    ),
    (
        "read_conversation",
        "Read a conversation's history in its order (seq 1, 2, 3, …), a page at a time, or one thread of it.",
        read_conversation,
    ),
];

fn address() -> Value {
    json!({
        "type": "string",
        "description": "Who receives it: `agent:<id>`, `user:<id>`, `group:<name>`, `topic:<name>`, \
                        `capability:<name>` (one capable agent; `capability:<name>?all` for every one), \
                        `conversation:<id>` (every participant), or `auto` (the hub picks)",
        "minLength": 1
    })
}

fn message_properties() -> serde_json::Map<String, Value> {
    let p = json!({
        "to": address(),
        "text": {"type": "string", "description": "The message's text (a text part)."},
        "data": {"description": "Structured content (a data part), e.g. the input a capability's schema asks for."},
        "parts": {
            "type": "array",
            "description": "Parts in Switchboard's form, before `text` and `data`: {\"kind\":\"text\",\"text\":…}, \
                            {\"kind\":\"data\",\"data\":…} or {\"kind\":\"file\",\"file\":{…}}.",
            "items": {"type": "object"}
        },
        "conversation_id": {"type": "string", "description": "The conversation this message belongs to."},
        "in_reply_to": {"type": "string", "description": "The id of the message this answers."},
        "correlation_id": {"type": "string"},
        "idempotency_key": {"type": "string", "description": "A retry with the same key is not sent twice."},
        "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 2592000},
        "metadata": {"type": "object"},
        "priority": {"type": "string", "enum": ["low", "normal", "high"]},
        "require_active": {"type": "boolean", "description": "Refuse rather than queue when the recipient is not active."}
    });
    match p {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    }
}

fn send_message() -> Value {
    json!({"type": "object", "properties": message_properties(), "required": ["to"], "additionalProperties": false})
}

fn request() -> Value {
    let mut p = message_properties();
    p.insert(
        "timeout_ms".into(),
        json!({"type": "integer", "minimum": 0, "maximum": 300000, "description": "How long to wait for the reply (default 30000)."}),
    );
    json!({"type": "object", "properties": p, "required": ["to"], "additionalProperties": false})
}

fn read_inbox() -> Value {
    json!({
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Most messages (default 10)."},
            "wait_ms": {"type": "integer", "minimum": 0, "maximum": 60000, "description": "Wait this long for a message when none is waiting (default 0)."},
            "visibility_ms": {"type": "integer", "minimum": 100, "maximum": 43200000, "description": "Lease length before an unacknowledged message comes back."}
        },
        "additionalProperties": false
    })
}

fn ack() -> Value {
    json!({
        "type": "object",
        "properties": {
            "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 10000, "description": "Ids of messages read from your inbox."}
        },
        "required": ["ids"],
        "additionalProperties": false
    })
}

fn page() -> (Value, Value) {
    (
        json!({"type": "integer", "minimum": 1, "maximum": 1000, "description": "Page size (default 100)."}),
        json!({"type": "string", "description": "`next_cursor` of the previous page."}),
    )
}

fn list_agents() -> Value {
    let (limit, cursor) = page();
    json!({
        "type": "object",
        "properties": {
            "capability": {"type": "string", "description": "Only agents offering this capability."},
            "status": {"type": "string", "enum": ["active", "inactive", "error"]},
            "limit": limit, "cursor": cursor
        },
        "additionalProperties": false
    })
}

fn find_agents() -> Value {
    json!({
        "type": "object",
        "properties": {
            "capability": {"type": "string", "description": "An exact capability name."},
            "text": {"type": "string", "description": "Words to look for in ids, names, descriptions and capabilities (any case)."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Most agents (default 20)."}
        },
        "additionalProperties": false
    })
}

fn request_approval() -> Value {
    json!({
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": 4000},
            "options": {
                "type": "array", "minItems": 1, "maxItems": 20,
                "items": {"type": "object", "properties": {"id": {"type": "string"}, "label": {"type": "string"}}, "required": ["id", "label"]},
                "description": "The answers the deciders choose from, e.g. [{\"id\":\"yes\",\"label\":\"Approve\"},{\"id\":\"no\",\"label\":\"Reject\"}]."
            },
            "deciders": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100, "description": "`user:<id>` or `group:<name>` addresses."},
            "default_outcome": {"type": "string", "description": "The option id that holds when the deadline passes."},
            "deadline": {"type": "string", "format": "date-time", "description": "When it expires (RFC 3339); or give expires_in_seconds."},
            "expires_in_seconds": {"type": "integer", "minimum": 1, "description": "When it expires, from now."},
            "policy": {"type": "string", "description": "`any` (default), `all`, `quorum:N` or `sequential`."},
            "allow_comment": {"type": "boolean"},
            "form_schema": {"type": "object", "description": "A JSON Schema for a form the deciders fill in."},
            "parts": {"type": "array", "items": {"type": "object"}, "description": "Context shown with the question."},
            "escalation": {"type": "array", "items": {"type": "object"}, "description": "[{\"after_seconds\":N,\"add\":[addresses]}]"},
            "timeout_ms": {"type": "integer", "minimum": 0, "maximum": 300000, "description": "Wait this long for the outcome (default: do not wait)."}
        },
        "required": ["question", "options", "deciders", "default_outcome"],
        "additionalProperties": false
    })
}

fn get_message() -> Value {
    json!({
        "type": "object",
        "properties": {"id": {"type": "string", "description": "The message's id."}},
        "required": ["id"],
        "additionalProperties": false
    })
}

fn list_conversations() -> Value {
    let (limit, cursor) = page();
    json!({"type": "object", "properties": {"limit": limit, "cursor": cursor}, "additionalProperties": false})
}

fn read_conversation() -> Value {
    let (limit, cursor) = page();
    json!({
        "type": "object",
        "properties": {
            "conversation_id": {"type": "string", "description": "The conversation's id."},
            "limit": limit,
            "cursor": cursor,
            "thread": {"type": "string", "description": "A message id: only it and the replies to it."}
        },
        "required": ["conversation_id"],
        "additionalProperties": false
    })
}
