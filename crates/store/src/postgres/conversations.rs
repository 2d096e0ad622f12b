//! The PostgreSQL side of [`ConversationStore`]. A history's `seq` is given by the accept
//! writer (`append_history`, in the group's transaction): `last_seq` is incremented under the
//! conversation row's lock, so writers on several nodes take turns per conversation.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;
use tokio_postgres::Row;

use super::PostgresStore;
use super::audit::append_if;
use super::error::{Fail, retrying};
use super::rows::message_from_row;
use crate::conversations::{ConversationRecord, ConversationStore, HistoryQuery, ParticipantRecord, sql};
use crate::{MessageRecord, NewMessage, Result};

/// Gives each of `msgs` (new messages that join a history, in accept order) the next `seq`
/// of its conversation, and records them in the history: one statement takes the numbers,
/// one records them. The rows are locked in (tenant, id) order, the same in every writer, so
/// two nodes' groups that share conversations wait for each other instead of deadlocking.
/// A conversation that is not stored leaves its messages out of every history.
pub(super) async fn append_history(c: &Transaction<'_>, msgs: &[&NewMessage]) -> Result<(), Fail> {
    let mut wanted: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for m in msgs {
        if let Some(cv) = m.conversation_id.as_deref() {
            *wanted.entry((m.tenant.as_str(), cv)).or_default() += 1;
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let t: Vec<&str> = wanted.keys().map(|k| k.0).collect();
    let cv: Vec<&str> = wanted.keys().map(|k| k.1).collect();
    let n: Vec<i64> = wanted.values().copied().collect();
    let st = c
        .prepare_cached(
            "WITH wanted AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) AS w(t, cv, n)), \
             locked AS (SELECT c.tenant_id, c.id FROM conversations c JOIN wanted w ON c.tenant_id = w.t AND c.id = w.cv \
                        ORDER BY c.tenant_id, c.id FOR UPDATE OF c) \
             UPDATE conversations c SET last_seq = c.last_seq + w.n FROM wanted w, locked l \
             WHERE c.tenant_id = w.t AND c.id = w.cv AND l.tenant_id = c.tenant_id AND l.id = c.id \
             RETURNING c.tenant_id, c.id, c.last_seq - w.n",
        )
        .await?;
    // The seq before each conversation's first message of this group.
    let mut next: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in c.query(&st, &[&t, &cv, &n]).await? {
        next.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
    }
    let (mut h_t, mut h_cv, mut h_seq, mut h_id, mut h_from, mut h_reply) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in msgs {
        let Some(cv) = m.conversation_id.as_deref() else { continue };
        let Some(seq) = next.get_mut(&(m.tenant.clone(), cv.to_owned())) else { continue };
        *seq += 1;
        h_t.push(m.tenant.as_str());
        h_cv.push(cv);
        h_seq.push(*seq);
        h_id.push(m.id.as_str());
        h_from.push(m.sender.as_str());
        h_reply.push(m.in_reply_to.as_deref());
    }
    if !h_t.is_empty() {
        let st = c
            .prepare_cached(
                "INSERT INTO conversation_messages (tenant_id, conversation_id, seq, message_id, sender, in_reply_to) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[])",
            )
            .await?;
        c.execute(&st, &[&h_t, &h_cv, &h_seq, &h_id, &h_from, &h_reply]).await?;
    }
    Ok(())
}

fn conversation_from_row(r: &Row) -> Result<ConversationRecord, Fail> {
    Ok(ConversationRecord {
        tenant: r.try_get(0)?,
        id: r.try_get(1)?,
        title: r.try_get(2)?,
        created_by: r.try_get(3)?,
        created_at: r.try_get(4)?,
        last_seq: r.try_get(5)?,
        participants: Vec::new(),
    })
}

fn participant_from_row(r: &Row) -> Result<ParticipantRecord, Fail> {
    Ok(ParticipantRecord { address: r.try_get(0)?, read_up_to: r.try_get(1)?, joined_at: r.try_get(2)? })
}

/// Fills in each conversation's participants: one query for the whole page.
async fn with_participants(
    c: &deadpool_postgres::Object,
    tenant: &str,
    mut page: Vec<ConversationRecord>,
) -> Result<Vec<ConversationRecord>, Fail> {
    if page.is_empty() {
        return Ok(page);
    }
    let ids: Vec<&str> = page.iter().map(|cv| cv.id.as_str()).collect();
    let st = c
        .prepare_cached(
            "SELECT conversation_id, address, read_up_to, joined_at FROM conversation_participants \
             WHERE tenant_id = $1 AND conversation_id = ANY($2) ORDER BY joined_at, address",
        )
        .await?;
    let mut by_id: BTreeMap<String, Vec<ParticipantRecord>> = BTreeMap::new();
    for r in c.query(&st, &[&tenant, &ids]).await? {
        let id: String = r.try_get(0)?;
        by_id.entry(id).or_default().push(ParticipantRecord {
            address: r.try_get(1)?,
            read_up_to: r.try_get(2)?,
            joined_at: r.try_get(3)?,
        });
    }
    for cv in &mut page {
        cv.participants = by_id.remove(&cv.id).unwrap_or_default();
    }
    Ok(page)
}

async fn insert_participant(
    tx: &Transaction<'_>,
    tenant: &str,
    id: &str,
    address: &str,
    now: Millis,
) -> Result<bool, Fail> {
    let n = tx
        .execute(
            "INSERT INTO conversation_participants (tenant_id, conversation_id, address, read_up_to, joined_at) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING",
            &[&tenant, &id, &address, &now],
        )
        .await?;
    Ok(n > 0)
}

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn create_conversation(&self, cv: ConversationRecord, audit: Option<NewAuditEvent>) -> Result<()> {
        let (cv, audit) = (&cv, audit.as_ref());
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO conversations (tenant_id, id, title, created_by, created_at, last_seq) \
                 VALUES ($1, $2, $3, $4, $5, 0)",
                &[&cv.tenant, &cv.id, &cv.title, &cv.created_by, &cv.created_at],
            )
            .await?;
            for p in &cv.participants {
                insert_participant(&tx, &cv.tenant, &cv.id, &p.address, p.joined_at).await?;
            }
            append_if(&tx, true, audit).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn get_conversation(&self, tenant: &str, id: &str) -> Result<Option<ConversationRecord>> {
        let run = async {
            let c = self.conn().await?;
            let (sql_c, sql_p) = (sql::pg(&sql::get()), sql::pg(sql::PARTICIPANTS));
            let (st_c, st_p) = tokio::try_join!(c.prepare_cached(&sql_c), c.prepare_cached(&sql_p))?;
            // Both go out together (the driver pipelines them): one round trip.
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant, &id];
            let (found, people) = tokio::try_join!(c.query_opt(&st_c, &params), c.query(&st_p, &params))?;
            let Some(row) = found else { return Ok(None) };
            let mut cv = conversation_from_row(&row)?;
            cv.participants = people.iter().map(participant_from_row).collect::<Result<_, Fail>>()?;
            Ok::<_, Fail>(Some(cv))
        };
        run.await.map_err(Fail::into_store)
    }

    async fn list_conversations(
        &self,
        tenant: &str,
        participant: Option<&str>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>> {
        let run = async {
            let c = self.conn().await?;
            let limit = limit as i64;
            let rows = match participant {
                Some(p) => {
                    let st = c.prepare_cached(&sql::pg(&sql::list_of())).await?;
                    c.query(&st, &[&tenant, &after, &limit, &p]).await?
                }
                None => {
                    let st = c.prepare_cached(&sql::pg(&sql::list_all())).await?;
                    c.query(&st, &[&tenant, &after, &limit]).await?
                }
            };
            let page = rows.iter().map(conversation_from_row).collect::<Result<Vec<_>, Fail>>()?;
            with_participants(&c, tenant, page).await
        };
        run.await.map_err(Fail::into_store)
    }

    async fn add_participant(
        &self,
        tenant: &str,
        id: &str,
        address: &str,
        now: Millis,
        audit: Option<NewAuditEvent>,
    ) -> Result<Option<bool>> {
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let exists = tx
                .query_opt("SELECT 1 FROM conversations WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])
                .await?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let added = insert_participant(&tx, tenant, id, address, now).await?;
            append_if(&tx, added, audit).await?;
            tx.commit().await?;
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
        let audit = audit.as_ref();
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute(
                    "DELETE FROM conversation_participants \
                     WHERE tenant_id = $1 AND conversation_id = $2 AND address = $3",
                    &[&tenant, &id, &address],
                )
                .await?;
            append_if(&tx, n > 0, audit).await?;
            tx.commit().await?;
            Ok(n > 0)
        })
        .await
    }

    async fn conversation_history(&self, tenant: &str, id: &str, q: HistoryQuery) -> Result<Vec<(i64, MessageRecord)>> {
        let run = async {
            let c = self.conn().await?;
            let limit = q.limit as i64;
            let rows = match &q.thread {
                Some(root) => {
                    let st = c.prepare_cached(&sql::pg(&sql::thread())).await?;
                    c.query(&st, &[&tenant, &id, &q.after_seq, &limit, root]).await?
                }
                None => {
                    let st = c.prepare_cached(&sql::pg(&sql::history())).await?;
                    c.query(&st, &[&tenant, &id, &q.after_seq, &limit]).await?
                }
            };
            rows.iter().map(|r| Ok((r.try_get(0)?, message_from_row(r, 1)?))).collect::<Result<Vec<_>, Fail>>()
        };
        run.await.map_err(Fail::into_store)
    }

    async fn mark_read(&self, tenant: &str, id: &str, participant: &str, up_to: i64) -> Result<Option<i64>> {
        retrying(move || async move {
            let c = self.conn().await?;
            let st = c.prepare_cached(&sql::pg(sql::MARK_READ)).await?;
            let row = c.query_opt(&st, &[&tenant, &id, &participant, &up_to]).await?;
            row.map(|r| r.try_get(0)).transpose().map_err(Fail::from)
        })
        .await
    }

    async fn unread(&self, tenant: &str, id: &str, participant: &str, after_seq: i64) -> Result<i64> {
        let run = async {
            let c = self.conn().await?;
            let st = c.prepare_cached(&sql::pg(sql::UNREAD)).await?;
            Ok::<_, Fail>(c.query_one(&st, &[&tenant, &id, &after_seq, &participant]).await?.try_get(0)?)
        };
        run.await.map_err(Fail::into_store)
    }
}
