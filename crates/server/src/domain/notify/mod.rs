//! E-mail notifications: a new request addressed to a person (a delivery to `user:<id>`,
//! which is how `group:` and approvals reach people too) is e-mailed to them, with a signed,
//! expiring link to it; per-person preferences turn it off or hold it in quiet hours.
//!
//! Nothing here is on the accept path. The [`notifier`] task of each node, once a tick, moves
//! each tenant's cursor over new deliveries into the store's outbox (the store decides which
//! are requests: not a reply to a message the person sent), then claims due outbox rows and
//! sends them. The outbox makes it durable and once across nodes: a row is claimed by one
//! node for a hold, marked sent after the SMTP server took it, and comes due again if the
//! node dies in between (sent again, never skipped). Quiet hours put a person's rows back due
//! at their end, where they are claimed together and sent as one digest.
//!
//! - `links.rs`: the signed `/open/<token>` links. `mail.rs`: the e-mail's words and SMTP.

pub mod links;
pub mod mail;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::api::{DeliveryState, NotificationPrefs, Part, check_notification_prefs};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::principal::Principal;
use switchboard_core::time::{Millis, now_ms, rfc3339};
use switchboard_store::notify::{Collect, OutboxItem};
use switchboard_store::{MessageRecord, Store, StoreError};
use tokio::sync::watch;

use crate::error::ApiError;
use links::{LINK_LIFETIME_MS, LinkError, Links, OpenLink};
use mail::{Mailer, Notice, compose};

/// Deliveries older than this are not e-mailed (history, or a backlog of a long outage).
const MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// Deliveries one scan of a tenant reads at most.
const SCAN_LIMIT: usize = 2000;
/// Outbox rows claimed per tick.
const CLAIM_LIMIT: usize = 200;
/// How long a claim holds before another node may send the row: longer than an SMTP
/// exchange can take (lettre's timeout is 30 s per command).
const HOLD_MS: i64 = 5 * 60 * 1000;
/// After a failed send, the rows are tried again this much later.
const RETRY_MS: i64 = 60 * 1000;

/// Preferences and links: what the API and the web app ask of notifications.
pub struct Notifications {
    store: Arc<dyn Store>,
    links: Links,
}

/// Where a good link leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// A path on this site: `/approvals/<id>` or `/messages/<id>`.
    pub path: String,
    pub link: OpenLink,
}

/// The approval a message asks for, if it is an approval request: `approval_id` in its
/// metadata, or in a `data` part.
fn approval_of(m: &MessageRecord) -> Option<String> {
    let id_in = |v: &serde_json::Value| v.get("approval_id").and_then(|a| a.as_str()).map(str::to_owned);
    let meta = m.metadata.as_deref().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
    if let Some(id) = meta.as_ref().and_then(id_in) {
        return Some(id);
    }
    let parts: Vec<Part> = serde_json::from_str(&m.parts).unwrap_or_default();
    parts.iter().find_map(|p| match p {
        Part::Data { data } => id_in(data),
        _ => None,
    })
}

/// The id part of a path segment, if it is safe to put in a path as it is.
fn path_safe(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Notifications {
    /// Reads (or, on a new store, makes) the hub's link key.
    pub async fn open(store: Arc<dyn Store>) -> Result<Notifications, StoreError> {
        let candidate: [u8; 32] = rand::random();
        let key = store.link_key(candidate.to_vec()).await?;
        Ok(Notifications { store, links: Links::new(key) })
    }

    /// The signed link to `message` for `user`, valid for 72 hours from `now`.
    pub fn link(&self, tenant: &str, user: &str, message: &str, now: Millis) -> String {
        let expires_at = now + LINK_LIFETIME_MS;
        self.links.sign(&OpenLink { tenant: tenant.into(), user: user.into(), message: message.into(), expires_at })
    }

    /// Where the link `token` leads at `now`: the approval the message asks for, else the
    /// message. `Invalid` too when the message is gone.
    pub async fn follow(&self, token: &str, now: Millis) -> Result<Result<Followed, LinkError>, ApiError> {
        let link = match self.links.verify(token, now) {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let Some((m, _)) = self.store.get_message(&link.tenant, &link.message).await? else {
            return Ok(Err(LinkError::Invalid));
        };
        let path = match approval_of(&m).filter(|a| path_safe(a)) {
            Some(a) => format!("/approvals/{a}"),
            None if path_safe(&m.id) => format!("/messages/{}", m.id),
            None => return Ok(Err(LinkError::Invalid)),
        };
        Ok(Ok(Followed { path, link }))
    }

    /// The caller's preferences (the defaults when they set none). People only.
    pub async fn prefs(&self, by: &Principal) -> Result<NotificationPrefs, ApiError> {
        let user = crate::domain::people::users::me(by)?;
        let stored = self.store.notify_prefs(by.tenant.as_str(), user.as_str()).await?;
        Ok(stored.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    /// Replaces the caller's preferences, audited. People only.
    pub async fn put_prefs(&self, by: &Principal, p: NotificationPrefs) -> Result<NotificationPrefs, ApiError> {
        let user = crate::domain::people::users::me(by)?;
        check_notification_prefs(&p).map_err(ApiError::fields)?;
        let text = serde_json::to_string(&p).map_err(|e| ApiError::Internal(e.to_string()))?;
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::NotificationPrefsUpdate, format!("user:{user}"), now)
            .with_detail(serde_json::json!({ "email": p.email, "quiet_hours": p.quiet_hours.is_some() }));
        if !self.store.put_notify_prefs(by.tenant.as_str(), user.as_str(), text, now, Some(audit)).await? {
            return Err(ApiError::NotFound(format!("user {user} does not exist any more")));
        }
        tracing::info!(user = %user, email = p.email, "notification preferences set");
        Ok(p)
    }
}

/// What a node's notifier needs.
pub struct Notifier {
    pub store: Arc<dyn Store>,
    pub notifications: Arc<Notifications>,
    pub mailer: Mailer,
    /// The hub's public base URL, without a trailing `/`.
    pub base_url: String,
    /// This node's name in claims.
    pub node: String,
    pub interval_ms: u64,
}

/// The notifier task: every `interval_ms`, collects and sends, until shutdown.
pub async fn notifier(n: Notifier, mut shutdown: watch::Receiver<bool>) {
    let tick = Duration::from_millis(n.interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
        if let Err(e) = n.tick(now_ms()).await {
            tracing::warn!(error = %e, "could not send notification e-mails this time");
        }
    }
}

impl Notifier {
    async fn tick(&self, now: Millis) -> Result<(), StoreError> {
        let mut after = None;
        loop {
            let tenants = self.store.list_tenants(after.clone(), 500).await?;
            for t in &tenants {
                let k = Collect { tenant: t.id.clone(), now, oldest: now - MAX_AGE_MS, limit: SCAN_LIMIT };
                self.store.collect_notifications(k).await?;
            }
            match tenants.last() {
                Some(t) if tenants.len() == 500 => after = Some(t.id.clone()),
                _ => break,
            }
        }
        let claimed = self.store.claim_notifications(now, HOLD_MS, &self.node, CLAIM_LIMIT).await?;
        let mut per_person: BTreeMap<(String, String), Vec<OutboxItem>> = BTreeMap::new();
        for i in claimed {
            per_person.entry((i.tenant.clone(), i.user_id.clone())).or_default().push(i);
        }
        for ((tenant, user), items) in per_person {
            self.person(&tenant, &user, items, now).await?;
        }
        Ok(())
    }

    /// Sends one person their claimed rows as one e-mail, or holds them to the end of their
    /// quiet hours, or settles them without one (e-mail off, already read, gone).
    async fn person(&self, tenant: &str, user: &str, items: Vec<OutboxItem>, now: Millis) -> Result<(), StoreError> {
        let Some(person) = self.store.get_user(tenant, user).await? else {
            return self.store.finish_notifications(&items, now).await;
        };
        let prefs: NotificationPrefs = self
            .store
            .notify_prefs(tenant, user)
            .await?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if !prefs.email {
            return self.store.finish_notifications(&items, now).await;
        }
        if let Some(until) = prefs.quiet_hours.as_ref().and_then(|q| q.quiet_until(now)) {
            return self.store.defer_notifications(&items, until).await;
        }
        let me = format!("user:{user}");
        let mut notices = Vec::with_capacity(items.len());
        for i in &items {
            let Some((m, deliveries)) = self.store.get_message(tenant, &i.message_id).await? else { continue };
            let read = deliveries.iter().any(|d| d.recipient == me && d.state == DeliveryState::Acked);
            if read {
                continue;
            }
            notices.push(Notice {
                from: self.sender_name(tenant, &m.sender).await?,
                text: text_of(&m.parts),
                at: rfc3339(m.created_at),
                link: format!("{}/open/{}", self.base_url, self.notifications.link(tenant, user, &m.id, now)),
            });
        }
        if notices.is_empty() {
            return self.store.finish_notifications(&items, now).await;
        }
        let (subject, body) = compose(&notices, LINK_LIFETIME_MS / 3_600_000);
        match self.mailer.send(&person.name, &person.email, &subject, body).await {
            Ok(()) => {
                tracing::debug!(user, requests = notices.len(), "notification e-mail sent");
                self.store.finish_notifications(&items, now_ms()).await
            }
            Err(error) => {
                tracing::warn!(user, %error, "could not send a notification e-mail; trying again in a minute");
                self.store.defer_notifications(&items, now + RETRY_MS).await
            }
        }
    }

    /// Who sent a message, as a person reads it: the agent's or person's name.
    async fn sender_name(&self, tenant: &str, sender: &str) -> Result<String, StoreError> {
        if let Some(id) = sender.strip_prefix("agent:")
            && let Some(a) = self.store.get_agent(tenant, id).await?
        {
            return Ok(a.name);
        }
        if let Some(id) = sender.strip_prefix("user:")
            && let Some(u) = self.store.get_user(tenant, id).await?
        {
            return Ok(u.name);
        }
        Ok(match sender {
            "admin" | "operator" => "The administrator".into(),
            other => other.into(),
        })
    }
}

/// The first text part of a message, or what kinds of parts it has.
fn text_of(parts: &str) -> String {
    let parts: Vec<Part> = serde_json::from_str(parts).unwrap_or_default();
    parts
        .iter()
        .find_map(|p| match p {
            Part::Text { text } => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "(a request with data or files; open it to see)".into())
}
