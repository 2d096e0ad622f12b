//! Groups of people: tenant admins manage them, `group:<name>` reaches every member's inbox
//! once, policies match `group:` rules, and bad requests are named and change nothing.

mod common;

use common::{ADMIN, TestHub, assert_problem, assert_unchanged, raw};
use serde_json::json;
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{PutGroup, SendMessage};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;

async fn person(hub: &TestHub, email: &str, role: Role) -> (String, Client) {
    let password = "correct horse battery";
    let req = CreateUser { email: email.into(), name: email.into(), role, password: Some(password.into()) };
    let id = hub.admin().create_user(&req).await.expect("create user").user.id;
    let s =
        hub.anonymous().login(&Login { email: email.into(), password: password.into(), tenant: None }).await.unwrap();
    let anon = hub.anonymous();
    let t = anon.create_token_in_session(&s, &CreateToken { name: "t".into(), expires_in_days: None }).await;
    (id, hub.admin().with_token(t.expect("a token").token))
}

fn members(ids: &[&str]) -> PutGroup {
    PutGroup { description: Some("on call".into()), members: ids.iter().map(|m| m.to_string()).collect() }
}

#[tokio::test]
async fn a_group_send_reaches_each_member_once_in_their_inbox() {
    let hub = TestHub::start().await;
    let (ann, ann_c) = person(&hub, "ann@example.com", Role::Member).await;
    let (bea, bea_c) = person(&hub, "bea@example.com", Role::Member).await;
    let (_, cid_c) = person(&hub, "cid@example.com", Role::Member).await;
    let admin = hub.admin();
    // Repeats count once; members come back sorted.
    let g = admin.put_group("ops", &members(&[&bea, &ann, &bea])).await.expect("create");
    let mut want = vec![ann.clone(), bea.clone()];
    want.sort();
    assert_eq!(g.members, want);

    let (agent, agent_c) = hub.agent("pager", &[]).await;
    let sent = agent_c.send(&SendMessage::text("group:ops", "disk full on db-3")).await.expect("send to the group");
    let mut recipients = sent.recipients.clone();
    recipients.sort();
    let mut expected = vec![format!("user:{ann}"), format!("user:{bea}")];
    expected.sort();
    assert_eq!(recipients, expected);
    for c in [&ann_c, &bea_c] {
        let got = c.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
        assert_eq!(got.messages.len(), 1);
        assert_eq!(got.messages[0].message.id, sent.id);
        assert_eq!(got.messages[0].message.from, format!("agent:{}", agent.agent.id));
        assert_eq!(got.messages[0].message.to, "group:ops");
        c.ack(vec![sent.id.clone()]).await.unwrap();
    }
    let none = cid_c.inbox(&InboxOptions { wait_ms: Some(0), ..Default::default() }).await.unwrap();
    assert!(none.messages.is_empty(), "a non-member gets nothing");

    // Member changes: add, remove, and a deleted user leaves the group.
    let (cid, _) = (
        admin.list_users(None, None).await.unwrap().users.into_iter().find(|u| u.email.starts_with("cid")).unwrap().id,
        (),
    );
    let g = admin.add_group_member("ops", &cid).await.unwrap();
    assert_eq!(g.members.len(), 3);
    admin.remove_group_member("ops", &ann).await.unwrap();
    admin.delete_user(&bea).await.unwrap();
    assert_eq!(admin.get_group("ops").await.unwrap().members, std::slice::from_ref(&cid));
    let listed = admin.list_groups(None, None).await.unwrap();
    assert_eq!(listed.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["ops"]);
    // The audit log has each change.
    let log = admin.audit(&Default::default()).await.unwrap();
    let actions: Vec<&str> = log.events.iter().map(|e| e.action.as_str()).filter(|a| a.starts_with("group.")).collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    admin.delete_group("ops").await.unwrap();
    let gone = raw(&hub, "GET", "/v1/groups/ops", Some(ADMIN), None).await;
    assert_problem(gone, 404, "not_found");
    hub.stop().await;
}

#[tokio::test]
async fn unknown_and_empty_groups_and_bad_bodies_are_refused_and_change_nothing() {
    let hub = TestHub::start().await;
    let (ann, _) = person(&hub, "ann@example.com", Role::Member).await;
    let (_, member) = person(&hub, "max@example.com", Role::Member).await;
    hub.admin().put_group("empty", &members(&[])).await.unwrap();
    let before = hub.snapshot().await;
    let send = |to: &str| Some(json!({ "to": to, "parts": [{ "kind": "text", "text": "x" }] }).to_string());
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(ADMIN), send("group:nope")).await,
        422,
        "unknown_recipient",
    );
    assert!(p["detail"].as_str().unwrap().contains("switchboard group set nope"), "{p}");
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(ADMIN), send("group:empty")).await,
        422,
        "unknown_recipient",
    );
    assert!(p["detail"].as_str().unwrap().contains("has no members"), "{p}");
    assert_problem(raw(&hub, "POST", "/v1/messages", Some(ADMIN), send("group:a/b")).await, 422, "invalid_body");
    // An unknown member, a bad id and a long description are each named.
    let body = json!({ "description": "x".repeat(1001), "members": [ann, "no such user", "ghost"] }).to_string();
    let p = assert_problem(raw(&hub, "PUT", "/v1/groups/ops", Some(ADMIN), Some(body)).await, 422, "invalid_body");
    let paths: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["description", "members[1]"]);
    let body = json!({ "members": [ann, "ghost"] }).to_string();
    let p = assert_problem(raw(&hub, "PUT", "/v1/groups/ops", Some(ADMIN), Some(body)).await, 422, "invalid_body");
    assert_eq!(p["errors"][0]["path"], "members[1]");
    let p = assert_problem(
        raw(&hub, "PUT", "/v1/groups/-bad", Some(ADMIN), Some(r#"{"members":[]}"#.into())).await,
        422,
        "invalid_body",
    );
    assert_eq!(p["errors"][0]["path"], "name");
    // Only admins manage groups.
    let err = member.put_group("mine", &members(&[])).await.unwrap_err();
    assert!(err.to_string().contains("forbidden"), "{err}");
    assert!(member.list_groups(None, None).await.is_err());
    assert_unchanged(&before, &hub.snapshot().await, "refused group sends and changes");
    hub.stop().await;
}

#[tokio::test]
async fn a_policy_rule_on_a_group_decides_sends_to_it() {
    let hub = TestHub::start().await;
    let (ann, _) = person(&hub, "ann@example.com", Role::Member).await;
    let admin = hub.admin();
    admin.put_group("ops", &members(&[&ann])).await.unwrap();
    admin.put_group("dev", &members(&[&ann])).await.unwrap();
    let (_, agent) = hub.agent("pager", &[]).await;
    let policy = json!({ "rules": [
        { "id": "no-ops", "from": "*", "to": "group:ops", "effect": "deny" },
        { "from": "*", "to": "*", "effect": "allow" },
    ]});
    admin.put_policy(&serde_json::from_value(policy).unwrap()).await.unwrap();
    let err = agent.send(&SendMessage::text("group:ops", "x")).await.unwrap_err().to_string();
    assert!(err.contains("policy_denied") && err.contains("no-ops"), "{err}");
    agent.send(&SendMessage::text("group:dev", "x")).await.expect("another group is allowed");
    hub.stop().await;
}
