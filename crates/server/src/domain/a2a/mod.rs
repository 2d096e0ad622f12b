//! A2A (Agent2Agent) over the post office: what a task is and how its state is read from
//! what is stored. The HTTP door is `crate::a2a`.
//!
//! A task is the message an A2A client sent to `agent:<id>`: the task id is that message's id
//! and the context id its conversation (created with the caller and the agent when the client
//! names none). Nothing about a task is stored beside the messages; its state is derived:
//!
//! | what is stored                                   | state                   |
//! |--------------------------------------------------|-------------------------|
//! | a reply (`in_reply_to` the task) whose metadata is `{"a2a": {"state": S}}` | S |
//! | any other reply                                   | `TASK_STATE_COMPLETED`  |
//! | the delivery is dead or expired                   | `TASK_STATE_FAILED`     |
//! | the agent has been handed the message             | `TASK_STATE_WORKING`    |
//! | otherwise                                         | `TASK_STATE_SUBMITTED`  |
//!
//! The latest reply counts (an agent may answer `working`, then `completed`). `S` may be
//! written either way: `input-required` (0.3) or `TASK_STATE_INPUT_REQUIRED` (1.0). The
//! client's continuations and cancel requests are messages in the same thread; `view` has
//! the whole convention. Beside the messages, the store keeps only an index of tasks (for
//! `ListTasks`) and the push configs (`push`).

pub mod card;
pub mod import;
pub mod list;
pub mod parts;
pub mod push;
pub mod remote;
pub mod stream;
pub mod tasks;
pub mod view;

use crate::error::ApiError;

/// Which generation of the protocol a request speaks; answers are written in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// 0.3: `message/send`, `kind`-tagged parts, lower-case kebab states.
    V03,
    /// 1.0: `SendMessage`, ProtoJSON, `TASK_STATE_*` and `ROLE_*`.
    V10,
}

/// The states of a task (A2A 1.0 `TaskState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Submitted,
    Working,
    Completed,
    Failed,
    Canceled,
    InputRequired,
    Rejected,
    AuthRequired,
}

impl TaskState {
    const ALL: [(TaskState, &'static str); 8] = [
        (TaskState::Submitted, "SUBMITTED"),
        (TaskState::Working, "WORKING"),
        (TaskState::Completed, "COMPLETED"),
        (TaskState::Failed, "FAILED"),
        (TaskState::Canceled, "CANCELED"),
        (TaskState::InputRequired, "INPUT_REQUIRED"),
        (TaskState::Rejected, "REJECTED"),
        (TaskState::AuthRequired, "AUTH_REQUIRED"),
    ];

    fn name(self) -> &'static str {
        TaskState::ALL.iter().find(|(s, _)| *s == self).map(|(_, n)| *n).unwrap_or("UNSPECIFIED")
    }

    /// Whether the task has stopped (completed, failed, canceled, rejected) or waits for the
    /// client (input or auth required): where a blocking send answers.
    pub fn settled(self) -> bool {
        !matches!(self, TaskState::Submitted | TaskState::Working)
    }

    /// The state as `dialect` writes it: `TASK_STATE_INPUT_REQUIRED` or `input-required`.
    pub fn wire(self, dialect: Dialect) -> String {
        match dialect {
            Dialect::V10 => format!("TASK_STATE_{}", self.name()),
            Dialect::V03 => self.name().to_ascii_lowercase().replace('_', "-"),
        }
    }

    /// Reads a state written either way (case and `-`/`_` do not matter).
    pub fn parse(s: &str) -> Option<TaskState> {
        let up = s.trim().to_ascii_uppercase().replace('-', "_");
        let bare = up.strip_prefix("TASK_STATE_").unwrap_or(&up);
        // 0.3 spelled it `cancelled` in places.
        let bare = if bare == "CANCELLED" { "CANCELED" } else { bare };
        TaskState::ALL.iter().find(|(_, n)| *n == bare).map(|(s, _)| *s)
    }
}

/// Why an A2A operation failed, in the protocol's terms (the door maps each to its code).
#[derive(Debug)]
pub enum A2aError {
    /// `TaskNotFoundError`: unknown, another tenant's, or not the caller's.
    TaskNotFound(String),
    /// `InvalidParamsError`, with what to fix.
    InvalidParams(String),
    /// `TaskNotCancelableError`.
    NotCancelable(String),
    /// `UnsupportedOperationError`.
    Unsupported(String),
    /// Anything the hub refused or failed at as it would for the API.
    Api(ApiError),
}

impl From<ApiError> for A2aError {
    fn from(e: ApiError) -> A2aError {
        A2aError::Api(e)
    }
}

impl From<switchboard_store::StoreError> for A2aError {
    fn from(e: switchboard_store::StoreError) -> A2aError {
        A2aError::Api(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_both_spellings_and_write_each() {
        assert_eq!(TaskState::parse("input-required"), Some(TaskState::InputRequired));
        assert_eq!(TaskState::parse("TASK_STATE_AUTH_REQUIRED"), Some(TaskState::AuthRequired));
        assert_eq!(TaskState::parse("cancelled"), Some(TaskState::Canceled));
        assert_eq!(TaskState::parse("done"), None);
        assert_eq!(TaskState::InputRequired.wire(Dialect::V03), "input-required");
        assert_eq!(TaskState::Completed.wire(Dialect::V10), "TASK_STATE_COMPLETED");
    }
}
