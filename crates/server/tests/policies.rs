//! Policies over HTTP (`GET|PUT /v1/policies`, `POST /v1/policies:check`): no policy allows
//! everything, a set one denies what no rule allows, first match wins, topic wildcards,
//! subscriptions, the refusal naming its rule, validation, the audit entry, and another node
//! picking up a change within the refresh bound.

mod common;

use common::{ADMIN, TestHub, assert_problem, assert_unchanged, eventually, raw};
use serde_json::{Value, json};
use switchboard_client::{AuditQuery, Client, ClientError};
use switchboard_core::api::{BatchItem, SendMessage};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::policy::{Action, PolicyCheck, PolicyRules};
use switchboard_core::principal::Role;

const PASSWORD: &str = "correct horse battery";

fn rules(v: Value) -> PolicyRules {
    serde_json::from_value(json!({ "rules": v })).expect("a policy")
}

fn addr(id: &str) -> String {
    common::agent_addr(id)
}

/// The problem a refused send answers with.
async fn refused(c: &Client, to: &str) -> switchboard_core::api::Problem {
    match c.send(&SendMessage::text(to, "hi")).await {
        Err(ClientError::Api(p)) => p,
        other => panic!("a send to {to} should be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn no_policy_allows_everything_and_a_set_one_denies_what_no_rule_allows() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (a, ac) = hub.agent("a", &[]).await;
    let (b, _) = hub.agent("b", &[]).await;
    assert_eq!(admin.policy().await.unwrap().rules, None, "no policy at first");
    ac.send(&SendMessage::text(addr(&b.agent.id), "hi")).await.expect("no policy: allowed");

    admin.put_policy(&rules(json!([]))).await.expect("an empty policy");
    assert_eq!(admin.policy().await.unwrap().rules, Some(vec![]));
    let before = hub.snapshot().await;
    let p = refused(&ac, &addr(&b.agent.id)).await;
    assert_unchanged(&before, &hub.snapshot().await, "a send the policy refused");
    assert_eq!((p.status, p.code.as_str()), (403, "policy_denied"), "{p:?}");
    assert!(p.detail.contains("no rule allows it") && p.detail.contains(&a.agent.id), "{}", p.detail);
    // The admin token is never denied.
    admin.send(&SendMessage::text(addr(&b.agent.id), "from the admin")).await.expect("the admin is never denied");

    admin.put_policy(&PolicyRules { rules: None }).await.expect("remove the policy");
    ac.send(&SendMessage::text(addr(&b.agent.id), "hi")).await.expect("no policy again: allowed");
    hub.stop().await;
}

#[tokio::test]
async fn first_match_wins_and_a_refusal_names_the_rule_for_single_and_batch_sends() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (a, ac) = hub.agent("a", &[]).await;
    let (b, _) = hub.agent("b", &[]).await;
    let (c, _) = hub.agent("c", &[]).await;
    let policy = rules(json!([
        { "id": "a-not-b", "from": addr(&a.agent.id), "to": addr(&b.agent.id), "effect": "deny" },
        { "from": addr(&a.agent.id), "to": "*", "effect": "allow" },
    ]));
    admin.put_policy(&policy).await.expect("set the policy");
    let p = refused(&ac, &addr(&b.agent.id)).await;
    assert_eq!((p.status, p.code.as_str()), (403, "policy_denied"));
    assert!(p.detail.contains("rule `a-not-b` (rules[0])"), "the refusal names the rule: {}", p.detail);
    ac.send(&SendMessage::text(addr(&c.agent.id), "hi")).await.expect("the second rule allows a → c");

    let batch = ac
        .send_batch(vec![SendMessage::text(addr(&c.agent.id), "ok"), SendMessage::text(addr(&b.agent.id), "no")])
        .await
        .expect("a batch");
    assert!(matches!(&batch.results[0], BatchItem::Accepted(_)), "{:?}", batch.results[0]);
    match &batch.results[1] {
        BatchItem::Refused { error } => {
            assert_eq!(error.code, "policy_denied");
            assert!(error.detail.contains("a-not-b"), "{}", error.detail);
        }
        other => panic!("the batch item to b must be refused: {other:?}"),
    }
    // An anonymous rule is named by its index.
    admin
        .put_policy(&rules(json!([{ "from": "*", "to": addr(&b.agent.id), "effect": "deny" }, { "from": "*", "to": "*", "effect": "allow" }])))
        .await
        .unwrap();
    let p = refused(&ac, &addr(&b.agent.id)).await;
    assert!(p.detail.contains("rules[0] denies it"), "{}", p.detail);
    hub.stop().await;
}

#[tokio::test]
async fn topic_rules_match_wildcards_and_refuse_subscriptions() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (a, ac) = hub.agent("a", &[]).await;
    let (s, sc) = hub.agent("s", &[]).await;
    admin
        .put_policy(&rules(json!([
            { "id": "orders", "from": "*", "to": "topic:orders.>", "effect": "allow" },
            { "id": "eu-only", "from": "*", "to": "topic:billing.*", "effect": "allow", "actions": ["send"] },
        ])))
        .await
        .unwrap();
    sc.subscribe("orders.eu", &s.agent.id).await.expect("orders.> allows subscribing to orders.eu");
    ac.send(&SendMessage::text("topic:orders.eu", "o")).await.expect("orders.> allows sending to orders.eu");
    let p = refused(&ac, "topic:orders").await;
    assert_eq!(p.code, "policy_denied", "`>` needs at least one more token");
    ac.send(&SendMessage::text("topic:billing.eu", "b")).await.expect("billing.* allows sending");
    let p = refused(&ac, "topic:billing.eu.west").await;
    assert_eq!(p.code, "policy_denied", "`*` is one token");
    // The second rule is for sends only: subscribing falls through to the default.
    let got =
        raw(&hub, "PUT", &format!("/v1/topics/billing.eu/subscribers/{}", s.agent.id), Some(&s.api_key), None).await;
    let p = assert_problem(got, 403, "policy_denied");
    assert!(p["detail"].as_str().unwrap().contains("subscribe to `topic:billing.eu`"), "{p}");
    // Also when the admin subscribes the agent: the policy is about who hears the topic.
    let got = raw(&hub, "PUT", &format!("/v1/topics/billing.eu/subscribers/{}", s.agent.id), Some(ADMIN), None).await;
    assert_problem(got, 403, "policy_denied");
    assert!(admin.topic_subscribers("billing.eu").await.unwrap().is_empty(), "nothing was subscribed");
    let _ = a;
    hub.stop().await;
}

#[tokio::test]
async fn capability_and_tag_selectors_pick_agents_by_what_they_offer() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (_, translator) = hub.agent("translator", &["translate"]).await;
    let (_, other) = hub.agent("other", &["summarize"]).await;
    let (t, _) = hub.agent("target", &[]).await;
    admin
        .put_policy(&rules(json!([{ "from": "capability:translate", "to": addr(&t.agent.id), "effect": "allow" }])))
        .await
        .unwrap();
    translator.send(&SendMessage::text(addr(&t.agent.id), "hi")).await.expect("an agent offering translate");
    assert_eq!(refused(&other, &addr(&t.agent.id)).await.code, "policy_denied");
    hub.stop().await;
}

#[tokio::test]
async fn people_are_held_to_rules_on_their_id_and_their_role() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (b, _) = hub.agent("b", &[]).await;
    let (c, _) = hub.agent("c", &[]).await;
    let mut people = Vec::new();
    for email in ["ann@example.com", "bo@example.com"] {
        let req =
            CreateUser { email: email.into(), name: email.into(), role: Role::Member, password: Some(PASSWORD.into()) };
        let id = admin.create_user(&req).await.expect("create a user").user.id;
        let session = hub
            .anonymous()
            .login(&Login { email: email.into(), password: PASSWORD.into(), tenant: None })
            .await
            .unwrap();
        let pat = hub
            .anonymous()
            .create_token_in_session(&session, &CreateToken { name: "t".into(), expires_in_days: None })
            .await
            .unwrap();
        people.push((id, admin.with_token(pat.token)));
    }
    let (ann, ann_c) = &people[0];
    let (_, bo_c) = &people[1];
    admin
        .put_policy(&rules(json!([
            { "id": "members-not-b", "from": "role:member", "to": addr(&b.agent.id), "effect": "deny" },
            { "id": "ann", "from": format!("user:{ann}"), "to": "*", "effect": "allow" },
        ])))
        .await
        .unwrap();
    let p = refused(ann_c, &addr(&b.agent.id)).await;
    assert!(p.code == "policy_denied" && p.detail.contains("members-not-b"), "{p:?}");
    ann_c.send(&SendMessage::text(addr(&c.agent.id), "hi")).await.expect("ann's own rule");
    let p = refused(bo_c, &addr(&c.agent.id)).await;
    assert!(p.code == "policy_denied" && p.detail.contains("no rule allows it"), "{p:?}");
    // `:check` reads the person's role as authentication does.
    let q = PolicyCheck { from: format!("user:{ann}"), to: addr(&b.agent.id), action: None };
    let d = admin.check_policy(&q).await.unwrap();
    assert_eq!((d.allowed, d.rule.map(|r| r.index)), (false, Some(0)), "the role rule decides for ann");
    hub.stop().await;
}

#[tokio::test]
async fn check_answers_with_the_deciding_rule() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (a, _) = hub.agent("a", &[]).await;
    let check = |from: &str, to: &str, action: Option<Action>| PolicyCheck { from: from.into(), to: to.into(), action };
    let d = admin.check_policy(&check(&addr(&a.agent.id), "agent:x", None)).await.unwrap();
    assert!(d.allowed && d.rule.is_none(), "no policy: allowed by default: {d:?}");
    admin
        .put_policy(&rules(json!([
            { "id": "deny-x", "from": addr(&a.agent.id), "to": "agent:x", "effect": "deny" },
            { "from": "*", "to": "topic:news.*", "effect": "allow", "actions": ["subscribe"] },
        ])))
        .await
        .unwrap();
    let d = admin.check_policy(&check(&addr(&a.agent.id), "agent:x", None)).await.unwrap();
    assert!(!d.allowed);
    let rule = d.rule.expect("the deciding rule");
    assert_eq!((rule.index, rule.rule.id.as_deref()), (0, Some("deny-x")));
    let d = admin.check_policy(&check(&addr(&a.agent.id), "topic:news.eu", Some(Action::Subscribe))).await.unwrap();
    assert!(d.allowed && d.rule.as_ref().map(|r| r.index) == Some(1), "{d:?}");
    let d = admin.check_policy(&check(&addr(&a.agent.id), "topic:news.eu", None)).await.unwrap();
    assert!(!d.allowed && d.rule.is_none(), "a send falls through to the default: {d:?}");
    let d = admin.check_policy(&check("admin", "agent:x", None)).await.unwrap();
    assert!(d.allowed && d.rule.is_none(), "the admin is never denied");
    let (status, _, body) = raw(
        &hub,
        "POST",
        "/v1/policies:check",
        Some(ADMIN),
        Some(json!({"from": "robot:x", "to": "agent:x"}).to_string()),
    )
    .await;
    assert_eq!((status, body["errors"][0]["path"].as_str()), (422, Some("from")), "{body}");
    // Agents may not ask, nor read or change the policy.
    let got = raw(&hub, "GET", "/v1/policies", Some(&a.api_key), None).await;
    assert_problem(got, 403, "forbidden");
    hub.stop().await;
}

#[tokio::test]
async fn a_bad_rule_is_named_by_its_path_and_changes_nothing() {
    let hub = TestHub::start().await;
    hub.admin().put_policy(&rules(json!([{ "from": "*", "to": "*", "effect": "allow" }]))).await.unwrap();
    let before = hub.snapshot().await;
    let body = json!({ "rules": [
        { "from": "*", "to": "*", "effect": "allow" },
        { "from": "robot:x", "to": "topic:a.>.b", "effect": "deny" },
    ]});
    let got = raw(&hub, "PUT", "/v1/policies", Some(ADMIN), Some(body.to_string())).await;
    let p = assert_problem(got, 422, "invalid_body");
    let paths: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["rules[1].from", "rules[1].to"], "{p}");
    let bad_effect = json!({ "rules": [{ "from": "*", "to": "*", "effect": "maybe" }] });
    let got = raw(&hub, "PUT", "/v1/policies", Some(ADMIN), Some(bad_effect.to_string())).await;
    let p = assert_problem(got, 422, "invalid_body");
    assert_eq!(p["errors"][0]["path"], "rules[0].effect", "{p}");
    let got = raw(&hub, "PUT", "/v1/policies", Some(ADMIN), Some("{}".into())).await;
    assert_problem(got, 422, "invalid_body");
    assert_unchanged(&before, &hub.snapshot().await, "refused policies");
    hub.stop().await;
}

#[tokio::test]
async fn setting_a_policy_is_audited_as_policy_set() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    admin.put_policy(&rules(json!([{ "from": "*", "to": "*", "effect": "allow" }]))).await.unwrap();
    let q = AuditQuery { action: Some("policy.set".into()), ..Default::default() };
    let page = admin.audit(&q).await.expect("the audit log");
    assert_eq!(page.events.len(), 1, "{:?}", page.events);
    assert_eq!(page.events[0].detail["rules"], 1);
    assert_eq!(page.events[0].actor, "operator");
    hub.stop().await;
}

#[tokio::test]
async fn another_node_enforces_a_change_within_the_refresh_bound() {
    let hub = TestHub::start().await;
    let Some(other) = hub.second_node().await else {
        return;
    };
    let (a, _) = hub.agent("a", &[]).await;
    let (b, _) = hub.agent("b", &[]).await;
    let on_other = other.admin().with_token(a.api_key.clone());
    // The other node caches the tenant's (empty) access state on this send.
    on_other.send(&SendMessage::text(addr(&b.agent.id), "before")).await.expect("no policy yet");
    let started = std::time::Instant::now();
    hub.admin().put_policy(&rules(json!([{ "id": "stop", "from": "*", "to": "*", "effect": "deny" }]))).await.unwrap();
    eventually(10, "the other node to enforce the new policy", || {
        let c = on_other.clone();
        let to = addr(&b.agent.id);
        async move {
            match c.send(&SendMessage::text(to, "after")).await {
                Err(ClientError::Api(p)) if p.code == "policy_denied" => Some(()),
                _ => None,
            }
        }
    })
    .await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(3), "the bound is one refresh (1 s); took {took:?}");
    other.stop().await;
    hub.stop().await;
}
