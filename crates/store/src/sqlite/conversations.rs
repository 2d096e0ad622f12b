//! The SQLite side of [`ConversationStore`]. Changes run on the writer thread; the history's
//! `seq` is given in `append_history`, called by the accept of each message that joins a
//! history, in the accept's transaction (the one writer orders them).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use super::audit::append_if;
use super::rows::message_from_row_at;
use super::{SqliteStore, internal};
use crate::conversations::{ConversationRecord, ConversationStore, HistoryQuery, ParticipantRecord, sql};
use crate::{MessageRecord, NewMessage, Result};

/// Gives `m` the next `seq` of its conversation and records it in the history. A
/// conversation that is not stored (it cannot be deleted, so this is only a message the
/// server did not route through one) leaves the message out of every history.
pub(super) fn append_history(c: &Connection, m: &NewMessage) -> rusqlite::Result<()> {
    let Some(cv) = &m.conversation_id else { return Ok(()) };
    let seq: Option<i64> = c
        .prepare_cached(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE tenant_id = ?1 AND id = ?2 RETURNING last_seq",
        )?
        .query_row(params![m.tenant, cv], |r| r.get(0))
        .optional()?;
    if let Some(seq) = seq {
        c.prepare_cached(
            "INSERT INTO conversation_messages (tenant_id, conversation_id, seq, message_id, sender, in_reply_to) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![m.tenant, cv, seq, m.id, m.sender, m.in_reply_to])?;
    }
    Ok(())
}

fn conversation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationRecord> {
    Ok(ConversationRecord {
        tenant: r.get(0)?,
        id: r.get(1)?,
        title: r.get(2)?,
        created_by: r.get(3)?,
        created_at: r.get(4)?,
        last_seq: r.get(5)?,
        participants: Vec::new(),
    })
}

fn participants(c: &Connection, tenant: &str, id: &str) -> Result<Vec<ParticipantRecord>> {
    let mut st = c.prepare_cached(sql::PARTICIPANTS).map_err(internal)?;
    let rows = st
        .query_map(params![tenant, id], |r| {
            Ok(ParticipantRecord { address: r.get(0)?, read_up_to: r.get(1)?, joined_at: r.get(2)? })
        })
        .map_err(internal)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
}

fn insert_participant(c: &Connection, tenant: &str, id: &str, address: &str, now: Millis) -> Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT INTO conversation_participants (tenant_id, conversation_id, address, read_up_to, joined_at) \
             VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut st| st.execute(params![tenant, id, address, now]))
        .map_err(internal)?;
    Ok(n > 0)
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create_conversation(&self, cv: ConversationRecord, audit: Option<NewAuditEvent>) -> Result<()> {
        self.write(move |c, _| {
            c.execute(
                "INSERT INTO conversations (tenant_id, id, title, created_by, created_at, last_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![cv.tenant, cv.id, cv.title, cv.created_by, cv.created_at],
            )
            .map_err(internal)?;
            for p in &cv.participants {
                insert_participant(c, &cv.tenant, &cv.id, &p.address, p.joined_at)?;
            }
            append_if(c, true, audit.as_ref())
        })
        .await
    }

    async fn get_conversation(&self, tenant: &str, id: &str) -> Result<Option<ConversationRecord>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            let found = c
                .prepare_cached(&sql::get())
                .and_then(|mut st| st.query_row(params![tenant, id], conversation_from_row).optional())
                .map_err(internal)?;
            let Some(mut cv) = found else { return Ok(None) };
            cv.participants = participants(c, &tenant, &id)?;
            Ok(Some(cv))
        })
        .await
    }

    async fn list_conversations(
        &self,
        tenant: &str,
        participant: Option<&str>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>> {
        let (tenant, participant) = (tenant.to_owned(), participant.map(str::to_owned));
        self.read(move |c| {
            let page = match &participant {
                Some(p) => {
                    let mut st = c.prepare_cached(&sql::list_of()).map_err(internal)?;
                    let rows = st
                        .query_map(params![tenant, after, limit as i64, p], conversation_from_row)
                        .map_err(internal)?;
                    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)?
                }
                None => {
                    let mut st = c.prepare_cached(&sql::list_all()).map_err(internal)?;
                    let rows =
                        st.query_map(params![tenant, after, limit as i64], conversation_from_row).map_err(internal)?;
                    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)?
                }
            };
            let mut out = Vec::with_capacity(page.len());
            for mut cv in page {
                cv.participants = participants(c, &tenant, &cv.id)?;
                out.push(cv);
            }
            Ok(out)
        })
        .await
    }

    async fn add_participant(
        &self,
        tenant: &str,
        id: &str,
        address: &str,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<bool>> {
        let (tenant, id, address) = (tenant.to_owned(), id.to_owned(), address.to_owned());
        self.write(move |c, _| {
            let exists = c
                .query_row("SELECT 1 FROM conversations WHERE tenant_id = ?1 AND id = ?2", params![tenant, id], |_| {
                    Ok(())
                })
                .optional()
                .map_err(internal)?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let added = insert_participant(c, &tenant, &id, &address, now)?;
            append_if(c, added, audit.as_ref())?;
            Ok(Some(added))
        })
        .await
    }

    async fn remove_participant(
        &self,
        tenant: &str,
        id: &str,
        address: &str,
        audit: Option<NewAuditEvent>,
    ) -> Result<bool> {
        let (tenant, id, address) = (tenant.to_owned(), id.to_owned(), address.to_owned());
        self.write(move |c, _| {
            let n = c
                .execute(
                    "DELETE FROM conversation_participants WHERE tenant_id = ?1 AND conversation_id = ?2 AND address = ?3",
                    params![tenant, id, address],
                )
                .map_err(internal)?;
            append_if(c, n > 0, audit.as_ref())?;
            Ok(n > 0)
        })
        .await
    }

    async fn conversation_history(&self, tenant: &str, id: &str, q: HistoryQuery) -> Result<Vec<(i64, MessageRecord)>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |c| {
            let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, message_from_row_at(r, 1)?));
            let limit = q.limit as i64;
            let rows = match &q.thread {
                Some(root) => {
                    let mut st = c.prepare_cached(&sql::thread()).map_err(internal)?;
                    st.query_map(params![tenant, id, q.after_seq, limit, root], row)
                        .map_err(internal)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                }
                None => {
                    let mut st = c.prepare_cached(&sql::history()).map_err(internal)?;
                    st.query_map(params![tenant, id, q.after_seq, limit], row)
                        .map_err(internal)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                }
            };
            rows.map_err(internal)
        })
        .await
    }

    async fn mark_read(&self, tenant: &str, id: &str, participant: &str, up_to: i64) -> Result<Option<i64>> {
        let (tenant, id, participant) = (tenant.to_owned(), id.to_owned(), participant.to_owned());
        self.write(move |c, _| {
            c.prepare_cached(sql::MARK_READ)
                .and_then(|mut st| st.query_row(params![tenant, id, participant, up_to], |r| r.get(0)).optional())
                .map_err(internal)
        })
        .await
    }

    async fn unread(&self, tenant: &str, id: &str, participant: &str, after_seq: i64) -> Result<i64> {
        let (tenant, id, participant) = (tenant.to_owned(), id.to_owned(), participant.to_owned());
        self.read(move |c| {
            c.prepare_cached(sql::UNREAD)
                .and_then(|mut st| st.query_row(params![tenant, id, after_seq, participant], |r| r.get(0)))
                .map_err(internal)
        })
        .await
    }
}
