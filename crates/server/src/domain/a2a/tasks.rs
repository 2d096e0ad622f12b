//! `SendMessage` (new tasks and continuations), `GetTask` and `CancelTask`: a task is a
//! durable message to the agent, its state derived from the message's delivery and the later
//! messages of its thread (see [`super::view`]).

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_core::api::{CreateConversation, Part, SendMessage};
use switchboard_core::time::now_ms;
use switchboard_core::{AgentId, Principal, Recipient};
use switchboard_store::a2a::{A2aTaskFilter, A2aTaskRecord};
use switchboard_store::{AcceptOutcome, AgentRecord, Store};
use tokio::sync::watch;
use tokio::time::Instant;

use super::parts::from_a2a;
use super::view::Facts;
use super::{A2aError, Dialect, TaskState};
use crate::domain::accept::Acceptor;
use crate::domain::conversations::{Conversations, may_enter};
use crate::error::ApiError;

/// The longest `messageId` taken (it becomes part of an idempotency key).
const MAX_MESSAGE_ID: usize = 200;

/// How long a blocking `SendMessage` waits for the task to stop or pause before it answers
/// the task as it is (usually `TASK_STATE_WORKING`).
pub const BLOCKING_WAIT: Duration = Duration::from_secs(30);
/// How often a waiter looks again when nothing woke it: the agent taking the message (a
/// lease) wakes no one, nor does a reply sent outside the conversation.
pub const RECHECK: Duration = Duration::from_millis(500);

/// What the operations need of the node.
pub struct Deps<'a> {
    pub store: &'a dyn Store,
    pub acceptor: &'a Acceptor,
    pub conversations: &'a Conversations,
    /// The node's shutdown signal: a waiting operation answers at once when it is raised.
    pub shutdown: watch::Receiver<bool>,
    /// The push notifier (configs given with a send).
    pub push: &'a std::sync::Arc<super::push::A2aPush>,
}

pub(super) fn invalid(s: impl Into<String>) -> A2aError {
    A2aError::InvalidParams(s.into())
}

/// What a send answers: the task, or the agent's direct answer.
pub enum Sent {
    Task(Box<Facts>),
    Message(Box<Facts>),
}

/// A task's id from `params.<key>` (`id` or `taskId`).
pub fn task_id<'p>(params: &'p Value, key: &str) -> Result<&'p str, A2aError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("`{key}` (the task's id) is required")))
}

/// `historyLength` from `v`, if given.
pub fn history_length(v: Option<&Value>) -> Result<Option<u64>, A2aError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
            n.map(Some).ok_or_else(|| invalid("`historyLength` must be a whole number, 0 or more"))
        }
    }
}

/// Sends the client's message to the agent as a message from `by`, through the normal
/// accept path (policies, limits, audit), in the conversation that is its context:
/// - a new task without `message.taskId` (in the named `contextId`, or a new context);
/// - with `message.taskId`, a continuation of that task (a reply in its thread): the task
///   must be the caller's and not finished, and a `contextId` given must be the task's.
///
/// Each call is a new message: a repeated `messageId` is not taken for a retry (clients, the
/// TCK among them, reuse them for different messages). Answers the task as the accept left
/// it; [`settled`] waits for more.
pub async fn submit(d: &Deps<'_>, by: &Principal, agent: &AgentRecord, params: &Value) -> Result<Facts, A2aError> {
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
    let context_given = match msg.get("contextId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        Some(_) => return Err(invalid("`message.contextId` must be a non-empty string")),
    };
    let continued = match msg.get("taskId") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if !t.is_empty() => Some(t.as_str()),
        Some(_) => return Err(invalid("`message.taskId` must be a non-empty string")),
    };
    let tenant = by.tenant.as_str();
    // A context the client named that is no conversation: kept as the client wrote it.
    let mut named: Option<String> = None;
    let (context, in_reply_to) = match continued {
        Some(task_id) => {
            let facts = Facts::load(d.store, by, &agent.id, task_id).await?;
            if facts.original.sender != by.sender() {
                return Err(A2aError::TaskNotFound(format!("task {task_id} is not one of yours at this agent")));
            }
            let state = facts.state();
            if state.terminal() {
                return Err(A2aError::Unsupported(format!(
                    "task {task_id} is {} and takes no more messages; send a new message (without taskId) in its \
                     contextId",
                    state.wire(Dialect::V10)
                )));
            }
            if context_given.is_some_and(|c| c != facts.context()) {
                return Err(invalid(format!(
                    "`message.contextId` is not the context of task {task_id}; leave it out or give {}",
                    facts.context()
                )));
            }
            if facts.context() != facts.conversation() {
                named = Some(facts.context());
            }
            (facts.conversation(), Some(facts.original.id.clone()))
        }
        None => match context_given {
            Some(ctx) => match d.store.get_conversation(tenant, ctx).await? {
                Some(c) if may_enter(by, &c) => (c.id, None),
                Some(_) => {
                    return Err(invalid(format!(
                        "`message.contextId` {ctx} is not a context you take part in; leave it out to start a new one"
                    )));
                }
                None => {
                    named = Some(ctx.to_owned());
                    (named_context(d, by, agent, ctx).await?, None)
                }
            },
            None => (new_context(d, by, agent).await?, None),
        },
    };
    let mut a2a = Map::new();
    a2a.insert("messageId".into(), json!(message_id));
    if let Some(t) = &in_reply_to {
        a2a.insert("taskId".into(), json!(t));
    }
    if let Some(c) = &named {
        a2a.insert("contextId".into(), json!(c));
    }
    if let Some(md) = msg.get("metadata").filter(|m| m.is_object()) {
        a2a.insert("metadata".into(), md.clone());
    }
    let id = accept(d, by, agent, parts, &context, in_reply_to.clone(), a2a).await?;
    let new_task = in_reply_to.is_none();
    let task_id = in_reply_to.unwrap_or(id);
    if new_task {
        let record = A2aTaskRecord {
            tenant: tenant.to_owned(),
            id: task_id.clone(),
            agent_id: agent.id.clone(),
            owner: by.sender(),
            context_id: named.clone().unwrap_or_else(|| context.clone()),
            created_at: now_ms(),
        };
        d.store.record_a2a_task(record).await?;
    }
    Facts::load(d.store, by, &agent.id, &task_id).await
}

/// A new conversation of the caller and the agent: a new context.
async fn new_context(d: &Deps<'_>, by: &Principal, agent: &AgentRecord) -> Result<String, A2aError> {
    let title: String = format!("A2A: {}", agent.name).chars().take(200).collect();
    let agent_addr = Recipient::agent_text(&AgentId::from(agent.id.as_str()));
    let req = CreateConversation { title: Some(title), participants: vec![agent_addr] };
    Ok(d.conversations.create(by, req).await?.id)
}

/// The conversation behind a context the client named (A2A 1.0 section 3.4.1: agents may
/// accept client-provided context ids): the one of the caller's earlier task in that context
/// at this agent, or a new one. The client's id is kept in each message's `metadata.a2a`
/// and in the task index, and tasks show it as their `contextId`.
async fn named_context(d: &Deps<'_>, by: &Principal, agent: &AgentRecord, ctx: &str) -> Result<String, A2aError> {
    if ctx.chars().count() > MAX_MESSAGE_ID {
        return Err(invalid(format!("`message.contextId` is over {MAX_MESSAGE_ID} characters")));
    }
    let filter = A2aTaskFilter {
        agent_id: agent.id.clone(),
        owner: Some(by.sender()),
        context_id: Some(ctx.to_owned()),
        limit: 1,
    };
    if let Some(t) = d.store.list_a2a_tasks(by.tenant.as_str(), filter).await?.pop()
        && let Some((m, _)) = d.store.get_message(by.tenant.as_str(), &t.id).await?
        && let Some(c) = m.conversation_id
    {
        return Ok(c);
    }
    new_context(d, by, agent).await
}

/// Accepts one message from `by` to the agent; its id.
async fn accept(
    d: &Deps<'_>,
    by: &Principal,
    agent: &AgentRecord,
    parts: Vec<Part>,
    context: &str,
    in_reply_to: Option<String>,
    a2a: Map<String, Value>,
) -> Result<String, A2aError> {
    let m = SendMessage {
        to: Recipient::agent_text(&AgentId::from(agent.id.as_str())),
        parts,
        conversation_id: Some(context.to_owned()),
        in_reply_to,
        metadata: Some(json!({ "a2a": a2a })),
        ..Default::default()
    };
    let prepared = d.acceptor.prepare_sized(by, m, 0).await?;
    match d.acceptor.commit(by, vec![prepared]).await?.pop() {
        Some(AcceptOutcome::Accepted { id, .. } | AcceptOutcome::Duplicate { id, .. }) => Ok(id),
        Some(AcceptOutcome::KeyReused { .. }) => Err(invalid("the message was already used for a different one")),
        None => Err(A2aError::Api(ApiError::Internal("the store answered no outcome".into()))),
    }
}

/// `SendMessage`: [`submit`], then (blocking, the default: A2A 1.0 section 3.2.2) wait up to
/// [`BLOCKING_WAIT`] until the task is completed, failed, canceled, rejected, or needs input
/// or auth. With `configuration.returnImmediately: true` (or 0.3's `blocking: false`) it
/// answers at once. When the agent answered with a direct message, that is the answer.
pub async fn send(
    d: &Deps<'_>,
    by: &Principal,
    agent: &AgentRecord,
    params: &Value,
    dialect: Dialect,
) -> Result<Sent, A2aError> {
    let config = params.get("configuration");
    let immediately = match dialect {
        Dialect::V10 => config.and_then(|c| c.get("returnImmediately")).and_then(Value::as_bool).unwrap_or(false),
        Dialect::V03 => !config.and_then(|c| c.get("blocking")).and_then(Value::as_bool).unwrap_or(true),
    };
    let push = config
        .and_then(|c| c.get("taskPushNotificationConfig").or_else(|| c.get("pushNotificationConfig")))
        .filter(|p| p.is_object())
        .cloned();
    let facts = submit(d, by, agent, params).await?;
    if let Some(p) = push {
        d.push.create_for(by, &facts, &p).await?;
    }
    let facts = if immediately { facts } else { settled(d, by, facts, BLOCKING_WAIT).await? };
    Ok(if facts.direct_answer().is_some() { Sent::Message(Box::new(facts)) } else { Sent::Task(Box::new(facts)) })
}

/// The task once it stops or pauses, or as it is when `wait` has passed. Woken by the
/// owner's inbox (the agent's replies to the owner land there), and looks again every
/// [`RECHECK`] for what wakes no one.
pub async fn settled(d: &Deps<'_>, by: &Principal, facts: Facts, wait: Duration) -> Result<Facts, A2aError> {
    let mut woken = d.store.wakeups().subscribe((facts.original.tenant.clone(), facts.original.sender.clone()));
    let mut shutdown = d.shutdown.clone();
    let deadline = Instant::now() + wait;
    let agent_id = facts.original.to.trim_start_matches("agent:").to_owned();
    let mut facts = facts;
    loop {
        woken.borrow_and_update();
        let left = deadline.saturating_duration_since(Instant::now());
        if facts.state().settled() || left.is_zero() {
            return Ok(facts);
        }
        let pause = left.min(RECHECK);
        tokio::select! {
            changed = woken.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(pause).await;
                }
            }
            _ = tokio::time::sleep(pause) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return Ok(facts),
        }
        facts = Facts::load(d.store, by, &agent_id, &facts.original.id).await?;
    }
}

/// `CancelTask`: a task that is not finished is canceled by a message from the caller to the
/// agent in the task's thread (`metadata.a2a.cancel: true`), so the agent hears of it; the
/// task reads `canceled` from then on. A finished task is `TaskNotCancelableError`.
pub async fn cancel(d: &Deps<'_>, by: &Principal, agent: &AgentRecord, params: &Value) -> Result<Facts, A2aError> {
    let id = task_id(params, "id")?;
    let facts = Facts::load(d.store, by, &agent.id, id).await?;
    let state = facts.state();
    if state.terminal() {
        return Err(A2aError::NotCancelable(format!(
            "task {id} is {} already and cannot be canceled",
            state.wire(Dialect::V10)
        )));
    }
    let mut a2a = Map::new();
    a2a.insert("cancel".into(), json!(true));
    a2a.insert("taskId".into(), json!(id));
    let parts = vec![Part::text("The client canceled this task.")];
    accept(d, by, agent, parts, &facts.context(), Some(facts.original.id.clone()), a2a).await?;
    Facts::load(d.store, by, &agent.id, id).await
}

/// `GetTask`: the task as it now is.
pub async fn get(
    store: &dyn Store,
    by: &Principal,
    agent_id: &str,
    params: &Value,
) -> Result<(Facts, Option<u64>), A2aError> {
    let id = task_id(params, "id")?;
    let history = history_length(params.get("historyLength"))?;
    Ok((Facts::load(store, by, agent_id, id).await?, history))
}

impl TaskState {
    /// Whether the task is over (completed, failed, canceled, rejected).
    pub fn terminal(self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Failed | TaskState::Canceled | TaskState::Rejected)
    }
}
