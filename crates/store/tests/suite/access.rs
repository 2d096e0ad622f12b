//! Policies and limits on every backend: stored per tenant with a version each change
//! bumps, audited in the change's transaction, and the counts quotas are checked against.

use serde_json::json;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_store::access::AccessRecord;
use switchboard_store::audit::AuditFilter;
use switchboard_store::prelude::*;

use super::{T, agent, message};

fn by(action: AuditAction) -> Option<NewAuditEvent> {
    Some(NewAuditEvent {
        tenant: T.into(),
        at: 1,
        actor: "admin".into(),
        action,
        target: format!("tenant:{T}"),
        detail: json!({}),
    })
}

pub(super) async fn policy_and_limits_are_versioned_and_audited(s: &dyn Store) {
    assert_eq!(s.access(T).await.unwrap(), AccessRecord::default(), "nothing set: version 0");
    assert!(s.access_versions().await.unwrap().is_empty());
    assert_eq!(s.put_policy(T, Some("[]".into()), by(AuditAction::PolicySet)).await.unwrap(), 1);
    assert_eq!(s.put_limits(T, "{\"max_agents\":3}".into(), by(AuditAction::LimitsSet)).await.unwrap(), 2);
    let r = s.access(T).await.unwrap();
    assert_eq!((r.policy.as_deref(), r.limits.as_deref(), r.version), (Some("[]"), Some("{\"max_agents\":3}"), 2));
    assert_eq!(s.put_policy(T, None, by(AuditAction::PolicySet)).await.unwrap(), 3, "removing is a change too");
    let r = s.access(T).await.unwrap();
    assert_eq!((r.policy, r.limits.is_some()), (None, true), "the limits stay");
    assert_eq!(s.access_versions().await.unwrap(), vec![(T.to_owned(), 3)]);
    assert_eq!(s.access("t2").await.unwrap(), AccessRecord::default(), "per tenant");
    let actions: Vec<String> = s
        .list_audit(T, AuditFilter { limit: 10, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["policy.set", "limits.set", "policy.set"]);
}

pub(super) async fn quota_counts_are_per_tenant(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.create_agent(agent(T, "a2", "bob"), "h2".into(), None).await.unwrap();
    s.create_agent(agent("t2", "a3", "cy"), "h3".into(), None).await.unwrap();
    assert_eq!((s.count_agents(T).await.unwrap(), s.count_agents("t2").await.unwrap()), (2, 1));
    assert_eq!(s.count_messages(T).await.unwrap(), 0);
    s.accept(vec![message(T, "m1", "agent:a1", None), message(T, "m2", "agent:a2", None)]).await.unwrap();
    assert_eq!((s.count_messages(T).await.unwrap(), s.count_messages("t2").await.unwrap()), (2, 0));
}
