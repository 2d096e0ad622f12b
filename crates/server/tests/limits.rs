//! Limits over HTTP (`GET|PUT /v1/limits`): send and API rate limits answer 429 with
//! `Retry-After` and recover after it; quotas (agents, recipients per message, messages
//! stored, open streams) answer 403 `quota_exceeded`; refusals are counted in `/metrics`;
//! the admin token is never limited; bad limits are refused naming the field.

mod common;

use common::{ADMIN, TestHub, assert_problem, assert_unchanged, eventually, raw};
use serde_json::json;
use switchboard_client::{AuditQuery, ClientError};
use switchboard_core::api::{RegisterAgent, SendMessage};
use switchboard_core::limits::{Rate, TenantLimits};

fn addr(id: &str) -> String {
    common::agent_addr(id)
}

/// Sends as `token`, answering (status, `Retry-After`, problem code).
async fn send_raw(hub: &TestHub, token: &str, to: &str) -> (u16, Option<String>, String) {
    let res = reqwest::Client::new()
        .post(format!("{}/v1/messages", hub.url()))
        .bearer_auth(token)
        .json(&json!({ "to": to, "parts": [{ "kind": "text", "text": "hi" }] }))
        .send()
        .await
        .expect("the hub answers");
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (status, retry, body["code"].as_str().unwrap_or_default().to_owned())
}

/// The value of a `switchboard_limit_refusals_total` series, 0 when absent.
async fn refusals(hub: &TestHub, kind: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", hub.url())).await.unwrap().text().await.unwrap();
    let series = format!("switchboard_limit_refusals_total{{kind=\"{kind}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap())
}

fn code(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api(p) => (p.status, p.code),
        other => panic!("not a refusal: {other}"),
    }
}

#[tokio::test]
async fn a_send_rate_limit_answers_429_with_retry_after_and_recovers() {
    let hub = TestHub::start().await;
    let (b, _) = hub.agent("b", &[]).await;
    let (a, _) = hub.agent("a", &[]).await;
    let limits = TenantLimits { send_rate: Some(Rate { per_second: 1.0, burst: 2 }), ..Default::default() };
    hub.admin().put_limits(&limits).await.expect("set a send rate");
    assert_eq!(hub.admin().limits().await.unwrap(), limits);
    let to = addr(&b.agent.id);
    for _ in 0..2 {
        assert_eq!(send_raw(&hub, &a.api_key, &to).await.0, 202, "the burst");
    }
    let before = hub.snapshot().await;
    let (status, retry, code) = send_raw(&hub, &a.api_key, &to).await;
    let refused_at = std::time::Instant::now();
    assert_unchanged(&before, &hub.snapshot().await, "a rate-limited send");
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert_eq!(retry.as_deref(), Some("1"), "one token a second: retry in 1 s");
    assert_eq!(refusals(&hub, "send_rate").await, 1);
    // Not the admin's sends, and not another agent's bucket.
    for _ in 0..5 {
        assert_eq!(send_raw(&hub, ADMIN, &to).await.0, 202, "the admin is never limited");
    }
    eventually(10, "a token to flow back in", || async {
        (send_raw(&hub, &a.api_key, &to).await.0 == 202).then_some(())
    })
    .await;
    let waited = refused_at.elapsed();
    assert!(waited >= std::time::Duration::from_millis(500), "recovered after {waited:?}, before a token flowed in");
    // A batch spends one token per message; the ones over the limit are refused alone.
    let (_, ac) = hub.agent("batcher", &[]).await;
    let batch: Vec<SendMessage> = (0..3).map(|_| SendMessage::text(to.clone(), "x")).collect();
    let got = ac.send_batch(batch).await.expect("a batch");
    let codes: Vec<String> = got
        .results
        .iter()
        .map(|r| match r {
            switchboard_core::api::BatchItem::Accepted(_) => "accepted".to_owned(),
            switchboard_core::api::BatchItem::Refused { error } => error.code.clone(),
        })
        .collect();
    assert_eq!(codes, ["accepted", "accepted", "rate_limited"], "a principal's first bucket starts full");
    hub.stop().await;
}

#[tokio::test]
async fn an_api_rate_limit_counts_every_request_of_a_principal() {
    let hub = TestHub::start().await;
    let (a, ac) = hub.agent("a", &[]).await;
    hub.admin()
        .put_limits(&TenantLimits { api_rate: Some(Rate { per_second: 0.5, burst: 3 }), ..Default::default() })
        .await
        .unwrap();
    for _ in 0..3 {
        ac.whoami().await.expect("within the burst");
    }
    let res =
        reqwest::Client::new().get(format!("{}/v1/agents", hub.url())).bearer_auth(&a.api_key).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert_eq!(res.headers()["retry-after"], "2", "half a token a second: 2 s");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(refusals(&hub, "api_rate").await, 1);
    hub.admin().whoami().await.expect("the admin is never limited");
    hub.stop().await;
}

#[tokio::test]
async fn quotas_refuse_agents_recipients_and_stored_messages() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let (w1, w1c) = hub.agent("w1", &["work"]).await;
    let (w2, w2c) = hub.agent("w2", &["work"]).await;
    let (s, sc) = hub.agent("sender", &[]).await;
    let limits = TenantLimits { max_agents: Some(3), max_recipients: Some(1), ..Default::default() };
    admin.put_limits(&limits).await.unwrap();
    let before = hub.snapshot().await;
    let err = admin.register_agent(&RegisterAgent { name: "w4".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(code(err), (403, "quota_exceeded".into()));
    assert_unchanged(&before, &hub.snapshot().await, "a registration over the quota");
    // Heartbeats make the workers active, so broadcast reaches both: over one recipient.
    w1c.heartbeat(&w1.agent.id).await.unwrap();
    w2c.heartbeat(&w2.agent.id).await.unwrap();
    let err = sc.send(&SendMessage::text("capability:work?all", "to all")).await.unwrap_err();
    assert_eq!(code(err), (403, "quota_exceeded".into()));
    sc.send(&SendMessage::text("capability:work", "anycast: one")).await.expect("one recipient is within the quota");
    assert_eq!(refusals(&hub, "agents").await, 1);
    assert_eq!(refusals(&hub, "recipients").await, 1);

    // Messages stored: the tenant has 1; a quota of 3 lets 2 more in.
    admin.put_limits(&TenantLimits { max_messages_stored: Some(3), ..Default::default() }).await.unwrap();
    for _ in 0..2 {
        sc.send(&SendMessage::text(addr(&s.agent.id), "kept")).await.expect("under the quota");
    }
    let err = sc.send(&SendMessage::text(addr(&s.agent.id), "one too many")).await.unwrap_err();
    assert_eq!(code(err), (403, "quota_exceeded".into()));
    admin.send(&SendMessage::text(addr(&s.agent.id), "the admin")).await.expect("the admin is never limited");
    admin.put_limits(&TenantLimits::default()).await.expect("lift the quotas");
    sc.send(&SendMessage::text("capability:work?all", "to all")).await.expect("no quota any more");
    hub.stop().await;
}

#[tokio::test]
async fn open_streams_per_principal_are_limited() {
    let hub = TestHub::start().await;
    let (a, ac) = hub.agent("a", &[]).await;
    let (_, other) = hub.agent("other", &[]).await;
    hub.admin().put_limits(&TenantLimits { max_streams: Some(1), ..Default::default() }).await.unwrap();
    let sse = ac.events().await.expect("the first stream");
    match ac.stream().await {
        Err(e) => assert_eq!(code(e), (403, "quota_exceeded".into()), "an open SSE stream holds the slot"),
        Ok(_) => panic!("a second stream must be refused"),
    }
    let got = raw(&hub, "GET", "/v1/inbox?wait_ms=0", Some(&a.api_key), None).await;
    assert_problem(got, 403, "quota_exceeded");
    assert_eq!(refusals(&hub, "streams").await, 2);
    let _their_own = other.stream().await.expect("another agent's streams count apart");
    drop(sse);
    let ws = eventually(10, "the closed stream's slot to be free", || {
        let ac = ac.clone();
        async move { ac.stream().await.ok() }
    })
    .await;
    match ac.events().await {
        Err(e) => assert_eq!(code(e), (403, "quota_exceeded".into()), "an open WebSocket holds the slot"),
        Ok(_) => panic!("a second stream must be refused"),
    }
    ws.close().await.expect("close the WebSocket");
    eventually(10, "the WebSocket's slot to be free", || {
        let ac = ac.clone();
        async move { ac.events().await.ok().map(|_| ()) }
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn bad_limits_are_refused_naming_the_field_and_setting_them_is_audited() {
    let hub = TestHub::start().await;
    let before = hub.snapshot().await;
    let body = json!({ "send_rate": { "per_second": 0, "burst": 5 }, "max_agents": 0 });
    let got = raw(&hub, "PUT", "/v1/limits", Some(ADMIN), Some(body.to_string())).await;
    let p = assert_problem(got, 422, "invalid_body");
    let paths: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["send_rate.per_second", "max_agents"], "{p}");
    let got = raw(&hub, "PUT", "/v1/limits", Some(ADMIN), Some(json!({ "max_agent": 3 }).to_string())).await;
    assert_problem(got, 422, "invalid_body");
    assert_unchanged(&before, &hub.snapshot().await, "refused limits");
    let (a, _) = hub.agent("a", &[]).await;
    let got = raw(&hub, "PUT", "/v1/limits", Some(&a.api_key), Some("{}".into())).await;
    assert_problem(got, 403, "forbidden");

    hub.admin().put_limits(&TenantLimits { max_streams: Some(4), ..Default::default() }).await.unwrap();
    let page =
        hub.admin().audit(&AuditQuery { action: Some("limits.set".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].detail, json!({ "max_streams": 4 }));
    hub.stop().await;
}
