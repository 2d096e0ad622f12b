//! Topic subscriptions: who hears a topic. Publishing is an ordinary send, which routing
//! resolves with `Store::topic_recipients` and, for wildcard patterns, [`Patterns`].

use switchboard_core::Principal;
use switchboard_core::time::now_ms;
use switchboard_store::{Store, SubscriptionRecord};

use super::wildcards::Patterns;
use crate::error::ApiError;

/// Subscribes agent `agent_id` to `topic`: the subscription and whether it is new, or
/// `None` when the agent is not registered.
pub async fn subscribe(
    store: &dyn Store,
    patterns: &Patterns,
    by: &Principal,
    topic: &str,
    agent_id: &str,
) -> Result<Option<(SubscriptionRecord, bool)>, ApiError> {
    let subscribed = store.subscribe(by.tenant.as_str(), topic, agent_id, now_ms()).await?;
    if let Some((_, true)) = &subscribed {
        patterns.subscribed(by.tenant.as_str(), topic, agent_id);
        tracing::info!(topic = %topic, agent = %agent_id, "subscribed");
    }
    Ok(subscribed)
}

/// Ends agent `agent_id`'s subscription to `topic`; `false` when there was none.
pub async fn unsubscribe(
    store: &dyn Store,
    patterns: &Patterns,
    by: &Principal,
    topic: &str,
    agent_id: &str,
) -> Result<bool, ApiError> {
    let removed = store.unsubscribe(by.tenant.as_str(), topic, agent_id).await?;
    if removed {
        patterns.unsubscribed(by.tenant.as_str(), topic, agent_id);
        tracing::info!(topic = %topic, agent = %agent_id, "unsubscribed");
    }
    Ok(removed)
}
