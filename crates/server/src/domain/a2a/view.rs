//! What a task is made of (the message, its delivery, the later messages of its thread) and
//! how it reads in A2A: its state (the table in `super`), the `Task` object, and the stream
//! events between two readings.
//!
//! The agent drives the task with ordinary replies in the task's thread; their
//! `metadata.a2a` says how each counts (see `docs/a2a.md`):
//! - `state`: the task's state after this reply (default `completed`, or `working` for an
//!   artifact);
//! - `artifact`: this reply is an artifact (`true`, or `{"artifactId", "name"}`);
//! - `message: true`: the reply is a direct answer (a `Message`, no task).
//!
//! The client's messages in the thread are continuations (`taskId` given), which put the
//! task back to `working`, or its cancel request (`metadata.a2a.cancel`), which makes it
//! `canceled` for good.

use serde_json::{Value, json};
use switchboard_core::api::{DeliveryState, Part};
use switchboard_core::time::rfc3339;
use switchboard_core::{AgentId, Principal, Recipient};
use switchboard_store::conversations::HistoryQuery;
use switchboard_store::{DeliveryRecord, MessageRecord, Store};

use super::parts::to_a2a;
use super::{A2aError, Dialect, TaskState};

/// How many messages of a task's thread are read.
const THREAD_LIMIT: usize = 500;

/// The stored facts of one task.
#[derive(Debug, Clone)]
pub struct Facts {
    pub original: MessageRecord,
    /// The original message's delivery to the agent.
    pub delivery: Option<DeliveryRecord>,
    /// The later messages of its thread, in the conversation's order.
    pub later: Vec<MessageRecord>,
}

fn a2a_meta(m: &MessageRecord) -> Value {
    m.metadata
        .as_deref()
        .and_then(|md| serde_json::from_str::<Value>(md).ok())
        .and_then(|md| md.get("a2a").cloned())
        .unwrap_or(Value::Null)
}

/// The parts of a stored message (none when they cannot be read, e.g. sealed).
fn stored_parts(m: &MessageRecord) -> Vec<Part> {
    serde_json::from_str(&m.parts).unwrap_or_default()
}

/// How one later message counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// From the agent: the state it leaves the task in, whether it is an artifact (with its
    /// id and name), and whether it is a direct `Message` answer.
    Agent { state: TaskState, artifact: Option<Mark>, direct: bool },
    /// From the client: a continuation, or a cancel request.
    Client { cancel: bool },
}

/// A reply marked as an artifact (or a chunk of one).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub id: String,
    pub name: Option<String>,
    /// This chunk adds to the artifact with the same id (else it replaces it).
    pub append: bool,
    pub last_chunk: bool,
}

impl Facts {
    /// The task `id` at `agent_id` as `by` may see it: `TaskNotFoundError` for an id that is
    /// unknown, another tenant's, not a message to this agent, or not sent by the caller
    /// (the tenant's administrators see every task).
    pub async fn load(store: &dyn Store, by: &Principal, agent_id: &str, id: &str) -> Result<Facts, A2aError> {
        let not_found = || A2aError::TaskNotFound(format!("task {id} is not one of yours at this agent"));
        let agent_addr = Recipient::agent_text(&AgentId::from(agent_id));
        let Some((original, deliveries)) = store.get_message(by.tenant.as_str(), id).await? else {
            return Err(not_found());
        };
        if original.to != agent_addr || !(original.sender == by.sender() || by.is_admin()) {
            return Err(not_found());
        }
        Facts::read(store, original, deliveries).await
    }

    /// The facts of a task whose message is known.
    pub async fn read(
        store: &dyn Store,
        original: MessageRecord,
        deliveries: Vec<DeliveryRecord>,
    ) -> Result<Facts, A2aError> {
        let tenant = original.tenant.clone();
        let mut later = Vec::new();
        if let Some(c) = &original.conversation_id {
            let q = HistoryQuery { after_seq: 0, limit: THREAD_LIMIT, thread: Some(original.id.clone()) };
            later = store
                .conversation_history(&tenant, c, q)
                .await?
                .into_iter()
                .map(|(_, m)| m)
                .filter(|m| m.id != original.id)
                .collect();
        }
        if later.is_empty()
            && let Some(r) = store.first_reply(&tenant, &original.id, &original.sender).await?
        {
            later.push(r);
        }
        let delivery = deliveries.into_iter().find(|d| d.recipient == original.to);
        Ok(Facts { original, delivery, later })
    }

    /// How the `i`th later message counts.
    pub fn step(&self, m: &MessageRecord) -> Step {
        let a = a2a_meta(m);
        if m.sender != self.original.to {
            return Step::Client { cancel: a.get("cancel").and_then(Value::as_bool).unwrap_or(false) };
        }
        let artifact = match a.get("artifact") {
            Some(Value::Bool(true)) => Some(Mark { id: m.id.clone(), name: None, append: false, last_chunk: true }),
            Some(Value::Object(o)) => Some(Mark {
                id: o.get("artifactId").and_then(Value::as_str).unwrap_or(&m.id).to_owned(),
                name: o.get("name").and_then(Value::as_str).map(str::to_owned),
                append: o.get("append").and_then(Value::as_bool).unwrap_or(false),
                last_chunk: o.get("lastChunk").and_then(Value::as_bool).unwrap_or(true),
            }),
            _ => None,
        };
        let said = a.get("state").and_then(Value::as_str).and_then(TaskState::parse);
        let default = if artifact.is_some() { TaskState::Working } else { TaskState::Completed };
        let direct = a.get("message").and_then(Value::as_bool).unwrap_or(false);
        Step::Agent { state: said.unwrap_or(default), artifact, direct }
    }

    /// The state after the first `n` later messages.
    pub fn state_after(&self, n: usize) -> TaskState {
        let later = &self.later[..n.min(self.later.len())];
        if later.iter().any(|m| self.step(m) == Step::Client { cancel: true }) {
            return TaskState::Canceled;
        }
        match later.last().map(|m| self.step(m)) {
            Some(Step::Agent { state, .. }) => state,
            Some(Step::Client { .. }) => TaskState::Working,
            None => match self.delivery.as_ref().map(|d| d.state) {
                Some(DeliveryState::Dead | DeliveryState::Expired) => TaskState::Failed,
                Some(DeliveryState::Leased | DeliveryState::Delivered | DeliveryState::Acked) => TaskState::Working,
                _ => TaskState::Submitted,
            },
        }
    }

    pub fn state(&self) -> TaskState {
        self.state_after(self.later.len())
    }

    /// The agent's direct answer, when its last word is a `Message` rather than a task.
    pub fn direct_answer(&self) -> Option<&MessageRecord> {
        let last = self.later.last()?;
        matches!(self.step(last), Step::Agent { direct: true, .. }).then_some(last)
    }

    /// The conversation the task is in.
    pub fn conversation(&self) -> String {
        self.original.conversation_id.clone().unwrap_or_else(|| self.original.id.clone())
    }

    /// The task's `contextId`: the one the client named, or its conversation's id.
    pub fn context(&self) -> String {
        let named = a2a_meta(&self.original).get("contextId").and_then(Value::as_str).map(str::to_owned);
        named.unwrap_or_else(|| self.conversation())
    }

    /// When the state last changed.
    fn timestamp_after(&self, n: usize) -> i64 {
        match self.later[..n.min(self.later.len())].last() {
            Some(m) => m.created_at,
            None => self.delivery.as_ref().map(|d| d.updated_at).unwrap_or(self.original.created_at),
        }
    }

    /// The status timestamp (for ListTasks' order and filter).
    pub fn timestamp(&self) -> i64 {
        self.timestamp_after(self.later.len())
    }

    /// A message of the task as an A2A `Message` (`task: false` for a direct answer).
    pub fn message(&self, m: &MessageRecord, task: bool, dialect: Dialect) -> Value {
        let from_agent = m.sender == self.original.to;
        let client_id = a2a_meta(m).get("messageId").and_then(Value::as_str).map(str::to_owned);
        let parts: Vec<Value> = stored_parts(m).iter().map(|p| to_a2a(p, dialect)).collect();
        let mut v = json!({
            "messageId": client_id.unwrap_or_else(|| m.id.clone()),
            "role": role(from_agent, dialect),
            "parts": parts,
            "contextId": self.context(),
        });
        if task {
            v["taskId"] = json!(self.original.id);
        }
        if dialect == Dialect::V03 {
            v["kind"] = json!("message");
        }
        v
    }

    fn status_after(&self, n: usize, dialect: Dialect) -> Value {
        let state = self.state_after(n);
        let mut status = json!({ "state": state.wire(dialect), "timestamp": rfc3339(self.timestamp_after(n)) });
        if let Some(m) = self.later[..n.min(self.later.len())].last()
            && m.sender == self.original.to
        {
            status["message"] = self.message(m, true, dialect);
        }
        status
    }

    /// The artifact (chunk) the `i`th later message makes, if it makes one: a reply marked
    /// as an artifact, or the reply that completes a task that had none marked; with its
    /// mark.
    fn artifact(&self, i: usize, dialect: Dialect) -> Option<(Value, Mark)> {
        let m = &self.later[i];
        let Step::Agent { state, artifact, direct } = self.step(m) else { return None };
        let mark = match artifact {
            Some(a) => a,
            None if state == TaskState::Completed && !direct && !self.marks_artifacts(i) => {
                Mark { id: m.id.clone(), name: Some("reply".into()), append: false, last_chunk: true }
            }
            None => return None,
        };
        let parts: Vec<Value> = stored_parts(m).iter().map(|p| to_a2a(p, dialect)).collect();
        let mut a = json!({ "artifactId": mark.id, "parts": parts });
        if let Some(n) = &mark.name {
            a["name"] = json!(n);
        }
        Some((a, mark))
    }

    /// Whether a message before the `i`th later one is marked as an artifact (then the
    /// completing reply is not one too).
    fn marks_artifacts(&self, i: usize) -> bool {
        self.later[..i].iter().any(|m| matches!(self.step(m), Step::Agent { artifact: Some(_), .. }))
    }

    /// The task's artifacts: chunks appended to their artifact, a later one with the same id
    /// replacing it.
    fn artifacts(&self, dialect: Dialect) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for i in 0..self.later.len() {
            let Some((a, mark)) = self.artifact(i, dialect) else { continue };
            match out.iter_mut().find(|o| o["artifactId"] == a["artifactId"]) {
                Some(o) if mark.append => {
                    let more = a["parts"].as_array().cloned().unwrap_or_default();
                    if let Some(parts) = o["parts"].as_array_mut() {
                        parts.extend(more);
                    }
                }
                Some(o) => *o = a,
                None => out.push(a),
            }
        }
        out
    }

    /// The task in `dialect`'s shape, with at most `history` messages of history (all when
    /// `None`) and its artifacts unless `artifacts` is false.
    pub fn task(&self, history: Option<u64>, artifacts: bool, dialect: Dialect) -> Value {
        let n = self.later.len();
        let mut task =
            json!({ "id": self.original.id, "contextId": self.context(), "status": self.status_after(n, dialect) });
        if artifacts {
            let all = self.artifacts(dialect);
            if !all.is_empty() {
                task["artifacts"] = Value::Array(all);
            }
        }
        let mut all: Vec<Value> =
            std::iter::once(&self.original).chain(self.later.iter()).map(|m| self.message(m, true, dialect)).collect();
        if let Some(h) = history {
            let skip = all.len().saturating_sub(h as usize);
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

    /// The stream events (1.0 `StreamResponse`s) that take a reader from the task as it was
    /// after `seen` later messages in state `was` to the task as it is now.
    pub fn events_since(&self, seen: usize, was: TaskState, dialect: Dialect) -> Vec<Value> {
        let mut out = Vec::new();
        let mut last = was;
        let (task, context) = (self.original.id.as_str(), self.context());
        for i in seen..self.later.len() {
            let made = self.artifact(i, dialect);
            let is_artifact = made.is_some();
            if let Some((a, mark)) = made {
                let ev = json!({ "taskId": task, "contextId": context, "artifact": a, "append": mark.append,
                                 "lastChunk": mark.last_chunk });
                out.push(wrap("artifactUpdate", "artifact-update", ev, dialect));
            }
            let state = self.state_after(i + 1);
            let from_client = self.later[i].sender != self.original.to;
            if state == last && (from_client || (is_artifact && !state.settled())) {
                continue;
            }
            let status = self.status_after(i + 1, dialect);
            let mut ev = json!({ "taskId": task, "contextId": context, "status": status });
            if dialect == Dialect::V03 {
                ev["final"] = json!(state.settled());
            }
            out.push(wrap("statusUpdate", "status-update", ev, dialect));
            last = state;
        }
        let now = self.state();
        if now != last {
            let mut ev =
                json!({ "taskId": task, "contextId": context, "status": self.status_after(self.later.len(), dialect) });
            if dialect == Dialect::V03 {
                ev["final"] = json!(now.settled());
            }
            out.push(wrap("statusUpdate", "status-update", ev, dialect));
        }
        out
    }
}

/// A stream event: 1.0 wraps it in a `StreamResponse` field, 0.3 tags it with `kind`.
fn wrap(field: &str, kind: &str, mut ev: Value, dialect: Dialect) -> Value {
    match dialect {
        Dialect::V10 => json!({ field: ev }),
        Dialect::V03 => {
            ev["kind"] = json!(kind);
            ev
        }
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
