//! Driving an A2A task from an agent with ordinary replies: the reply convention of the
//! hub's A2A door (`docs/a2a.md`), `metadata.a2a` on a reply in the task's thread.
//!
//! ```
//! use switchboard_client::a2a::{A2aReply, TaskState};
//! # fn demo(m: &switchboard_core::api::InboxMessage) {
//! // The task needs the client's input:
//! let ask = A2aReply::to(m).state(TaskState::InputRequired).text("Which day?").build();
//! // An artifact while working, then the task completed:
//! let report = A2aReply::to(m).artifact("report-1", Some("report")).text("…").build();
//! let done = A2aReply::to(m).state(TaskState::Completed).text("Done").build();
//! # }
//! ```

use serde_json::{Map, Value, json};
use switchboard_core::api::{InboxMessage, Part, SendMessage};

/// The states an agent can put an A2A task in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Working,
    InputRequired,
    AuthRequired,
    Completed,
    Failed,
    Canceled,
    Rejected,
}

impl TaskState {
    /// As written in `metadata.a2a.state` (the A2A 1.0 enum name).
    pub fn wire(self) -> &'static str {
        match self {
            TaskState::Working => "TASK_STATE_WORKING",
            TaskState::InputRequired => "TASK_STATE_INPUT_REQUIRED",
            TaskState::AuthRequired => "TASK_STATE_AUTH_REQUIRED",
            TaskState::Completed => "TASK_STATE_COMPLETED",
            TaskState::Failed => "TASK_STATE_FAILED",
            TaskState::Canceled => "TASK_STATE_CANCELED",
            TaskState::Rejected => "TASK_STATE_REJECTED",
        }
    }
}

/// Whether a message the agent received is the A2A client canceling its task (the agent
/// should stop; the task is `canceled` whatever it answers).
pub fn is_cancel(m: &InboxMessage) -> bool {
    m.message.metadata.as_ref().and_then(|md| md.pointer("/a2a/cancel")).and_then(Value::as_bool).unwrap_or(false)
}

/// A reply to a message of an A2A task, in its thread and conversation.
#[derive(Debug, Clone)]
pub struct A2aReply {
    message: SendMessage,
    a2a: Map<String, Value>,
}

impl A2aReply {
    /// A reply to `m` (a task's message, or the client's continuation of it).
    pub fn to(m: &InboxMessage) -> A2aReply {
        let message = SendMessage {
            to: m.message.from.clone(),
            in_reply_to: Some(m.message.id.clone()),
            conversation_id: m.message.conversation_id.clone(),
            ..Default::default()
        };
        A2aReply { message, a2a: Map::new() }
    }

    /// The task's state after this reply (without one: `completed`, or `working` for an
    /// artifact).
    pub fn state(mut self, s: TaskState) -> A2aReply {
        self.a2a.insert("state".into(), json!(s.wire()));
        self
    }

    /// This reply is an artifact of the task, with an id (a later artifact with the same id
    /// replaces it) and a name.
    pub fn artifact(mut self, id: &str, name: Option<&str>) -> A2aReply {
        let mut a = json!({ "artifactId": id });
        if let Some(n) = name {
            a["name"] = json!(n);
        }
        self.a2a.insert("artifact".into(), a);
        self
    }

    /// This artifact reply is a chunk: `append` adds it to the artifact with the same id,
    /// `last` says it is the final one. Call after [`A2aReply::artifact`].
    pub fn chunk(mut self, append: bool, last: bool) -> A2aReply {
        if let Some(a) = self.a2a.get_mut("artifact") {
            a["append"] = json!(append);
            a["lastChunk"] = json!(last);
        }
        self
    }

    /// The reply is a direct answer: the A2A client gets a `Message`, not a task.
    pub fn direct_message(mut self) -> A2aReply {
        self.a2a.insert("message".into(), json!(true));
        self
    }

    pub fn text(mut self, t: impl Into<String>) -> A2aReply {
        self.message.parts.push(Part::text(t));
        self
    }

    pub fn part(mut self, p: Part) -> A2aReply {
        self.message.parts.push(p);
        self
    }

    /// The message to send (with [`crate::Client::send`]).
    pub fn build(mut self) -> SendMessage {
        if !self.a2a.is_empty() {
            self.message.metadata = Some(json!({ "a2a": self.a2a }));
        }
        self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_carries_the_convention() {
        let m: InboxMessage = serde_json::from_value(json!({
            "id": "t1", "from": "agent:alice", "to": "agent:bob", "parts": [{ "kind": "text", "text": "hi" }],
            "conversation_id": "c1", "created_at": "2026-01-01T00:00:00Z",
            "attempt": 1, "lease_expires_at": "2026-01-01T00:01:00Z"
        }))
        .unwrap();
        let r = A2aReply::to(&m).artifact("a", Some("n")).chunk(true, false).text("x").build();
        assert_eq!(r.to, "agent:alice");
        assert_eq!(r.in_reply_to.as_deref(), Some("t1"));
        assert_eq!(r.conversation_id.as_deref(), Some("c1"));
        assert_eq!(
            r.metadata.unwrap(),
            json!({ "a2a": { "artifact": { "artifactId": "a", "name": "n", "append": true, "lastChunk": false } } })
        );
        let r = A2aReply::to(&m).state(TaskState::InputRequired).direct_message().build();
        assert_eq!(r.metadata.unwrap()["a2a"], json!({ "state": "TASK_STATE_INPUT_REQUIRED", "message": true }));
        assert!(!is_cancel(&m));
    }
}
