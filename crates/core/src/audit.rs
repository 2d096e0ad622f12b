//! The audit log's chain: what an entry says, the one byte string it is hashed as, and the
//! check that finds the first entry someone edited, removed or reordered.
//!
//! Each tenant has one chain. Entry `n` (sequence numbers start at 1, without gaps) carries
//! `prev_hash`, the hash of entry `n - 1` (64 zeros for the first), and its own
//! `hash = SHA-256(prev_hash || canonical(entry))`, hex, where `prev_hash` is its 64 ASCII hex
//! digits and `canonical` is [`canonical_form`]. Changing any field of an entry changes its
//! hash; removing or moving one breaks the link of the entry after it. The store writes
//! entries (it assigns `seq` and the hashes in the transaction of the change they record);
//! this module holds only the pure parts, so an exported log can be checked anywhere.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::AuditEvent;
use crate::principal::{Principal, PrincipalKind};
use crate::time::{Millis, rfc3339};

/// `prev_hash` of a chain's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit entry records. Written as its [`AuditAction::as_str`] text; new actions
/// are added at the end, and readers keep unknown texts as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Login,
    LoginFailed,
    Logout,
    TokenCreate,
    TokenRevoke,
    AgentKeyCreate,
    AgentKeyRevoke,
    AgentRegister,
    AgentUpdate,
    AgentDelete,
    WebhookSecretRotate,
    PushSettingsUpdate,
    /// A tenant's policy replaced (`PUT /v1/policies`).
    PolicySet,
    TenantCreate,
    UserCreate,
    UserUpdate,
    UserDelete,
    DeadLettersReplay,
    DeadLettersPurge,
    /// A message accepted (ids and metadata only, never its parts); recorded only where the
    /// tenant turned auditing of sends on.
    MessageSend,
    /// A delivery acknowledged (ids only); recorded with sends.
    DeliveryAck,
    /// Auditing of sends and acks turned on or off.
    AuditSettingsUpdate,
    /// A tenant's limits replaced (`PUT /v1/limits`).
    LimitsSet,
    /// An OAuth2 access token issued to an agent (its `jti`, never the token). Always
    /// recorded: who obtained credentials is security relevant whatever the tenant chose.
    OAuthTokenIssue,
    /// The hub's token signing key rotated (by the operator).
    OAuthKeyRotate,
    /// The tenant's external identity providers replaced.
    IdentityProvidersUpdate,
    /// A group of people created or replaced (`PUT /v1/groups/{name}`).
    GroupSet,
    /// A group removed.
    GroupDelete,
    /// A user added to a group.
    GroupMemberAdd,
    /// A user taken out of a group.
    GroupMemberRemove,
    /// The tenant's auto-routing settings replaced (never the model's key).
    RoutingSettingsUpdate,
    /// A person routed a message waiting in triage to a capability.
    MessageRoute,
    /// A conversation created (its participants in the detail).
    ConversationCreate,
    /// A participant added to a conversation.
    ConversationJoin,
    /// A participant removed from a conversation.
    ConversationLeave,
    /// An approval requested (its deciders, policy and deadline in the detail).
    ApprovalCreate,
    /// A decider answered an approval (the option, and the hash of what they were shown).
    ApprovalDecide,
    /// An approval's escalation step fired (the deciders it added).
    ApprovalEscalate,
    /// An approval's deadline passed: it ended in its default outcome.
    ApprovalExpire,
    /// The requester canceled an approval.
    ApprovalCancel,
    /// A person's e-mail notification preferences replaced.
    NotificationPrefsUpdate,
    /// A tenant's retention replaced (`PUT /v1/tenant/retention`).
    RetentionSet,
    /// An external A2A agent registered from its Agent Card (`POST /v1/agents:import`).
    AgentImport,
}

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 43] = [
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::TokenCreate,
        AuditAction::TokenRevoke,
        AuditAction::AgentKeyCreate,
        AuditAction::AgentKeyRevoke,
        AuditAction::AgentRegister,
        AuditAction::AgentUpdate,
        AuditAction::AgentDelete,
        AuditAction::WebhookSecretRotate,
        AuditAction::PushSettingsUpdate,
        AuditAction::PolicySet,
        AuditAction::TenantCreate,
        AuditAction::UserCreate,
        AuditAction::UserUpdate,
        AuditAction::UserDelete,
        AuditAction::DeadLettersReplay,
        AuditAction::DeadLettersPurge,
        AuditAction::MessageSend,
        AuditAction::DeliveryAck,
        AuditAction::AuditSettingsUpdate,
        AuditAction::LimitsSet,
        AuditAction::OAuthTokenIssue,
        AuditAction::OAuthKeyRotate,
        AuditAction::IdentityProvidersUpdate,
        AuditAction::GroupSet,
        AuditAction::GroupDelete,
        AuditAction::GroupMemberAdd,
        AuditAction::GroupMemberRemove,
        AuditAction::RoutingSettingsUpdate,
        AuditAction::MessageRoute,
        AuditAction::ConversationCreate,
        AuditAction::ConversationJoin,
        AuditAction::ConversationLeave,
        AuditAction::ApprovalCreate,
        AuditAction::ApprovalDecide,
        AuditAction::ApprovalEscalate,
        AuditAction::ApprovalExpire,
        AuditAction::ApprovalCancel,
        AuditAction::NotificationPrefsUpdate,
        AuditAction::RetentionSet,
        AuditAction::AgentImport,
    ];

    /// The text stored, shown and filtered on (`agent.register`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "auth.login",
            AuditAction::LoginFailed => "auth.login_failed",
            AuditAction::Logout => "auth.logout",
            AuditAction::TokenCreate => "token.create",
            AuditAction::TokenRevoke => "token.revoke",
            AuditAction::AgentKeyCreate => "agent_key.create",
            AuditAction::AgentKeyRevoke => "agent_key.revoke",
            AuditAction::AgentRegister => "agent.register",
            AuditAction::AgentUpdate => "agent.update",
            AuditAction::AgentDelete => "agent.delete",
            AuditAction::WebhookSecretRotate => "webhook_secret.rotate",
            AuditAction::PushSettingsUpdate => "push_settings.update",
            AuditAction::PolicySet => "policy.set",
            AuditAction::LimitsSet => "limits.set",
            AuditAction::TenantCreate => "tenant.create",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserUpdate => "user.update",
            AuditAction::UserDelete => "user.delete",
            AuditAction::DeadLettersReplay => "dead_letters.replay",
            AuditAction::DeadLettersPurge => "dead_letters.purge",
            AuditAction::MessageSend => "message.send",
            AuditAction::DeliveryAck => "delivery.ack",
            AuditAction::AuditSettingsUpdate => "audit_settings.update",
            AuditAction::OAuthTokenIssue => "oauth.token_issued",
            AuditAction::OAuthKeyRotate => "oauth.key_rotated",
            AuditAction::IdentityProvidersUpdate => "identity_providers.update",
            AuditAction::GroupSet => "group.set",
            AuditAction::GroupDelete => "group.delete",
            AuditAction::GroupMemberAdd => "group.member_add",
            AuditAction::GroupMemberRemove => "group.member_remove",
            AuditAction::RoutingSettingsUpdate => "routing_settings.update",
            AuditAction::MessageRoute => "message.route",
            AuditAction::ConversationCreate => "conversation.create",
            AuditAction::ConversationJoin => "conversation.participant_add",
            AuditAction::ConversationLeave => "conversation.participant_remove",
            AuditAction::ApprovalCreate => "approval.create",
            AuditAction::ApprovalDecide => "approval.decide",
            AuditAction::ApprovalEscalate => "approval.escalate",
            AuditAction::ApprovalExpire => "approval.expire",
            AuditAction::ApprovalCancel => "approval.cancel",
            AuditAction::NotificationPrefsUpdate => "notification_prefs.update",
            AuditAction::RetentionSet => "retention.set",
            AuditAction::AgentImport => "agent.import",
        }
    }

    /// The action a stored or queried text names, if any.
    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry to append, as the domain layer states it; the store gives it its `seq` and
/// hashes. `detail` holds ids and metadata, never message payloads or secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// Whose chain it joins.
    pub tenant: String,
    pub at: Millis,
    /// Who acted, as [`actor_text`] spells a principal (or, for a failed login, who it
    /// claimed to be).
    pub actor: String,
    pub action: AuditAction,
    /// What it acted on (`agent:<id>`, `tenant:<id>`, `dead_letters`, …).
    pub target: String,
    pub detail: Value,
}

impl NewAuditEvent {
    /// `principal` did `action` to `target` in its own tenant at `at`, with no detail.
    pub fn by(principal: &Principal, action: AuditAction, target: impl Into<String>, at: Millis) -> NewAuditEvent {
        NewAuditEvent {
            tenant: principal.tenant.as_str().to_owned(),
            at,
            actor: actor_text(principal),
            action,
            target: target.into(),
            detail: Value::Object(serde_json::Map::new()),
        }
    }

    /// The same entry with `detail`.
    pub fn with_detail(mut self, detail: Value) -> NewAuditEvent {
        self.detail = detail;
        self
    }
}

/// How an audit entry names who acted: `operator`, `admin`, `agent:<id>` or `user:<id>`.
/// Unlike [`Principal::sender`], it tells the platform operator from a tenant's admin.
pub fn actor_text(p: &Principal) -> String {
    match &p.kind {
        PrincipalKind::Operator => "operator".to_owned(),
        _ => p.sender(),
    }
}

/// The byte string an entry is hashed as: a JSON object of exactly `action`, `actor`, `at`
/// (RFC 3339, UTC, milliseconds, as on the wire), `detail`, `prev_hash`, `seq` and `target`,
/// with every object's keys (the entry's and those inside `detail`) in byte order, no
/// whitespace, strings escaped as `serde_json` escapes them and numbers as it prints them:
///
/// `{"action":"agent.delete","actor":"admin","at":"2026-11-25T11:06:00.123Z","detail":{},"prev_hash":"00…00","seq":1,"target":"agent:a1"}`
///
/// Written once here; the store, the verifier and anyone checking an export use this.
pub fn canonical_form(e: &AuditEvent) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"action\":");
    push_str(&mut out, &e.action);
    out.push_str(",\"actor\":");
    push_str(&mut out, &e.actor);
    out.push_str(",\"at\":");
    push_str(&mut out, &e.at);
    out.push_str(",\"detail\":");
    push_canonical(&mut out, &e.detail);
    out.push_str(",\"prev_hash\":");
    push_str(&mut out, &e.prev_hash);
    out.push_str(",\"seq\":");
    out.push_str(&e.seq.to_string());
    out.push_str(",\"target\":");
    push_str(&mut out, &e.target);
    out.push('}');
    out
}

/// `value` as canonical JSON text (keys in byte order, no whitespace): how `detail` is both
/// hashed and stored, so reading it back cannot change its hash.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    push_canonical(&mut out, value);
    out
}

fn push_str(out: &mut String, s: &str) {
    // Serialising a string into JSON cannot fail.
    out.push_str(&serde_json::to_string(s).expect("a string serialises to JSON"));
}

fn push_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(out, k);
                out.push(':');
                push_canonical(out, &map[k]);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_canonical(out, item);
            }
            out.push(']');
        }
        Value::String(s) => push_str(out, s),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

/// The hash an entry must carry: hex SHA-256 of its `prev_hash` followed by its canonical
/// form. (Its own `hash` field takes no part.)
pub fn entry_hash(e: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(e.prev_hash.as_bytes());
    h.update(canonical_form(e).as_bytes());
    hex(&h.finalize())
}

/// Builds the entry that follows `prev` (`None`: the chain's first) with its hashes.
pub fn chain_next(prev: Option<(i64, &str)>, new: &NewAuditEvent) -> AuditEvent {
    let (prev_seq, prev_hash) = prev.unwrap_or((0, GENESIS_HASH));
    let mut e = AuditEvent {
        seq: prev_seq + 1,
        at: rfc3339(new.at),
        actor: new.actor.clone(),
        action: new.action.as_str().to_owned(),
        target: new.target.clone(),
        // Stored as canonical text and parsed back on reading; hashing the value parsed from
        // that text makes an append hash exactly what a later read will.
        detail: serde_json::from_str(&canonical_json(&new.detail)).unwrap_or(Value::Null),
        hash: String::new(),
        prev_hash: prev_hash.to_owned(),
    };
    e.hash = entry_hash(&e);
    e
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// How an entry shows the chain was tampered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakKind {
    /// Its content does not hash to its `hash`: a field was changed after it was written.
    Edited,
    /// Entries `from..=to` are missing before it (for the last entry: after it).
    Removed { from: i64, to: i64 },
    /// Its sequence number is not after the previous entry's (`previous`).
    OutOfOrder { previous: i64 },
    /// Its `prev_hash` is not the hash of the entry before it: entries were reordered (or
    /// one before it replaced, or removed and the rest renumbered).
    Reordered,
    /// It is past the chain's head (the last `seq` the store recorded, `head`): it was
    /// added outside the hub.
    BeyondHead { head: i64 },
}

/// The first entry that shows tampering, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The sequence number of that entry as stored.
    pub seq: i64,
    #[serde(flatten)]
    pub kind: BreakKind,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match &self.kind {
            BreakKind::Edited => write!(f, "entry {seq} was edited: its content does not match its hash"),
            BreakKind::Removed { from, to } => {
                match from == to {
                    true => write!(f, "entry {from} was removed")?,
                    false => write!(f, "entries {from} to {to} were removed")?,
                }
                match seq {
                    // Found at the end: the head records more entries than are left.
                    0 if *from > seq => write!(f, " (none is left, but the chain's head records {to})"),
                    _ if *from > seq => write!(f, " (the chain ends at entry {seq}, but its head records {to})"),
                    _ => write!(f, " (found at entry {seq})"),
                }
            }
            BreakKind::OutOfOrder { previous } => {
                write!(f, "entry {seq} is out of order: it comes after entry {previous}")
            }
            BreakKind::BeyondHead { head } => {
                write!(f, "entry {seq} was added outside the hub: the chain's head records {head} entries")
            }
            BreakKind::Reordered => {
                write!(f, "entry {seq} was reordered or replaced: its prev_hash is not the hash of entry {}", seq - 1)
            }
        }
    }
}

impl std::error::Error for ChainBreak {}

/// Checks a chain entry by entry, in the order it is read (by `seq`), so a store can verify
/// a chain of any length page by page.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    prev_seq: i64,
    prev_hash: String,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck { prev_seq: 0, prev_hash: GENESIS_HASH.to_owned() }
    }
}

impl ChainCheck {
    /// Checks the entry that follows those checked so far. Links are checked before content,
    /// so a moved entry is named as reordered rather than edited (moving it changes its seq).
    pub fn next(&mut self, e: &AuditEvent) -> Result<(), ChainBreak> {
        let fail = |kind| Err(ChainBreak { seq: e.seq, kind });
        if e.seq <= self.prev_seq {
            return fail(BreakKind::OutOfOrder { previous: self.prev_seq });
        }
        if e.seq > self.prev_seq + 1 {
            return fail(BreakKind::Removed { from: self.prev_seq + 1, to: e.seq - 1 });
        }
        if e.prev_hash != self.prev_hash {
            return fail(BreakKind::Reordered);
        }
        if entry_hash(e) != e.hash {
            return fail(BreakKind::Edited);
        }
        self.prev_seq = e.seq;
        self.prev_hash.clone_from(&e.hash);
        Ok(())
    }

    /// After the last entry: the chain's head as recorded apart from the entries (its last
    /// `seq`) must be the last entry checked. Ahead of it, entries after it were removed;
    /// behind it, entries were added without the store.
    pub fn finish(&self, head_seq: i64) -> Result<(), ChainBreak> {
        let last = self.prev_seq;
        if head_seq > last {
            return Err(ChainBreak { seq: last, kind: BreakKind::Removed { from: last + 1, to: head_seq } });
        }
        if head_seq < last {
            return Err(ChainBreak { seq: head_seq + 1, kind: BreakKind::BeyondHead { head: head_seq } });
        }
        Ok(())
    }

    /// Entries checked so far (the last good `seq`).
    pub fn checked(&self) -> i64 {
        self.prev_seq
    }
}

/// Checks a whole chain from its first entry, in `seq` order; names the first bad entry.
pub fn verify(events: &[AuditEvent]) -> Result<(), ChainBreak> {
    let mut check = ChainCheck::default();
    events.iter().try_for_each(|e| check.next(e))
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
