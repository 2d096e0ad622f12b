//! The behavioural suite every `Store` backend must pass. Each test is a function over
//! `&dyn Store`; `backends!` instantiates it once per backend: SQLite, and PostgreSQL (each
//! test then gets a database of its own on the server `SWITCHBOARD_TEST_DATABASE_URL` names).
//! Behaviour only PostgreSQL has (several nodes on one database, outages) is in `mod postgres_only`.
//! The PostgreSQL tests are `#[ignore]`d, so that a run without a server reports them as
//! ignored rather than passed; `cargo test -p switchboard-store --test suite -- --ignored`
//! with the variable set runs them (`.ci/run` does).

use switchboard_core::PrincipalKind;
use switchboard_core::api::{Capability, DeliveryState, Priority};
use switchboard_store::postgres::PostgresStore;
use switchboard_store::prelude::*;
use switchboard_store::push::{AttemptRecord, PushClaim, PushOutcome, PushSettings};
use switchboard_store::sqlite::SqliteStore;
use switchboard_store::{
    AcceptOutcome, AgentFilter, AgentRecord, Conflict, DeliveryCounts, DeliveryFilter, LeaseRequest, NewMessage,
    StoreError, TenantRecord,
};

#[path = "suite/access.rs"]
mod access;
use access::*;

#[path = "suite/audit.rs"]
mod audit;
use audit::*;

#[path = "suite/approvals.rs"]
mod approvals;
use approvals::*;

#[path = "suite/groups.rs"]
mod groups;
use groups::*;
#[path = "suite/conversations.rs"]
mod conversations;
use conversations::*;

#[path = "suite/keys.rs"]
mod keys;
#[path = "suite/principal_keys.rs"]
mod principal_keys;
use keys::*;
use principal_keys::*;

#[path = "suite/users.rs"]
mod users;
use users::*;
#[path = "suite/oauth.rs"]
mod oauth;
use oauth::*;
#[path = "suite/flow.rs"]
mod flow;
use flow::*;
#[path = "suite/inbox.rs"]
mod inbox;
use inbox::*;
#[path = "suite/retention.rs"]
mod retention;
use retention::*;
#[path = "suite/notify.rs"]
mod notify;
use notify::*;
#[path = "suite/a2a.rs"]
mod a2a;
use a2a::*;

const T: &str = "t1";

/// The recipient text of agent `id`, spelled by the one address type.
fn agent_text(id: &str) -> String {
    switchboard_core::Recipient::agent_text(&switchboard_core::AgentId::from(id))
}

fn agent(tenant: &str, id: &str, name: &str) -> AgentRecord {
    AgentRecord {
        tenant: tenant.into(),
        id: id.into(),
        name: name.into(),
        description: None,
        version: None,
        endpoint: None,
        capabilities: vec![],
        metadata: None,
        created_at: 1,
        updated_at: 1,
        last_seen_at: None,
    }
}

fn message(tenant: &str, id: &str, to: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        tenant: tenant.into(),
        id: id.into(),
        sender: "admin".into(),
        to: to.into(),
        recipients: vec![to.into()],
        push_recipients: vec![],
        parts: r#"[{"kind":"text","text":"hi"}]"#.into(),
        metadata: None,
        conversation_id: None,
        correlation_id: None,
        in_reply_to: None,
        idempotency_key: key.map(Into::into),
        request_hash: "h".into(),
        created_at: 1000,
        expires_at: None,
        priority: Priority::Normal,
        in_history: false,
        audit: None,
        routing: None,
        signature: None,
    }
}

fn lease_req(tenant: &str, to: &str, now: i64) -> LeaseRequest {
    LeaseRequest { tenant: tenant.into(), recipient: to.into(), limit: 10, now, lease_ms: 100, max_attempts: 5 }
}

async fn accept_lease_ack(s: &dyn Store) {
    let out = s.accept(vec![message(T, "m1", "agent:b", None), message(T, "m2", "agent:b", None)]).await.unwrap();
    assert!(matches!(out[0], AcceptOutcome::Accepted { .. }));
    let leased = s.lease(lease_req(T, "agent:b", 1000)).await.unwrap();
    let ids: Vec<_> = leased.iter().map(|l| l.message.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"], "accept order");
    assert_eq!(leased[0].attempt, 1);
    let acked = s.ack(T, "agent:b", vec!["m1".into(), "zz".into()], 1001, None).await.unwrap();
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0].created_at, 1000);
    let (_, d) = s.get_message(T, "m1").await.unwrap().unwrap();
    assert_eq!(d[0].state, DeliveryState::Acked);
}

async fn lease_expiry_makes_it_due_again(s: &dyn Store) {
    s.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
    assert_eq!(s.lease(lease_req(T, "agent:b", 1000)).await.unwrap().len(), 1);
    assert!(s.lease(lease_req(T, "agent:b", 1050)).await.unwrap().is_empty(), "still leased");
    let due = s.due_recipients(1050, 1100).await.unwrap();
    assert_eq!(due, vec![(T.to_owned(), "agent:b".to_owned())]);
    let again = s.lease(lease_req(T, "agent:b", 1100)).await.unwrap();
    assert_eq!(again[0].attempt, 2);
}

async fn idempotency_key_returns_the_first_message(s: &dyn Store) {
    s.accept(vec![message(T, "m1", "agent:b", Some("k"))]).await.unwrap();
    let out = s.accept(vec![message(T, "m2", "agent:b", Some("k"))]).await.unwrap();
    assert!(matches!(&out[0], AcceptOutcome::Duplicate { id, .. } if id == "m1"));
    let mut other = message(T, "m3", "agent:b", Some("k"));
    other.request_hash = "different".into();
    let out = s.accept(vec![other]).await.unwrap();
    assert!(matches!(&out[0], AcceptOutcome::KeyReused { id } if id == "m1"));
    assert!(s.get_message(T, "m2").await.unwrap().is_none());
}

async fn tenants_do_not_see_each_other(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "same-name"), "hash-1".into(), None).await.unwrap();
    s.create_agent(agent("t2", "a2", "same-name"), "hash-2".into(), None).await.unwrap();
    s.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
    assert!(s.get_message("t2", "m1").await.unwrap().is_none());
    assert!(s.lease(lease_req("t2", "agent:b", 1000)).await.unwrap().is_empty());
    assert!(s.get_agent("t2", "a1").await.unwrap().is_none());
    let listed = s.list_agents("t2", AgentFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(listed.len(), 1);
    let p = s.principal_for_token("hash-2").await.unwrap().unwrap();
    assert_eq!((p.tenant.as_str(), p.kind), ("t2", PrincipalKind::Agent("a2".into())));
}

async fn agent_names_are_unique_per_tenant(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "bob"), "h1".into(), None).await.unwrap();
    let err = s.create_agent(agent(T, "a2", "bob"), "h2".into(), None).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict(Conflict::AgentNameTaken { name: "bob".into() }));
    assert!(s.principal_for_token("h2").await.unwrap().is_none(), "a refused create writes nothing");
}

async fn ttl_expiry_and_dead_letters(s: &dyn Store) {
    let mut m = message(T, "m1", "agent:b", None);
    m.expires_at = Some(1500);
    s.accept(vec![m, message(T, "m2", "agent:c", None)]).await.unwrap();
    assert_eq!(s.expire(1600).await.unwrap(), 1);
    let (_, d) = s.get_message(T, "m1").await.unwrap().unwrap();
    assert_eq!(d[0].state, DeliveryState::Expired);
    let mut req = lease_req(T, "agent:c", 1000);
    req.max_attempts = 1;
    assert_eq!(s.lease(req.clone()).await.unwrap().len(), 1);
    req.now = 2000;
    assert!(s.lease(req).await.unwrap().is_empty());
    let (_, d) = s.get_message(T, "m2").await.unwrap().unwrap();
    assert_eq!(d[0].state, DeliveryState::Dead);
    assert_eq!(d[0].last_error.as_deref(), Some("not acknowledged after the maximum number of attempts"));
}

/// A lease checks the TTL itself: between reaper passes it must not hand out a message whose
/// time is up (it marks it expired instead), and it hands out one whose time is not.
async fn a_lease_does_not_hand_out_what_outlived_its_ttl(s: &dyn Store) {
    let with_ttl = |id: &str, expires_at: i64| {
        let mut m = message(T, id, "agent:b", None);
        m.expires_at = Some(expires_at);
        m
    };
    s.accept(vec![with_ttl("live", 2000), with_ttl("stale", 1500), with_ttl("due_now", 1600)]).await.unwrap();
    let leased = s.lease(lease_req(T, "agent:b", 1600)).await.unwrap();
    let ids: Vec<_> = leased.iter().map(|l| l.message.id.as_str()).collect();
    assert_eq!(ids, ["live"], "only the message whose TTL has not run out");
    for (id, state) in
        [("live", DeliveryState::Delivered), ("stale", DeliveryState::Expired), ("due_now", DeliveryState::Expired)]
    {
        let (_, d) = s.get_message(T, id).await.unwrap().unwrap();
        assert_eq!(d[0].state, state, "{id}");
    }
}

/// WebSocket ack frames take the lazy path (`ack_unanswered`): it acks all the same.
async fn an_unanswered_ack_acks(s: &dyn Store) {
    s.accept(vec![message(T, "m1", "agent:b", None), message(T, "m2", "agent:b", None)]).await.unwrap();
    assert_eq!(s.lease(lease_req(T, "agent:b", 1000)).await.unwrap().len(), 2);
    let acked = s.ack_unanswered(T, "agent:b", vec!["m1".into(), "zz".into()], 1001, None).await.unwrap();
    let ids: Vec<_> = acked.iter().map(|a| (a.id.as_str(), a.created_at)).collect();
    assert_eq!(ids, [("m1", 1000)], "the open delivery it named, not the unknown id");
    let (_, d) = s.get_message(T, "m1").await.unwrap().unwrap();
    assert_eq!(d[0].state, DeliveryState::Acked);
    let again = s.lease(lease_req(T, "agent:b", 5000)).await.unwrap();
    let ids: Vec<_> = again.iter().map(|l| l.message.id.as_str()).collect();
    assert_eq!(ids, ["m2"], "an acked message is not redelivered when its lease runs out");
}

async fn a_commit_wakes_the_recipient(s: &dyn Store) {
    let mut rx = s.wakeups().subscribe((T.into(), "agent:b".into()));
    rx.borrow_and_update();
    s.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
    assert!(rx.has_changed().unwrap());
}

async fn one_accept_repeating_a_key_keeps_the_first(s: &dyn Store) {
    let out =
        s.accept(vec![message(T, "m1", "agent:b", Some("k")), message(T, "m2", "agent:b", Some("k"))]).await.unwrap();
    assert!(matches!(&out[0], AcceptOutcome::Accepted { id, .. } if id == "m1"));
    assert!(
        matches!(&out[1], AcceptOutcome::Duplicate { id, recipients, .. } if id == "m1" && recipients == &["agent:b"])
    );
    assert_eq!(s.lease(lease_req(T, "agent:b", 1000)).await.unwrap().len(), 1);
}

async fn nack_due_now_wakes_and_redelivers(s: &dyn Store) {
    s.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
    s.lease(lease_req(T, "agent:b", 1000)).await.unwrap();
    let mut rx = s.wakeups().subscribe((T.into(), "agent:b".into()));
    rx.borrow_and_update();
    let nacked = s.nack(T, "agent:b", vec!["zz".into(), "m1".into()], 1010, 1010).await.unwrap();
    assert_eq!(nacked, ["m1"]);
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed()).await.expect("woken").unwrap();
    let again = s.lease(lease_req(T, "agent:b", 1010)).await.unwrap();
    assert_eq!(again[0].attempt, 2);
}

async fn deleting_an_agent_kills_its_open_deliveries(s: &dyn Store) {
    s.create_agent(agent(T, "b", "bob"), "hb".into(), None).await.unwrap();
    s.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
    assert!(s.delete_agent(T, "b", 2000, None).await.unwrap());
    assert!(!s.delete_agent(T, "b", 2000, None).await.unwrap(), "already gone");
    let (_, d) = s.get_message(T, "m1").await.unwrap().unwrap();
    assert_eq!((d[0].state, d[0].updated_at), (DeliveryState::Dead, 2000));
    assert_eq!(d[0].last_error.as_deref(), Some("the recipient agent was deleted"));
    assert!(s.principal_for_token("hb").await.unwrap().is_none());
    assert!(s.lease(lease_req(T, "agent:b", 3000)).await.unwrap().is_empty());
}

async fn update_agent_replaces_card_and_capabilities(s: &dyn Store) {
    let cap = |name: &str| Capability {
        name: name.into(),
        description: None,
        tags: vec![],
        examples: vec![],
        input_schema: None,
        output_schema: None,
        output_schema_mode: None,
        reassign_on_timeout: None,
    };
    let mut a = agent(T, "a1", "ann");
    a.capabilities = vec![cap("old")];
    s.create_agent(a.clone(), "h1".into(), None).await.unwrap();
    s.create_agent(agent(T, "a2", "bob"), "h2".into(), None).await.unwrap();
    a.capabilities = vec![cap("new")];
    a.description = Some("d".into());
    a.updated_at = 5;
    let updated = s.update_agent(a.clone(), None).await.unwrap().unwrap();
    assert_eq!((updated.description.as_deref(), updated.updated_at, updated.created_at), (Some("d"), 5, 1));
    let by = |c: &str| AgentFilter { capability: Some(c.into()), limit: 10, ..Default::default() };
    assert!(s.list_agents(T, by("old")).await.unwrap().is_empty());
    assert_eq!(s.list_agents(T, by("new")).await.unwrap()[0].capabilities, a.capabilities);
    a.name = "bob".into();
    let err = s.update_agent(a, None).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict(Conflict::AgentNameTaken { name: "bob".into() }));
    assert!(s.update_agent(agent(T, "nobody", "x"), None).await.unwrap().is_none());
}

async fn bootstrap_creates_the_default_tenant_once(s: &dyn Store) {
    assert!(s.bootstrap("first".into(), false, 1).await.unwrap());
    assert!(!s.bootstrap("second".into(), false, 2).await.unwrap());
    assert!(s.principal_for_token("second").await.unwrap().is_none(), "not recorded on a bootstrapped store");
    assert!(!s.bootstrap("operator".into(), true, 3).await.unwrap());
    let p = s.principal_for_token("operator").await.unwrap().unwrap();
    assert_eq!((p.tenant.as_str(), p.kind), (switchboard_core::DEFAULT_TENANT, PrincipalKind::Operator));
    let p = s.principal_for_token("first").await.unwrap().unwrap();
    assert_eq!(p.kind, PrincipalKind::Operator, "the bootstrap token is the platform operator's");
}

fn tenant(id: &str, name: &str, at: i64) -> TenantRecord {
    TenantRecord { id: id.into(), name: name.into(), created_at: at }
}

async fn tenants_are_created_with_an_admin_token_and_paged(s: &dyn Store) {
    use switchboard_core::audit::{AuditAction, NewAuditEvent};
    assert!(s.bootstrap("op".into(), false, 1).await.unwrap());
    let audit = |target: &str| NewAuditEvent {
        tenant: switchboard_core::DEFAULT_TENANT.into(),
        at: 2,
        actor: "operator".into(),
        action: AuditAction::TenantCreate,
        target: target.into(),
        detail: serde_json::json!({"name": "acme"}),
    };
    s.create_tenant(tenant("0001", "acme", 2), "hb".into(), Some(audit("tenant:0001"))).await.unwrap();
    let p = s.principal_for_token("hb").await.unwrap().unwrap();
    assert_eq!((p.tenant.as_str(), p.kind), ("0001", PrincipalKind::Admin));

    // A taken name: refused, and neither the tenant, its token nor an audit entry is written.
    let err = s.create_tenant(tenant("0002", "acme", 3), "hc".into(), Some(audit("tenant:0002"))).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict(Conflict::TenantNameTaken { name: "acme".into() }));
    assert!(s.principal_for_token("hc").await.unwrap().is_none());
    s.create_tenant(tenant("0003", "beta", 4), "hd".into(), None).await.unwrap();

    let all = s.list_tenants(None, 10).await.unwrap();
    let names: Vec<(&str, &str)> = all.iter().map(|t| (t.id.as_str(), t.name.as_str())).collect();
    assert_eq!(names, [("0001", "acme"), ("0003", "beta"), ("default", "default")]);
    assert_eq!(all[0], tenant("0001", "acme", 2));
    let page = s.list_tenants(None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    let rest = s.list_tenants(Some(page[0].id.clone()), 10).await.unwrap();
    assert_eq!(rest.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["0003", "default"]);

    let log = s
        .list_audit(
            switchboard_core::DEFAULT_TENANT,
            switchboard_store::audit::AuditFilter { limit: 10, ..Default::default() },
        )
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = log.iter().map(|e| (e.action.as_str(), e.target.as_str())).collect();
    assert_eq!(got, [("tenant.create", "tenant:0001")], "one entry, in the operator's chain, for the tenant made");
}

async fn counts_follow_the_deliveries(s: &dyn Store) {
    s.accept(vec![message(T, "m1", "agent:b", None), message(T, "m2", "agent:b", None)]).await.unwrap();
    let mut req = lease_req(T, "agent:b", 1000);
    req.limit = 1;
    s.lease(req).await.unwrap();
    assert_eq!(s.delivery_counts().await.unwrap(), DeliveryCounts { pending: 1, in_flight: 1 });
    let out = s.outstanding(T, &["agent:c".into(), "agent:b".into()]).await.unwrap();
    assert_eq!(out, [("agent:c".to_owned(), 0), ("agent:b".to_owned(), 2)]);
}

async fn presence_keeps_the_latest_sighting(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.touch_agents(vec![(T.into(), "a1".into(), 50), (T.into(), "a1".into(), 70)]).await.unwrap();
    s.touch_agents(vec![(T.into(), "a1".into(), 60), ("t2".into(), "a1".into(), 99)]).await.unwrap();
    assert_eq!(s.get_agent(T, "a1").await.unwrap().unwrap().last_seen_at, Some(70));
}

// ---------------------------------------------------------------------------------------
// Topics

/// Agent ids subscribed to `topic` in tenant `t`, as routing sees them.
async fn recipients_of(s: &dyn Store, t: &str, topic: &str) -> Vec<String> {
    s.topic_recipients(t, topic).await.unwrap().into_iter().map(|r| r.agent_id).collect()
}

async fn subscribe_is_idempotent_and_needs_a_registered_agent(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    let (first, created) = s.subscribe(T, "alerts/eu", "a1", 10).await.unwrap().unwrap();
    assert!(created);
    assert_eq!((first.tenant.as_str(), first.topic.as_str(), first.agent_id.as_str()), (T, "alerts/eu", "a1"));
    assert_eq!(first.created_at, 10);
    let (again, created) = s.subscribe(T, "alerts/eu", "a1", 20).await.unwrap().unwrap();
    assert!(!created, "the second subscribe finds the first");
    assert_eq!(again, first, "and returns it unchanged");
    assert!(s.subscribe(T, "alerts/eu", "nobody", 30).await.unwrap().is_none(), "unknown agent");
    assert_eq!(recipients_of(s, T, "alerts/eu").await, ["a1"]);
}

async fn unsubscribe_ends_only_that_subscription(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.subscribe(T, "alerts", "a1", 10).await.unwrap().unwrap();
    s.subscribe(T, "news", "a1", 10).await.unwrap().unwrap();
    assert!(s.unsubscribe(T, "alerts", "a1").await.unwrap());
    assert!(!s.unsubscribe(T, "alerts", "a1").await.unwrap(), "already gone");
    assert!(recipients_of(s, T, "alerts").await.is_empty());
    assert_eq!(recipients_of(s, T, "news").await, ["a1"]);
}

async fn subscribers_page_in_agent_order_and_topics_count_them(s: &dyn Store) {
    for id in ["a3", "a1", "a2"] {
        s.create_agent(agent(T, id, id), format!("h-{id}"), None).await.unwrap();
        s.subscribe(T, "alerts", id, 10).await.unwrap().unwrap();
    }
    s.subscribe(T, "news/eu", "a2", 10).await.unwrap().unwrap();
    let ids =
        |page: Vec<switchboard_store::SubscriptionRecord>| page.into_iter().map(|r| r.agent_id).collect::<Vec<_>>();
    assert_eq!(ids(s.topic_subscribers(T, "alerts", None, 2).await.unwrap()), ["a1", "a2"]);
    assert_eq!(ids(s.topic_subscribers(T, "alerts", Some("a2".into()), 2).await.unwrap()), ["a3"]);
    assert!(s.topic_subscribers(T, "nothing", None, 2).await.unwrap().is_empty());
    let topics: Vec<(String, u64)> = s.topics(T).await.unwrap().into_iter().map(|t| (t.name, t.subscribers)).collect();
    assert_eq!(topics, [("alerts".to_owned(), 3), ("news/eu".to_owned(), 1)]);
}

async fn topic_recipients_say_who_is_pushed(s: &dyn Store) {
    let mut hook = agent(T, "hook", "hook");
    hook.endpoint = Some("https://example.com/hook".into());
    s.create_agent(hook, "h-hook".into(), None).await.unwrap();
    s.create_agent(agent(T, "pull", "pull"), "h-pull".into(), None).await.unwrap();
    s.subscribe(T, "alerts", "hook", 10).await.unwrap().unwrap();
    s.subscribe(T, "alerts", "pull", 10).await.unwrap().unwrap();
    let got: Vec<(String, bool)> =
        s.topic_recipients(T, "alerts").await.unwrap().into_iter().map(|r| (r.agent_id, r.push)).collect();
    assert_eq!(got, [("hook".to_owned(), true), ("pull".to_owned(), false)]);
}

async fn pattern_subscriptions_are_listed_apart_from_names(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.create_agent(agent(T, "a2", "bo"), "h2".into(), None).await.unwrap();
    s.create_agent(agent("t2", "a1", "ann"), "h3".into(), None).await.unwrap();
    s.subscribe(T, "orders.eu", "a1", 10).await.unwrap().unwrap();
    s.subscribe(T, "orders.>", "a1", 10).await.unwrap().unwrap();
    s.subscribe(T, "*.eu", "a2", 10).await.unwrap().unwrap();
    s.subscribe("t2", "orders.*", "a1", 10).await.unwrap().unwrap();
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(p, a)| (p.to_string(), a.to_string())).collect::<Vec<_>>();
    assert_eq!(s.pattern_subscriptions(T).await.unwrap(), pairs(&[("*.eu", "a2"), ("orders.>", "a1")]));
    assert!(s.unsubscribe(T, "orders.>", "a1").await.unwrap());
    assert_eq!(s.pattern_subscriptions(T).await.unwrap(), pairs(&[("*.eu", "a2")]));
    assert_eq!(s.pattern_subscriptions("t2").await.unwrap(), pairs(&[("orders.*", "a1")]));
}

async fn topics_do_not_cross_tenants(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.create_agent(agent("t2", "a1", "ann"), "h2".into(), None).await.unwrap();
    s.subscribe(T, "alerts", "a1", 10).await.unwrap().unwrap();
    assert!(recipients_of(s, "t2", "alerts").await.is_empty());
    assert!(s.topic_subscribers("t2", "alerts", None, 10).await.unwrap().is_empty());
    assert!(s.topics("t2").await.unwrap().is_empty());
    assert!(!s.unsubscribe("t2", "alerts", "a1").await.unwrap(), "t2's a1 never subscribed");
    assert!(s.subscribe("t2", "alerts", "a9", 10).await.unwrap().is_none(), "no a9 in t2");
    assert_eq!(recipients_of(s, T, "alerts").await, ["a1"], "t1 untouched");
}

async fn deleting_an_agent_removes_its_subscriptions(s: &dyn Store) {
    s.create_agent(agent(T, "a1", "ann"), "h1".into(), None).await.unwrap();
    s.create_agent(agent(T, "a2", "bob"), "h2".into(), None).await.unwrap();
    for topic in ["alerts", "news"] {
        s.subscribe(T, topic, "a1", 10).await.unwrap().unwrap();
    }
    s.subscribe(T, "alerts", "a2", 10).await.unwrap().unwrap();
    assert!(s.delete_agent(T, "a1", 20, None).await.unwrap());
    assert_eq!(recipients_of(s, T, "alerts").await, ["a2"]);
    let topics: Vec<String> = s.topics(T).await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(topics, ["alerts"], "news has no subscriber left");
}

async fn publishing_to_a_thousand_subscribers_is_one_message(s: &dyn Store) {
    const N: usize = 1000;
    let ids: Vec<String> = (0..N).map(|i| format!("a{i:04}")).collect();
    // Concurrently, so that the writes share group commits.
    futures_util::future::try_join_all(ids.iter().map(|id| s.create_agent(agent(T, id, id), format!("h-{id}"), None)))
        .await
        .unwrap();
    futures_util::future::try_join_all(ids.iter().map(|id| s.subscribe(T, "all-hands", id, 10))).await.unwrap();
    let routed = s.topic_recipients(T, "all-hands").await.unwrap();
    assert_eq!(routed.len(), N);
    let mut m = message(T, "m1", "topic:all-hands", None);
    m.recipients = routed.iter().map(|r| agent_text(&r.agent_id)).collect();
    let out = s.accept(vec![m]).await.unwrap();
    assert!(matches!(&out[0], AcceptOutcome::Accepted { recipients, .. } if recipients.len() == N));
    let (stored, deliveries) = s.get_message(T, "m1").await.unwrap().unwrap();
    assert_eq!(stored.to, "topic:all-hands");
    assert_eq!(deliveries.len(), N);
    assert!(deliveries.iter().all(|d| d.state == DeliveryState::Pending));
    assert_eq!(s.lease(lease_req(T, "agent:a0999", 1000)).await.unwrap()[0].message.id, "m1");
}

// ---------------------------------------------------------------------------------------
// Push delivery

/// An agent with an endpoint and push settings, as registration creates it.
async fn push_agent(s: &dyn Store, id: &str) {
    let mut a = agent(T, id, id);
    a.endpoint = Some(format!("http://127.0.0.1:9/{id}"));
    s.create_agent(a, format!("hash-{id}"), None).await.unwrap();
    s.put_push_settings(T, id, PushSettings { secret: format!("whsec_{id}"), ..Default::default() }, None)
        .await
        .unwrap();
}

/// A message to `agent:<to>`, pushed to it.
fn pushed(id: &str, to: &str) -> NewMessage {
    let mut m = message(T, id, &agent_text(to), None);
    m.push_recipients = m.recipients.clone();
    m
}

fn claim_at(now: i64) -> PushClaim {
    PushClaim { now, limit: 10, hold_ms: 1000, node: String::new(), per_agent: 10, agent_room: vec![] }
}

fn attempt_at(to: &str, attempt: u32, at: i64, status: Option<u16>) -> AttemptRecord {
    AttemptRecord {
        recipient: agent_text(to),
        attempt,
        at,
        duration_ms: 5,
        status_code: status,
        error_kind: Some(if status == Some(200) { "ok" } else { "http_status" }.into()),
        excerpt: Some("body".into()),
    }
}

fn ids_of(jobs: &[switchboard_store::push::PushJob]) -> Vec<&str> {
    jobs.iter().map(|j| j.message.id.as_str()).collect()
}

async fn delivery_of(s: &dyn Store, id: &str) -> switchboard_store::DeliveryRecord {
    s.get_message(T, id).await.unwrap().unwrap().1.remove(0)
}

async fn finish_push_moves_the_delivery_and_logs_the_attempt(s: &dyn Store) {
    push_agent(s, "a").await;
    s.accept(vec![pushed("m1", "a"), pushed("m2", "a"), pushed("m3", "a")]).await.unwrap();
    let jobs = s.claim_push(claim_at(1000)).await.unwrap();
    assert_eq!(ids_of(&jobs), ["m1", "m2", "m3"], "oldest first");
    let j = &jobs[0];
    assert_eq!((j.tenant.as_str(), j.agent_id.as_str(), j.endpoint.as_str()), (T, "a", "http://127.0.0.1:9/a"));
    assert_eq!((j.settings.secret.as_str(), j.attempts), ("whsec_a", 0));
    assert_eq!(delivery_of(s, "m1").await.state, DeliveryState::Leased);
    assert!(s.claim_push(claim_at(1500)).await.unwrap().is_empty(), "held until 2000");

    s.finish_push(T, "m1", attempt_at("a", 1, 1010, Some(200)), PushOutcome::Acked).await.unwrap();
    let retry = PushOutcome::Retry { due_at: 5000, error: "HTTP 500".into() };
    s.finish_push(T, "m2", attempt_at("a", 1, 1010, Some(500)), retry).await.unwrap();
    let dead = PushOutcome::Dead { error: "HTTP 400".into() };
    s.finish_push(T, "m3", attempt_at("a", 1, 1010, Some(400)), dead).await.unwrap();

    let d = delivery_of(s, "m1").await;
    assert_eq!((d.state, d.attempts, d.last_error, d.acked_at), (DeliveryState::Acked, 1, None, Some(1015)));
    let d = delivery_of(s, "m2").await;
    assert_eq!((d.state, d.attempts, d.last_error.as_deref()), (DeliveryState::Pending, 1, Some("HTTP 500")));
    let d = delivery_of(s, "m3").await;
    assert_eq!((d.state, d.attempts, d.last_error.as_deref()), (DeliveryState::Dead, 1, Some("HTTP 400")));
    assert_eq!(s.attempts(T, "m2").await.unwrap(), [attempt_at("a", 1, 1010, Some(500))]);

    assert!(s.claim_push(claim_at(4999)).await.unwrap().is_empty(), "the retry is due at 5000");
    let again = s.claim_push(claim_at(5000)).await.unwrap();
    assert_eq!((ids_of(&again), again[0].attempts), (vec!["m2"], 1));
    s.finish_push(T, "m2", attempt_at("a", 2, 5000, Some(200)), PushOutcome::Acked).await.unwrap();
    let log = s.attempts(T, "m2").await.unwrap();
    assert_eq!(log.iter().map(|a| (a.attempt, a.status_code)).collect::<Vec<_>>(), [(1, Some(500)), (2, Some(200))]);
    assert_eq!(delivery_of(s, "m2").await.last_error, None, "an ack clears the last error");
}

async fn claim_push_keeps_within_per_agent_and_agent_room(s: &dyn Store) {
    push_agent(s, "a").await;
    push_agent(s, "b").await;
    push_agent(s, "c").await;
    let mut msgs = Vec::new();
    for to in ["a", "b", "c"] {
        msgs.extend((1..=3).map(|i| pushed(&format!("{to}{i}"), to)));
    }
    s.accept(msgs).await.unwrap();
    let mut claim = claim_at(1000);
    claim.per_agent = 2;
    // b has one in flight (room for one more); c's circuit is open (no room).
    claim.agent_room = vec![(T.into(), "b".into(), 1), (T.into(), "c".into(), 0), ("t2".into(), "a".into(), 0)];
    let mut got =
        ids_of(&s.claim_push(claim.clone()).await.unwrap()).into_iter().map(str::to_owned).collect::<Vec<_>>();
    got.sort();
    assert_eq!(got, ["a1", "a2", "b1"]);
    claim.limit = 1;
    claim.agent_room.clear();
    assert_eq!(ids_of(&s.claim_push(claim).await.unwrap()).len(), 1, "limit");
}

async fn claim_push_skips_disabled_and_endpointless_agents(s: &dyn Store) {
    push_agent(s, "a").await;
    push_agent(s, "gone").await;
    s.set_push_health(T, "gone", Some("410 Gone".into()), true).await.unwrap();
    // Settings but no endpoint (the card dropped it), and an endpoint but no settings.
    s.create_agent(agent(T, "pull", "pull"), "hash-pull".into(), None).await.unwrap();
    s.put_push_settings(T, "pull", PushSettings { secret: "whsec_p".into(), ..Default::default() }, None)
        .await
        .unwrap();
    let mut bare = agent(T, "bare", "bare");
    bare.endpoint = Some("http://127.0.0.1:9/bare".into());
    s.create_agent(bare, "hash-bare".into(), None).await.unwrap();
    let not_pushed = message(T, "m0", "agent:a", None);
    s.accept(vec![not_pushed, pushed("m1", "gone"), pushed("m2", "pull"), pushed("m3", "bare"), pushed("m4", "a")])
        .await
        .unwrap();
    assert_eq!(ids_of(&s.claim_push(claim_at(1000)).await.unwrap()), ["m4"]);
    let health = s.push_settings(T, &["gone".into(), "nobody".into(), "a".into()]).await.unwrap();
    let health: Vec<_> = health.iter().map(|(id, s)| (id.as_str(), s.disabled, s.health_error.as_deref())).collect();
    assert_eq!(health, [("gone", true, Some("410 Gone")), ("a", false, None)]);

    s.set_push_health(T, "gone", None, false).await.unwrap();
    assert_eq!(ids_of(&s.claim_push(claim_at(1000)).await.unwrap()), ["m1"], "re-enabled");
}

/// A deleted agent's webhook secret is gone with it, and a write racing the deletion (a
/// rotation) cannot bring it back; an agent never registered gets none either.
async fn a_deleted_agent_keeps_no_push_settings(s: &dyn Store) {
    push_agent(s, "a").await;
    push_agent(s, "b").await;
    assert!(s.delete_agent(T, "a", 1000, None).await.unwrap());
    let ids = ["a".to_owned(), "b".to_owned(), "nobody".to_owned()];
    let left: Vec<String> = s.push_settings(T, &ids).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, ["b"]);
    for id in ["a", "nobody"] {
        s.put_push_settings(T, id, PushSettings { secret: "whsec_late".into(), ..Default::default() }, None)
            .await
            .unwrap();
    }
    let left: Vec<String> = s.push_settings(T, &ids).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, ["b"], "a write for an unregistered agent stored nothing");
}

/// An imported A2A agent's interface is kept with its push settings and handed to the
/// dispatcher with each claim; a webhook agent has none.
async fn an_a2a_interface_rides_with_the_claim(s: &dyn Store) {
    push_agent(s, "ext").await;
    push_agent(s, "hook").await;
    let iface = r#"{"url":"https://a.example/rpc","binding":"JSONRPC"}"#.to_owned();
    let mut settings = s.push_settings(T, &["ext".into()]).await.unwrap().pop().unwrap().1;
    settings.a2a = Some(iface.clone());
    s.put_push_settings(T, "ext", settings, None).await.unwrap();
    s.accept(vec![pushed("m1", "ext"), pushed("m2", "hook")]).await.unwrap();
    let jobs = s.claim_push(claim_at(1000)).await.unwrap();
    let of = |id: &str| jobs.iter().find(|j| j.agent_id == id).map(|j| j.settings.a2a.clone());
    assert_eq!(of("ext"), Some(Some(iface)));
    assert_eq!(of("hook"), Some(None));
}

/// The task an A2A agent is still working on is kept per message and tenant, replaced, and
/// forgotten.
async fn an_a2a_task_is_kept_until_forgotten(s: &dyn Store) {
    assert_eq!(s.a2a_task(T, "m1").await.unwrap(), None);
    s.set_a2a_task(T, "m1", Some("t-1".into())).await.unwrap();
    s.set_a2a_task(T, "m1", Some("t-2".into())).await.unwrap();
    assert_eq!(s.a2a_task(T, "m1").await.unwrap().as_deref(), Some("t-2"));
    assert_eq!(s.a2a_task("other", "m1").await.unwrap(), None, "per tenant");
    s.set_a2a_task(T, "m1", None).await.unwrap();
    assert_eq!(s.a2a_task(T, "m1").await.unwrap(), None);
}

/// Claims everything due at 1000 and lets each attempt die.
async fn kill_all(s: &dyn Store) {
    for j in s.claim_push(claim_at(1000)).await.unwrap() {
        let a = attempt_at(&j.agent_id, 1, 1000, Some(400));
        s.finish_push(T, &j.message.id, a, PushOutcome::Dead { error: "HTTP 400".into() }).await.unwrap();
    }
}

async fn replay_and_purge_dead_follow_the_filter(s: &dyn Store) {
    push_agent(s, "a").await;
    push_agent(s, "b").await;
    s.accept(vec![pushed("m1", "a"), pushed("m2", "a"), pushed("m3", "b"), pushed("m4", "b")]).await.unwrap();
    kill_all(s).await;
    s.accept(vec![pushed("m5", "a")]).await.unwrap(); // pending: neither replayed nor purged

    let mut rx = s.wakeups().subscribe((T.into(), "agent:a".into()));
    rx.borrow_and_update();
    let only_a = DeliveryFilter { recipient: Some("agent:a".into()), ..Default::default() };
    assert_eq!(s.replay_dead(T, only_a.clone(), 2000, None).await.unwrap(), 2);
    assert!(rx.has_changed().unwrap(), "a replay wakes the recipient");
    let d = delivery_of(s, "m1").await;
    assert_eq!((d.state, d.attempts, d.last_error), (DeliveryState::Pending, 0, None));
    assert_eq!(s.replay_dead(T, only_a, 2000, None).await.unwrap(), 0, "no longer dead");
    assert_eq!(s.replay_dead("t2", DeliveryFilter::default(), 2000, None).await.unwrap(), 0, "other tenant");

    let m3 = DeliveryFilter { message_ids: vec!["m3".into(), "m1".into()], ..Default::default() };
    assert_eq!(s.purge_dead(T, m3, None).await.unwrap(), 1, "m1 is pending again");
    assert_eq!(delivery_of(s, "m4").await.state, DeliveryState::Dead);
    assert!(s.get_message(T, "m3").await.unwrap().unwrap().1.is_empty());
    assert_eq!(s.purge_dead(T, DeliveryFilter::default(), None).await.unwrap(), 1);
    let left = s.list_deliveries(T, DeliveryFilter { limit: 10, ..Default::default() }).await.unwrap();
    let left: Vec<_> = left.iter().map(|(_, d)| d.message_id.as_str()).collect();
    assert_eq!(left, ["m1", "m2", "m5"]);
}

async fn list_deliveries_filters_and_pages(s: &dyn Store) {
    push_agent(s, "a").await;
    let mut late = pushed("m3", "b");
    late.created_at = 3000;
    s.accept(vec![pushed("m1", "a"), pushed("m2", "a"), late, pushed("m4", "a")]).await.unwrap();
    let list = |f: DeliveryFilter| async move {
        let rows = s.list_deliveries(T, f).await.unwrap();
        rows.into_iter().map(|(seq, d)| (seq, d.message_id)).collect::<Vec<_>>()
    };
    let ids = |rows: &[(i64, String)]| rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>();

    let page = list(DeliveryFilter { limit: 2, ..Default::default() }).await;
    assert_eq!(ids(&page), ["m1", "m2"]);
    let rest = list(DeliveryFilter { limit: 10, after: Some(page[1].0), ..Default::default() }).await;
    assert_eq!(ids(&rest), ["m3", "m4"], "the cursor continues after the page");
    let to_a = DeliveryFilter { recipient: Some("agent:a".into()), limit: 10, ..Default::default() };
    assert_eq!(ids(&list(to_a).await), ["m1", "m2", "m4"]);
    assert_eq!(ids(&list(DeliveryFilter { since: Some(2000), limit: 10, ..Default::default() }).await), ["m3"]);
    let some = DeliveryFilter { message_ids: vec!["m4".into(), "m2".into()], limit: 10, ..Default::default() };
    assert_eq!(ids(&list(some).await), ["m2", "m4"]);

    let mut claim = claim_at(1000);
    claim.limit = 1;
    s.claim_push(claim).await.unwrap();
    let leased = DeliveryFilter { state: Some(DeliveryState::Leased), limit: 10, ..Default::default() };
    assert_eq!(ids(&list(leased).await), ["m1"]);
    let row = s.list_deliveries(T, DeliveryFilter { limit: 1, ..Default::default() }).await.unwrap().remove(0).1;
    assert_eq!((row.sender.as_str(), row.recipient.as_str(), row.attempts), ("admin", "agent:a", 0));
    assert!(list(DeliveryFilter { limit: 10, ..Default::default() }).await.len() == 4);
    assert!(s.list_deliveries("t2", DeliveryFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());
}

/// README: "Each recipient gets its messages in the order the hub accepted them";
/// ARCHITECTURE: `seq` is assigned at commit and `lease` hands out in `seq` order. Four
/// senders accept at once, each its next message only once the previous one returned; the
/// recipient must get each sender's messages in its order, and any message whose accept
/// returned before another's began must come first.
async fn concurrent_accepts_lease_in_commit_order(s: &dyn Store) {
    use std::sync::atomic::{AtomicU64, Ordering};
    const SENDERS: usize = 4;
    const EACH: usize = 25;
    let clock = AtomicU64::new(0);
    let sender = |k: usize| {
        let clock = &clock;
        async move {
            let mut times = Vec::with_capacity(EACH);
            for n in 0..EACH {
                let mut m = message(T, &format!("s{k}-{n:02}"), "agent:b", None);
                m.sender = agent_text(&format!("s{k}"));
                let asked = clock.fetch_add(1, Ordering::SeqCst);
                let out = s.accept(vec![m]).await.unwrap();
                assert!(matches!(out[0], AcceptOutcome::Accepted { .. }), "{out:?}");
                times.push((format!("s{k}-{n:02}"), asked, clock.fetch_add(1, Ordering::SeqCst)));
            }
            times
        }
    };
    let sent: Vec<(String, u64, u64)> =
        futures_util::future::join_all((0..SENDERS).map(sender)).await.into_iter().flatten().collect();

    // Leased a few at a time, as a consumer with a small window would.
    let mut got: Vec<String> = Vec::new();
    loop {
        let mut req = lease_req(T, "agent:b", 1000);
        req.limit = 7;
        let batch = s.lease(req).await.unwrap();
        if batch.is_empty() {
            break;
        }
        got.extend(batch.into_iter().map(|l| l.message.id));
    }
    assert_eq!(got.len(), SENDERS * EACH, "each message once: {got:?}");
    for k in 0..SENDERS {
        let mine: Vec<&String> = got.iter().filter(|id| id.starts_with(&format!("s{k}-"))).collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "sender {k} out of its order: {mine:?}");
    }
    let position = |id: &str| got.iter().position(|g| g == id).unwrap();
    for (a, _, a_returned) in &sent {
        for (b, b_asked, _) in sent.iter().filter(|(_, b_asked, _)| a_returned < b_asked) {
            assert!(
                position(a) < position(b),
                "{a} was committed before {b} was offered (at {b_asked}), yet leased after it"
            );
        }
    }
}

/// ARCHITECTURE: "A redelivered message keeps its `seq`, but it comes due later than messages
/// already handed out, so redelivery may reorder." After a nack or a lease expiry the message
/// comes back after what was handed out meanwhile, and ahead of what was not yet.
async fn redelivery_keeps_its_place_in_seq_order(s: &dyn Store) {
    let ids = ["m1", "m2", "m3", "m4", "m5", "m6"];
    s.accept(ids.iter().map(|id| message(T, id, "agent:b", None)).collect()).await.unwrap();
    let lease = |now: i64, limit: usize| async move {
        let mut req = lease_req(T, "agent:b", now); // leases last 100 ms
        req.limit = limit;
        let leased = s.lease(req).await.unwrap();
        leased.into_iter().map(|l| (l.message.id, l.attempt)).collect::<Vec<_>>()
    };
    let got = |pairs: &[(&str, u32)]| pairs.iter().map(|(id, a)| (id.to_string(), *a)).collect::<Vec<_>>();
    assert_eq!(lease(1000, 2).await, got(&[("m1", 1), ("m2", 1)]));
    // A nack: m1 is due again at once, before m3, which was never handed out.
    assert_eq!(s.nack(T, "agent:b", vec!["m1".into()], 1010, 1010).await.unwrap(), ["m1"]);
    assert_eq!(lease(1010, 2).await, got(&[("m1", 2), ("m3", 1)]));
    // A lease expiry: m2's lease ran out at 1100; it comes back before m4.
    assert_eq!(lease(1100, 2).await, got(&[("m2", 2), ("m4", 1)]));
    // Everything due at once comes out in seq order, redeliveries and first deliveries alike.
    assert_eq!(lease(1200, 10).await, got(&[("m1", 3), ("m2", 3), ("m3", 2), ("m4", 2), ("m5", 1), ("m6", 1)]));
}

/// PostgreSQL test databases: a fresh one per test, created through the server named by
/// `SWITCHBOARD_TEST_DATABASE_URL` and dropped afterwards, so tests run in parallel without
/// seeing each other's rows or notifications.
mod pg {
    use std::future::Future;

    use tokio_postgres::NoTls;
    use tokio_postgres::config::Host;

    pub const URL_VAR: &str = "SWITCHBOARD_TEST_DATABASE_URL";

    /// Where the test server is, parsed from the environment.
    #[derive(Clone)]
    pub struct Server {
        pub config: tokio_postgres::Config,
        pub host: String,
        pub port: u16,
    }

    impl Server {
        /// The server the PostgreSQL tests run on. They are `#[ignore]`d, so they run only
        /// when asked for (`--ignored`); asked for without a server, they fail and say why.
        pub fn from_env(test: &str) -> Server {
            let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
                panic!(
                    "{test} needs PostgreSQL: set {URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test); \
                     see the README's \"Run the tests\""
                );
            };
            let config: tokio_postgres::Config = url.parse().unwrap_or_else(|e| panic!("{URL_VAR}: {e}"));
            let host = match config.get_hosts().first() {
                Some(Host::Tcp(h)) => h.clone(),
                _ => panic!("{URL_VAR}: give a TCP host"),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            Server { config, host, port }
        }

        /// A connection string for database `db` reached at `host:port` (maybe a proxy).
        pub fn url(&self, host: &str, port: u16, db: &str) -> String {
            let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
            let mut url = format!("host={} port={port} dbname={}", quote(host), quote(db));
            if let Some(user) = self.config.get_user() {
                url += &format!(" user={}", quote(user));
            }
            if let Some(pw) = self.config.get_password() {
                url += &format!(" password={}", quote(&String::from_utf8_lossy(pw)));
            }
            url
        }

        /// The `postgres://` form of [`Server::url`] for database `db`, as operators write it.
        pub fn uri(&self, db: &str) -> String {
            let user = self.config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
            format!("postgres://{user}{}:{}/{db}", self.host, self.port)
        }

        async fn admin(&self) -> tokio_postgres::Client {
            let (client, conn) = self.config.connect(NoTls).await.expect("connect to the test server");
            tokio::spawn(conn);
            client
        }
    }

    /// Runs `body` with the URL of a fresh database, then drops the database, also when
    /// `body` panics (it runs as a task so that the panic can be caught and re-raised).
    pub async fn with_database<F, Fut>(test: &str, body: F)
    where
        F: FnOnce(Server, String) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let server = Server::from_env(test);
        let db = format!("sb_test_{}", switchboard_core::new_id().simple());
        let admin = server.admin().await;
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await.expect("create the test database");
        let url = server.url(&server.host, server.port, &db);
        let result = tokio::spawn(body(server.clone(), url)).await;
        // FORCE: a panicking test may leave connections behind.
        let dropped = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
        if let Err(e) = result {
            std::panic::resume_unwind(e.into_panic());
        }
        dropped.expect("drop the test database");
    }
}

macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::SqliteStore::open(dir.path()).unwrap();
                    super::$name(&store).await;
                    super::Store::close(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
                async fn $name() {
                    super::pg::with_database(stringify!($name), |_, url| async move {
                        let store = super::PostgresStore::connect(&url, "node-a".into()).await.unwrap();
                        super::$name(&store).await;
                        super::Store::close(&store).await;
                    })
                    .await;
                }
            )*
        }
    };
}

backends!(
    public_keys_rotate_and_revoke_and_are_never_deleted,
    a_message_keeps_its_signature,
    a2a_tasks_and_push_configs_are_kept,
    requests_to_people_enter_the_outbox_once_and_are_claimed_once,
    notification_prefs_belong_to_users_and_release_held_rows,
    the_link_key_is_made_once,
    priorities_order_a_recipients_queue,
    a_lapsed_anycast_delivery_moves_once,
    a_lease_taken_again_is_not_moved,
    first_reply_is_found_by_in_reply_to,
    audit_appends_form_a_chain_from_genesis,
    audit_listing_filters_and_pages,
    audit_chains_are_per_tenant,
    audited_changes_write_their_entry,
    auditing_sends_is_off_until_set,
    sends_and_acks_are_audited_with_their_change,
    concurrent_appends_keep_one_chain,
    verifying_while_appending_finds_no_break,
    accept_lease_ack,
    lease_expiry_makes_it_due_again,
    idempotency_key_returns_the_first_message,
    tenants_do_not_see_each_other,
    agent_names_are_unique_per_tenant,
    ttl_expiry_and_dead_letters,
    a_lease_does_not_hand_out_what_outlived_its_ttl,
    an_unanswered_ack_acks,
    a_commit_wakes_the_recipient,
    one_accept_repeating_a_key_keeps_the_first,
    nack_due_now_wakes_and_redelivers,
    deleting_an_agent_kills_its_open_deliveries,
    update_agent_replaces_card_and_capabilities,
    bootstrap_creates_the_default_tenant_once,
    tenants_are_created_with_an_admin_token_and_paged,
    counts_follow_the_deliveries,
    presence_keeps_the_latest_sighting,
    finish_push_moves_the_delivery_and_logs_the_attempt,
    claim_push_keeps_within_per_agent_and_agent_room,
    claim_push_skips_disabled_and_endpointless_agents,
    a_deleted_agent_keeps_no_push_settings,
    an_a2a_interface_rides_with_the_claim,
    an_a2a_task_is_kept_until_forgotten,
    replay_and_purge_dead_follow_the_filter,
    list_deliveries_filters_and_pages,
    subscribe_is_idempotent_and_needs_a_registered_agent,
    unsubscribe_ends_only_that_subscription,
    subscribers_page_in_agent_order_and_topics_count_them,
    topic_recipients_say_who_is_pushed,
    topics_do_not_cross_tenants,
    pattern_subscriptions_are_listed_apart_from_names,
    deleting_an_agent_removes_its_subscriptions,
    publishing_to_a_thousand_subscribers_is_one_message,
    concurrent_accepts_lease_in_commit_order,
    redelivery_keeps_its_place_in_seq_order,
    an_agent_holds_several_live_keys,
    revoking_a_key_ends_it_now_or_after_its_grace,
    key_use_is_recorded_in_batches,
    deleting_an_agent_removes_its_keys,
    emails_are_unique_per_tenant,
    a_token_carries_its_users_current_role,
    sessions_end_idle_absolute_or_with_their_user,
    policy_and_limits_are_versioned_and_audited,
    quota_counts_are_per_tenant,
    the_first_signing_key_stored_is_everyones,
    a_rotated_key_stays_published_until_its_tokens_expire,
    identity_providers_are_per_tenant_and_pairs_unique,
    groups_hold_users_of_their_tenant,
    routing_settings_keep_their_key_per_tenant,
    a_message_leaves_triage_once,
    conversations_are_listed_per_participant_and_tenant,
    participants_join_once_and_leave_with_an_entry_each,
    history_numbers_messages_without_gaps_in_accept_order,
    concurrent_senders_share_one_gapless_order,
    threads_follow_replies_through_replies,
    read_markers_only_move_forward,
    deleting_an_agent_or_user_ends_its_places,
    a_persons_inbox_is_newest_first_filtered_and_searched,
    working_statuses_expire,
    an_approval_changes_only_over_the_version_it_read,
    due_approvals_are_those_whose_time_came,
    approvals_list_newest_first_by_state_and_tenant,
    retention_purges_finished_old_messages_only,
    a_purge_pages_with_its_cursor,
    a_purged_conversation_message_leaves_the_history,
    retention_settings_are_per_tenant,
    erasure_empties_payloads_and_keeps_the_rows,
);

/// Tests that tamper with the database under the store, given direct access to it (`Raw`).
macro_rules! tamper_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_raw {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::SqliteStore::open(dir.path()).unwrap();
                    let raw = super::audit::Raw::Sqlite(dir.path().join("switchboard.db"));
                    super::$name(&store, &raw).await;
                    super::Store::close(&store).await;
                }
            )*
        }
        mod postgres_raw {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
                async fn $name() {
                    super::pg::with_database(stringify!($name), |_, url| async move {
                        let store = super::PostgresStore::connect(&url, "node-a".into()).await.unwrap();
                        let (client, conn) = url.parse::<tokio_postgres::Config>().unwrap()
                            .connect(tokio_postgres::NoTls).await.unwrap();
                        tokio::spawn(conn);
                        super::$name(&store, &super::audit::Raw::Postgres(client)).await;
                        super::Store::close(&store).await;
                    })
                    .await;
                }
            )*
        }
    };
}

tamper_backends!(
    an_edited_entry_is_named,
    a_removed_entry_is_named,
    a_removed_last_entry_is_named,
    swapped_entries_are_named,
    an_entry_added_outside_the_store_is_named,
);

/// `open` picks the backend from the URL: none is SQLite in the data directory, `sqlite:<dir>`
/// SQLite in that directory; a URL of any other kind is refused before anything is created.
#[tokio::test]
async fn open_chooses_the_backend_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = switchboard_store::open(None, &data, "n".into()).await.unwrap();
    assert!(s.bootstrap("h".into(), false, 1).await.unwrap());
    s.close().await;
    assert!(data.join("switchboard.db").exists(), "no URL: SQLite in the data directory");

    let elsewhere = dir.path().join("elsewhere");
    let url = format!("sqlite:{}", elsewhere.display());
    let s = switchboard_store::open(Some(&url), &data, "n".into()).await.unwrap();
    assert!(s.bootstrap("h".into(), false, 1).await.unwrap(), "a new, empty store, not the data directory's");
    s.close().await;
    assert!(elsewhere.join("switchboard.db").exists());

    let never = dir.path().join("never");
    for url in ["mysql://root@db/x", "postgres:/missing-slashes", "file:/tmp/x"] {
        match switchboard_store::open(Some(url), &never, "n".into()).await {
            Err(e) => assert_eq!(e, StoreError::UnsupportedUrl, "{url}"),
            Ok(_) => panic!("{url} was opened"),
        }
    }
    assert!(!never.exists(), "a refused URL creates nothing");
}

/// What only the PostgreSQL store does: several nodes on one database, and surviving the
/// database going away.
mod postgres_only {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use switchboard_store::AcceptOutcome;
    use switchboard_store::postgres::PostgresStore;
    use switchboard_store::prelude::*;

    use super::{StoreError, T, lease_req, message, pg};

    async fn node(url: &str, id: &str) -> Arc<PostgresStore> {
        Arc::new(PostgresStore::connect(url, id.into()).await.unwrap())
    }

    /// `open` with a `postgres://` (or `postgresql://`) URL connects to that database, not to
    /// a SQLite file in the data directory.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn open_connects_to_a_postgres_url() {
        pg::with_database("open_connects_to_a_postgres_url", |server, url| async move {
            let db = url.split("dbname='").nth(1).and_then(|r| r.split('\'').next()).unwrap().to_owned();
            let dir = tempfile::tempdir().unwrap();
            for (i, uri) in
                [server.uri(&db), server.uri(&db).replacen("postgres://", "postgresql://", 1)].into_iter().enumerate()
            {
                let s = switchboard_store::open(Some(&uri), dir.path(), "node-a".into()).await.unwrap();
                assert_eq!(s.bootstrap("h".into(), false, 1).await.unwrap(), i == 0, "{uri}");
                s.close().await;
            }
            let direct = node(&url, "node-b").await;
            assert!(!direct.bootstrap("h".into(), false, 1).await.unwrap(), "the database was bootstrapped");
            direct.close().await;
            assert!(!dir.path().join("switchboard.db").exists(), "no SQLite file was made");
        })
        .await;
    }

    /// Migration 7: a database from before agent keys had ids gets the columns, and every
    /// agent key an id, which lists it and revokes it.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn migration_7_gives_existing_agent_keys_ids() {
        pg::with_database("migration_7_gives_existing_agent_keys_ids", |_, url| async move {
            let s = node(&url, "node-a").await;
            s.create_agent(super::agent("t1", "a1", "ann"), "h1".into(), None).await.unwrap();
            s.close().await;
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            let conn = tokio::spawn(conn);
            client
                .batch_execute(
                    "DROP INDEX tokens_key; ALTER TABLE tokens DROP COLUMN key_id, DROP COLUMN expires_at, \
                     DROP COLUMN last_used_at; DELETE FROM schema_migrations WHERE version >= 7;",
                )
                .await
                .expect("make a version-6 database");
            drop(client);
            let _ = conn.await;
            let s = node(&url, "node-b").await;
            let keys = s.list_agent_keys("t1", "a1", 2).await.unwrap();
            assert_eq!(keys.len(), 1);
            assert!(keys[0].id.starts_with("key_"), "{}", keys[0].id);
            assert_eq!(s.token_for_hash("h1").await.unwrap().unwrap().key_id.as_deref(), Some(keys[0].id.as_str()));
            assert!(s.revoke_agent_key("t1", "a1", &keys[0].id, 3, 0, None).await.unwrap().is_some());
            assert!(s.principal_for_token("h1").await.unwrap().is_none());
            s.close().await;
        })
        .await;
    }

    /// A migration numbered below one already applied (11 merged after 12 and 13) still runs:
    /// the migrator applies every version it has not recorded, not only those above the
    /// highest.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn a_migration_numbered_below_an_applied_one_still_runs() {
        use switchboard_store::conversations::ConversationStore;
        pg::with_database("a_migration_numbered_below_an_applied_one_still_runs", |_, url| async move {
            let s = node(&url, "node-a").await;
            s.close().await;
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            let conn = tokio::spawn(conn);
            client
                .batch_execute(
                    "DROP TABLE conversations, conversation_participants, conversation_messages; \
                     DELETE FROM schema_migrations WHERE version = 11;",
                )
                .await
                .expect("make a database that has 12 and 13 but not 11");
            drop(client);
            let _ = conn.await;
            let s = node(&url, "node-b").await;
            assert!(s.get_conversation("t1", "c1").await.unwrap().is_none(), "the conversation tables are back");
            s.close().await;
        })
        .await;
    }

    /// Migration 6: a database whose bootstrap token was stored as `admin` (before the
    /// operator) gets it back as the operator's; another tenant's admin token stays `admin`.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn migration_6_makes_the_bootstrap_token_the_operators() {
        use switchboard_core::PrincipalKind;
        pg::with_database("migration_6_makes_the_bootstrap_token_the_operators", |_, url| async move {
            let s = node(&url, "node-a").await;
            assert!(s.bootstrap("h-op".into(), false, 1).await.unwrap());
            s.close().await;
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            let conn = tokio::spawn(conn);
            client
                .batch_execute(
                    "UPDATE tokens SET principal = 'admin'; \
                     INSERT INTO tokens (hash, tenant_id, principal, created_at) VALUES ('h-b', 'b', 'admin', 1); \
                     DROP INDEX tenants_name; DELETE FROM schema_migrations WHERE version >= 6;",
                )
                .await
                .expect("make a version-5 database");
            drop(client);
            let _ = conn.await;
            let s = node(&url, "node-b").await;
            assert_eq!(s.principal_for_token("h-op").await.unwrap().unwrap().kind, PrincipalKind::Operator);
            assert_eq!(s.principal_for_token("h-b").await.unwrap().unwrap().kind, PrincipalKind::Admin);
            s.create_tenant(super::tenant("t1", "same", 1), "h1".into(), None).await.unwrap();
            let again = s.create_tenant(super::tenant("t2", "same", 1), "h2".into(), None).await.unwrap_err();
            assert_eq!(
                again,
                StoreError::Conflict(switchboard_store::Conflict::TenantNameTaken { name: "same".into() }),
                "the unique index is back"
            );
            s.close().await;
        })
        .await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn a_commit_on_one_node_wakes_consumers_on_another() {
        pg::with_database("a_commit_on_one_node_wakes_consumers_on_another", |_, url| async move {
            let (a, b) = (node(&url, "node-a").await, node(&url, "node-b").await);
            let mut rx = b.wakeups().subscribe((T.into(), "agent:b".into()));
            rx.borrow_and_update();
            a.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), rx.changed())
                .await
                .expect("node B is woken by node A's commit (NOTIFY) within 10 s")
                .unwrap();
            let leased = b.lease(lease_req(T, "agent:b", 1000)).await.unwrap();
            assert_eq!(leased[0].message.id, "m1");
            a.close().await;
            b.close().await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn two_nodes_leasing_at_once_never_share_a_delivery() {
        pg::with_database("two_nodes_leasing_at_once_never_share_a_delivery", |_, url| async move {
            const N: usize = 300;
            let (a, b) = (node(&url, "node-a").await, node(&url, "node-b").await);
            a.accept((0..N).map(|i| message(T, &format!("m{i:04}"), "agent:c", None)).collect()).await.unwrap();
            let start = Arc::new(tokio::sync::Barrier::new(2));
            let drain = |s: Arc<PostgresStore>| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let mut got = Vec::new();
                    loop {
                        let mut req = lease_req(T, "agent:c", 1000);
                        (req.limit, req.lease_ms) = (7, 60_000);
                        let leased = s.lease(req).await.unwrap();
                        if leased.is_empty() {
                            return got;
                        }
                        got.extend(leased.into_iter().map(|l| l.message.id));
                    }
                })
            };
            let (from_a, from_b) = (drain(a.clone()), drain(b.clone()));
            let (from_a, from_b) = (from_a.await.unwrap(), from_b.await.unwrap());
            let distinct: HashSet<_> = from_a.iter().chain(&from_b).collect();
            assert_eq!(from_a.len() + from_b.len(), N, "every delivery handed out exactly once");
            assert_eq!(distinct.len(), N);
            assert!(a.lease(lease_req(T, "agent:c", 1000)).await.unwrap().is_empty());

            // Each lease names its node.
            let (client, conn) = url.parse::<tokio_postgres::Config>().unwrap().connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let rows = client
                .query(
                    "SELECT leased_by, count(*) FROM deliveries WHERE tenant_id = $1 AND recipient = 'agent:c' GROUP BY leased_by",
                    &[&T],
                )
                .await
                .unwrap();
            let by: std::collections::HashMap<Option<String>, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            assert_eq!(by.get(&Some("node-a".into())).copied().unwrap_or(0), from_a.len() as i64);
            assert_eq!(by.get(&Some("node-b".into())).copied().unwrap_or(0), from_b.len() as i64);
            a.close().await;
            b.close().await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn two_nodes_claiming_pushes_at_once_never_share_a_delivery() {
        pg::with_database("two_nodes_claiming_pushes_at_once_never_share_a_delivery", |_, url| async move {
            const N: usize = 300;
            let (a, b) = (node(&url, "node-a").await, node(&url, "node-b").await);
            for id in ["p1", "p2", "p3"] {
                super::push_agent(a.as_ref(), id).await;
            }
            let msgs = (0..N).map(|i| super::pushed(&format!("m{i:04}"), ["p1", "p2", "p3"][i % 3])).collect();
            a.accept(msgs).await.unwrap();
            let start = Arc::new(tokio::sync::Barrier::new(2));
            let drain = |s: Arc<PostgresStore>| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let mut got = Vec::new();
                    loop {
                        let mut claim = super::claim_at(1000);
                        (claim.limit, claim.hold_ms, claim.per_agent) = (7, 60_000, N);
                        let jobs = s.claim_push(claim).await.unwrap();
                        if jobs.is_empty() {
                            return got;
                        }
                        got.extend(jobs.into_iter().map(|j| j.message.id));
                    }
                })
            };
            let (from_a, from_b) = (drain(a.clone()), drain(b.clone()));
            let (from_a, from_b) = (from_a.await.unwrap(), from_b.await.unwrap());
            let distinct: HashSet<_> = from_a.iter().chain(&from_b).collect();
            assert_eq!(from_a.len() + from_b.len(), N, "every push delivery claimed exactly once");
            assert_eq!(distinct.len(), N);

            // Each claim names its node (the claim left `node` empty).
            let (client, conn) =
                url.parse::<tokio_postgres::Config>().unwrap().connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let rows = client
                .query("SELECT leased_by, count(*) FROM deliveries WHERE tenant_id = $1 GROUP BY leased_by", &[&T])
                .await
                .unwrap();
            let by: std::collections::HashMap<Option<String>, i64> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            assert_eq!(by.get(&Some("node-a".into())).copied().unwrap_or(0), from_a.len() as i64);
            assert_eq!(by.get(&Some("node-b".into())).copied().unwrap_or(0), from_b.len() as i64);
            a.close().await;
            b.close().await;
        })
        .await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn a_late_failure_does_not_undo_another_nodes_claim() {
        pg::with_database("a_late_failure_does_not_undo_another_nodes_claim", |_, url| async move {
            let (a, b) = (node(&url, "node-a").await, node(&url, "node-b").await);
            super::push_agent(a.as_ref(), "p").await;
            a.accept(vec![super::pushed("m1", "p")]).await.unwrap();
            // Node A claims (held until 2000), stalls; node B takes it over at 2000.
            assert_eq!(a.claim_push(super::claim_at(1000)).await.unwrap().len(), 1);
            assert_eq!(b.claim_push(super::claim_at(2000)).await.unwrap().len(), 1);
            // A's attempt ends late, failed: B's claim stands.
            let retry = super::PushOutcome::Retry { due_at: 2500, error: "late".into() };
            a.finish_push(T, "m1", super::attempt_at("p", 1, 2100, Some(500)), retry).await.unwrap();
            let d = super::delivery_of(b.as_ref(), "m1").await;
            assert_eq!(d.state, super::DeliveryState::Leased, "still B's");
            assert_eq!(a.attempts(T, "m1").await.unwrap().len(), 1, "the attempt is logged all the same");
            // B's outcome decides.
            let acked = super::PushOutcome::Acked;
            b.finish_push(T, "m1", super::attempt_at("p", 2, 2200, Some(200)), acked).await.unwrap();
            assert_eq!(super::delivery_of(b.as_ref(), "m1").await.state, super::DeliveryState::Acked);
            a.close().await;
            b.close().await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn two_nodes_sending_one_idempotency_key_agree_on_one_message() {
        pg::with_database("two_nodes_sending_one_idempotency_key_agree_on_one_message", |_, url| async move {
            let (a, b) = (node(&url, "node-a").await, node(&url, "node-b").await);
            let (ra, rb) = tokio::join!(
                a.accept(vec![message(T, "ma", "agent:b", Some("k"))]),
                b.accept(vec![message(T, "mb", "agent:b", Some("k"))]),
            );
            let mut outcomes = [ra.unwrap().remove(0), rb.unwrap().remove(0)];
            outcomes.sort_by_key(|o| matches!(o, AcceptOutcome::Duplicate { .. }));
            let (AcceptOutcome::Accepted { id: first, .. }, AcceptOutcome::Duplicate { id: dup, .. }) =
                (&outcomes[0], &outcomes[1])
            else {
                panic!("one accepted, one duplicate: {outcomes:?}");
            };
            assert_eq!(first, dup);
            assert_eq!(a.lease(lease_req(T, "agent:b", 1000)).await.unwrap().len(), 1);
            a.close().await;
            b.close().await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn a_message_the_database_refuses_fails_alone() {
        pg::with_database("a_message_the_database_refuses_fails_alone", |_, url| async move {
            let a = node(&url, "node-a").await;
            let mut bad = message(T, "bad", "agent:b", None);
            bad.conversation_id = Some("nul\0byte".into()); // PostgreSQL text cannot hold NUL
            // Sent together, so they usually share a group commit: the good one must not
            // pay for the bad one.
            let (good, bad) = tokio::join!(a.accept(vec![message(T, "good", "agent:b", None)]), a.accept(vec![bad]));
            assert!(matches!(&good.unwrap()[0], AcceptOutcome::Accepted { .. }));
            assert!(matches!(bad, Err(StoreError::Internal(_))), "{bad:?}");
            let leased = a.lease(lease_req(T, "agent:b", 1000)).await.unwrap();
            assert_eq!(leased.iter().map(|l| l.message.id.as_str()).collect::<Vec<_>>(), ["good"]);
            a.close().await;
        })
        .await;
    }

    /// Two nodes appending to one tenant's audit log at once: the head row lock makes them
    /// take turns, so the result is one gapless chain, not two forks from the same entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn two_nodes_appending_audit_entries_keep_one_chain() {
        use switchboard_core::audit::{AuditAction, NewAuditEvent};
        pg::with_database("two_nodes_appending_audit_entries_keep_one_chain", |_, url| async move {
            const N: i64 = 30;
            let (a, b) = (node(&url, "node-a").await, node(&url, "node-b").await);
            let start = Arc::new(tokio::sync::Barrier::new(2));
            let append = |s: Arc<PostgresStore>, actor: &'static str| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let appends = (0..N).map(|i| {
                        let e = NewAuditEvent {
                            tenant: T.into(),
                            at: i,
                            actor: actor.into(),
                            action: AuditAction::Login,
                            target: format!("user:{i}"),
                            detail: serde_json::json!({}),
                        };
                        let s = s.clone();
                        async move { s.append_audit(e).await }
                    });
                    futures_util::future::try_join_all(appends).await.unwrap()
                })
            };
            let (from_a, from_b) = (append(a.clone(), "node-a"), append(b.clone(), "node-b"));
            let (from_a, from_b) = (from_a.await.unwrap(), from_b.await.unwrap());
            let mut seqs: Vec<i64> = from_a.iter().chain(&from_b).map(|e| e.seq).collect();
            seqs.sort_unstable();
            assert_eq!(seqs, (1..=2 * N).collect::<Vec<_>>(), "one chain, no seq taken twice");
            let verdict = b.verify_audit(T).await.unwrap();
            assert_eq!((verdict.entries, verdict.broken), (2 * N as u64, None));
            a.close().await;
            b.close().await;
        })
        .await;
    }

    /// A TCP proxy in front of the test server that can drop every connection and then
    /// refuse or swallow new ones: an outage, without stopping the server other tests use.
    struct Proxy {
        addr: std::net::SocketAddr,
        upstream: String,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    }

    impl Proxy {
        async fn start(upstream: String) -> Proxy {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut proxy = Proxy { addr, upstream, tasks: Vec::new() };
            proxy.serve(listener, true);
            proxy
        }

        fn serve(&mut self, listener: tokio::net::TcpListener, forward: bool) {
            let upstream = self.upstream.clone();
            self.tasks.push(tokio::spawn(async move {
                // Connections live in this set, so aborting the task drops them all.
                let mut conns = tokio::task::JoinSet::new();
                while let Ok((mut down, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    conns.spawn(async move {
                        if !forward {
                            // Hold the socket silently, like a host whose packets vanish.
                            std::future::pending::<()>().await;
                        }
                        if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                        }
                    });
                }
            }));
        }

        /// Drops every connection and stops listening: new connections are refused.
        async fn cut(&mut self) {
            for t in self.tasks.drain(..) {
                t.abort();
                let _ = t.await;
            }
        }

        /// Listens again on the same port, forwarding or swallowing connections.
        async fn listen(&mut self, forward: bool) {
            self.cut().await;
            let deadline = Instant::now() + Duration::from_secs(10);
            let listener = loop {
                match tokio::net::TcpListener::bind(self.addr).await {
                    Ok(l) => break l,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("rebind {}: {e}", self.addr),
                }
            };
            self.serve(listener, forward);
        }
    }

    async fn ping_fails_fast(s: &PostgresStore, why: &str) {
        let started = Instant::now();
        let err = s.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{why}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{why}: ping took {:?}", started.elapsed());
    }

    /// Polls `check` until it holds, failing after `within`.
    async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        while !check().await {
            assert!(Instant::now() < deadline, "{what} within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
    async fn an_unreachable_database_fails_fast_and_the_store_recovers() {
        pg::with_database("an_unreachable_database_fails_fast_and_the_store_recovers", |server, url| async move {
            let mut proxy = Proxy::start(format!("{}:{}", server.host, server.port)).await;
            let db = url.parse::<tokio_postgres::Config>().unwrap().get_dbname().unwrap().to_owned();
            let via_proxy = server.url(&proxy.addr.ip().to_string(), proxy.addr.port(), &db);
            let b = node(&via_proxy, "node-b").await;
            b.ping().await.unwrap();

            proxy.cut().await;
            ping_fails_fast(&b, "refused").await;
            let err = b.accept(vec![message(T, "m0", "agent:b", None)]).await.unwrap_err();
            assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
            proxy.listen(false).await;
            ping_fails_fast(&b, "silent").await;

            proxy.listen(true).await;
            eventually(Duration::from_secs(10), "ping answers again", || async { b.ping().await.is_ok() }).await;
            // The listener reconnected too: a commit on another node wakes B's consumers.
            let a = node(&url, "node-a").await;
            eventually(Duration::from_secs(10), "B's wake-up listener reconnects", || async { b.listening() }).await;
            let mut rx = b.wakeups().subscribe((T.into(), "agent:b".into()));
            rx.borrow_and_update();
            a.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), rx.changed())
                .await
                .expect("node B is woken through its new LISTEN connection within 10 s")
                .unwrap();
            assert!(!b.lease(lease_req(T, "agent:b", 1000)).await.unwrap().is_empty());
            a.close().await;
            b.close().await;
            proxy.cut().await;
        })
        .await;
    }
}
