//! The behavioural suite every `Store` backend must pass. Each test is a function over
//! `&dyn Store`; `backends!` instantiates it once per backend (SQLite here; PostgreSQL joins
//! when its backend lands).

use switchboard_core::api::DeliveryState;
use switchboard_store::sqlite::SqliteStore;
use switchboard_store::{AcceptOutcome, AgentFilter, AgentRecord, LeaseRequest, NewMessage, PrincipalKind, Store};

const T: &str = "t1";

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
    let acked = s.ack(T, "agent:b", vec!["m1".into(), "zz".into()], 1001).await.unwrap();
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
    s.create_agent(agent(T, "a1", "same-name"), "hash-1".into()).await.unwrap();
    s.create_agent(agent("t2", "a2", "same-name"), "hash-2".into()).await.unwrap();
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
    s.create_agent(agent(T, "a1", "bob"), "h1".into()).await.unwrap();
    let err = s.create_agent(agent(T, "a2", "bob"), "h2".into()).await.unwrap_err();
    assert!(matches!(err, switchboard_store::StoreError::Conflict(_)));
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
}

async fn a_commit_wakes_the_recipient(s: &dyn Store) {
    let mut rx = s.wakeups().subscribe((T.into(), "agent:b".into()));
    rx.borrow_and_update();
    s.accept(vec![message(T, "m1", "agent:b", None)]).await.unwrap();
    assert!(rx.has_changed().unwrap());
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
    };
}

backends!(
    accept_lease_ack,
    lease_expiry_makes_it_due_again,
    idempotency_key_returns_the_first_message,
    tenants_do_not_see_each_other,
    agent_names_are_unique_per_tenant,
    ttl_expiry_and_dead_letters,
    a_commit_wakes_the_recipient,
);
