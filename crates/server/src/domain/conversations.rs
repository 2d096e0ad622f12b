//! Conversations: agents and people sharing one history in one total order.
//!
//! Who may do what. A participant (an agent or a person listed in the conversation) reads
//! it, sends to it, marks it read and adds or removes participants; the tenant's
//! administrators (the admin token, the operator, owners and admins signed in) may do all of
//! that but mark it read, without taking part. For everyone else a conversation does not
//! exist: reads answer 404 `not_found`, and a send to `conversation:<id>` 422
//! `unknown_recipient`, the answers for a conversation that is not there. A removed
//! participant loses access to the history too, as if it had never taken part.
//!
//! Which messages join a history. A send to `conversation:<id>` (its `conversation_id` is
//! set to `<id>`), and a send to any address whose `conversation_id` names a conversation of
//! the tenant that the sender may send to (a reply to one agent recorded in the shared
//! history). A `conversation_id` that names no stored conversation stays a free-form label,
//! as before conversations existed; one that names a conversation the sender takes no part
//! in is refused (422 `invalid_body` on `conversation_id`).

use std::sync::Arc;

use switchboard_core::api::{
    ConversationMessage, CreateConversation, FieldError, MAX_PARTICIPANTS, ParticipantStatus, PutStatus, check_create,
};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::{now_ms, rfc3339};
use switchboard_core::{Address, Principal, Recipient};
use switchboard_store::Store;
use switchboard_store::conversations::{ConversationRecord, HistoryQuery, ParticipantRecord};

use super::delivery::message_view;
use crate::error::ApiError;

/// The longest status text, in characters.
const MAX_STATUS: usize = 200;
/// How long a status holds unless given, and at most, in seconds.
const DEFAULT_STATUS_SECONDS: u32 = 60;
const MAX_STATUS_SECONDS: u32 = 3600;

/// The answer for a conversation the caller cannot see (there is none, or it takes no part).
pub fn no_such_conversation(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "conversation {id} is not one you take part in; list yours with `switchboard conversation list`"
    ))
}

/// Whether `by` may act in conversation `c`: a participant, or an administrator of the tenant.
pub fn may_enter(by: &Principal, c: &ConversationRecord) -> bool {
    by.is_admin() || takes_part(by, c)
}

fn takes_part(by: &Principal, c: &ConversationRecord) -> bool {
    let me = by.sender();
    c.participants.iter().any(|p| p.address == me)
}

/// Whether the text could be a conversation id (a UUID, as the hub gives them): a free-form
/// `conversation_id` that is not one costs no store read.
fn could_be_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// The conversation a message joins, if any (see the module's rules), and the message's
/// `conversation_id` set to it for a send to `conversation:<id>`.
pub async fn joins(
    store: &dyn Store,
    by: &Principal,
    to: &Address,
    conversation_id: &mut Option<String>,
) -> Result<Option<ConversationRecord>, ApiError> {
    let tenant = by.tenant.as_str();
    if let Address::Conversation(id) = to {
        if conversation_id.as_deref().is_some_and(|c| c != id.as_str()) {
            return Err(ApiError::fields(vec![FieldError {
                path: "conversation_id".into(),
                message: format!("must be the conversation the message is sent to ({id}), or left out"),
            }]));
        }
        let found = store.get_conversation(tenant, id.as_str()).await?.filter(|c| may_enter(by, c));
        let Some(c) = found else {
            return Err(ApiError::UnknownRecipient(format!(
                "conversation {id} is not one you take part in; list yours with `switchboard conversation list`"
            )));
        };
        *conversation_id = Some(id.to_string());
        return Ok(Some(c));
    }
    let Some(id) = conversation_id.as_deref().filter(|id| could_be_id(id)) else { return Ok(None) };
    match store.get_conversation(tenant, id).await? {
        None => Ok(None),
        Some(c) if may_enter(by, &c) => Ok(Some(c)),
        Some(_) => Err(ApiError::fields(vec![FieldError {
            path: "conversation_id".into(),
            message: format!(
                "names conversation {id}, which you take no part in; leave it out, or ask a participant to add you"
            ),
        }])),
    }
}

/// An `agent:` or `user:` address that names an agent or a person of the tenant, or why not.
async fn existing(store: &dyn Store, tenant: &str, address: &str) -> Result<Recipient, String> {
    let r: Recipient = address.parse().map_err(|e: switchboard_core::address::AddressError| e.to_string())?;
    let found = match &r {
        Recipient::Agent(id) => store.get_agent(tenant, id.as_str()).await.map(|a| a.is_some()),
        Recipient::User(id) => store.get_user(tenant, id.as_str()).await.map(|u| u.is_some()),
    };
    match found {
        Ok(true) => Ok(r),
        Ok(false) => Err(match &r {
            Recipient::Agent(id) => {
                format!("agent {id} is not registered in this tenant; list agents with `switchboard agent list`")
            }
            Recipient::User(id) => format!("user {id} is not in this tenant; list users with `switchboard user list`"),
        }),
        Err(e) => Err(format!("could not be checked: {e}")),
    }
}

/// A `viewer` only reads: it neither starts conversations nor changes who is in them.
fn may_change(by: &Principal) -> Result<(), ApiError> {
    if by.may_send() {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "your role `viewer` only reads; starting conversations and changing who takes part needs the role member, \
         admin or owner"
            .into(),
    ))
}

fn target(id: &str) -> String {
    Address::Conversation(id.into()).to_string()
}

/// Conversations' changes and reads, with who may make them.
pub struct Conversations {
    store: Arc<dyn Store>,
}

impl Conversations {
    pub fn new(store: Arc<dyn Store>) -> Conversations {
        Conversations { store }
    }

    /// Creates a conversation: its creator (an agent or a person) takes part with the
    /// participants listed, each of which must exist in the tenant.
    pub async fn create(&self, by: &Principal, req: CreateConversation) -> Result<ConversationRecord, ApiError> {
        may_change(by)?;
        let checked = check_create(&req);
        let tenant = by.tenant.as_str();
        // Every bad field at once: the malformed ones, then those naming no one.
        let mut errors = checked.as_ref().err().cloned().unwrap_or_default();
        for (i, address) in req.participants.iter().enumerate() {
            if address.parse::<Recipient>().is_ok()
                && let Err(message) = existing(self.store.as_ref(), tenant, address).await
            {
                errors.push(FieldError { path: format!("participants[{i}]"), message });
            }
        }
        let listed = match checked {
            Ok(listed) if errors.is_empty() => listed,
            _ => return Err(ApiError::fields(errors)),
        };
        let now = now_ms();
        let mut people: Vec<Recipient> = by.recipient().into_iter().collect();
        people.extend(listed.into_iter().filter(|r| Some(r) != by.recipient().as_ref()));
        let participants: Vec<ParticipantRecord> = people
            .iter()
            .map(|r| ParticipantRecord { address: r.to_string(), read_up_to: 0, joined_at: now })
            .collect();
        let c = ConversationRecord {
            tenant: tenant.to_owned(),
            id: switchboard_core::new_id().to_string(),
            title: req.title,
            created_by: by.sender(),
            created_at: now,
            last_seq: 0,
            participants,
        };
        let addresses: Vec<&str> = c.participants.iter().map(|p| p.address.as_str()).collect();
        let audit = NewAuditEvent::by(by, AuditAction::ConversationCreate, target(&c.id), now)
            .with_detail(serde_json::json!({ "participants": addresses }));
        self.store.create_conversation(c.clone(), Some(audit)).await?;
        tracing::info!(conversation = %c.id, participants = c.participants.len(), "conversation created");
        Ok(c)
    }

    /// The conversation, if `by` may see it.
    pub async fn get(&self, by: &Principal, id: &str) -> Result<ConversationRecord, ApiError> {
        self.store
            .get_conversation(by.tenant.as_str(), id)
            .await?
            .filter(|c| may_enter(by, c))
            .ok_or_else(|| no_such_conversation(id))
    }

    /// `by`'s unread count in `c`, if it takes part.
    pub async fn unread(&self, by: &Principal, c: &ConversationRecord) -> Result<Option<i64>, ApiError> {
        let me = by.sender();
        let Some(p) = c.participants.iter().find(|p| p.address == me) else { return Ok(None) };
        if p.read_up_to >= c.last_seq {
            return Ok(Some(0));
        }
        Ok(Some(self.store.unread(by.tenant.as_str(), &c.id, &me, p.read_up_to).await?))
    }

    /// A page of the conversations `by` takes part in (all of the tenant's for an
    /// administrator), in id order.
    pub async fn list(
        &self,
        by: &Principal,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>, ApiError> {
        let me = by.sender();
        let participant = (!by.is_admin()).then_some(me.as_str());
        Ok(self.store.list_conversations(by.tenant.as_str(), participant, after, limit).await?)
    }

    /// Adds `address` (an agent or a person of the tenant); whether it was added now.
    pub async fn add(&self, by: &Principal, id: &str, address: &str) -> Result<bool, ApiError> {
        let c = self.get(by, id).await?;
        may_change(by)?;
        if c.participants.len() >= MAX_PARTICIPANTS && !c.participants.iter().any(|p| p.address == address) {
            return Err(ApiError::Conflict(format!(
                "conversation {id} has {MAX_PARTICIPANTS} participants, the most one may hold; remove one first"
            )));
        }
        let tenant = by.tenant.as_str();
        let r = match existing(self.store.as_ref(), tenant, address).await {
            Ok(r) => r,
            Err(message) if address.parse::<Recipient>().is_err() => {
                return Err(ApiError::params(vec![FieldError { path: "address".into(), message }]));
            }
            Err(message) => return Err(ApiError::UnknownRecipient(message)),
        };
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::ConversationJoin, target(id), now)
            .with_detail(serde_json::json!({ "participant": r.to_string() }));
        let added = self.store.add_participant(tenant, id, &r.to_string(), now, Some(audit)).await?;
        let added = added.ok_or_else(|| no_such_conversation(id))?;
        if added {
            tracing::info!(conversation = %id, participant = %r, "participant added");
        }
        Ok(added)
    }

    /// Removes `address`; `not_found` if it takes no part.
    pub async fn remove(&self, by: &Principal, id: &str, address: &str) -> Result<(), ApiError> {
        self.get(by, id).await?;
        may_change(by)?;
        let now = now_ms();
        let audit = NewAuditEvent::by(by, AuditAction::ConversationLeave, target(id), now)
            .with_detail(serde_json::json!({ "participant": address }));
        if !self.store.remove_participant(by.tenant.as_str(), id, address, Some(audit)).await? {
            return Err(ApiError::NotFound(format!(
                "`{address}` takes no part in conversation {id}; see its participants with `switchboard conversation show {id}`"
            )));
        }
        tracing::info!(conversation = %id, participant = %address, "participant removed");
        Ok(())
    }

    /// A page of the history, in `seq` order.
    pub async fn history(
        &self,
        by: &Principal,
        id: &str,
        q: HistoryQuery,
    ) -> Result<Vec<ConversationMessage>, ApiError> {
        self.get(by, id).await?;
        let page = self.store.conversation_history(by.tenant.as_str(), id, q).await?;
        page.into_iter().map(|(seq, m)| Ok(ConversationMessage { seq, message: message_view(m)? })).collect()
    }

    /// Moves the caller's read marker forward to `up_to` (a `seq` of the conversation);
    /// returns the marker and the unread count after it.
    pub async fn mark_read(&self, by: &Principal, id: &str, up_to: i64) -> Result<(String, i64, i64), ApiError> {
        let c = self.get(by, id).await?;
        if !takes_part(by, &c) {
            return Err(ApiError::Forbidden(format!(
                "only participants have a read marker, and you take no part in conversation {id}"
            )));
        }
        if up_to < 1 || up_to > c.last_seq {
            return Err(ApiError::fields(vec![FieldError {
                path: "up_to".into(),
                message: match c.last_seq {
                    0 => "the conversation has no messages yet, so there is nothing to mark read".into(),
                    n => format!("must be a seq of the conversation, 1 to {n}"),
                },
            }]));
        }
        let me = by.sender();
        let tenant = by.tenant.as_str();
        let marker = self.store.mark_read(tenant, id, &me, up_to).await?.ok_or_else(|| no_such_conversation(id))?;
        let unread = self.store.unread(tenant, id, &me, marker).await?;
        Ok((me, marker, unread))
    }

    /// Sets (`Some`) or clears (`None`) the caller's working status in conversation `id`;
    /// participants only. A status is not audited: it says what is happening, changes nothing,
    /// and expires by itself.
    pub async fn set_status(
        &self,
        by: &Principal,
        id: &str,
        status: Option<PutStatus>,
    ) -> Result<Option<ParticipantStatus>, ApiError> {
        let c = self.get(by, id).await?;
        if !takes_part(by, &c) {
            return Err(ApiError::Forbidden(format!(
                "only participants show a status, and you take no part in conversation {id}"
            )));
        }
        let me = by.sender();
        let now = now_ms();
        let Some(put) = status else {
            self.store.set_status(by.tenant.as_str(), id, &me, None, now).await?;
            return Ok(None);
        };
        let mut errors = Vec::new();
        let chars = put.text.chars().count();
        if chars == 0 || chars > MAX_STATUS {
            errors.push(FieldError { path: "text".into(), message: format!("must be 1 to {MAX_STATUS} characters") });
        }
        let secs = put.expires_in_seconds.unwrap_or(DEFAULT_STATUS_SECONDS);
        if !(1..=MAX_STATUS_SECONDS).contains(&secs) {
            errors.push(FieldError {
                path: "expires_in_seconds".into(),
                message: format!("must be 1 to {MAX_STATUS_SECONDS}; set the status again to extend it"),
            });
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let expires_at = now + i64::from(secs) * 1000;
        self.store.set_status(by.tenant.as_str(), id, &me, Some((put.text.clone(), expires_at)), now).await?;
        Ok(Some(ParticipantStatus {
            conversation_id: id.to_owned(),
            participant: me,
            text: put.text,
            expires_at: rfc3339(expires_at),
        }))
    }
}
