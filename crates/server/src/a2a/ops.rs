//! The eleven A2A operations, shared by both bindings: each binding reads its request into
//! an [`Op`] and its params (a JSON object), and writes the [`Done`] in its own framing.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::Principal;
use switchboard_store::AgentRecord;
use tokio::sync::mpsc;

use crate::api::AppState;
use crate::domain::a2a::stream::{self, Opening};
use crate::domain::a2a::tasks::{self, Deps, Sent};
use crate::domain::a2a::view::Facts;
use crate::domain::a2a::{A2aError, Dialect, card, list};

/// An operation, whatever the binding called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    SendMessage,
    SendStreamingMessage,
    GetTask,
    ListTasks,
    CancelTask,
    SubscribeToTask,
    CreatePushConfig,
    GetPushConfig,
    ListPushConfigs,
    DeletePushConfig,
    GetExtendedAgentCard,
}

impl Op {
    /// The operation a JSON-RPC method names, and the generation it speaks.
    pub fn from_method(method: &str) -> Option<(Op, Dialect)> {
        use Dialect::{V03, V10};
        Some(match method {
            "SendMessage" => (Op::SendMessage, V10),
            "message/send" => (Op::SendMessage, V03),
            "SendStreamingMessage" => (Op::SendStreamingMessage, V10),
            "message/stream" => (Op::SendStreamingMessage, V03),
            "GetTask" => (Op::GetTask, V10),
            "tasks/get" => (Op::GetTask, V03),
            "ListTasks" => (Op::ListTasks, V10),
            "tasks/list" => (Op::ListTasks, V03),
            "CancelTask" => (Op::CancelTask, V10),
            "tasks/cancel" => (Op::CancelTask, V03),
            "SubscribeToTask" => (Op::SubscribeToTask, V10),
            "tasks/resubscribe" => (Op::SubscribeToTask, V03),
            "CreateTaskPushNotificationConfig" => (Op::CreatePushConfig, V10),
            "tasks/pushNotificationConfig/set" => (Op::CreatePushConfig, V03),
            "GetTaskPushNotificationConfig" => (Op::GetPushConfig, V10),
            "tasks/pushNotificationConfig/get" => (Op::GetPushConfig, V03),
            "ListTaskPushNotificationConfigs" | "ListTaskPushNotificationConfig" => (Op::ListPushConfigs, V10),
            "tasks/pushNotificationConfig/list" => (Op::ListPushConfigs, V03),
            "DeleteTaskPushNotificationConfig" => (Op::DeletePushConfig, V10),
            "tasks/pushNotificationConfig/delete" => (Op::DeletePushConfig, V03),
            "GetExtendedAgentCard" => (Op::GetExtendedAgentCard, V10),
            "agent/getAuthenticatedExtendedCard" => (Op::GetExtendedAgentCard, V03),
            _ => return None,
        })
    }
}

/// What an operation produced.
pub enum Done {
    /// One answer.
    Value(Value),
    /// A stream of events (each a `StreamResponse`), already running.
    Stream(mpsc::Receiver<Value>),
}

/// 0.3 names a push config's task `id` and the config `pushNotificationConfigId`.
fn push_params(params: &Value, dialect: Dialect) -> Value {
    let mut p = params.clone();
    if dialect == Dialect::V03 && p.get("taskId").is_none() {
        if let Some(id) = p.get("id").cloned() {
            p["taskId"] = id;
        }
        p["id"] = p.get("pushNotificationConfigId").cloned().unwrap_or(Value::Null);
    }
    p
}

/// `snake_case` to `lowerCamelCase` (`task_id` to `taskId`).
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut up = false;
    for c in key.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// ProtoJSON parsers take a field by its proto name as well as its JSON name (`task_id` for
/// `taskId`): the request's own fields, and those of its `message`, `configuration` and push
/// config objects, are renamed to their JSON names (a JSON name given wins). Parts, metadata
/// and data are left as they are.
pub fn json_names(v: &mut Value, depth: usize) {
    let Some(o) = v.as_object_mut() else { return };
    let snake: Vec<String> = o.keys().filter(|k| k.contains('_')).cloned().collect();
    for k in snake {
        if let Some(val) = o.remove(&k) {
            o.entry(camel(&k)).or_insert(val);
        }
    }
    if depth == 0 {
        return;
    }
    for key in ["message", "configuration", "pushNotificationConfig", "taskPushNotificationConfig", "authentication"] {
        if let Some(inner) = o.get_mut(key) {
            json_names(inner, depth - 1);
        }
    }
}

fn start_stream(state: &AppState, facts: Facts, opening: Opening, dialect: Dialect) -> Done {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(stream::follow(state.store.clone(), facts, opening, dialect, state.shutdown.clone(), tx));
    Done::Stream(rx)
}

/// Runs `op` for `by` at `agent`.
pub async fn run(
    state: &AppState,
    by: &Principal,
    agent: &AgentRecord,
    base: &str,
    op: Op,
    params: &Value,
    dialect: Dialect,
) -> Result<Done, A2aError> {
    let deps = Deps {
        store: state.store.as_ref(),
        acceptor: &state.acceptor,
        conversations: &state.conversations,
        shutdown: state.shutdown.clone(),
        push: &state.a2a_push,
    };
    let store = state.store.as_ref();
    let mut params = params.clone();
    json_names(&mut params, 3);
    let params = &params;
    let v = match op {
        Op::SendMessage => match tasks::send(&deps, by, agent, params, dialect).await? {
            Sent::Message(f) => {
                let m = f.direct_answer().map(|m| f.message(m, false, dialect)).unwrap_or(Value::Null);
                if dialect == Dialect::V10 { json!({ "message": m }) } else { m }
            }
            Sent::Task(f) => {
                let history = tasks::history_length(params.pointer("/configuration/historyLength"))?;
                let t = f.task(history, true, dialect);
                if dialect == Dialect::V10 { json!({ "task": t }) } else { t }
            }
        },
        Op::SendStreamingMessage => {
            let facts = tasks::submit(&deps, by, agent, params).await?;
            if let Some(p) = params.pointer("/configuration/taskPushNotificationConfig").filter(|p| p.is_object()) {
                state.a2a_push.create_for(by, &facts, p).await?;
            }
            return Ok(start_stream(state, facts, Opening::Sent, dialect));
        }
        Op::SubscribeToTask => {
            let facts = Facts::load(store, by, &agent.id, tasks::task_id(params, "id")?).await?;
            let s = facts.state();
            if s.terminal() {
                return Err(A2aError::Unsupported(format!(
                    "task {} is {} already: there is nothing to subscribe to; read it with GetTask",
                    facts.original.id,
                    s.wire(Dialect::V10)
                )));
            }
            return Ok(start_stream(state, facts, Opening::Subscribed, dialect));
        }
        Op::GetTask => {
            let (f, history) = tasks::get(store, by, &agent.id, params).await?;
            f.task(history, true, dialect)
        }
        Op::ListTasks => list::list(store, by, &agent.id, params, dialect).await?,
        Op::CancelTask => tasks::cancel(&deps, by, agent, params).await?.task(None, true, dialect),
        Op::CreatePushConfig => state.a2a_push.create(by, &agent.id, &push_params(params, dialect), dialect).await?,
        Op::GetPushConfig => state.a2a_push.get(by, &agent.id, &push_params(params, dialect), dialect).await?,
        Op::ListPushConfigs => state.a2a_push.list(by, &agent.id, &push_params(params, dialect), dialect).await?,
        Op::DeletePushConfig => {
            state.a2a_push.delete(by, &agent.id, &push_params(params, dialect)).await?;
            if dialect == Dialect::V10 { json!({}) } else { Value::Null }
        }
        Op::GetExtendedAgentCard => card::agent_card(base, agent),
    };
    Ok(Done::Value(v))
}

/// A stream as Server-Sent Events, each event's data `frame(event)`.
pub fn sse(mut rx: mpsc::Receiver<Value>, frame: impl Fn(Value) -> Value + Send + 'static) -> Response {
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|e| e.map(|v| Ok::<_, Infallible>(Event::default().data(frame(v).to_string()))))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
