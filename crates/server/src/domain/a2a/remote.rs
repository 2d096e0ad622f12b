//! The gateway's side of A2A: an external agent the hub forwards to. Reads its Agent Card
//! (either generation) into a registry card and the interface to call, writes the client
//! binding's requests (`SendMessage`, 0.3's `message/send`, `GetTask`), and reads the answers
//! into a reply. Pure: the HTTP is the push engine's (`domain::push::a2a`), so forwarding
//! shares its retries, circuit breaker and SSRF guard.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use switchboard_core::api::{A2aCredentials as Credentials, A2aInterface, Capability, Part};

use super::parts::{from_a2a, to_a2a};
use super::{Dialect, TaskState};

/// How the hub talks to an imported agent: its interface and the credentials to send, stored
/// with the agent's push settings (JSON) and read on every forward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    /// Where the card was fetched from.
    pub card_url: String,
    /// The interface's URL (also the agent's `endpoint`).
    pub url: String,
    pub binding: Binding,
    /// The protocol version the interface speaks: `1.0` or `0.3`.
    pub protocol_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Credentials>,
}

/// The A2A protocol bindings the gateway speaks (gRPC is not one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Binding {
    #[serde(rename = "JSONRPC")]
    JsonRpc,
    #[serde(rename = "HTTP+JSON")]
    HttpJson,
}

impl Remote {
    /// Which generation of the protocol the interface speaks.
    pub fn dialect(&self) -> Dialect {
        if self.protocol_version.starts_with("0.") { Dialect::V03 } else { Dialect::V10 }
    }

    /// What the API shows of it (never the credentials' value).
    pub fn view(&self) -> A2aInterface {
        A2aInterface {
            card_url: self.card_url.clone(),
            url: self.url.clone(),
            binding: match self.binding {
                Binding::JsonRpc => "JSONRPC".into(),
                Binding::HttpJson => "HTTP+JSON".into(),
            },
            protocol_version: self.protocol_version.clone(),
            auth: self.auth.as_ref().map(|a| match a {
                Credentials::Bearer { .. } => "bearer".into(),
                Credentials::ApiKey { .. } => "api_key".into(),
            }),
        }
    }

    /// The header carrying the credentials, if any.
    pub fn auth_header(&self) -> Option<(String, String)> {
        match self.auth.as_ref()? {
            Credentials::Bearer { token } => Some(("authorization".into(), format!("Bearer {token}"))),
            Credentials::ApiKey { value, header } => {
                Some((header.clone().unwrap_or_else(|| "X-API-Key".into()), value.clone()))
            }
        }
    }
}

/// What an Agent Card says, as the registry keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedCard {
    /// The card's name made into an agent name (letters, digits, `-_.`).
    pub name: String,
    pub description: Option<String>,
    pub version: Option<String>,
    /// One per skill (the skill's id made into a capability name), duplicates dropped.
    pub capabilities: Vec<Capability>,
    pub url: String,
    pub binding: Binding,
    pub protocol_version: String,
    /// The header the card's API-key security scheme names, if it has one.
    pub api_key_header: Option<String>,
}

/// A registry name from free text: characters outside `[A-Za-z0-9._-]` become `-`, at most
/// 200 of them; `None` if nothing is left.
pub fn name_from(text: &str) -> Option<String> {
    let name: String = text
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .take(200)
        .collect();
    let name = name.trim_matches('-').to_owned();
    (!name.is_empty()).then_some(name)
}

fn text(o: &Value, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty())
}

fn strings(o: &Value, key: &str) -> Vec<String> {
    o.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The interfaces a card declares: 1.0's `supportedInterfaces`, else 0.3's `url` with
/// `preferredTransport` and `additionalInterfaces`. (url, binding, version.)
fn interfaces(card: &Value) -> Vec<(String, String, String)> {
    let top_version = text(card, "protocolVersion").unwrap_or_else(|| "0.3.0".into());
    if let Some(list) = card.get("supportedInterfaces").and_then(Value::as_array) {
        return list
            .iter()
            .filter_map(|i| {
                let url = text(i, "url")?;
                let binding = text(i, "protocolBinding").or_else(|| text(i, "transport"))?;
                Some((url, binding, text(i, "protocolVersion").unwrap_or_else(|| "1.0".into())))
            })
            .collect();
    }
    let mut out = Vec::new();
    if let Some(url) = text(card, "url") {
        let t = text(card, "preferredTransport").unwrap_or_else(|| "JSONRPC".into());
        out.push((url, t, top_version.clone()));
    }
    for i in card.get("additionalInterfaces").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(url), Some(t)) = (text(i, "url"), text(i, "transport")) {
            out.push((url, t, top_version.clone()));
        }
    }
    out
}

/// Reads an Agent Card. The error says what is wrong with it (for the `card_url` field).
pub fn read_card(card: &Value) -> Result<ImportedCard, String> {
    if !card.is_object() {
        return Err("is not an Agent Card: the document is not a JSON object".into());
    }
    let name = text(card, "name").ok_or("is not an Agent Card: it has no `name`")?;
    let name = name_from(&name).ok_or("names an agent whose name has no letters or digits; give `name`")?;
    let found = interfaces(card);
    if found.is_empty() {
        return Err("is not an Agent Card: it declares no interface (`supportedInterfaces`, or 0.3's `url`)".into());
    }
    let pick = |binding: &str| {
        let mut of: Vec<&(String, String, String)> =
            found.iter().filter(|(_, b, _)| b.eq_ignore_ascii_case(binding)).collect();
        // 1.0 before 0.3 when the card offers both.
        of.sort_by_key(|(_, _, v)| v.starts_with("0."));
        of.first().map(|(u, _, v)| (u.clone(), v.clone()))
    };
    let (binding, (url, protocol_version)) = match (pick("JSONRPC"), pick("HTTP+JSON")) {
        (Some(j), _) => (Binding::JsonRpc, j),
        (None, Some(h)) => (Binding::HttpJson, h),
        (None, None) => {
            let offered: Vec<&str> = found.iter().map(|(_, b, _)| b.as_str()).collect();
            return Err(format!(
                "offers only {} interfaces; the gateway speaks JSONRPC and HTTP+JSON",
                offered.join(", ")
            ));
        }
    };
    if !protocol_version.starts_with("0.3") && !protocol_version.starts_with("1.") {
        return Err(format!("speaks A2A {protocol_version}; the gateway speaks 1.0 and 0.3"));
    }
    let mut capabilities: Vec<Capability> = Vec::new();
    for s in card.get("skills").and_then(Value::as_array).into_iter().flatten() {
        let Some(id) = text(s, "id").or_else(|| text(s, "name")).and_then(|i| name_from(&i)) else { continue };
        if capabilities.iter().any(|c| c.name == id) {
            continue;
        }
        let mut c = Capability::named(id);
        c.description = text(s, "description");
        c.tags = strings(s, "tags");
        c.examples = strings(s, "examples");
        capabilities.push(c);
    }
    Ok(ImportedCard {
        name,
        description: text(card, "description"),
        version: text(card, "version"),
        capabilities,
        url,
        binding,
        protocol_version,
        api_key_header: api_key_header(card),
    })
}

/// The header named by the card's API-key security scheme (1.0 `apiKeySecurityScheme`, 0.3
/// `type: apiKey`) when it is sent in a header.
fn api_key_header(card: &Value) -> Option<String> {
    let schemes = card.get("securitySchemes")?.as_object()?;
    schemes.values().find_map(|s| {
        let k = s.get("apiKeySecurityScheme").unwrap_or(s);
        let is_key = s.get("apiKeySecurityScheme").is_some() || text(s, "type").as_deref() == Some("apiKey");
        let in_header = text(k, "location").or_else(|| text(k, "in")).is_none_or(|l| l.eq_ignore_ascii_case("header"));
        (is_key && in_header).then(|| text(k, "name")).flatten()
    })
}

/// One call to an imported agent: where it goes and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub url: String,
    pub body: Value,
}

fn rest_base(remote: &Remote) -> String {
    let base = remote.url.trim_end_matches('/');
    match remote.dialect() {
        Dialect::V03 => format!("{base}/v1"),
        Dialect::V10 => base.to_owned(),
    }
}

/// The call that hands an agent a message: `SendMessage` (or 0.3's `message/send`), blocking,
/// so that most agents answer with their result. `id` becomes the A2A `messageId` (and the
/// JSON-RPC id), so a repeated attempt is recognisably the same message.
pub fn send_call(remote: &Remote, id: &str, parts: &[Part], metadata: Value) -> Call {
    let d = remote.dialect();
    let parts: Vec<Value> = parts.iter().map(|p| to_a2a(p, d)).collect();
    let (message, configuration) = match d {
        Dialect::V10 => (
            json!({ "messageId": id, "role": "ROLE_USER", "parts": parts, "metadata": metadata }),
            json!({ "returnImmediately": false }),
        ),
        Dialect::V03 => (
            json!({ "kind": "message", "messageId": id, "role": "user", "parts": parts, "metadata": metadata }),
            json!({ "blocking": true }),
        ),
    };
    let params = json!({ "message": message, "configuration": configuration });
    match remote.binding {
        Binding::JsonRpc => {
            let method = if d == Dialect::V10 { "SendMessage" } else { "message/send" };
            Call {
                url: remote.url.clone(),
                body: json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }),
            }
        }
        Binding::HttpJson => Call { url: format!("{}/message:send", rest_base(remote)), body: params },
    }
}

/// The call that reads a task again (`GetTask`, 0.3's `tasks/get`). Over HTTP+JSON it is a
/// `GET` (the body is unused).
pub fn get_task_call(remote: &Remote, task_id: &str) -> Call {
    match remote.binding {
        Binding::JsonRpc => {
            let method = if remote.dialect() == Dialect::V10 { "GetTask" } else { "tasks/get" };
            Call {
                url: remote.url.clone(),
                body: json!({ "jsonrpc": "2.0", "id": task_id, "method": method, "params": { "id": task_id } }),
            }
        }
        Binding::HttpJson => Call { url: format!("{}/tasks/{task_id}", rest_base(remote)), body: Value::Null },
    }
}

/// What an agent answered, read into what the hub stores as its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub state: TaskState,
    /// The remote task's id, when the answer is a task.
    pub task_id: Option<String>,
    pub context_id: Option<String>,
    /// The reply's parts: a message's parts, or a task's artifacts (its status message when
    /// it has none); never empty.
    pub parts: Vec<Part>,
}

impl Answer {
    /// The reply's metadata: the A2A task state under `a2a.state` (the convention of
    /// `super`), with the remote task and context ids.
    pub fn metadata(&self) -> Value {
        let mut a2a = Map::new();
        a2a.insert("state".into(), json!(self.state.wire(Dialect::V10)));
        if let Some(t) = &self.task_id {
            a2a.insert("task_id".into(), json!(t));
        }
        if let Some(c) = &self.context_id {
            a2a.insert("context_id".into(), json!(c));
        }
        json!({ "a2a": a2a })
    }
}

fn read_parts(v: Option<&Value>, into: &mut Vec<Part>) -> Result<(), String> {
    for (i, p) in v.and_then(Value::as_array).into_iter().flatten().enumerate() {
        into.push(from_a2a(p).map_err(|e| format!("part {i} of the answer {e}"))?);
    }
    Ok(())
}

/// Reads an answer body: a JSON-RPC response (for that binding) or the bare result (HTTP+JSON).
/// The result is a Message or a Task, as 1.0 writes it (`{"task": …}`/`{"message": …}`) or
/// 0.3 (`kind`). The error says what was wrong, for the attempt log.
pub fn read_answer(binding: Binding, body: &[u8]) -> Result<Answer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let result = match binding {
        Binding::JsonRpc => {
            if let Some(err) = v.get("error") {
                let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
                let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
                return Err(format!("the agent answered JSON-RPC error {code}: {msg}"));
            }
            v.get("result").ok_or("the answer is neither a JSON-RPC result nor an error")?
        }
        Binding::HttpJson => &v,
    };
    let (kind, obj) = if let Some(t) = result.get("task") {
        ("task", t)
    } else if let Some(m) = result.get("message") {
        ("message", m)
    } else if let Some(k) = result.get("kind").and_then(Value::as_str) {
        (k, result)
    } else if result.get("status").is_some() {
        ("task", result)
    } else {
        ("message", result)
    };
    let mut parts = Vec::new();
    let answer = match kind {
        "message" => {
            read_parts(obj.get("parts"), &mut parts)?;
            Answer {
                state: TaskState::Completed,
                task_id: text(obj, "taskId"),
                context_id: text(obj, "contextId"),
                parts,
            }
        }
        "task" => {
            let state = obj
                .pointer("/status/state")
                .and_then(Value::as_str)
                .and_then(TaskState::parse)
                .ok_or("the task in the answer has no known `status.state`")?;
            for a in obj.get("artifacts").and_then(Value::as_array).into_iter().flatten() {
                read_parts(a.get("parts"), &mut parts)?;
            }
            if parts.is_empty() {
                read_parts(obj.pointer("/status/message/parts"), &mut parts)?;
            }
            Answer { state, task_id: text(obj, "id"), context_id: text(obj, "contextId"), parts }
        }
        other => return Err(format!("the answer is a `{other}`, not a Message or a Task")),
    };
    Ok(Answer {
        parts: if answer.parts.is_empty() {
            vec![Part::Data { data: json!({ "a2a": { "state": answer.state.wire(Dialect::V10) } }) }]
        } else {
            answer.parts.clone()
        },
        ..answer
    })
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
