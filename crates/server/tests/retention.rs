//! Retention and erasure through the API (both stores: with
//! `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these run on PostgreSQL).
//! - `PUT /v1/tenant/retention` checks its fields (422 naming the field, nothing changed) and
//!   is audited; the purge task then deletes acknowledged messages older than the setting,
//!   never one a recipient has not acknowledged.
//! - `DELETE /v1/agents/{id}?erase=true` and `DELETE /v1/users/{id}?erase=true` erase the
//!   payloads of their messages and leave the rows; the audit chain still verifies.

mod common;

use common::{TestHub, agent_addr, assert_problem, assert_unchanged, eventually, raw};
use switchboard_client::{ClientError, InboxOptions};
use switchboard_core::api::{SendMessage, TenantRetention};

const ADMIN: &str = common::ADMIN;

fn is_not_found(e: &ClientError) -> bool {
    e.code() == Some("not_found")
}

#[tokio::test]
async fn bad_retention_is_refused_and_changes_nothing() {
    let hub = TestHub::start().await;
    let before = hub.snapshot().await;
    let got =
        raw(&hub, "PUT", "/v1/tenant/retention", Some(ADMIN), Some(r#"{"messages_max_age_seconds":0}"#.into())).await;
    let p = assert_problem(got, 422, "invalid_body");
    assert_eq!(p["errors"][0]["path"], "messages_max_age_seconds", "{p}");
    let got = raw(&hub, "PUT", "/v1/tenant/retention", Some(ADMIN), Some(r#"{"messages_max_age":60}"#.into())).await;
    assert_problem(got, 422, "invalid_body");
    let (agent, client) = hub.agent("a", &[]).await;
    let before_agent = hub.snapshot().await;
    let got = raw(
        &hub,
        "PUT",
        "/v1/tenant/retention",
        Some(&agent.api_key),
        Some(r#"{"messages_max_age_seconds":60}"#.into()),
    )
    .await;
    assert_problem(got, 403, "forbidden");
    assert_unchanged(&before_agent, &hub.snapshot().await, "an agent cannot set retention");
    drop((before, client));
    assert_eq!(hub.admin().retention().await.unwrap(), TenantRetention::default(), "kept for ever until set");
    hub.stop().await;
}

#[tokio::test]
async fn acknowledged_messages_go_and_unacknowledged_ones_stay() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (b, bc) = hub.agent("b", &[]).await;
    let to = agent_addr(&b.agent.id);
    let acked = admin.send(&SendMessage::text(&to, "read me")).await.unwrap().id;
    let waiting = admin.send(&SendMessage::text(&to, "keep me")).await.unwrap().id;
    let inbox = bc.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 2);
    bc.ack(vec![acked.clone()]).await.unwrap();

    let r = TenantRetention { messages_max_age_seconds: Some(1), dead_letters_max_age_seconds: Some(3600) };
    assert_eq!(admin.put_retention(&r).await.unwrap(), r);
    assert_eq!(admin.retention().await.unwrap(), r);
    eventually(20, "the acknowledged message to be purged", || async {
        match admin.get_message(&acked).await {
            Err(e) if is_not_found(&e) => Some(()),
            _ => None,
        }
    })
    .await;
    // The purge has run past the other one: it is still there, still waiting for its ack.
    let kept = admin.get_message(&waiting).await.expect("an unacknowledged message is never purged");
    assert_eq!(kept.deliveries.len(), 1);
    bc.ack(vec![waiting.clone()]).await.unwrap();
    eventually(20, "the second message to go once acknowledged", || async {
        admin.get_message(&waiting).await.err().filter(is_not_found).map(|_| ())
    })
    .await;
    let audit = admin.audit(&Default::default()).await.unwrap();
    assert!(audit.events.iter().any(|e| e.action == "retention.set"), "the change is audited");
    let metrics = reqwest::get(format!("{}/metrics", hub.url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchboard_retention_purged_messages_total 2"), "{metrics}");
    hub.stop().await;
}

#[tokio::test]
async fn erasing_an_agent_empties_its_messages_and_the_chain_verifies() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (a, ac) = hub.agent("a", &[]).await;
    let (b, _) = hub.agent("b", &[]).await;
    let from_a = ac.send(&SendMessage::text(agent_addr(&b.agent.id), "secret plan")).await.unwrap().id;
    let to_a = admin.send(&SendMessage::text(agent_addr(&a.agent.id), "more secrets")).await.unwrap().id;
    let other = admin.send(&SendMessage::text(agent_addr(&b.agent.id), "not a's")).await.unwrap().id;

    let got = raw(&hub, "DELETE", &format!("/v1/agents/{}?erase=yes", a.agent.id), Some(ADMIN), None).await;
    assert_problem(got, 400, "invalid_query");
    assert!(admin.get_agent(&a.agent.id).await.is_ok(), "a refused erasure deletes nothing");

    admin.erase_agent(&a.agent.id).await.unwrap();
    for id in [&from_a, &to_a] {
        let m = admin.get_message(id).await.expect("the tombstone stays");
        assert!(m.message.parts.is_empty(), "{id}: {:?}", m.message.parts);
    }
    assert!(!admin.get_message(&other).await.unwrap().message.parts.is_empty(), "others' messages are kept");
    let audit = admin.audit(&Default::default()).await.unwrap();
    let delete = audit.events.iter().find(|e| e.action == "agent.delete").expect("audited");
    assert_eq!(delete.detail["erase"], true);
    assert_eq!(delete.detail["messages_erased"], 2);
    // The chain verifies after the erasure: read as `switchboard audit verify` reads it.
    let store = switchboard_store::open(hub.config.database_url.as_deref(), hub.dir.path(), "verify".into())
        .await
        .expect("open the hub's store");
    let verdict = store.verify_audit("default").await.unwrap();
    store.close().await;
    assert!(verdict.broken.is_none(), "the chain verifies after an erasure: {verdict:?}");
    let got = raw(&hub, "DELETE", &format!("/v1/agents/{}?erase=true", a.agent.id), Some(ADMIN), None).await;
    assert_problem(got, 404, "not_found");
    hub.stop().await;
}

#[tokio::test]
async fn erasing_a_person_empties_their_messages_and_forgets_their_address() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let req = switchboard_core::people::CreateUser {
        email: "ann@example.com".into(),
        name: "Ann".into(),
        role: switchboard_core::principal::Role::Member,
        password: None,
    };
    let ann = admin.create_user(&req).await.unwrap().user;
    let to_ann = admin.send(&SendMessage::text(format!("user:{}", ann.id), "your results")).await.unwrap().id;
    admin.erase_user(&ann.id).await.unwrap();
    let m = admin.get_message(&to_ann).await.expect("the tombstone stays");
    assert!(m.message.parts.is_empty(), "{:?}", m.message.parts);
    let audit = admin.audit(&Default::default()).await.unwrap();
    let delete = audit.events.iter().find(|e| e.action == "user.delete").expect("audited");
    assert_eq!(delete.detail["messages_erased"], 1);
    assert!(
        !delete.detail.to_string().contains("ann@example.com"),
        "an erasure's entry keeps no address: {}",
        delete.detail
    );
    hub.stop().await;
}
