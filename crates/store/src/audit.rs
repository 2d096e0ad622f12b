//! The audit log: per tenant, an append-only, hash-chained record of who changed what. One
//! area of [`Store`](crate::Store).
//!
//! **Written with the change.** An entry must exist exactly when its change does, so the store
//! writes it in the transaction of the change: the mutating calls the audit covers take an
//! `audit: Option<NewAuditEvent>` (`create_agent`, `update_agent`, `delete_agent`,
//! `put_push_settings` for a webhook secret rotation, `put_tenant_push_settings`,
//! `replay_dead`, `purge_dead`). The entry is appended only when the call changed something
//! (a delete of an unknown agent, an update that found nothing or a purge that matched
//! nothing writes none); if the append fails, the change is rolled back. Replays and purges
//! add `"count"` (how many deliveries they changed) to the entry's detail. Events with no
//! change of their own (a login, a failed one) use [`AuditStore::append_audit`].
//!
//! **One chain per tenant, even across nodes.** The store assigns `seq` and computes
//! `prev_hash` and `hash` ([`switchboard_core::audit`]) inside the transaction, from the
//! tenant's chain head (`audit_heads`: last `seq` and `hash`). On PostgreSQL the head row is
//! locked `FOR UPDATE` for the rest of the transaction, so appends on several nodes queue up
//! behind each other instead of forking the chain; it is taken last in a transaction, after
//! the change's own rows, so it is held briefly and always in the same order. SQLite has one
//! writer. The head also witnesses the end of the chain: removing the last entries leaves the
//! head ahead of them, which [`AuditStore::verify_audit`] reports.
//!
//! **Append-only.** No method updates or deletes an entry.

use async_trait::async_trait;
use switchboard_core::api::AuditEvent;
use switchboard_core::audit::{ChainBreak, ChainCheck, NewAuditEvent};
use switchboard_core::time::Millis;

use crate::error::Result;

/// Which entries a listing returns. All conditions hold together.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries by this actor (`admin`, `agent:<id>`, …).
    pub actor: Option<String>,
    /// Only entries of this action text (`agent.register`).
    pub action: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<Millis>,
    /// Only entries after this `seq` (the cursor of the previous page).
    pub after: Option<i64>,
    pub limit: usize,
}

/// What checking one tenant's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerdict {
    pub tenant: String,
    /// Entries stored for the tenant.
    pub entries: u64,
    /// The first entry that shows tampering, if one does.
    pub broken: Option<ChainBreak>,
}

/// Entries read per page by [`AuditStore::verify_audit`].
const VERIFY_PAGE: usize = 1000;

/// The audit log (see the module documentation for how entries join their change).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry to its tenant's chain in a transaction of its own; returns it as
    /// stored, with its `seq` and hashes.
    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent>;

    /// Entries matching the filter, in `seq` order, at most `limit` (at least 1).
    async fn list_audit(&self, tenant: &str, filter: AuditFilter) -> Result<Vec<AuditEvent>>;

    /// The tenant's chain head: its last entry's `seq` as recorded apart from the entries
    /// (0 for a tenant without entries).
    async fn audit_head(&self, tenant: &str) -> Result<i64>;

    /// The tenants that have an audit chain (a head or any entry), by id.
    async fn audit_tenants(&self) -> Result<Vec<String>>;

    /// Whether the tenant audits sends and acks (`message.send`, `delivery.ack`); off
    /// unless set, to keep the hot path fast.
    async fn audit_sends(&self, tenant: &str) -> Result<bool>;
    /// Turns auditing of sends and acks on or off, with the entry that records the change
    /// in the same transaction.
    async fn set_audit_sends(&self, tenant: &str, on: bool, audit: Option<NewAuditEvent>) -> Result<()>;

    /// A page of the whole log for export: every entry after `after`, in `seq` order.
    async fn export_audit(&self, tenant: &str, after: i64, limit: usize) -> Result<Vec<AuditEvent>> {
        self.list_audit(tenant, AuditFilter { after: Some(after), limit, ..Default::default() }).await
    }

    /// Reads the tenant's entries from the tables, page by page, and checks the chain: every
    /// entry's hash, its link to the one before, gapless `seq` from 1, and the head. Names the
    /// first bad entry. Safe to run while entries are being appended.
    async fn verify_audit(&self, tenant: &str) -> Result<AuditVerdict> {
        let head = self.audit_head(tenant).await?;
        let mut check = ChainCheck::default();
        let (mut entries, mut broken, mut after) = (0u64, None, 0);
        loop {
            let page = self.export_audit(tenant, after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            entries += page.len() as u64;
            if broken.is_none() {
                broken = page.iter().find_map(|e| check.next(e).err());
            }
            if page.len() < VERIFY_PAGE {
                break;
            }
        }
        if broken.is_none() {
            // The chain may grow while it is read (a hub appending): the entries read past
            // the head read first are genuine if the head now covers them. Entries never go
            // away, so fewer entries than that first head is a removal.
            let last = check.checked();
            let head = if last > head { self.audit_head(tenant).await?.min(last) } else { head };
            broken = check.finish(head).err();
        }
        Ok(AuditVerdict { tenant: tenant.to_owned(), entries, broken })
    }
}

/// The columns of `audit_events` an `AuditEvent` is read from.
pub(crate) const AUDIT_COLS: &str = "seq, at, actor, action, target, detail, hash, prev_hash";

/// Reads a stored `detail`. Text that is not JSON (edited by hand) is kept as a JSON string,
/// which cannot hash as the entry did, so verification names the entry instead of failing.
pub(crate) fn detail_from_text(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// `detail` with `"count": n` added (replays and purges report how many they changed).
pub(crate) fn with_count(mut event: NewAuditEvent, n: u64) -> NewAuditEvent {
    match &mut event.detail {
        serde_json::Value::Object(map) => {
            map.insert("count".into(), n.into());
        }
        other => *other = serde_json::json!({ "count": n, "detail": other.take() }),
    }
    event
}

/// `detail` with `"ids"` (the acked message ids) and `"count"` added: an ack's entry names
/// what it acknowledged, which is known only once the store has applied it.
pub(crate) fn with_ids(event: NewAuditEvent, ids: &[crate::Acked]) -> NewAuditEvent {
    let mut event = with_count(event, ids.len() as u64);
    if let serde_json::Value::Object(map) = &mut event.detail {
        map.insert("ids".into(), ids.iter().map(|a| serde_json::Value::from(a.id.as_str())).collect());
    }
    event
}

/// The listing statement for `f`, with numbered placeholders marked `mark` (`?` for SQLite,
/// `$` for PostgreSQL), bound in this order: tenant, after, then actor, action and since when
/// the filter has them, then the limit.
pub(crate) fn list_sql(f: &AuditFilter, mark: char) -> String {
    let mut sql = format!("SELECT {AUDIT_COLS} FROM audit_events WHERE tenant_id = {mark}1 AND seq > {mark}2");
    let mut n = 2;
    for (present, cond) in
        [(f.actor.is_some(), "actor ="), (f.action.is_some(), "action ="), (f.since.is_some(), "at >=")]
    {
        if present {
            n += 1;
            sql += &format!(" AND {cond} {mark}{n}");
        }
    }
    sql += &format!(" ORDER BY seq LIMIT {mark}{}", n + 1);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_binds_only_the_filters_given() {
        let f = AuditFilter { action: Some("login".into()), since: Some(5), ..Default::default() };
        assert_eq!(
            list_sql(&f, '$'),
            "SELECT seq, at, actor, action, target, detail, hash, prev_hash FROM audit_events \
             WHERE tenant_id = $1 AND seq > $2 AND action = $3 AND at >= $4 ORDER BY seq LIMIT $5"
        );
        assert!(list_sql(&AuditFilter::default(), '?').ends_with("seq > ?2 ORDER BY seq LIMIT ?3"));
    }
}
