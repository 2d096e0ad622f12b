//! `POST /v1/agents:import`: an external A2A agent registered from its Agent Card. The card
//! is fetched with the push engine's guarded client (no redirects, private addresses refused
//! at connect time unless the node or tenant allows them), read by [`remote::read_card`], and
//! the agent registered with its interface as the endpoint, so the push dispatcher forwards
//! its messages (see `domain::push::a2a`).

use std::time::Duration;

use switchboard_core::Principal;
use switchboard_core::api::{A2aCredentials, FieldError, ImportAgent, RegisterAgent};

use super::remote::{self, Remote};
use crate::domain::agents::{Agents, Registered};
use crate::domain::push::{check_endpoint, endpoint};
use crate::error::ApiError;

/// Largest card read.
const MAX_CARD: usize = 256 * 1024;
/// How long the card's host has to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

fn bad_card_url(message: String) -> ApiError {
    ApiError::fields(vec![FieldError { path: "card_url".into(), message }])
}

/// Fetches the card at `url` under the SSRF guard; the error is for the `card_url` field.
async fn fetch(url: &str, allow_private: bool) -> Result<serde_json::Value, String> {
    // Scheme, and every address the URL names or resolves to (literal ones included); the
    // client's resolver checks again at connect time.
    check_endpoint(url, allow_private).await?;
    let http =
        endpoint::guarded_client(FETCH_TIMEOUT, allow_private, concat!("Switchboard/", env!("CARGO_PKG_VERSION")));
    let res = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("could not be fetched: {}", describe(&e)))?;
    let status = res.status();
    if !status.is_success() {
        return Err(format!(
            "answered {status}; give the URL of the agent's card, usually https://<host>/.well-known/agent-card.json"
        ));
    }
    let mut res = res;
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("could not be read: {}", describe(&e)))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_CARD {
            return Err(format!("is larger than {} KiB; an Agent Card is much smaller", MAX_CARD / 1024));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("is not an Agent Card: the answer is not JSON ({e})"))
}

/// The error's innermost cause: the refused address, the timeout, the refused connection.
fn describe(e: &reqwest::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if e.is_timeout() { format!("no answer within {} s", FETCH_TIMEOUT.as_secs()) } else { cur.to_string() }
}

/// Registers the agent whose card is at `req.card_url`. Its capabilities are the card's
/// skills; its endpoint the card's JSON-RPC interface (HTTP+JSON when it has none); the
/// interface and `req.auth` are stored for the push engine. Bad input is a 422 naming the
/// field (`card_url` for anything about the card).
pub async fn import(agents: &Agents, by: &Principal, req: ImportAgent) -> Result<(Registered, Remote), ApiError> {
    let allow_private = agents.allow_private(by.tenant.as_str()).await?;
    let card_url = req.card_url.trim().to_owned();
    let doc = fetch(&card_url, allow_private).await.map_err(|e| bad_card_url(format!("`{card_url}` {e}")))?;
    let card = remote::read_card(&doc).map_err(|e| bad_card_url(format!("the card at `{card_url}` {e}")))?;
    check_endpoint(&card.url, allow_private)
        .await
        .map_err(|e| bad_card_url(format!("the card at `{card_url}` names the interface `{}`, which {e}", card.url)))?;
    let auth = req.auth.map(|a| match a {
        A2aCredentials::ApiKey { value, header: None } => {
            A2aCredentials::ApiKey { value, header: card.api_key_header.clone() }
        }
        other => other,
    });
    let remote = Remote {
        card_url: card_url.clone(),
        url: card.url.clone(),
        binding: card.binding,
        protocol_version: card.protocol_version.clone(),
        auth,
    };
    let view = remote.view();
    let register = RegisterAgent {
        name: req.name.unwrap_or(card.name),
        description: card.description,
        version: card.version,
        endpoint: Some(card.url),
        capabilities: card.capabilities,
        metadata: Some(serde_json::json!({ "a2a": view })),
        retry_schedule_ms: req.retry_schedule_ms,
    };
    let stored = serde_json::to_string(&remote).map_err(|e| ApiError::Internal(e.to_string()))?;
    let detail = serde_json::json!({ "name": register.name, "card_url": card_url, "url": view.url,
        "binding": view.binding, "protocol_version": view.protocol_version });
    let registered = agents.register_imported(by, register, stored, detail).await?;
    tracing::info!(agent = %registered.record.id, card = %card_url, "A2A agent imported");
    Ok((registered, remote))
}
