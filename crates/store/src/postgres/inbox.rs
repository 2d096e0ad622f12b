//! The PostgreSQL side of [`InboxStore`]: short statements on the pool.

use async_trait::async_trait;
use switchboard_core::api::DeliveryState;
use switchboard_core::time::Millis;

use super::PostgresStore;
use super::error::{Fail, internal, retrying};
use super::rows::message_from_row;
use crate::Result;
use crate::conversations::sql::pg;
use crate::inbox::{InboxItem, InboxQuery, InboxStore, StatusRecord, sql};

#[async_trait]
impl InboxStore for PostgresStore {
    async fn person_inbox(&self, tenant: &str, q: InboxQuery) -> Result<Vec<InboxItem>> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached(&pg(&sql::inbox())).await?;
            let pattern = q.text.as_deref().map(sql::pattern);
            let (before, unread, auto, limit) =
                (q.before.unwrap_or(i64::MAX), q.unread_only as i64, q.auto_only as i64, q.limit.max(1) as i64);
            let rows =
                c.query(&st, &[&tenant, &q.recipient, &before, &unread, &q.from, &pattern, &auto, &limit]).await?;
            rows.iter()
                .map(|r| {
                    let state: String = r.try_get(1)?;
                    Ok(InboxItem {
                        seq: r.try_get(0)?,
                        state: DeliveryState::parse(&state)
                            .ok_or_else(|| internal(format!("unknown delivery state `{state}`")))?,
                        message: message_from_row(r, 2)?,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn person_unread(&self, tenant: &str, recipient: &str) -> Result<i64> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached(sql::PG_UNREAD).await?;
            Ok::<_, Fail>(c.query_one(&st, &[&tenant, &recipient]).await?.try_get(0)?)
        };
        run.await.map_err(Fail::into_store)
    }

    async fn set_status(
        &self,
        tenant: &str,
        conversation: &str,
        participant: &str,
        status: Option<(String, Millis)>,
        now: Millis,
    ) -> Result<()> {
        let status = &status;
        retrying(move || async move {
            let c = self.conn().await?;
            match status {
                Some((text, expires_at)) => {
                    let st = c.prepare_cached(&pg(sql::SET_STATUS)).await?;
                    c.execute(&st, &[&tenant, &conversation, &participant, text, expires_at, &now]).await?;
                }
                None => {
                    let st = c.prepare_cached(&pg(sql::CLEAR_STATUS)).await?;
                    c.execute(&st, &[&tenant, &conversation, &participant]).await?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn statuses(&self, tenant: &str, conversation: &str, now: Millis) -> Result<Vec<StatusRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached(&pg(sql::STATUSES)).await?;
            c.query(&st, &[&tenant, &conversation, &now])
                .await?
                .iter()
                .map(|r| {
                    Ok(StatusRecord {
                        participant: r.try_get(0)?,
                        text: r.try_get(1)?,
                        expires_at: r.try_get(2)?,
                        updated_at: r.try_get(3)?,
                    })
                })
                .collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }
}
