//! The SQLite side of [`TopicStore`]: subscriptions, read in one indexed range to route a
//! publish.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use switchboard_core::time::Millis;

use super::rows::subscription_from_row;
use super::{SqliteStore, internal};
use crate::sql::{PATTERN_SUBSCRIPTIONS as PATTERNS, SUBSCRIPTION_COLS};
use crate::{Result, SubscriptionRecord, TopicRecipient, TopicStore, TopicSummary};

#[async_trait]
impl TopicStore for SqliteStore {
    async fn subscribe(
        &self,
        tenant: &str,
        topic: &str,
        agent_id: &str,
        now: Millis,
    ) -> Result<Option<(SubscriptionRecord, bool)>> {
        let (tenant, topic, agent_id) = (tenant.to_owned(), topic.to_owned(), agent_id.to_owned());
        // One writer: the agent cannot be deleted between the check and the insert.
        self.write(move |c, _| {
            let registered = c
                .prepare_cached("SELECT 1 FROM agents WHERE tenant_id = ?1 AND id = ?2")
                .and_then(|mut st| st.query_row(params![tenant, agent_id], |_| Ok(())).optional())
                .map_err(internal)?
                .is_some();
            if !registered {
                return Ok(None);
            }
            let created = c
                .prepare_cached(
                    "INSERT INTO topic_subscriptions (tenant_id, topic, agent_id, created_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO NOTHING",
                )
                .and_then(|mut st| st.execute(params![tenant, topic, agent_id, now]))
                .map_err(internal)?
                == 1;
            let record = c
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLS} FROM topic_subscriptions \
                     WHERE tenant_id = ?1 AND topic = ?2 AND agent_id = ?3"
                ))
                .and_then(|mut st| st.query_row(params![tenant, topic, agent_id], subscription_from_row))
                .map_err(internal)?;
            Ok(Some((record, created)))
        })
        .await
    }

    async fn unsubscribe(&self, tenant: &str, topic: &str, agent_id: &str) -> Result<bool> {
        let (tenant, topic, agent_id) = (tenant.to_owned(), topic.to_owned(), agent_id.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute(
                    "DELETE FROM topic_subscriptions WHERE tenant_id = ?1 AND topic = ?2 AND agent_id = ?3",
                    params![tenant, topic, agent_id],
                )
                .map_err(internal)?;
            Ok(n > 0)
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
        let (tenant, topic) = (tenant.to_owned(), topic.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLS} FROM topic_subscriptions \
                     WHERE tenant_id = ?1 AND topic = ?2 AND agent_id > ?3 ORDER BY agent_id LIMIT ?4"
                ))
                .map_err(internal)?;
            let after = after.unwrap_or_default();
            let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
            let rows = st.query_map(params![tenant, topic, after, limit], subscription_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn topic_recipients(&self, tenant: &str, topic: &str) -> Result<Vec<TopicRecipient>> {
        let (tenant, topic) = (tenant.to_owned(), topic.to_owned());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT s.agent_id, a.endpoint IS NOT NULL FROM topic_subscriptions s \
                     JOIN agents a ON a.tenant_id = s.tenant_id AND a.id = s.agent_id \
                     WHERE s.tenant_id = ?1 AND s.topic = ?2 ORDER BY s.agent_id",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![tenant, topic], |r| Ok(TopicRecipient { agent_id: r.get(0)?, push: r.get(1)? }))
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn topics(&self, tenant: &str) -> Result<Vec<TopicSummary>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT topic, count(*) FROM topic_subscriptions WHERE tenant_id = ?1 GROUP BY topic ORDER BY topic",
                )
                .map_err(internal)?;
            let rows = st
                .query_map(params![tenant], |r| Ok(TopicSummary { name: r.get(0)?, subscribers: r.get(1)? }))
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn pattern_subscriptions(&self, tenant: &str) -> Result<Vec<(String, String)>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(PATTERNS).map_err(internal)?;
            let rows = st.query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }
}
