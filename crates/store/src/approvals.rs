//! Approvals: questions put to people, with deadlines and escalation. One area of
//! [`Store`](crate::Store).
//!
//! The store keeps an approval as one row; the domain decides what an answer, an escalation
//! step or the deadline does to it, and writes the whole changed row back with
//! [`ApprovalStore::update_approval`], which succeeds only if nobody changed the row since it
//! was read (its `version`). That conditional update settles races: two deciders at once, or
//! two nodes' tickers claiming the same due step, give one outcome.
//!
//! Messages the approval owes (the request, a request to escalated deciders, the outcome) sit
//! in its `outbox` until they are accepted, with keyed sends, so a crash between the state
//! change and the send only delays the send to the next tick, and a repeated send is a
//! duplicate, not a second message. `due_at` is the next time the ticker must look at the row:
//! the earliest of the deadline, the next escalation step and a pending send.

use async_trait::async_trait;
use switchboard_core::audit::NewAuditEvent;
use switchboard_core::time::Millis;

use crate::error::Result;

/// An approval as stored. The JSON columns are written and read by the domain.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRecord {
    pub tenant: String,
    pub id: String,
    /// The request message delivered to the deciders.
    pub message_id: String,
    /// Who asked (`agent:<id>`, `user:<id>` or `admin`).
    pub requester: String,
    /// The request as created (JSON of `CreateApproval`, deciders normalised): what never
    /// changes.
    pub request: String,
    pub deadline: Millis,
    /// `pending`, `approved`, `rejected`, `answered`, `expired` or `canceled`.
    pub state: String,
    /// Who may decide now (JSON array of addresses): the request's, plus escalations'.
    pub deciders: String,
    /// How many escalation steps have fired.
    pub escalated: i64,
    /// The answers so far (JSON array of `ApprovalDecision`).
    pub decisions: String,
    /// The outcome once settled (JSON of `ApprovalOutcome`).
    pub outcome: Option<String>,
    /// Messages still to send (JSON array), see the module doc.
    pub outbox: String,
    /// When the ticker must look at it next; `None` when nothing is left to do.
    pub due_at: Option<Millis>,
    /// Bumped by every update (the condition of the next one).
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Which approvals a list answers.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub state: Option<String>,
    /// Only those with ids before this one (newest first; the previous page's cursor).
    pub before: Option<String>,
    pub limit: usize,
}

/// Approvals. Every change takes the audit entry recording it, written in its transaction
/// only when the change is made.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Stores a new approval (`version` as given).
    async fn create_approval(&self, a: ApprovalRecord, audit: Option<NewAuditEvent>) -> Result<()>;
    async fn get_approval(&self, tenant: &str, id: &str) -> Result<Option<ApprovalRecord>>;
    /// The approval whose request message is `message_id`, if any.
    async fn approval_for_message(&self, tenant: &str, message_id: &str) -> Result<Option<ApprovalRecord>>;
    /// A page of the tenant's approvals, newest first.
    async fn list_approvals(&self, tenant: &str, filter: ApprovalFilter) -> Result<Vec<ApprovalRecord>>;
    /// Writes the mutable fields of `a` (state, deciders, escalated, decisions, outcome,
    /// outbox, due_at, updated_at) and bumps its version, only if the stored version is still
    /// `a.version`. `false`, writing nothing (nor the audit entries), when it is not. The
    /// audit entries are written in the same transaction.
    async fn update_approval(&self, a: ApprovalRecord, audit: Vec<NewAuditEvent>) -> Result<bool>;
    /// Up to `limit` approvals of any tenant due at `now` (`due_at <= now`), earliest first:
    /// the ticker's work.
    async fn due_approvals(&self, now: Millis, limit: usize) -> Result<Vec<ApprovalRecord>>;
}
