//! Approvals on every backend: an update holds only over the version it read (so two
//! writers racing on one approval give one change, and the loser's audit entry is not
//! written), the due list is what the ticker claims, and lists page newest first per tenant.

use serde_json::json;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_store::approvals::{ApprovalFilter, ApprovalRecord};
use switchboard_store::audit::AuditFilter;
use switchboard_store::prelude::*;

use super::T;

fn entry(action: AuditAction, id: &str) -> NewAuditEvent {
    NewAuditEvent {
        tenant: T.into(),
        at: 1,
        actor: "user:ann".into(),
        action,
        target: format!("approval:{id}"),
        detail: json!({}),
    }
}

fn approval(tenant: &str, id: &str, due_at: Option<i64>) -> ApprovalRecord {
    ApprovalRecord {
        tenant: tenant.into(),
        id: id.into(),
        message_id: format!("m-{id}"),
        requester: "agent:a1".into(),
        request: "{}".into(),
        deadline: 10_000,
        state: "pending".into(),
        deciders: r#"["user:ann"]"#.into(),
        escalated: 0,
        decisions: "[]".into(),
        outcome: None,
        outbox: "[]".into(),
        due_at,
        version: 0,
        created_at: 1,
        updated_at: 1,
    }
}

pub async fn an_approval_changes_only_over_the_version_it_read(s: &dyn Store) {
    s.create_approval(approval(T, "ap1", Some(10_000)), Some(entry(AuditAction::ApprovalCreate, "ap1"))).await.unwrap();
    let read = s.get_approval(T, "ap1").await.unwrap().unwrap();
    assert_eq!(read, approval(T, "ap1", Some(10_000)));
    assert_eq!(s.approval_for_message(T, "m-ap1").await.unwrap().map(|a| a.id).as_deref(), Some("ap1"));
    assert!(s.get_approval("t2", "ap1").await.unwrap().is_none(), "another tenant's id is nobody's");

    // Two deciders read version 0; the first update wins, the second finds version 1.
    let first = ApprovalRecord {
        state: "approved".into(),
        decisions: r#"[{"by":"user:ann"}]"#.into(),
        due_at: None,
        updated_at: 5,
        ..read.clone()
    };
    let second = ApprovalRecord {
        state: "rejected".into(),
        decisions: r#"[{"by":"user:bo"}]"#.into(),
        updated_at: 6,
        ..read.clone()
    };
    assert!(s.update_approval(first, vec![entry(AuditAction::ApprovalDecide, "ap1")]).await.unwrap());
    assert!(!s.update_approval(second, vec![entry(AuditAction::ApprovalDecide, "ap1")]).await.unwrap());
    let now = s.get_approval(T, "ap1").await.unwrap().unwrap();
    assert_eq!((now.state.as_str(), now.version, now.due_at, now.updated_at), ("approved", 1, None, 5));
    let events = s.list_audit(T, AuditFilter { limit: 100, ..Default::default() }).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["approval.create", "approval.decide"], "the losing update wrote no entry");
}

pub async fn due_approvals_are_those_whose_time_came(s: &dyn Store) {
    s.create_approval(approval(T, "early", Some(100)), None).await.unwrap();
    s.create_approval(approval("t2", "other", Some(50)), None).await.unwrap();
    s.create_approval(approval(T, "late", Some(1_000)), None).await.unwrap();
    s.create_approval(approval(T, "done", None), None).await.unwrap();
    let due: Vec<String> = s.due_approvals(100, 10).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(due, ["other", "early"], "every tenant's, earliest first, not the later or the settled");
    assert_eq!(s.due_approvals(100, 1).await.unwrap().len(), 1);
    assert_eq!(s.due_approvals(5_000, 10).await.unwrap().len(), 3);
}

pub async fn approvals_list_newest_first_by_state_and_tenant(s: &dyn Store) {
    for id in ["a1", "a2", "a3"] {
        s.create_approval(approval(T, id, None), None).await.unwrap();
    }
    s.create_approval(approval("t2", "a4", None), None).await.unwrap();
    let a2 = s.get_approval(T, "a2").await.unwrap().unwrap();
    assert!(s.update_approval(ApprovalRecord { state: "expired".into(), ..a2 }, Vec::new()).await.unwrap());
    let ids = |v: Vec<ApprovalRecord>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let all = s.list_approvals(T, ApprovalFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(ids(all), ["a3", "a2", "a1"]);
    let page = s.list_approvals(T, ApprovalFilter { limit: 1, before: Some("a3".into()), ..Default::default() });
    assert_eq!(ids(page.await.unwrap()), ["a2"]);
    let pending =
        s.list_approvals(T, ApprovalFilter { state: Some("pending".into()), limit: 10, ..Default::default() });
    assert_eq!(ids(pending.await.unwrap()), ["a3", "a1"]);
}
