//! Agent Cards (A2A 1.0, section 4.4): the hub's and one per agent, built from the registry.
//!
//! Skills are the agent's capabilities (id and name the capability's name, its description,
//! tags and examples). Every card names the two ways to authenticate the hub accepts: a bearer
//! token in `Authorization` (an agent API key, a personal access token, or a JWT) and OAuth2
//! client credentials at the hub's `/oauth/token`, and (at the A2A door) the same keys in an
//! `X-API-Key` header.

use serde_json::{Value, json};
use switchboard_store::AgentRecord;

/// The media types parts carry (text, data, files).
const MODES: [&str; 3] = ["text/plain", "application/json", "application/octet-stream"];

fn security(base: &str) -> (Value, Value) {
    let schemes = json!({
        "apiKey": { "apiKeySecurityScheme": {
            "location": "header",
            "name": "X-API-Key",
            "description": "An agent API key (`sbk_…`) or a personal access token in `X-API-Key` (the A2A door only)",
        }},
        "bearer": { "httpAuthSecurityScheme": {
            "scheme": "Bearer",
            "description": "An agent API key (`sbk_…`), a personal access token, or a JWT issued by the hub or \
                            a trusted identity provider, as `Authorization: Bearer <token>`",
        }},
        "oauth2": { "oauth2SecurityScheme": {
            "description": "OAuth2 client credentials: an agent's id and API key exchanged for a JWT",
            "flows": { "clientCredentials": { "tokenUrl": format!("{base}/oauth/token"), "scopes": {} } },
        }},
    });
    let requirements = json!([
        { "schemes": { "bearer": { "list": [] } } },
        { "schemes": { "oauth2": { "list": [] } } },
        { "schemes": { "apiKey": { "list": [] } } },
    ]);
    (schemes, requirements)
}

fn capabilities() -> Value {
    json!({ "streaming": true, "pushNotifications": true, "extendedAgentCard": true })
}

fn interfaces(base: &str, id: &str) -> Value {
    json!([
        { "url": format!("{base}/a2a/{id}"), "protocolBinding": "JSONRPC", "protocolVersion": "1.0" },
        { "url": format!("{base}/a2a/{id}/rest"), "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0" },
    ])
}

/// The public card at `<base>/a2a/<id>/.well-known/agent-card.json` for a caller without
/// credentials: how to reach and authenticate to agent `id`, and nothing of the tenant's
/// (no name, description or skills; the id is not even looked up, so it says nothing of
/// whether the agent exists). The full card is the extended card: the same URL with
/// credentials, or `GetExtendedAgentCard`.
pub fn public_agent_card(base: &str, id: &str) -> Value {
    let (schemes, requirements) = security(base);
    json!({
        "name": "Switchboard agent",
        "description": "An agent on a Switchboard hub. Authenticate (see securitySchemes) and read the extended \
                        card (GetExtendedAgentCard) for its name, description and skills.",
        "version": "1.0.0",
        "supportedInterfaces": interfaces(base, id),
        "provider": { "organization": "Switchboard", "url": base },
        "capabilities": capabilities(),
        "securitySchemes": schemes,
        "securityRequirements": requirements,
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": [],
    })
}

/// The card of one agent, reachable through the hub at `<base>/a2a/<id>`.
pub fn agent_card(base: &str, agent: &AgentRecord) -> Value {
    let skills: Vec<Value> = agent
        .capabilities
        .iter()
        .map(|c| {
            json!({
                "id": c.name,
                "name": c.name,
                "description": c.description.clone().unwrap_or_else(|| format!("The capability `{}`", c.name)),
                "tags": c.tags,
                "examples": c.examples,
            })
        })
        .collect();
    let (schemes, requirements) = security(base);
    json!({
        "name": agent.name,
        "description": agent.description.clone().unwrap_or_else(|| format!("{}, an agent on a Switchboard hub", agent.name)),
        "version": agent.version.clone().unwrap_or_else(|| "1.0.0".into()),
        "supportedInterfaces": interfaces(base, &agent.id),
        "provider": { "organization": "Switchboard", "url": base },
        "capabilities": capabilities(),
        "securitySchemes": schemes,
        "securityRequirements": requirements,
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": skills,
    })
}

/// The hub's own card. It speaks for no agent: each agent's card is at
/// `<base>/a2a/<id>/.well-known/agent-card.json`, and the registry (`GET /v1/agents`) lists them.
pub fn hub_card(base: &str) -> Value {
    let (schemes, requirements) = security(base);
    json!({
        "name": "Switchboard",
        "description": "A Switchboard hub: a durable post office and registry for agents. Each agent is an A2A \
                        agent at <base>/a2a/<id>, its card at <base>/a2a/<id>/.well-known/agent-card.json; list \
                        the agents with GET <base>/v1/agents.",
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [],
        "provider": { "organization": "Switchboard", "url": base },
        "documentationUrl": format!("{base}/openapi.json"),
        "capabilities": capabilities(),
        "securitySchemes": schemes,
        "securityRequirements": requirements,
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": [],
    })
}
