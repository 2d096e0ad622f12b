//! Agent keys over HTTP (`GET|POST /v1/agents/{id}/keys`, `DELETE /v1/agents/{id}/keys/{key_id}`):
//! several live keys per agent, revocation at once or after a grace period, the last use of
//! each key, who may manage which keys, the refusals, and the audit entries they leave.

mod common;

use common::{ADMIN, TestHub, assert_problem, eventually, raw};
use switchboard_client::{AuditQuery, Client, ClientError};
use switchboard_core::api::AgentKey;
use switchboard_core::time::{now_ms, parse_rfc3339};

/// Whether the client's token authenticates now: `Some(true)` for 200, `Some(false)` for
/// 401, a panic for anything else.
async fn works(c: &Client) -> bool {
    match c.whoami().await {
        Ok(_) => true,
        Err(ClientError::Api(p)) if p.status == 401 => false,
        Err(e) => panic!("whoami: {e}"),
    }
}

async fn keys(c: &Client, id: &str) -> Vec<AgentKey> {
    c.list_agent_keys(id).await.expect("list keys").keys
}

#[tokio::test]
async fn two_live_keys_work_and_a_revoked_one_stops_at_once() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (reg, first) = hub.agent("rotating", &[]).await;
    let id = reg.agent.id.clone();
    let listed = keys(&admin, &id).await;
    assert_eq!(listed.len(), 1, "the registration key is the agent's first key");
    let first_id = listed[0].id.clone();
    assert!(first_id.starts_with("key_"), "{first_id}");

    let created = admin.create_agent_key(&id).await.expect("create a second key");
    assert!(created.key.starts_with("sbk_"), "the key has the agent key prefix");
    assert!(created.id.starts_with("key_") && created.id != first_id);
    let second = first.with_token(created.key.clone());
    assert!(works(&first).await && works(&second).await, "both keys work");
    assert_eq!(second.whoami().await.unwrap().agent_id.as_deref(), Some(id.as_str()), "as the same agent");

    // The list never shows a key or its hash.
    let (status, _, body) = raw(&hub, "GET", &format!("/v1/agents/{id}/keys"), Some(ADMIN), None).await;
    assert_eq!(status, 200);
    let text = body.to_string();
    assert!(!text.contains(&created.key) && !text.contains(&reg.api_key), "{text}");
    assert!(!text.contains(&switchboard_server::token::token_hash(&created.key)), "{text}");
    let ids: Vec<&str> = body["keys"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first_id.as_str(), created.id.as_str()], "oldest first");
    assert!(body["keys"][0]["expires_at"].is_null(), "a live key has no expiry: {body}");

    // `first` was used above, so this node has it cached; the revocation must end it anyway.
    admin.revoke_agent_key(&id, &first_id, None).await.expect("revoke without grace");
    assert!(!works(&first).await, "a key revoked without grace answers 401 at once");
    let refused = raw(&hub, "GET", "/v1/whoami", Some(&reg.api_key), None).await;
    let problem = assert_problem(refused, 401, "unauthenticated");
    assert!(problem["detail"].as_str().unwrap().contains("revoked"), "{problem}");
    assert!(works(&second).await, "the other key keeps working");
    let left: Vec<String> = keys(&admin, &id).await.into_iter().map(|k| k.id).collect();
    assert_eq!(left, [created.id.as_str()], "a revoked key leaves the list");

    let again = raw(&hub, "DELETE", &format!("/v1/agents/{id}/keys/{first_id}"), Some(ADMIN), None).await;
    assert_problem(again, 404, "not_found");
}

#[tokio::test]
async fn a_key_in_grace_works_until_its_grace_ends() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (reg, old) = hub.agent("graceful", &[]).await;
    let id = reg.agent.id.clone();
    let old_id = keys(&admin, &id).await[0].id.clone();
    let new = old.with_token(admin.create_agent_key(&id).await.unwrap().key);
    assert!(works(&old).await, "the old key is cached on this node before the revocation");

    let revoked_at = now_ms();
    admin.revoke_agent_key(&id, &old_id, Some(2)).await.expect("revoke with a grace of 2 s");
    let listed = keys(&admin, &id).await;
    let in_grace = listed.iter().find(|k| k.id == old_id).expect("a key in grace is still listed");
    let ends = parse_rfc3339(in_grace.expires_at.as_deref().expect("with the end of its grace")).unwrap();
    assert!((revoked_at + 2000..revoke_upper_bound(revoked_at)).contains(&ends), "{ends} vs {revoked_at}");
    assert!(works(&old).await, "a key in grace still works");
    assert!(works(&new).await);

    eventually(10, "the old key to stop once its grace ended", || {
        let old = old.clone();
        async move { (!works(&old).await).then_some(()) }
    })
    .await;
    assert!(now_ms() >= ends, "it stopped no earlier than its grace ended");
    assert!(works(&new).await, "the new key keeps working");
    assert!(keys(&admin, &id).await.iter().all(|k| k.id != old_id), "and the old one leaves the list");
}

/// The latest time a revocation with a 2 s grace that started at `at` may end (the request's
/// own duration, generously).
fn revoke_upper_bound(at: i64) -> i64 {
    at + 2000 + 10_000
}

#[tokio::test]
async fn each_key_records_its_last_use() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (reg, agent) = hub.agent("used", &[]).await;
    let id = reg.agent.id.clone();
    let spare = admin.create_agent_key(&id).await.unwrap();
    let before = now_ms();
    assert!(works(&agent).await);
    let used = eventually(10, "the registration key's last use to be recorded", || {
        let admin = admin.clone();
        let id = id.clone();
        async move {
            let k = keys(&admin, &id).await;
            k[0].last_used_at.as_deref().and_then(parse_rfc3339)
        }
    })
    .await;
    assert!(used >= before - 1000, "{used} vs {before}");
    let listed = keys(&admin, &id).await;
    let spare_key = listed.iter().find(|k| k.id == spare.id).unwrap();
    assert!(spare_key.last_used_at.is_none(), "the unused key has no last use: {spare_key:?}");
}

#[tokio::test]
async fn an_agent_manages_its_own_keys_and_no_one_elses() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (ann, ann_client) = hub.agent("ann", &[]).await;
    let (bob, bob_client) = hub.agent("bob", &[]).await;
    let bob_key = keys(&admin, &bob.agent.id).await[0].id.clone();

    // Ann rotates her own key: a new one, then the old one revoked.
    let made = ann_client.create_agent_key(&ann.agent.id).await.expect("an agent adds a key of its own");
    let ann_new = ann_client.with_token(made.key.clone());
    let mine = keys(&ann_new, &ann.agent.id).await;
    assert_eq!(mine.len(), 2);
    ann_new.revoke_agent_key(&ann.agent.id, &mine[0].id, None).await.expect("and revokes its old one");
    assert!(!works(&ann_client).await && works(&ann_new).await);

    let before = hub.snapshot().await;
    // Ann on Bob's keys: refused, whatever she tries.
    for (method, path) in [
        ("POST", format!("/v1/agents/{}/keys", bob.agent.id)),
        ("GET", format!("/v1/agents/{}/keys", bob.agent.id)),
        ("DELETE", format!("/v1/agents/{}/keys/{bob_key}", bob.agent.id)),
    ] {
        let got = raw(&hub, method, &path, Some(&made.key), None).await;
        assert_problem(got, 403, "forbidden");
    }
    // Bob's key id under Ann's agent, and a key id that never existed: 404.
    let mixed = raw(&hub, "DELETE", &format!("/v1/agents/{}/keys/{bob_key}", ann.agent.id), Some(ADMIN), None).await;
    assert_problem(mixed, 404, "not_found");
    let unknown = raw(&hub, "DELETE", &format!("/v1/agents/{}/keys/key_nope", ann.agent.id), Some(ADMIN), None).await;
    assert_problem(unknown, 404, "not_found");
    for path in ["/v1/agents/nobody/keys", "/v1/agents/nobody/keys/key_nope"] {
        let method = if path.ends_with("keys") { "GET" } else { "DELETE" };
        assert_problem(raw(&hub, method, path, Some(ADMIN), None).await, 404, "not_found");
    }
    assert_problem(raw(&hub, "POST", "/v1/agents/nobody/keys", Some(ADMIN), None).await, 404, "not_found");
    // A grace period out of range, or not a number: 400 naming `grace_seconds`.
    for bad in ["604801", "-1", "soon", "1.5"] {
        let path = format!("/v1/agents/{}/keys/{bob_key}?grace_seconds={bad}", bob.agent.id);
        let problem = assert_problem(raw(&hub, "DELETE", &path, Some(ADMIN), None).await, 400, "invalid_query");
        assert_eq!(problem["errors"][0]["path"], "grace_seconds", "{bad}: {problem}");
    }
    common::assert_unchanged(&before, &hub.snapshot().await, "refused key requests");
    assert!(works(&bob_client).await, "Bob's key survived all that");

    // The longest grace is accepted.
    let path = format!("/v1/agents/{}/keys/{bob_key}?grace_seconds=604800", bob.agent.id);
    assert_eq!(raw(&hub, "DELETE", &path, Some(ADMIN), None).await.0, 204);
    assert!(works(&bob_client).await, "in a grace of 7 days");
}

#[tokio::test]
async fn key_changes_are_audited_without_the_key() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (reg, agent) = hub.agent("audited", &[]).await;
    let id = reg.agent.id.clone();
    let made = agent.create_agent_key(&id).await.unwrap();
    admin.revoke_agent_key(&id, &made.id, Some(30)).await.unwrap();
    let page =
        admin.audit(&AuditQuery { action: Some("agent_key.create".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.events.len(), 1, "{:?}", page.events);
    let e = &page.events[0];
    let agent = common::agent_addr(&id);
    assert_eq!((e.actor.as_str(), e.target.as_str()), (agent.as_str(), agent.as_str()));
    assert_eq!(e.detail["key_id"], made.id.as_str());
    let page =
        admin.audit(&AuditQuery { action: Some("agent_key.revoke".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.events.len(), 1, "{:?}", page.events);
    assert_eq!(page.events[0].actor, "operator", "the test hub's admin token is the bootstrap one");
    assert_eq!(page.events[0].detail["key_id"], made.id.as_str());
    assert_eq!(page.events[0].detail["grace_seconds"], 30);
    let everything = admin.audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    let text = serde_json::to_string(&everything.events).unwrap();
    assert!(!text.contains(&made.key) && !text.contains(&reg.api_key), "no key in the audit log");
}
