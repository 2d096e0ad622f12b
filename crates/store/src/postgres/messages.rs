//! The PostgreSQL side of [`MessageStore`]: accepts go to the writer task (group commit, in
//! `writer.rs`); reads run on the pool.

use async_trait::async_trait;
use switchboard_core::api::DeliveryState;
use tokio::sync::oneshot;

use super::error::Fail;
use super::rows::{attempts_of, message_from_row};
use super::writer::AcceptJob;
use super::{PostgresStore, lock};
use crate::sql::{DELIVERY_COLS, MESSAGE_COLS};
use crate::{AcceptOutcome, DeliveryRecord, MessageRecord, MessageStore, NewMessage, Result, StoreError};

#[async_trait]
impl MessageStore for PostgresStore {
    async fn accept(&self, messages: Vec<NewMessage>) -> Result<Vec<AcceptOutcome>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let sender = lock(&self.jobs).clone().ok_or_else(|| StoreError::unavailable("the store is shutting down"))?;
        sender
            .send(AcceptJob { messages, reply })
            .await
            .map_err(|_| StoreError::unavailable("the store writer stopped"))?;
        answer.await.map_err(|_| StoreError::unavailable("the write could not be committed"))?
    }

    async fn first_reply(&self, tenant: &str, id: &str, not_from: &str) -> Result<Option<MessageRecord>> {
        let run = async {
            let c = self.conn().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages WHERE tenant_id = $1 AND in_reply_to = $2 AND sender <> $3 \
                     ORDER BY created_at, id LIMIT 1"
                ))
                .await?;
            match c.query_opt(&st, &[&tenant, &id, &not_from]).await? {
                Some(r) => Ok::<_, Fail>(Some(message_from_row(&r, 0)?)),
                None => Ok(None),
            }
        };
        run.await.map_err(Fail::into_store)
    }

    async fn get_message(&self, tenant: &str, id: &str) -> Result<Option<(MessageRecord, Vec<DeliveryRecord>)>> {
        let run = async {
            let c = self.conn().await?;
            let sql_m = format!("SELECT {MESSAGE_COLS} FROM messages WHERE tenant_id = $1 AND id = $2");
            let sql_d =
                format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE tenant_id = $1 AND message_id = $2 ORDER BY seq");
            let (st_m, st_d) = tokio::try_join!(c.prepare_cached(&sql_m), c.prepare_cached(&sql_d))?;
            // Both queries go out together (the driver pipelines them): one round trip.
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant, &id];
            let (m, d) = tokio::try_join!(c.query_opt(&st_m, &params), c.query(&st_d, &params))?;
            let Some(m) = m else {
                return Ok(None);
            };
            let mut deliveries = Vec::with_capacity(d.len());
            for r in &d {
                let state: String = r.try_get(1)?;
                deliveries.push(DeliveryRecord {
                    recipient: r.try_get(0)?,
                    state: DeliveryState::parse(&state)
                        .ok_or_else(|| StoreError::Internal(format!("unknown delivery state `{state}`")))?,
                    attempts: attempts_of(r, 2)?,
                    updated_at: r.try_get(3)?,
                    delivered_at: r.try_get(4)?,
                    acked_at: r.try_get(5)?,
                    lease_expires_at: r.try_get(6)?,
                    last_error: r.try_get(7)?,
                });
            }
            Ok::<_, Fail>(Some((message_from_row(&m, 0)?, deliveries)))
        };
        run.await.map_err(Fail::into_store)
    }
}
