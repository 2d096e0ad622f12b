//! The PostgreSQL side of [`TopicStore`]: subscriptions, read in one indexed range to route
//! a publish.

use async_trait::async_trait;
use switchboard_core::time::Millis;

use super::PostgresStore;
use super::error::{Fail, retrying};
use super::rows::subscription_from_row;
use crate::sql::{PATTERN_SUBSCRIPTIONS, SUBSCRIPTION_COLS};
use crate::{Result, SubscriptionRecord, TopicRecipient, TopicStore, TopicSummary};

#[async_trait]
impl TopicStore for PostgresStore {
    async fn subscribe(
        &self,
        tenant: &str,
        topic: &str,
        agent_id: &str,
        now: Millis,
    ) -> Result<Option<(SubscriptionRecord, bool)>> {
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // The key-share lock makes a concurrent `delete_agent` wait for this commit (and
            // then delete the new row too), or this wait for its commit (and find no agent).
            let st = tx.prepare_cached("SELECT 1 FROM agents WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE").await?;
            if tx.query_opt(&st, &[&tenant, &agent_id]).await?.is_none() {
                return Ok(None);
            }
            let st = tx
                .prepare_cached(
                    "INSERT INTO topic_subscriptions (tenant_id, topic, agent_id, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .await?;
            let created = tx.execute(&st, &[&tenant, &topic, &agent_id, &now]).await? == 1;
            let st = tx
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLS} FROM topic_subscriptions \
                     WHERE tenant_id = $1 AND topic = $2 AND agent_id = $3"
                ))
                .await?;
            let record = subscription_from_row(&tx.query_one(&st, &[&tenant, &topic, &agent_id]).await?)?;
            tx.commit().await?;
            Ok(Some((record, created)))
        })
        .await
    }

    async fn unsubscribe(&self, tenant: &str, topic: &str, agent_id: &str) -> Result<bool> {
        retrying(move || async move {
            let c = self.conn().await?;
            let st = c
                .prepare_cached("DELETE FROM topic_subscriptions WHERE tenant_id = $1 AND topic = $2 AND agent_id = $3")
                .await?;
            Ok(c.execute(&st, &[&tenant, &topic, &agent_id]).await? > 0)
        })
        .await
    }

    async fn topic_subscribers(
        &self,
        tenant: &str,
        topic: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLS} FROM topic_subscriptions \
                     WHERE tenant_id = $1 AND topic = $2 AND agent_id > $3 ORDER BY agent_id LIMIT $4"
                ))
                .await?;
            let after = after.unwrap_or_default();
            let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
            let rows = c.query(&st, &[&tenant, &topic, &after, &limit]).await?;
            rows.iter().map(subscription_from_row).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn topic_recipients(&self, tenant: &str, topic: &str) -> Result<Vec<TopicRecipient>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(
                    "SELECT s.agent_id, a.endpoint IS NOT NULL FROM topic_subscriptions s \
                     JOIN agents a ON a.tenant_id = s.tenant_id AND a.id = s.agent_id \
                     WHERE s.tenant_id = $1 AND s.topic = $2 ORDER BY s.agent_id",
                )
                .await?;
            let rows = c.query(&st, &[&tenant, &topic]).await?;
            rows.iter()
                .map(|r| Ok(TopicRecipient { agent_id: r.try_get(0)?, push: r.try_get(1)? }))
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn topics(&self, tenant: &str) -> Result<Vec<TopicSummary>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(
                    "SELECT topic, count(*) FROM topic_subscriptions WHERE tenant_id = $1 GROUP BY topic ORDER BY topic",
                )
                .await?;
            let rows = c.query(&st, &[&tenant]).await?;
            rows.iter()
                .map(|r| {
                    let n: i64 = r.try_get(1)?;
                    Ok(TopicSummary { name: r.try_get(0)?, subscribers: u64::try_from(n).unwrap_or(0) })
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn pattern_subscriptions(&self, tenant: &str) -> Result<Vec<(String, String)>> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached(&PATTERN_SUBSCRIPTIONS.replace("?1", "$1")).await?;
            let rows = c.query(&st, &[&tenant]).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }
}
