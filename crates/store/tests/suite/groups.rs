//! Groups and auto-routing on every backend: members must be users of the tenant, a deleted
//! user leaves its groups, changes are audited only when something changed, and a message
//! leaves triage once, with its triage deliveries closed and the chosen agent's made.

use serde_json::json;
use switchboard_core::api::DeliveryState;
use switchboard_core::audit::{AuditAction, NewAuditEvent};
use switchboard_core::principal::Role;
use switchboard_store::audit::AuditFilter;
use switchboard_store::autoroute::{Reroute, RerouteOutcome, RoutingSettingsRecord};
use switchboard_store::groups::{AddMemberOutcome, GroupRecord, PutGroupOutcome};
use switchboard_store::prelude::*;
use switchboard_store::users::UserRecord;

use super::{T, message};

fn by(action: AuditAction) -> Option<NewAuditEvent> {
    Some(NewAuditEvent {
        tenant: T.into(),
        at: 1,
        actor: "admin".into(),
        action,
        target: "group:ops".into(),
        detail: json!({}),
    })
}

async fn user(s: &dyn Store, tenant: &str, id: &str) {
    let u = UserRecord {
        tenant: tenant.into(),
        id: id.into(),
        email: format!("{id}@example.com"),
        name: id.into(),
        role: Role::Member,
        has_password: false,
        created_at: 1,
        updated_at: 1,
    };
    s.create_user(u, None, None).await.unwrap();
}

fn group(tenant: &str, name: &str, members: &[&str], at: i64) -> GroupRecord {
    GroupRecord {
        tenant: tenant.into(),
        name: name.into(),
        description: Some("on call".into()),
        members: members.iter().map(|m| m.to_string()).collect(),
        created_at: at,
        updated_at: at,
    }
}

async fn actions(s: &dyn Store) -> Vec<String> {
    let events = s.list_audit(T, AuditFilter { limit: 100, ..Default::default() }).await.unwrap();
    events.into_iter().map(|e| e.action).collect()
}

pub async fn groups_hold_users_of_their_tenant(s: &dyn Store) {
    user(s, T, "u1").await;
    user(s, T, "u2").await;
    user(s, "t2", "u3").await;
    // A user of another tenant is unknown here; nothing is written.
    let out = s.put_group(group(T, "ops", &["u1", "u3"], 5), by(AuditAction::GroupSet)).await.unwrap();
    assert_eq!(out, PutGroupOutcome::UnknownUsers(vec!["u3".into()]));
    assert!(s.get_group(T, "ops").await.unwrap().is_none());
    assert!(actions(s).await.is_empty());

    let out = s.put_group(group(T, "ops", &["u1"], 5), by(AuditAction::GroupSet)).await.unwrap();
    assert_eq!(out, PutGroupOutcome::Stored { created: true });
    // Replacing keeps created_at and swaps the members.
    let out = s.put_group(group(T, "ops", &["u2"], 9), by(AuditAction::GroupSet)).await.unwrap();
    assert_eq!(out, PutGroupOutcome::Stored { created: false });
    let g = s.get_group(T, "ops").await.unwrap().unwrap();
    assert_eq!((g.members.as_slice(), g.created_at, g.updated_at), (&["u2".to_owned()][..], 5, 9));

    assert_eq!(
        s.add_group_member(T, "ops", "u1", 10, by(AuditAction::GroupMemberAdd)).await.unwrap(),
        AddMemberOutcome::Added
    );
    assert_eq!(
        s.add_group_member(T, "ops", "u1", 11, by(AuditAction::GroupMemberAdd)).await.unwrap(),
        AddMemberOutcome::AlreadyMember
    );
    assert_eq!(s.add_group_member(T, "ops", "u3", 11, None).await.unwrap(), AddMemberOutcome::NoUser);
    assert_eq!(s.add_group_member(T, "none", "u1", 11, None).await.unwrap(), AddMemberOutcome::NoGroup);
    assert_eq!(s.get_group(T, "ops").await.unwrap().unwrap().members, ["u1", "u2"]);
    assert_eq!(
        s.remove_group_member(T, "ops", "u2", 12, by(AuditAction::GroupMemberRemove)).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        s.remove_group_member(T, "ops", "u2", 12, by(AuditAction::GroupMemberRemove)).await.unwrap(),
        Some(false)
    );
    assert_eq!(s.remove_group_member(T, "none", "u2", 12, None).await.unwrap(), None);

    // A deleted user leaves its groups.
    s.put_group(group(T, "dev", &["u1", "u2"], 5), None).await.unwrap();
    s.delete_user(T, "u1", None).await.unwrap();
    assert!(s.get_group(T, "ops").await.unwrap().unwrap().members.is_empty());
    assert_eq!(s.get_group(T, "dev").await.unwrap().unwrap().members, ["u2"]);

    // Listing pages by name; other tenants see none of it.
    let names = |v: Vec<GroupRecord>| v.into_iter().map(|g| g.name).collect::<Vec<_>>();
    assert_eq!(names(s.list_groups(T, None, 1).await.unwrap()), ["dev"]);
    assert_eq!(names(s.list_groups(T, Some("dev".into()), 10).await.unwrap()), ["ops"]);
    assert!(s.list_groups("t2", None, 10).await.unwrap().is_empty());
    assert!(s.get_group("t2", "ops").await.unwrap().is_none());
    assert!(!s.delete_group("t2", "ops", by(AuditAction::GroupDelete)).await.unwrap());
    assert!(s.delete_group(T, "ops", by(AuditAction::GroupDelete)).await.unwrap());
    assert!(!s.delete_group(T, "ops", by(AuditAction::GroupDelete)).await.unwrap());
    assert!(s.get_group(T, "ops").await.unwrap().is_none());
    // Only what changed was audited: two sets, one add, one removal, one deletion.
    assert_eq!(actions(s).await, ["group.set", "group.set", "group.member_add", "group.member_remove", "group.delete"]);
}

pub async fn routing_settings_keep_their_key_per_tenant(s: &dyn Store) {
    assert!(s.routing_settings(T).await.unwrap().is_none());
    let rec =
        RoutingSettingsRecord { settings: r#"{"threshold":3}"#.into(), api_key: Some("sk-1".into()), updated_at: 7 };
    s.put_routing_settings(T, rec.clone(), by(AuditAction::RoutingSettingsUpdate)).await.unwrap();
    assert_eq!(s.routing_settings(T).await.unwrap(), Some(rec));
    assert!(s.routing_settings("t2").await.unwrap().is_none());
    let none = RoutingSettingsRecord { settings: "{}".into(), api_key: None, updated_at: 8 };
    s.put_routing_settings(T, none.clone(), None).await.unwrap();
    assert_eq!(s.routing_settings(T).await.unwrap(), Some(none));
    assert_eq!(actions(s).await, ["routing_settings.update"]);
}

pub async fn a_message_leaves_triage_once(s: &dyn Store) {
    let mut m = message(T, "m1", "auto", None);
    m.recipients = vec!["user:a".into(), "user:b".into()];
    m.routing = Some(r#"{"method":"bm25"}"#.into());
    s.accept(vec![m]).await.unwrap();
    assert_eq!(s.message_routing(T, "m1").await.unwrap().as_deref(), Some(r#"{"method":"bm25"}"#));
    assert_eq!(s.message_routing("t2", "m1").await.unwrap(), None);
    // user:a holds it under a lease; user:b has not looked yet.
    assert_eq!(s.lease(super::lease_req(T, "user:a", 1000)).await.unwrap().len(), 1);

    let reroute = |expected: &str| Reroute {
        tenant: T.into(),
        message_id: "m1".into(),
        expected: expected.into(),
        routing: r#"{"method":"triage"}"#.into(),
        add: vec![("agent:x".into(), false)],
        now: 2000,
    };
    let mut wake = s.wakeups().subscribe((T.to_owned(), "agent:x".to_owned()));
    wake.mark_unchanged();
    let out = s.reroute(reroute(r#"{"method":"bm25"}"#), by(AuditAction::MessageRoute)).await.unwrap();
    let RerouteOutcome::Rerouted { mut closed } = out else { panic!("{out:?}") };
    closed.sort();
    assert_eq!(closed, ["user:a", "user:b"]);
    assert!(wake.has_changed().unwrap(), "the chosen agent is woken");
    assert_eq!(s.message_routing(T, "m1").await.unwrap().as_deref(), Some(r#"{"method":"triage"}"#));
    let (_, d) = s.get_message(T, "m1").await.unwrap().unwrap();
    let states: Vec<(&str, DeliveryState)> = d.iter().map(|d| (d.recipient.as_str(), d.state)).collect();
    assert_eq!(
        states,
        [("user:a", DeliveryState::Acked), ("user:b", DeliveryState::Acked), ("agent:x", DeliveryState::Pending)]
    );
    assert_eq!(s.lease(super::lease_req(T, "agent:x", 2000)).await.unwrap().len(), 1);
    // A second choice made on the old decision changes nothing.
    let again = s.reroute(reroute(r#"{"method":"bm25"}"#), by(AuditAction::MessageRoute)).await.unwrap();
    assert_eq!(again, RerouteOutcome::Changed);
    assert_eq!(s.get_message(T, "m1").await.unwrap().unwrap().1.len(), 3);
    let none = Reroute { message_id: "nope".into(), ..reroute("{}") };
    assert_eq!(s.reroute(none, None).await.unwrap(), RerouteOutcome::NoMessage);
    assert_eq!(actions(s).await, ["message.route"]);
}
