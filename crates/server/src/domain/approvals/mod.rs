//! Approvals: a question put to people, answered once under a policy, with a deadline that
//! the server keeps (see DESIGN.md, "Approvals" and "Humans").
//!
//! The row is the truth and every change is a conditional update of it (`version`), so a
//! race (two deciders, two nodes' tickers) has one winner; the loser reads the row again and
//! finds it settled. Messages the approval owes go into the row's outbox in the same update
//! and are sent after it (see [`ticker`]), keyed, so a crash in between delays them and
//! never doubles them.

pub mod ticker;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use switchboard_core::api::{
    Approval, ApprovalDecision, ApprovalOutcome, ApprovalPolicy, CreateApproval, DecideApproval, FieldError,
    MAX_COMMENT, Part, check_create_approval, open_entries, settle, state_for_option,
};
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::time::{Millis, now_ms, rfc3339};
use switchboard_core::{Address, Principal};
use switchboard_store::Store;
use switchboard_store::approvals::{ApprovalFilter, ApprovalRecord};

use super::accept::Acceptor;
use super::schemas;
use crate::error::ApiError;

/// A pending send is retried by the ticker this long after the change that queued it, if the
/// node that queued it did not send it (it crashed): long enough that it normally has.
pub const OUTBOX_RETRY_MS: Millis = 2_000;
/// How many times a change is tried again when another writer got to the row first.
const RETRIES: usize = 8;

/// A message the approval owes, in its outbox until it is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The message's id, chosen when it was queued.
    pub id: String,
    /// `request` (to deciders) or `outcome` (to the requester).
    pub kind: String,
    pub to: Vec<String>,
}

/// An approval as the domain reads it: the row and its JSON columns parsed.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub row: ApprovalRecord,
    pub request: CreateApproval,
    pub policy: ApprovalPolicy,
    pub deciders: Vec<String>,
    pub decisions: Vec<ApprovalDecision>,
    pub outcome: Option<ApprovalOutcome>,
    pub outbox: Vec<Outgoing>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("a stored approval does not read back: {e}"))
}

fn to_json<T: Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Internal(e.to_string()))
}

impl Loaded {
    pub fn read(row: ApprovalRecord) -> Result<Loaded, ApiError> {
        let request: CreateApproval = serde_json::from_str(&row.request).map_err(internal)?;
        let policy =
            ApprovalPolicy::parse(request.policy.as_deref().unwrap_or("any")).ok_or_else(|| internal("policy"))?;
        Ok(Loaded {
            deciders: serde_json::from_str(&row.deciders).map_err(internal)?,
            decisions: serde_json::from_str(&row.decisions).map_err(internal)?,
            outcome: row.outcome.as_deref().map(serde_json::from_str).transpose().map_err(internal)?,
            outbox: serde_json::from_str(&row.outbox).map_err(internal)?,
            request,
            policy,
            row,
        })
    }

    /// The row with the parsed fields written back and `due_at` worked out at `now`.
    fn row_at(&self, now: Millis) -> Result<ApprovalRecord, ApiError> {
        let mut row = self.row.clone();
        row.deciders = to_json(&self.deciders)?;
        row.decisions = to_json(&self.decisions)?;
        row.outcome = self.outcome.as_ref().map(to_json).transpose()?;
        row.outbox = to_json(&self.outbox)?;
        row.due_at = self.due_at(now);
        row.updated_at = now;
        Ok(row)
    }

    /// When the ticker must look next: a pending send's retry, the next escalation step,
    /// the deadline, whichever comes first; `None` once settled and sent.
    pub fn due_at(&self, now: Millis) -> Option<Millis> {
        let mut due: Option<Millis> = None;
        let mut at = |t: Millis| due = Some(due.map_or(t, |d| d.min(t)));
        if !self.outbox.is_empty() {
            at(now + OUTBOX_RETRY_MS);
        }
        if self.row.state == "pending" {
            at(self.row.deadline);
            if let Some(step) = self.next_step() {
                at(step);
            }
        }
        due
    }

    /// When the next escalation step fires, if one is left.
    pub fn next_step(&self) -> Option<Millis> {
        let step = self.request.escalation.get(self.row.escalated as usize)?;
        Some(self.row.created_at + step.after_seconds as i64 * 1000)
    }

    /// Ends the approval with `option` decided by `by`, queueing the outcome for the requester.
    fn settle(
        &mut self,
        state: &str,
        option: String,
        by: String,
        comment: Option<String>,
        form: Option<serde_json::Value>,
    ) {
        self.row.state = state.to_owned();
        self.outcome = Some(ApprovalOutcome {
            approval_id: self.row.id.clone(),
            outcome: option,
            decided_by: by,
            comment,
            form,
            state: state.to_owned(),
        });
        if self.row.requester.parse::<switchboard_core::Recipient>().is_ok() {
            self.outbox.push(Outgoing {
                id: switchboard_core::new_id().to_string(),
                kind: "outcome".into(),
                to: vec![self.row.requester.clone()],
            });
        }
    }

    /// SHA-256 of what a decider is shown, in canonical JSON: the audit keeps the hash, the
    /// decision both.
    fn shown_sha256(&self) -> String {
        let shown = json!({
            "question": self.request.question,
            "parts": self.request.parts,
            "options": self.request.options,
            "form_schema": self.request.form_schema,
            "deadline": self.request.deadline,
            "default_outcome": self.request.default_outcome,
        });
        crate::token::hex(&Sha256::digest(switchboard_core::audit::canonical_json(&shown).as_bytes()))
    }
}

/// The API view of an approval.
pub fn view(a: &Loaded) -> Approval {
    Approval {
        id: a.row.id.clone(),
        state: a.row.state.clone(),
        message_id: a.row.message_id.clone(),
        requester: a.row.requester.clone(),
        question: a.request.question.clone(),
        parts: a.request.parts.clone(),
        options: a.request.options.clone(),
        allow_comment: a.request.allow_comment.unwrap_or(true),
        form_schema: a.request.form_schema.clone(),
        deciders: a.deciders.clone(),
        policy: a.policy.to_string(),
        deadline: rfc3339(a.row.deadline),
        escalation: a.request.escalation.clone(),
        escalated: a.row.escalated as usize,
        default_outcome: a.request.default_outcome.clone(),
        decisions: a.decisions.clone(),
        outcome: a.outcome.clone(),
        created_at: rfc3339(a.row.created_at),
        updated_at: rfc3339(a.row.updated_at),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("there is no approval {id} you can see; list yours with `switchboard approvals`"))
}

fn target(id: &str) -> String {
    format!("approval:{id}")
}

fn addresses(list: &[String]) -> Vec<Address> {
    list.iter().filter_map(|a| a.parse().ok()).collect()
}

/// Approvals: creating, answering, canceling, reading; the ticker is in [`ticker`].
pub struct Approvals {
    store: Arc<dyn Store>,
    acceptor: Arc<Acceptor>,
}

impl Approvals {
    pub fn new(store: Arc<dyn Store>, acceptor: Arc<Acceptor>) -> Approvals {
        Approvals { store, acceptor }
    }

    /// Stores a new approval asked by `by` and delivers its request (message `message_id`,
    /// or a new id) to the deciders. Answers the approval and the request's recipients.
    pub async fn create(
        &self,
        by: &Principal,
        mut req: CreateApproval,
        message_id: Option<String>,
    ) -> Result<(Approval, Vec<String>), ApiError> {
        let now = now_ms();
        let (policy, deadline) = check_create_approval(&req, now).map_err(ApiError::fields)?;
        if let Some(schema) = &req.form_schema
            && let Err(e) = schemas::check_schema(schema)
        {
            return Err(ApiError::fields(vec![FieldError { path: "form_schema".into(), message: e }]));
        }
        let mut seen = Vec::new();
        req.deciders.retain(|d| {
            !seen.contains(d) && {
                seen.push(d.clone());
                true
            }
        });
        req.policy = Some(policy.to_string());
        let deciders = addresses(&req.deciders);
        self.acceptor.authorize_sends(by, &deciders).await?;
        // Every decider must reach someone now (a mistyped user is refused, not stored).
        for (i, d) in deciders.iter().enumerate() {
            if self.acceptor.people(&by.tenant, std::slice::from_ref(d)).await.is_err() {
                return Err(ApiError::fields(vec![FieldError {
                    path: format!("deciders[{i}]"),
                    message: format!("`{d}` is not a user or group of this tenant; see `switchboard user list`"),
                }]));
            }
        }
        let id = switchboard_core::new_id().to_string();
        let message_id = message_id.unwrap_or_else(|| switchboard_core::new_id().to_string());
        let outbox = vec![Outgoing { id: message_id.clone(), kind: "request".into(), to: req.deciders.clone() }];
        let row = ApprovalRecord {
            tenant: by.tenant.to_string(),
            id: id.clone(),
            message_id,
            requester: by.sender(),
            request: to_json(&req)?,
            deadline,
            state: "pending".into(),
            deciders: to_json(&req.deciders)?,
            escalated: 0,
            decisions: "[]".into(),
            outcome: None,
            outbox: to_json(&outbox)?,
            due_at: Some(now + OUTBOX_RETRY_MS),
            version: 0,
            created_at: now,
            updated_at: now,
        };
        let audit = NewAuditEvent::by(by, AuditAction::ApprovalCreate, target(&id), now).with_detail(json!({
            "message_id": row.message_id, "deciders": req.deciders, "policy": policy.to_string(),
            "deadline": req.deadline, "default_outcome": req.default_outcome,
        }));
        self.store.create_approval(row.clone(), Some(audit)).await?;
        tracing::info!(approval = %id, deciders = req.deciders.len(), "approval requested");
        let loaded = Loaded::read(row)?;
        let (loaded, recipients) = self.flush(loaded).await?;
        Ok((view(&loaded), recipients))
    }

    /// A plain send with `kind: "approval_request"`: its one `data` part is the approval's
    /// body (`deciders` default to `[to]`), its other parts join the context. The message
    /// stored is the approval's request, so `?wait=reply` on it answers with the outcome.
    pub async fn create_from_send(
        &self,
        by: &Principal,
        m: switchboard_core::api::SendMessage,
    ) -> Result<(Approval, Vec<String>), ApiError> {
        let data: Vec<(usize, &serde_json::Value)> = m
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| if let Part::Data { data } = p { Some((i, data)) } else { None })
            .collect();
        let [(i, data)] = data.as_slice() else {
            return Err(ApiError::fields(vec![FieldError {
                path: "parts".into(),
                message: "an `approval_request` carries exactly one `data` part: the approval (question, options, \
                          deadline, default_outcome, …)"
                    .into(),
            }]));
        };
        let mut req: CreateApproval = serde_json::from_value((*data).clone()).map_err(|e| {
            ApiError::fields(vec![FieldError { path: format!("parts[{i}].data"), message: e.to_string() }])
        })?;
        if req.deciders.is_empty() {
            req.deciders = vec![m.to.clone()];
        }
        let i = *i;
        req.parts.extend(m.parts.into_iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p));
        self.create(by, req, None).await.map_err(|e| match e {
            ApiError::InvalidBody { errors, .. } => ApiError::fields(
                errors.into_iter().map(|f| FieldError { path: format!("parts[{i}].data.{}", f.path), ..f }).collect(),
            ),
            e => e,
        })
    }

    /// The approval `id` if `by` may see it: the tenant's administrators, its requester, and
    /// the people who are (or were made) its deciders.
    pub async fn get(&self, by: &Principal, id: &str) -> Result<Loaded, ApiError> {
        let row = self.store.get_approval(by.tenant.as_str(), id).await?.ok_or_else(|| not_found(id))?;
        let a = Loaded::read(row)?;
        let groups = self.groups_of(by).await?;
        if !visible(by, &a, &groups) {
            return Err(not_found(id));
        }
        Ok(a)
    }

    /// A page of the approvals `by` may see, newest first, and the cursor of the next page.
    pub async fn list(
        &self,
        by: &Principal,
        state: Option<String>,
        before: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Loaded>, Option<String>), ApiError> {
        let page = self.store.list_approvals(by.tenant.as_str(), ApprovalFilter { state, before, limit }).await?;
        let next = (page.len() == limit).then(|| page.last().map(|r| r.id.clone())).flatten();
        let groups = self.groups_of(by).await?;
        let mut out = Vec::with_capacity(page.len());
        for row in page {
            let a = Loaded::read(row)?;
            if visible(by, &a, &groups) {
                out.push(a);
            }
        }
        Ok((out, next))
    }

    /// The `group:<name>` addresses of the groups the person `by` is in (none for others).
    async fn groups_of(&self, by: &Principal) -> Result<Vec<String>, ApiError> {
        let Some(me) = by.user() else { return Ok(Vec::new()) };
        let groups = self.store.list_groups(by.tenant.as_str(), None, 1000).await?;
        Ok(groups
            .into_iter()
            .filter(|g| g.members.iter().any(|m| m == me.as_str()))
            .map(|g| Address::Group(g.name).to_string())
            .collect())
    }

    /// `by` answers approval `id`. Only its deciders, once each, while it is pending (409
    /// after); the option must be one of its options, and the form must match its schema.
    pub async fn decide(&self, by: &Principal, id: &str, d: DecideApproval) -> Result<Approval, ApiError> {
        let Some(me) = by.user() else {
            return Err(ApiError::Forbidden("only a person named as a decider can answer an approval".into()));
        };
        let me = Address::User(me.clone()).to_string();
        let groups = self.groups_of(by).await?;
        for _ in 0..RETRIES {
            let mut a = self.get(by, id).await?;
            if a.row.state != "pending" {
                return Err(ApiError::Conflict(format!(
                    "approval {id} is already {}; nothing was changed",
                    a.row.state
                )));
            }
            let mine: Vec<String> = a.deciders.iter().filter(|e| **e == me || groups.contains(e)).cloned().collect();
            if mine.is_empty() {
                return Err(ApiError::Forbidden(format!("you are not a decider of approval {id}")));
            }
            if a.decisions.iter().any(|x| x.by == me) {
                return Err(ApiError::Conflict(format!("you have already answered approval {id}")));
            }
            check_answer(&a.request, &d)?;
            let entries = open_entries(a.policy, &a.deciders, &a.decisions, &mine);
            if entries.is_empty() {
                return Err(ApiError::Conflict(format!(
                    "it is not your turn on approval {id}: under its `{}` policy another decider answers for you or before you",
                    a.policy
                )));
            }
            let now = now_ms();
            let shown = a.shown_sha256();
            a.decisions.push(ApprovalDecision {
                by: me.clone(),
                at: rfc3339(now),
                option: d.option.clone(),
                comment: d.comment.clone(),
                form: d.form.clone(),
                entries: entries.clone(),
                shown_sha256: shown.clone(),
            });
            let settled = settle(a.policy, &a.deciders, &a.decisions);
            if let Some(option) = &settled {
                let last = a.decisions.last().cloned();
                let (comment, form) = last.map(|l| (l.comment, l.form)).unwrap_or_default();
                a.settle(state_for_option(option), option.clone(), me.clone(), comment, form);
            }
            let audit = NewAuditEvent::by(by, AuditAction::ApprovalDecide, target(id), now).with_detail(json!({
                "option": d.option, "entries": entries, "shown_sha256": shown,
                "comment": d.comment.is_some(), "state": a.row.state,
            }));
            let row = a.row_at(now)?;
            if self.store.update_approval(row.clone(), vec![audit]).await? {
                tracing::info!(approval = %id, option = %d.option, state = %a.row.state, "approval answered");
                a.row = ApprovalRecord { version: row.version + 1, ..row };
                let (a, _) = self.flush(a).await?;
                return Ok(view(&a));
            }
        }
        Err(ApiError::Conflict(format!("approval {id} is changing too fast; try again")))
    }

    /// The requester (or an administrator) cancels a pending approval. No outcome is sent:
    /// the requester is the one who ended it.
    pub async fn cancel(&self, by: &Principal, id: &str) -> Result<Approval, ApiError> {
        for _ in 0..RETRIES {
            let mut a = self.get(by, id).await?;
            if a.row.requester != by.sender() && !by.is_admin() {
                return Err(ApiError::Forbidden(format!("only the requester of approval {id} can cancel it")));
            }
            if a.row.state != "pending" {
                return Err(ApiError::Conflict(format!(
                    "approval {id} is already {}; nothing was changed",
                    a.row.state
                )));
            }
            let now = now_ms();
            a.row.state = "canceled".into();
            let audit = NewAuditEvent::by(by, AuditAction::ApprovalCancel, target(id), now);
            let row = a.row_at(now)?;
            if self.store.update_approval(row.clone(), vec![audit]).await? {
                a.row = ApprovalRecord { version: row.version + 1, ..row };
                return Ok(view(&a));
            }
        }
        Err(ApiError::Conflict(format!("approval {id} is changing too fast; try again")))
    }
}

/// Whether `by` (in `groups`) may see approval `a`.
fn visible(by: &Principal, a: &Loaded, groups: &[String]) -> bool {
    if by.is_admin() || a.row.requester == by.sender() {
        return true;
    }
    let Some(me) = by.user() else { return false };
    let me = Address::User(me.clone()).to_string();
    let named = |e: &String| *e == me || groups.contains(e);
    a.deciders.iter().any(named) || a.request.escalation.iter().any(|s| s.add.iter().any(named))
}

/// Checks an answer against the request: a known option, a comment where allowed, a form
/// matching the schema (every failing location named under `form`).
fn check_answer(req: &CreateApproval, d: &DecideApproval) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if !req.options.iter().any(|o| o.id == d.option) {
        let ids: Vec<&str> = req.options.iter().map(|o| o.id.as_str()).collect();
        errors.push(FieldError { path: "option".into(), message: format!("choose one of: {}", ids.join(", ")) });
    }
    if let Some(c) = &d.comment {
        if req.allow_comment == Some(false) {
            errors.push(FieldError { path: "comment".into(), message: "this approval takes no comment".into() });
        } else if c.chars().count() > MAX_COMMENT {
            errors.push(FieldError {
                path: "comment".into(),
                message: format!("write at most {MAX_COMMENT} characters"),
            });
        }
    }
    match (&req.form_schema, &d.form) {
        (Some(schema), Some(form)) => errors.extend(schemas::value_failures(schema, form, "form")),
        (None, Some(_)) => errors
            .push(FieldError { path: "form".into(), message: "this approval has no form; leave `form` out".into() }),
        _ => {}
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::fields(errors)) }
}

/// The parts of a request message: the question, the approval as data, then the context.
fn request_parts(a: &Loaded) -> Vec<Part> {
    let mut parts = vec![
        Part::text(a.request.question.clone()),
        Part::Data {
            data: json!({ "approval": {
                "id": a.row.id, "question": a.request.question, "options": a.request.options,
                "allow_comment": a.request.allow_comment.unwrap_or(true), "form_schema": a.request.form_schema,
                "policy": a.policy.to_string(), "deadline": rfc3339(a.row.deadline),
                "default_outcome": a.request.default_outcome,
            }}),
        },
    ];
    parts.extend(a.request.parts.iter().cloned());
    parts
}
