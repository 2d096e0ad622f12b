//! Approvals (`/v1/approvals`): a question put to people, with options, an optional form, a
//! deadline, escalation and a default outcome. See DESIGN.md, "Approvals".

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{FieldError, Part};
use crate::address::Address;

/// Most options, deciders and escalation steps of one approval.
pub const MAX_APPROVAL_OPTIONS: usize = 20;
pub const MAX_APPROVAL_DECIDERS: usize = 100;
pub const MAX_ESCALATION_STEPS: usize = 10;
/// Most characters of a question and of a comment.
pub const MAX_QUESTION: usize = 4000;
pub const MAX_COMMENT: usize = 4000;
/// Longest an approval may stay open: 90 days.
pub const MAX_APPROVAL_MS: i64 = 90 * 24 * 3600 * 1000;

/// One answer a decider may choose. The ids `approve` and `reject` carry meaning: choosing
/// `approve` ends in the state `approved`, `reject` in `rejected`, any other id in `answered`;
/// the `all` and `sequential` policies move on only on `approve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalOption {
    /// 1 to 64 letters, digits or `-_.`.
    pub id: String,
    /// What the button says.
    pub label: String,
}

/// A step of the escalation chain: `after_seconds` after the approval was created, `add`
/// these people or groups as deciders and deliver the request to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    #[schema(minimum = 1)]
    pub after_seconds: u64,
    /// `user:<id>` or `group:<name>` addresses.
    #[schema(min_items = 1)]
    pub add: Vec<String>,
}

/// `POST /v1/approvals`, and the `data` part of a `kind: "approval_request"` message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApproval {
    #[schema(min_length = 1, max_length = 4000)]
    pub question: String,
    /// Context shown with the question.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    #[schema(min_items = 1, max_items = 20)]
    pub options: Vec<ApprovalOption>,
    /// Whether a decider may add a free-text comment (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_comment: Option<bool>,
    /// A JSON Schema the decider's `form` must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form_schema: Option<Value>,
    /// `user:<id>` or `group:<name>` addresses. In a plain send, defaults to `[to]`.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub deciders: Vec<String>,
    /// `any` (default), `all`, `quorum:N` or `sequential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// RFC 3339; in the future, at most 90 days away.
    #[schema(format = DateTime)]
    pub deadline: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 10)]
    pub escalation: Vec<EscalationStep>,
    /// The option id that holds when the deadline passes.
    pub default_outcome: String,
}

/// One decider's answer, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalDecision {
    /// `user:<id>`.
    pub by: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub option: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    /// The decider entries (`user:` or `group:`) this answer stood for.
    pub entries: Vec<String>,
    /// SHA-256 (hex) of what the decider was shown: the question, parts, options, form
    /// schema, deadline and default outcome, in canonical JSON.
    pub shown_sha256: String,
}

/// The outcome, once there is one: what the requester is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalOutcome {
    pub approval_id: String,
    /// The option id that holds.
    pub outcome: String,
    /// `user:<id>` (the decider that settled it, for `all` and `quorum` the last), `deadline`,
    /// or the requester for a cancel.
    pub decided_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
    /// The approval's final state.
    pub state: String,
}

/// An approval, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub id: String,
    /// `pending`, `approved`, `rejected`, `answered`, `expired` or `canceled`.
    pub state: String,
    /// The request message delivered to the deciders.
    pub message_id: String,
    /// Who asked (`agent:<id>`, `user:<id>` or `admin`).
    pub requester: String,
    pub question: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    pub options: Vec<ApprovalOption>,
    pub allow_comment: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form_schema: Option<Value>,
    /// Who may decide now (escalation adds to it).
    pub deciders: Vec<String>,
    pub policy: String,
    #[schema(format = DateTime)]
    pub deadline: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<EscalationStep>,
    /// How many escalation steps have fired.
    pub escalated: usize,
    pub default_outcome: String,
    pub decisions: Vec<ApprovalDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ApprovalOutcome>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// `201` of `POST /v1/approvals`, and `GET /v1/approvals/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalEnvelope {
    pub approval: Approval,
}

/// `GET /v1/approvals`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<Approval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/approvals/{id}/decide`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideApproval {
    /// One of the approval's option ids.
    pub option: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub comment: Option<String>,
    /// Checked against the approval's `form_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
}

/// How the deciders' answers combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalPolicy {
    /// The first answer settles it.
    Any,
    /// Every decider entry must approve; the first other answer settles it.
    All,
    /// The first option chosen by N deciders settles it.
    Quorum(u32),
    /// The deciders in order; each `approve` hands over to the next, anything else settles it.
    Sequential,
}

impl ApprovalPolicy {
    pub fn parse(s: &str) -> Option<ApprovalPolicy> {
        match s {
            "any" => Some(ApprovalPolicy::Any),
            "all" => Some(ApprovalPolicy::All),
            "sequential" => Some(ApprovalPolicy::Sequential),
            _ => s.strip_prefix("quorum:")?.parse().ok().filter(|n| *n >= 1).map(ApprovalPolicy::Quorum),
        }
    }
}

impl std::fmt::Display for ApprovalPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApprovalPolicy::Any => f.write_str("any"),
            ApprovalPolicy::All => f.write_str("all"),
            ApprovalPolicy::Quorum(n) => write!(f, "quorum:{n}"),
            ApprovalPolicy::Sequential => f.write_str("sequential"),
        }
    }
}

/// The state an outcome option ends in (see [`ApprovalOption`]).
pub fn state_for_option(option: &str) -> &'static str {
    match option {
        "approve" => "approved",
        "reject" => "rejected",
        _ => "answered",
    }
}

fn field(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { path: path.into(), message: message.into() }
}

/// Checks a decider address (`user:` or `group:`) at `path`.
pub fn check_decider(path: &str, a: &str, errors: &mut Vec<FieldError>) {
    match a.parse::<Address>() {
        Ok(Address::User(_) | Address::Group(_)) => {}
        Ok(_) => errors.push(field(path, format!("`{a}` is not a person; deciders are `user:<id>` or `group:<name>`"))),
        Err(e) => errors.push(field(path, e.to_string())),
    }
}

/// Checks a `POST /v1/approvals` body at `now`, naming every bad field. Answers the policy
/// and the deadline (milliseconds).
pub fn check_create_approval(
    req: &CreateApproval,
    now: crate::time::Millis,
) -> Result<(ApprovalPolicy, crate::time::Millis), Vec<FieldError>> {
    let mut errors = Vec::new();
    if req.question.trim().is_empty() || req.question.chars().count() > MAX_QUESTION {
        errors.push(field("question", format!("write 1 to {MAX_QUESTION} characters")));
    }
    if req.options.is_empty() || req.options.len() > MAX_APPROVAL_OPTIONS {
        errors.push(field("options", format!("give 1 to {MAX_APPROVAL_OPTIONS} options")));
    }
    for (i, o) in req.options.iter().enumerate() {
        if let Err(e) = crate::address::check_name("option", &o.id) {
            errors.push(field(format!("options[{i}].id"), e.to_string()));
        }
        if req.options[..i].iter().any(|p| p.id == o.id) {
            errors.push(field(format!("options[{i}].id"), format!("`{}` is given twice; ids are unique", o.id)));
        }
        if o.label.trim().is_empty() || o.label.chars().count() > 200 {
            errors.push(field(format!("options[{i}].label"), "write 1 to 200 characters"));
        }
    }
    if !req.options.iter().any(|o| o.id == req.default_outcome) {
        errors.push(field("default_outcome", "name one of the `options` ids; it holds when the deadline passes"));
    }
    if req.deciders.is_empty() || req.deciders.len() > MAX_APPROVAL_DECIDERS {
        errors.push(field("deciders", format!("name 1 to {MAX_APPROVAL_DECIDERS} people or groups")));
    }
    for (i, d) in req.deciders.iter().enumerate() {
        check_decider(&format!("deciders[{i}]"), d, &mut errors);
    }
    let policy = match req.policy.as_deref().map(ApprovalPolicy::parse) {
        None => Some(ApprovalPolicy::Any),
        Some(Some(p)) => Some(p),
        Some(None) => {
            errors.push(field("policy", "use `any`, `all`, `quorum:N` (N ≥ 1) or `sequential`"));
            None
        }
    };
    if matches!(policy, Some(ApprovalPolicy::All | ApprovalPolicy::Sequential))
        && !req.options.iter().any(|o| o.id == "approve")
    {
        errors.push(field("options", "the `all` and `sequential` policies need an option with id `approve`"));
    }
    if let Some(ApprovalPolicy::Quorum(n)) = policy
        && n as usize > MAX_APPROVAL_DECIDERS * 1000
    {
        errors.push(field("policy", "the quorum is larger than any group"));
    }
    let deadline = match crate::time::parse_rfc3339(&req.deadline) {
        Some(d) if d <= now => {
            errors.push(field("deadline", "must be in the future"));
            None
        }
        Some(d) if d - now > MAX_APPROVAL_MS => {
            errors.push(field("deadline", "must be at most 90 days away"));
            None
        }
        Some(d) => Some(d),
        None => {
            errors.push(field("deadline", "write an RFC 3339 time, e.g. 2026-12-01T12:00:00Z"));
            None
        }
    };
    if req.escalation.len() > MAX_ESCALATION_STEPS {
        errors.push(field("escalation", format!("give at most {MAX_ESCALATION_STEPS} steps")));
    }
    for (i, s) in req.escalation.iter().enumerate() {
        if s.after_seconds == 0 {
            errors.push(field(format!("escalation[{i}].after_seconds"), "must be at least 1"));
        }
        if i > 0 && s.after_seconds < req.escalation[i - 1].after_seconds {
            errors.push(field(format!("escalation[{i}].after_seconds"), "steps come in order of `after_seconds`"));
        }
        if s.add.is_empty() || s.add.len() > MAX_APPROVAL_DECIDERS {
            errors.push(field(
                format!("escalation[{i}].add"),
                format!("name 1 to {MAX_APPROVAL_DECIDERS} people or groups"),
            ));
        }
        for (j, d) in s.add.iter().enumerate() {
            check_decider(&format!("escalation[{i}].add[{j}]"), d, &mut errors);
        }
    }
    if let Some(schema) = &req.form_schema
        && !schema.is_object()
    {
        errors.push(field("form_schema", "must be a JSON Schema object"));
    }
    match (policy, deadline) {
        (Some(p), Some(d)) if errors.is_empty() => Ok((p, d)),
        _ => Err(errors),
    }
}

/// The entries among `mine` (the decider entries a person matches) that may still answer
/// under `policy`: for `sequential` only the current step's entry, for `all` those nobody
/// answered for yet, else all of them. Empty: this person has no turn.
pub fn open_entries(
    policy: ApprovalPolicy,
    deciders: &[String],
    decisions: &[ApprovalDecision],
    mine: &[String],
) -> Vec<String> {
    match policy {
        ApprovalPolicy::Sequential => {
            let step = decisions.iter().filter(|d| d.option == "approve").count();
            deciders.get(step).filter(|e| mine.contains(e)).cloned().into_iter().collect()
        }
        ApprovalPolicy::All => {
            mine.iter().filter(|e| !decisions.iter().any(|d| d.entries.contains(e))).cloned().collect()
        }
        ApprovalPolicy::Any | ApprovalPolicy::Quorum(_) => mine.to_vec(),
    }
}

/// What the answers so far settle under `policy`: the option that holds, or `None` while the
/// approval stays open.
pub fn settle(policy: ApprovalPolicy, deciders: &[String], decisions: &[ApprovalDecision]) -> Option<String> {
    let last = decisions.last()?;
    match policy {
        ApprovalPolicy::Any => Some(last.option.clone()),
        ApprovalPolicy::All => {
            if last.option != "approve" {
                return Some(last.option.clone());
            }
            let covered = deciders.iter().all(|e| decisions.iter().any(|d| d.entries.contains(e)));
            covered.then(|| "approve".to_owned())
        }
        ApprovalPolicy::Quorum(n) => {
            let mut voters: Vec<&str> =
                decisions.iter().filter(|d| d.option == last.option).map(|d| d.by.as_str()).collect();
            voters.sort_unstable();
            voters.dedup();
            (voters.len() >= n as usize).then(|| last.option.clone())
        }
        ApprovalPolicy::Sequential => {
            if last.option != "approve" {
                return Some(last.option.clone());
            }
            let approvals = decisions.iter().filter(|d| d.option == "approve").count();
            (approvals >= deciders.len()).then(|| "approve".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> CreateApproval {
        CreateApproval {
            question: "Ship it?".into(),
            options: vec![
                ApprovalOption { id: "approve".into(), label: "Approve".into() },
                ApprovalOption { id: "reject".into(), label: "Reject".into() },
            ],
            deciders: vec!["user:u1".into(), "group:ops".into()],
            deadline: "2030-01-01T00:00:00Z".into(),
            default_outcome: "reject".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_body_passes_and_gives_its_policy() {
        let now = crate::time::parse_rfc3339("2029-12-31T00:00:00Z").unwrap();
        let (p, _) = check_create_approval(&CreateApproval { policy: Some("quorum:2".into()), ..body() }, now).unwrap();
        assert_eq!(p, ApprovalPolicy::Quorum(2));
    }

    #[test]
    fn every_bad_field_is_named() {
        let now = crate::time::parse_rfc3339("2029-12-31T00:00:00Z").unwrap();
        let bad = CreateApproval {
            deciders: vec!["agent:a1".into()],
            default_outcome: "maybe".into(),
            policy: Some("most".into()),
            deadline: "yesterday".into(),
            ..body()
        };
        let paths: Vec<String> = check_create_approval(&bad, now).unwrap_err().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["default_outcome", "deciders[0]", "policy", "deadline"]);
    }

    fn said(by: &str, option: &str, entries: &[&str]) -> ApprovalDecision {
        ApprovalDecision {
            by: by.into(),
            at: String::new(),
            option: option.into(),
            comment: None,
            form: None,
            entries: entries.iter().map(|e| e.to_string()).collect(),
            shown_sha256: String::new(),
        }
    }

    #[test]
    fn all_needs_every_entry_and_ends_at_the_first_rejection() {
        let deciders = vec!["user:a".to_owned(), "group:ops".to_owned()];
        let one = [said("user:a", "approve", &["user:a"])];
        assert_eq!(settle(ApprovalPolicy::All, &deciders, &one), None);
        let two = [one[0].clone(), said("user:b", "approve", &["group:ops"])];
        assert_eq!(settle(ApprovalPolicy::All, &deciders, &two).as_deref(), Some("approve"));
        let no = [one[0].clone(), said("user:b", "reject", &["group:ops"])];
        assert_eq!(settle(ApprovalPolicy::All, &deciders, &no).as_deref(), Some("reject"));
        let mine = ["user:a".to_owned()];
        assert!(open_entries(ApprovalPolicy::All, &deciders, &one, &mine).is_empty());
    }

    #[test]
    fn quorum_counts_distinct_people_per_option() {
        let deciders = vec!["group:ops".to_owned()];
        let votes = [said("user:a", "approve", &[]), said("user:b", "reject", &[]), said("user:c", "approve", &[])];
        assert_eq!(settle(ApprovalPolicy::Quorum(2), &deciders, &votes[..2]), None);
        assert_eq!(settle(ApprovalPolicy::Quorum(2), &deciders, &votes).as_deref(), Some("approve"));
    }

    #[test]
    fn sequential_hands_over_in_order() {
        let deciders = vec!["user:a".to_owned(), "user:b".to_owned()];
        let mine = ["user:b".to_owned()];
        assert!(open_entries(ApprovalPolicy::Sequential, &deciders, &[], &mine).is_empty());
        let one = [said("user:a", "approve", &["user:a"])];
        assert_eq!(open_entries(ApprovalPolicy::Sequential, &deciders, &one, &mine), mine);
        assert_eq!(settle(ApprovalPolicy::Sequential, &deciders, &one), None);
    }
}
