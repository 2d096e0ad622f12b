//! Wildcard subscriptions (`orders.*`, `orders.>`), as a user meets them: NATS matching, one
//! delivery per agent however many of its subscriptions match, unsubscribe, bad patterns
//! refused by name, policies, and (on PostgreSQL) a second node hearing a new pattern within
//! the refresh bound.

mod common;
use common::{TestHub, agent_addr as addr, assert_unchanged, eventually};
use serde_json::json;
use switchboard_client::{Client, ClientError, InboxOptions};
use switchboard_core::api::SendMessage;
use switchboard_core::policy::PolicyRules;

/// The sorted recipients of a publish to `topic` by `by`.
async fn publish(by: &Client, topic: &str) -> Vec<String> {
    let mut r = by.send(&SendMessage::text(format!("topic:{topic}"), "x")).await.unwrap().recipients;
    r.sort();
    r
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The code and field paths of a refusal.
fn refusal(e: ClientError) -> (u16, String, Vec<String>) {
    match e {
        ClientError::Api(p) => (p.status, p.code, p.errors.into_iter().map(|f| f.path).collect()),
        other => panic!("expected a problem, got {other}"),
    }
}

#[tokio::test]
async fn patterns_match_as_in_nats_and_each_agent_hears_a_publish_once() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (deep, deep_c) = hub.agent("deep", &[]).await;
    let (one, one_c) = hub.agent("one", &[]).await;
    let (both, both_c) = hub.agent("both", &[]).await;
    let (deep, one, both) = (deep.agent.id, one.agent.id, both.agent.id);
    deep_c.subscribe("orders.>", &deep).await.unwrap();
    one_c.subscribe("orders.*", &one).await.unwrap();
    both_c.subscribe("orders.eu", &both).await.unwrap();
    both_c.subscribe("orders.*", &both).await.unwrap();
    both_c.subscribe("*.eu", &both).await.unwrap();

    // `>` is one or more tokens; `*` exactly one.
    assert_eq!(publish(&admin, "orders.eu.created").await, [addr(&deep)]);
    assert_eq!(publish(&admin, "orders.eu").await, sorted(vec![addr(&deep), addr(&one), addr(&both)]));
    assert_eq!(publish(&admin, "orders").await, Vec::<String>::new(), "`orders.>` needs a token after `orders`");
    assert_eq!(publish(&admin, "billing.eu").await, [addr(&both)]);
    // `both` matched by its name and two patterns: one delivery.
    let inbox = both_c.inbox(&InboxOptions { limit: Some(100), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 2, "orders.eu and billing.eu, once each: {:?}", inbox.messages);
    // A publisher does not hear itself through a pattern either.
    assert_eq!(publish(&deep_c, "orders.us.paid").await, Vec::<String>::new());

    // The patterns are listed, and removed, by the same path as names.
    let subs = admin.topic_subscribers("orders.*").await.unwrap();
    assert_eq!(sorted(subs.into_iter().map(|s| s.agent_id).collect()), sorted(vec![one.clone(), both.clone()]));
    one_c.unsubscribe("orders.*", &one).await.unwrap();
    both_c.unsubscribe("orders.*", &both).await.unwrap();
    both_c.unsubscribe("*.eu", &both).await.unwrap();
    assert_eq!(publish(&admin, "orders.eu").await, sorted(vec![addr(&deep), addr(&both)]), "both still by name");
    both_c.unsubscribe("orders.eu", &both).await.unwrap();
    deep_c.unsubscribe("orders.>", &deep).await.unwrap();
    assert_eq!(publish(&admin, "orders.eu").await, Vec::<String>::new());
    hub.stop().await;
}

#[tokio::test]
async fn a_node_that_started_after_the_subscriptions_reads_them_from_the_store() {
    let mut hub = TestHub::start().await;
    let (a, c) = hub.agent("a", &[]).await;
    c.subscribe("orders.>", &a.agent.id).await.unwrap();
    hub.restart().await;
    assert_eq!(publish(&hub.admin(), "orders.eu.created").await, [addr(&a.agent.id)]);
    hub.stop().await;
}

#[tokio::test]
async fn bad_patterns_are_refused_by_name_and_change_nothing() {
    let hub = TestHub::start().await;
    let (a, c) = hub.agent("a", &[]).await;
    let id = &a.agent.id;
    let before = hub.snapshot().await;
    for bad in ["ord*", "orders.>.eu", "orders..*", "orders.*x", ">.orders", "orders.", "*>"] {
        let (status, code, paths) = refusal(c.subscribe(bad, id).await.unwrap_err());
        assert_eq!((status, code.as_str(), paths), (400, "invalid_query", vec!["topic".to_owned()]), "{bad}");
    }
    // A publish names a topic, never a pattern.
    for bad in ["orders.*", "orders.>"] {
        let (status, code, paths) = refusal(c.send(&SendMessage::text(format!("topic:{bad}"), "x")).await.unwrap_err());
        assert_eq!((status, code.as_str(), paths), (422, "invalid_body", vec!["to".to_owned()]), "{bad}");
    }
    assert_unchanged(&before, &hub.snapshot().await, "bad patterns");
    hub.stop().await;
}

#[tokio::test]
async fn a_pattern_needs_a_policy_rule_covering_all_it_matches() {
    let hub = TestHub::start().await;
    let (a, c) = hub.agent("a", &[]).await;
    let id = &a.agent.id;
    let rules: PolicyRules = serde_json::from_value(json!({ "rules": [
        { "from": "*", "to": "topic:orders.secret", "effect": "deny" },
        { "from": "*", "to": "topic:orders.*", "effect": "allow" },
        { "from": "*", "to": "topic:billing.>", "effect": "allow" },
    ]}))
    .unwrap();
    hub.admin().put_policy(&rules).await.unwrap();
    c.subscribe("orders.eu", id).await.expect("allowed by name");
    c.subscribe("billing.*", id).await.expect("`billing.>` covers `billing.*`");
    c.subscribe("billing.eu.>", id).await.expect("and `billing.eu.>`");
    for denied in ["orders.*", "orders.>", "*.eu", ">", "billing.>.x"] {
        match c.subscribe(denied, id).await {
            Err(ClientError::Api(p)) if denied == "billing.>.x" => assert_eq!(p.code, "invalid_query"),
            Err(ClientError::Api(p)) => assert_eq!(p.code, "policy_denied", "{denied}: {}", p.detail),
            other => panic!("{denied}: {other:?}"),
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn another_node_hears_a_new_pattern_within_the_refresh_bound() {
    let hub = TestHub::start().await;
    let Some(other) = hub.second_node().await else {
        return;
    };
    let (a, c) = hub.agent("a", &[]).await;
    // The other node loads the tenant's (empty) patterns on this publish.
    assert_eq!(publish(&other.admin(), "orders.eu.created").await, Vec::<String>::new());
    let started = std::time::Instant::now();
    c.subscribe("orders.>", &a.agent.id).await.unwrap();
    let want = vec![addr(&a.agent.id)];
    eventually(10, "the other node to route to the new pattern", || {
        let (admin, want) = (other.admin(), want.clone());
        async move { (publish(&admin, "orders.eu.created").await == want).then_some(()) }
    })
    .await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(3), "the bound is one refresh (1 s); took {took:?}");
    // And an unsubscribe there too.
    c.unsubscribe("orders.>", &a.agent.id).await.unwrap();
    eventually(10, "the other node to forget the pattern", || {
        let admin = other.admin();
        async move { publish(&admin, "orders.eu.created").await.is_empty().then_some(()) }
    })
    .await;
    other.stop().await;
    hub.stop().await;
}
