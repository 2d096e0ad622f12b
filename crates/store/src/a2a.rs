//! A2A: the index of tasks (for `ListTasks`) and the push notification configs clients set
//! on their tasks. A task itself is a message (its state is derived from the message, its
//! deliveries and replies); this area only records which messages are tasks of which agent
//! and whose they are, and where to push their updates. One area of [`Store`](crate::Store).

use async_trait::async_trait;
use switchboard_core::time::Millis;

use crate::error::Result;

/// A message sent through the A2A door: a task of `agent_id`, owned by its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A2aTaskRecord {
    pub tenant: String,
    /// The task's id: the message's.
    pub id: String,
    pub agent_id: String,
    /// The sender's address (`agent:<id>` or `user:<id>`).
    pub owner: String,
    /// The conversation that is the task's context.
    pub context_id: String,
    pub created_at: Millis,
}

/// Which tasks to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct A2aTaskFilter {
    pub agent_id: String,
    /// Only this sender's (`None`: every sender's, for the tenant's administrators).
    pub owner: Option<String>,
    pub context_id: Option<String>,
    pub limit: usize,
}

/// A push notification config of a task (A2A `TaskPushNotificationConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A2aPushConfigRecord {
    pub tenant: String,
    pub task_id: String,
    pub id: String,
    /// Who set it (the task's owner or an administrator).
    pub owner: String,
    pub url: String,
    /// The client's token, sent back in `X-A2A-Notification-Token`.
    pub token: Option<String>,
    /// `authentication.scheme` (e.g. `Bearer`) and `authentication.credentials`.
    pub auth_scheme: Option<String>,
    pub auth_credentials: Option<String>,
    pub created_at: Millis,
}

/// The A2A door's storage.
#[async_trait]
pub trait A2aStore: Send + Sync {
    /// Records a task (nothing if it is recorded already).
    async fn record_a2a_task(&self, task: A2aTaskRecord) -> Result<()>;
    /// Tasks of one agent, newest first.
    async fn list_a2a_tasks(&self, tenant: &str, filter: A2aTaskFilter) -> Result<Vec<A2aTaskRecord>>;
    /// Stores a push config, replacing one with the same task and id.
    async fn put_a2a_push_config(&self, config: A2aPushConfigRecord) -> Result<()>;
    /// A task's push configs, oldest first.
    async fn a2a_push_configs(&self, tenant: &str, task_id: &str) -> Result<Vec<A2aPushConfigRecord>>;
    /// Removes a push config; whether there was one.
    async fn delete_a2a_push_config(&self, tenant: &str, task_id: &str, id: &str) -> Result<bool>;
    /// Every push config of every tenant created after `after` (paged by creation time), for
    /// a starting node to resume watching their tasks.
    async fn all_a2a_push_configs(&self, after: Millis, limit: usize) -> Result<Vec<A2aPushConfigRecord>>;
}
