//! Topics and their subscriptions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A topic subscription: `agent_id` receives every message sent to `topic:<topic>` (except
/// the ones it sends itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub topic: String,
    pub agent_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// Answer to `PUT /v1/topics/{topic}/subscribers/{agent_id}`: 201 when new, 200 with the
/// existing subscription when the agent was already subscribed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Subscribed {
    pub subscription: Subscription,
}

/// `GET /v1/topics/{topic}/subscribers`, in agent id order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriberList {
    pub subscribers: Vec<Subscription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A topic that has subscribers, in `GET /v1/topics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Topic {
    pub name: String,
    /// How many agents are subscribed.
    pub subscribers: u64,
}

/// `GET /v1/topics`: every topic of the tenant with at least one subscriber, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<Topic>,
}
