//! `SendMessage` and `GetTask`: a task is a durable message to the agent, its state derived
//! from the message's delivery and the agent's replies (see the table in `super`).

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_core::api::{CreateConversation, DeliveryState, Part, SendMessage};
use switchboard_core::time::rfc3339;
use switchboard_core::{AgentId, Principal, Recipient};
use switchboard_store::conversations::HistoryQuery;
use switchboard_store::{AcceptOutcome, AgentRecord, DeliveryRecord, MessageRecord, Store};
use tokio::sync::watch;
use tokio::time::Instant;

use super::parts::{from_a2a, to_a2a};
use super::{A2aError, Dialect, TaskState};
use crate::domain::accept::Acceptor;
use crate::domain::conversations::{Conversations, may_enter};
use crate::error::ApiError;

/// The longest `messageId` taken (it becomes part of an idempotency key).
const MAX_MESSAGE_ID: usize = 200;
/// How many messages of a task's thread are read to find its latest reply.
const THREAD_LIMIT: usize = 500;

/// How long a blocking `SendMessage` waits for the task to stop or pause before it answers
/// the task as it is (usually `TASK_STATE_WORKING`).
pub const BLOCKING_WAIT: Duration = Duration::from_secs(30);
/// How often a blocking send looks again when nothing woke it (a reply sent elsewhere).
const RECHECK: Duration = Duration::from_millis(500);

/// What the operations need of the node.
pub struct Deps<'a> {
    pub store: &'a dyn Store,
    pub acceptor: &'a Acceptor,
    pub conversations: &'a Conversations,
    /// The node's shutdown signal: a blocking send answers at once when it is raised.
    pub shutdown: watch::Receiver<bool>,
}

fn invalid(s: impl Into<String>) -> A2aError {
    A2aError::InvalidParams(s.into())
}

/// The parts of a stored message (none when they cannot be read, e.g. sealed).
fn stored_parts(m: &MessageRecord) -> Vec<Part> {
    serde_json::from_str(&m.parts).unwrap_or_default()
}

fn metadata(m: &MessageRecord) -> Option<Value> {
    m.metadata.as_deref().and_then(|md| serde_json::from_str(md).ok())
}

/// `SendMessage`: the client's message becomes a message from `by` to the agent, through
/// the normal accept path (policies, limits, audit), in the conversation that is its context.
/// Blocking by default (A2A 1.0 section 3.2.2): the answer waits, up to [`BLOCKING_WAIT`],
/// until the task is completed, failed, canceled, rejected, or needs input or auth. With
/// `configuration.returnImmediately: true` (or 0.3's `blocking: false`) it answers at once,
/// `TASK_STATE_SUBMITTED`. Each call is a new message: a repeated `messageId` is not taken
/// for a retry (clients, the TCK among them, reuse them for different messages).
pub async fn send(
    d: &Deps<'_>,
    by: &Principal,
    agent: &AgentRecord,
    params: &Value,
    dialect: Dialect,
) -> Result<Value, A2aError> {
    if by.recipient().is_none() {
        return Err(A2aError::Api(ApiError::Forbidden(
            "only agents and people can send A2A messages (the agent's answer is delivered to the sender); use an \
             agent's API key or a personal access token"
                .into(),
        )));
    }
    let msg = params.get("message").and_then(Value::as_object).ok_or_else(|| invalid("`message` is required"))?;
    let message_id = msg
        .get("messageId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_MESSAGE_ID)
        .ok_or_else(|| {
            invalid(format!("`message.messageId` is required: a string of 1 to {MAX_MESSAGE_ID} characters"))
        })?;
    if let Some(task_id) = msg.get("taskId").filter(|t| !t.is_null()) {
        let task_id = task_id.as_str().ok_or_else(|| invalid("`message.taskId` must be a string"))?;
        // An unknown task is not found; a known one cannot be continued yet.
        task(d.store, by, &agent.id, task_id, Some(0), dialect).await?;
        return Err(A2aError::Unsupported(
            "continuing a task (`message.taskId`) is not supported yet; send a new message in the same `contextId`"
                .into(),
        ));
    }
    let raw_parts = msg
        .get("parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("`message.parts` must be a non-empty list"))?;
    let parts = raw_parts
        .iter()
        .enumerate()
        .map(|(i, p)| from_a2a(p).map_err(|e| invalid(format!("`message.parts[{i}]` {e}"))))
        .collect::<Result<Vec<Part>, A2aError>>()?;
    let tenant = by.tenant.as_str();
    let context = match msg.get("contextId").and_then(Value::as_str) {
        Some(ctx) => {
            let found = d.store.get_conversation(tenant, ctx).await?.filter(|c| may_enter(by, c));
            found.map(|c| c.id).ok_or_else(|| {
                invalid(format!(
                    "`message.contextId` {ctx} is not a context you take part in; leave it out to start a new one"
                ))
            })?
        }
        None => {
            let title: String = format!("A2A: {}", agent.name).chars().take(200).collect();
            let agent_addr = Recipient::agent_text(&AgentId::from(agent.id.as_str()));
            let req = CreateConversation { title: Some(title), participants: vec![agent_addr] };
            d.conversations.create(by, req).await?.id
        }
    };
    let mut a2a = Map::new();
    a2a.insert("messageId".into(), json!(message_id));
    if let Some(md) = msg.get("metadata").filter(|m| m.is_object()) {
        a2a.insert("metadata".into(), md.clone());
    }
    let m = SendMessage {
        to: Recipient::agent_text(&AgentId::from(agent.id.as_str())),
        parts,
        conversation_id: Some(context),
        metadata: Some(json!({ "a2a": a2a })),
        ..Default::default()
    };
    let prepared = d.acceptor.prepare_sized(by, m, 0).await?;
    let outcome = d.acceptor.commit(by, vec![prepared]).await?.pop();
    let id = match outcome {
        Some(AcceptOutcome::Accepted { id, .. } | AcceptOutcome::Duplicate { id, .. }) => id,
        Some(AcceptOutcome::KeyReused { .. }) => {
            return Err(invalid(format!(
                "`message.messageId` {message_id} was already used for a different message; use a new messageId"
            )));
        }
        None => return Err(A2aError::Api(ApiError::Internal("the store answered no outcome".into()))),
    };
    let config = params.get("configuration");
    let immediately = match dialect {
        Dialect::V10 => config.and_then(|c| c.get("returnImmediately")).and_then(Value::as_bool).unwrap_or(false),
        Dialect::V03 => !config.and_then(|c| c.get("blocking")).and_then(Value::as_bool).unwrap_or(true),
    };
    let history = config.and_then(|c| c.get("historyLength")).and_then(Value::as_u64);
    if immediately {
        return task(d.store, by, &agent.id, &id, history, dialect).await;
    }
    settled(d, by, &agent.id, &id, history, dialect).await
}

/// The task once it stops or pauses, or as it is when [`BLOCKING_WAIT`] has passed. Woken
/// by the caller's inbox (a reply to the caller or to the conversation lands there), and
/// looks again every [`RECHECK`] for a reply that woke nobody.
async fn settled(
    d: &Deps<'_>,
    by: &Principal,
    agent_id: &str,
    id: &str,
    history: Option<u64>,
    dialect: Dialect,
) -> Result<Value, A2aError> {
    let inbox = crate::domain::delivery::inbox_of(by)?;
    let mut woken = d.store.wakeups().subscribe((by.tenant.as_str().to_owned(), inbox));
    let mut shutdown = d.shutdown.clone();
    let deadline = Instant::now() + BLOCKING_WAIT;
    loop {
        woken.borrow_and_update();
        let view = task(d.store, by, agent_id, id, history, dialect).await?;
        let state = view.pointer("/status/state").and_then(Value::as_str).and_then(TaskState::parse);
        let left = deadline.saturating_duration_since(Instant::now());
        if state.is_some_and(TaskState::settled) || left.is_zero() {
            return Ok(view);
        }
        let pause = left.min(RECHECK);
        tokio::select! {
            changed = woken.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(pause).await;
                }
            }
            _ = tokio::time::sleep(pause) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return Ok(view),
        }
    }
}

/// `CancelTask`: the hub cannot stop an agent's work yet, so a task of the caller's is
/// `TaskNotCancelableError` and any other `TaskNotFoundError`.
pub async fn cancel(
    store: &dyn Store,
    by: &Principal,
    agent_id: &str,
    params: &Value,
    dialect: Dialect,
) -> Result<Value, A2aError> {
    let id = params.get("id").and_then(Value::as_str).ok_or_else(|| invalid("`id` (the task's id) is required"))?;
    task(store, by, agent_id, id, Some(0), dialect).await?;
    Err(A2aError::NotCancelable(format!("task {id} cannot be canceled: this hub does not cancel tasks yet")))
}

/// `GetTask`: the task as it now is. `TaskNotFoundError` for an id that is unknown, another
/// tenant's, not a message to this agent, or not sent by the caller (the tenant's
/// administrators see every task).
pub async fn get(
    store: &dyn Store,
    by: &Principal,
    agent_id: &str,
    params: &Value,
    dialect: Dialect,
) -> Result<Value, A2aError> {
    let id = params.get("id").and_then(Value::as_str).ok_or_else(|| invalid("`id` (the task's id) is required"))?;
    let history = match params.get("historyLength") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| invalid("`historyLength` must be a whole number, 0 or more"))?),
    };
    task(store, by, agent_id, id, history, dialect).await
}

async fn task(
    store: &dyn Store,
    by: &Principal,
    agent_id: &str,
    id: &str,
    history: Option<u64>,
    dialect: Dialect,
) -> Result<Value, A2aError> {
    let tenant = by.tenant.as_str();
    let agent_addr = Recipient::agent_text(&AgentId::from(agent_id));
    let not_found = || A2aError::TaskNotFound(format!("task {id} is not one of yours at this agent"));
    let Some((original, deliveries)) = store.get_message(tenant, id).await? else { return Err(not_found()) };
    if original.to != agent_addr || !(original.sender == by.sender() || by.is_admin()) {
        return Err(not_found());
    }
    let reply = latest_reply(store, &original).await?;
    let delivery = deliveries.iter().find(|d| d.recipient == agent_addr);
    Ok(task_view(&original, delivery, reply.as_ref(), history, dialect))
}

/// The agent's latest reply to the task: the last of its thread in the conversation, or the
/// first reply stored anywhere (one sent outside the conversation).
async fn latest_reply(store: &dyn Store, original: &MessageRecord) -> Result<Option<MessageRecord>, A2aError> {
    let tenant = original.tenant.as_str();
    if let Some(c) = &original.conversation_id {
        let q = HistoryQuery { after_seq: 0, limit: THREAD_LIMIT, thread: Some(original.id.clone()) };
        let thread = store.conversation_history(tenant, c, q).await?;
        let last = thread
            .into_iter()
            .map(|(_, m)| m)
            .rfind(|m| m.in_reply_to.as_deref() == Some(original.id.as_str()) && m.sender != original.sender);
        if last.is_some() {
            return Ok(last);
        }
    }
    Ok(store.first_reply(tenant, &original.id, &original.sender).await?)
}

/// The state the stored facts give (the table in `super`).
pub fn derive(delivery: Option<&DeliveryRecord>, reply: Option<&MessageRecord>) -> TaskState {
    if let Some(r) = reply {
        let said = metadata(r)
            .as_ref()
            .and_then(|md| md.get("a2a"))
            .and_then(|a| a.get("state"))
            .and_then(Value::as_str)
            .and_then(TaskState::parse);
        return said.unwrap_or(TaskState::Completed);
    }
    match delivery.map(|d| d.state) {
        Some(DeliveryState::Dead | DeliveryState::Expired) => TaskState::Failed,
        Some(DeliveryState::Leased | DeliveryState::Delivered | DeliveryState::Acked) => TaskState::Working,
        _ => TaskState::Submitted,
    }
}

fn role(agent: bool, dialect: Dialect) -> &'static str {
    match (agent, dialect) {
        (false, Dialect::V10) => "ROLE_USER",
        (true, Dialect::V10) => "ROLE_AGENT",
        (false, Dialect::V03) => "user",
        (true, Dialect::V03) => "agent",
    }
}

fn message_view(m: &MessageRecord, message_id: &str, task_id: &str, agent: bool, dialect: Dialect) -> Value {
    let parts: Vec<Value> = stored_parts(m).iter().map(|p| to_a2a(p, dialect)).collect();
    let mut v = json!({
        "messageId": message_id,
        "role": role(agent, dialect),
        "parts": parts,
        "taskId": task_id,
    });
    if let Some(c) = &m.conversation_id {
        v["contextId"] = json!(c);
    }
    if dialect == Dialect::V03 {
        v["kind"] = json!("message");
    }
    v
}

/// The task in `dialect`'s shape.
pub fn task_view(
    original: &MessageRecord,
    delivery: Option<&DeliveryRecord>,
    reply: Option<&MessageRecord>,
    history: Option<u64>,
    dialect: Dialect,
) -> Value {
    let state = derive(delivery, reply);
    let client_id = metadata(original)
        .as_ref()
        .and_then(|md| md.pointer("/a2a/messageId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| original.id.clone());
    let asked = message_view(original, &client_id, &original.id, false, dialect);
    let answer = reply.map(|r| message_view(r, &r.id, &original.id, true, dialect));
    let at = reply.map(|r| r.created_at).or(delivery.map(|d| d.updated_at)).unwrap_or(original.created_at);
    let mut status = json!({ "state": state.wire(dialect), "timestamp": rfc3339(at) });
    if let Some(a) = &answer {
        status["message"] = a.clone();
    }
    let context = original.conversation_id.clone().unwrap_or_else(|| original.id.clone());
    let mut task = json!({ "id": original.id, "contextId": context, "status": status });
    if let (Some(r), TaskState::Completed, Some(a)) = (reply, state, &answer) {
        task["artifacts"] = json!([{ "artifactId": r.id, "name": "reply", "parts": a["parts"] }]);
    }
    let mut all: Vec<Value> = std::iter::once(asked).chain(answer).collect();
    if let Some(n) = history {
        let skip = all.len().saturating_sub(n as usize);
        all.drain(..skip);
    }
    if !all.is_empty() {
        task["history"] = Value::Array(all);
    }
    if dialect == Dialect::V03 {
        task["kind"] = json!("task");
    }
    task
}
