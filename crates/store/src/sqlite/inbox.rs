//! The SQLite side of [`InboxStore`]: reads on the reader pool, status changes on the writer.

use async_trait::async_trait;
use rusqlite::params;
use switchboard_core::time::Millis;

use super::rows::{message_from_row_at, state_of};
use super::{SqliteStore, internal};
use crate::Result;
use crate::inbox::{InboxItem, InboxQuery, InboxStore, StatusRecord, sql};

#[async_trait]
impl InboxStore for SqliteStore {
    async fn person_inbox(&self, tenant: &str, q: InboxQuery) -> Result<Vec<InboxItem>> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql::inbox()).map_err(internal)?;
            let pattern = q.text.as_deref().map(sql::pattern);
            let rows = st
                .query_map(
                    params![
                        tenant,
                        q.recipient,
                        q.before.unwrap_or(i64::MAX),
                        q.unread_only as i64,
                        q.from,
                        pattern,
                        q.auto_only as i64,
                        q.limit.max(1) as i64
                    ],
                    |r| {
                        let state: String = r.get(1)?;
                        Ok(InboxItem { seq: r.get(0)?, state: state_of(&state)?, message: message_from_row_at(r, 2)? })
                    },
                )
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }

    async fn person_unread(&self, tenant: &str, recipient: &str) -> Result<i64> {
        let (tenant, recipient) = (tenant.to_owned(), recipient.to_owned());
        self.read(move |c| {
            c.prepare_cached(sql::UNREAD)
                .and_then(|mut st| st.query_row(params![tenant, recipient], |r| r.get(0)))
                .map_err(internal)
        })
        .await
    }

    async fn set_status(
        &self,
        tenant: &str,
        conversation: &str,
        participant: &str,
        status: Option<(String, Millis)>,
        now: Millis,
    ) -> Result<()> {
        let (tenant, conversation, participant) = (tenant.to_owned(), conversation.to_owned(), participant.to_owned());
        self.write(move |c, _| {
            match status {
                Some((text, expires_at)) => c
                    .prepare_cached(sql::SET_STATUS)
                    .and_then(|mut st| st.execute(params![tenant, conversation, participant, text, expires_at, now])),
                None => c
                    .prepare_cached(sql::CLEAR_STATUS)
                    .and_then(|mut st| st.execute(params![tenant, conversation, participant])),
            }
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn statuses(&self, tenant: &str, conversation: &str, now: Millis) -> Result<Vec<StatusRecord>> {
        let (tenant, conversation) = (tenant.to_owned(), conversation.to_owned());
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::STATUSES).map_err(internal)?;
            let rows = st
                .query_map(params![tenant, conversation, now], |r| {
                    Ok(StatusRecord {
                        participant: r.get(0)?,
                        text: r.get(1)?,
                        expires_at: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
        .await
    }
}
