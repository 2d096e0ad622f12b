//! What hostile and careless clients found (issue 9), each held to account through the real
//! server: the refusal is a clear problem document, and it changes nothing.

mod common;

use std::sync::Arc;

use common::{ADMIN, TestHub, assert_unchanged, eventually, within};
use serde_json::{Value, json};
use switchboard_client::InboxOptions;
use switchboard_core::api::{BatchItem, DeliveryState, SendMessage};
use switchboard_core::time::now_ms;
use switchboard_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn addr(id: &str) -> String {
    common::agent_addr(id)
}

/// An answer as (status, content type, JSON body or `Null`).
struct Answer {
    status: u16,
    ctype: String,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(hub: &TestHub, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{}{}", hub.url(), path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_owned());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let ctype = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = res.text().await.unwrap();
    Answer { status, ctype, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// Asserts a problem document with this status and code; returns its body.
fn problem(a: Answer, status: u16, code: &str) -> Value {
    assert_eq!(a.status, status, "status for {code}: {}", a.body);
    assert_eq!(a.ctype, "application/problem+json", "{}", a.body);
    assert_eq!(a.body["code"], code, "{}", a.body);
    assert_eq!(a.body["status"], status);
    assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    a.body
}

/// The paths named in a problem's `errors`.
fn paths(p: &Value) -> Vec<String> {
    p["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["path"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

// ---- 2: a deleted agent's webhook secret ----

#[tokio::test]
async fn a_deleted_agents_webhook_secret_is_gone_like_the_agent() {
    let hub = TestHub::start().await;
    let (hook, _) = hub.agent_at("hook", &[], Some("http://127.0.0.1:9/hook")).await;
    let id = hook.agent.id.clone();
    let admin = hub.admin();
    assert!(admin.webhook_secret(&id).await.unwrap().secret.starts_with("whsec_"));
    admin.delete_agent(&id).await.unwrap();
    let before = hub.snapshot().await;

    assert_eq!(admin.get_agent(&id).await.unwrap_err().code(), Some("not_found"));
    let p = problem(
        call(&hub, "GET", &format!("/v1/agents/{id}/webhook-secret"), Some(ADMIN), None).await,
        404,
        "not_found",
    );
    assert!(!p.to_string().contains("whsec_"), "no secret in the refusal: {p}");
    problem(
        call(&hub, "POST", &format!("/v1/agents/{id}/webhook-secret:rotate"), Some(ADMIN), None).await,
        404,
        "not_found",
    );
    // The rotation wrote nothing back: still no secret to read, and the store as it was.
    assert_eq!(admin.webhook_secret(&id).await.unwrap_err().code(), Some("not_found"));
    assert_unchanged(&before, &hub.snapshot().await, "a deleted agent's secret and rotation");
    hub.stop().await;
}

// ---- 3 and issue 10: one JSON document, 400 for syntax, 422 for fields ----

#[tokio::test]
async fn trailing_data_after_the_json_body_is_refused_and_writes_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let one = json!({"to": addr(&bob.agent.id), "parts": [{"kind": "text", "text": "x"}]}).to_string();
    for body in [format!("{one}xyz"), format!("{one}{one}"), format!("{one} []"), format!("{one}\n{{")] {
        let p = problem(call(&hub, "POST", "/v1/messages", Some(ADMIN), Some(&body)).await, 400, "invalid_json");
        assert!(p["detail"].as_str().unwrap().contains("trailing"), "{p}");
    }
    let batch = json!({"messages": [serde_json::from_str::<Value>(&one).unwrap()]}).to_string();
    problem(
        call(&hub, "POST", "/v1/messages:batch", Some(ADMIN), Some(&format!("{batch}{batch}"))).await,
        400,
        "invalid_json",
    );
    assert_unchanged(&before, &hub.snapshot().await, "bodies with trailing data");
    // Whitespace after the document is not data.
    assert_eq!(call(&hub, "POST", "/v1/messages", Some(ADMIN), Some(&format!("{one} \r\n\t"))).await.status, 202);
    hub.stop().await;
}

#[tokio::test]
async fn unparseable_json_is_400_invalid_json_and_wrong_fields_stay_422() {
    let hub = TestHub::start().await;
    hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    for body in ["{\"to\": ", "", "not json", "{\"to\": 5, \"parts\": [", "{'to': 'x'}"] {
        let p = problem(call(&hub, "POST", "/v1/messages", Some(ADMIN), Some(body)).await, 400, "invalid_json");
        assert_eq!(p["type"], "https://switchboard.dev/problems/invalid-json");
        assert!(paths(&p).is_empty(), "{p}");
    }
    // Well-formed JSON that does not fit names the field, as before.
    let p = problem(
        call(&hub, "POST", "/v1/messages", Some(ADMIN), Some(r#"{"to": 5, "parts": []}"#)).await,
        422,
        "invalid_body",
    );
    assert_eq!(paths(&p), ["to"]);
    // The same for every body: an agent card.
    problem(call(&hub, "POST", "/v1/agents", Some(ADMIN), Some("{\"name\": \"x\"")).await, 400, "invalid_json");
    problem(call(&hub, "POST", "/v1/agents", Some(ADMIN), Some(r#"{"name": 1}"#)).await, 422, "invalid_body");
    // JSON that is not an object is refused by every body, even where every field has a
    // default (serde alone would read `[]` as such a struct: schemathesis found it).
    for (method, path, body) in [
        ("POST", "/v1/dead-letters:replay", "[]"),
        ("POST", "/v1/dead-letters:purge", " []"),
        ("POST", "/v1/messages", r#"["agent:x", [{"kind": "text", "text": "hi"}]]"#),
        ("POST", "/v1/agents", "\"x\""),
        ("PUT", "/v1/tenant/push-settings", "null"),
    ] {
        let p = problem(call(&hub, method, path, Some(ADMIN), Some(body)).await, 422, "invalid_body");
        assert!(p["detail"].as_str().unwrap_or_default().contains("JSON object"), "{path} {body}: {p}");
    }
    assert_unchanged(&before, &hub.snapshot().await, "unparseable and ill-fitting bodies");
    hub.stop().await;
}

// ---- 4: NUL, refused in every string a request carries ----

#[tokio::test]
async fn nul_is_refused_in_every_message_field_and_writes_nothing() {
    let hub = TestHub::start().await;
    let (bob, bob_client) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let to = addr(&bob.agent.id);
    let cases = [
        ("idempotency_key", json!({"idempotency_key": "k\u{0}"})),
        ("correlation_id", json!({"correlation_id": "\u{0}"})),
        ("conversation_id", json!({"conversation_id": "c\u{0}1"})),
        ("in_reply_to", json!({"in_reply_to": "\u{0}x"})),
        ("metadata.trace", json!({"metadata": {"trace": "a\u{0}"}})),
        ("metadata.a\\u0000b", json!({"metadata": {"a\u{0}b": 1}})),
        ("parts[0].text", json!({"parts": [{"kind": "text", "text": "a\u{0}b"}]})),
        ("parts[0].data.list[1]", json!({"parts": [{"kind": "data", "data": {"list": [1, "\u{0}"]}}]})),
        ("parts[0].file.name", json!({"parts": [{"kind": "file", "file": {"name": "\u{0}", "uri": "https://x/y"}}]})),
    ];
    for (path, extra) in cases {
        let mut body = json!({"to": to, "parts": [{"kind": "text", "text": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let p = problem(
            call(&hub, "POST", "/v1/messages", Some(ADMIN), Some(&body.to_string())).await,
            422,
            "invalid_body",
        );
        assert_eq!(paths(&p), [path], "{p}");
        assert!(p["errors"][0]["message"].as_str().unwrap().contains("NUL"), "{p}");
    }
    assert_unchanged(&before, &hub.snapshot().await, "messages with a NUL");

    // In a batch only the message at fault is refused, its field named within the batch.
    let mut bad = SendMessage::text(&to, "b");
    bad.idempotency_key = Some("k\0".into());
    let results = hub.admin().send_batch(vec![SendMessage::text(&to, "a"), bad]).await.unwrap().results;
    assert!(matches!(&results[0], BatchItem::Accepted(_)), "{results:?}");
    match &results[1] {
        BatchItem::Refused { error } => assert_eq!(error.errors[0].path, "messages[1].idempotency_key"),
        other => panic!("the NUL message was not refused: {other:?}"),
    }
    let got = bob_client.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.unwrap().messages;
    assert_eq!(got.len(), 1, "only the clean message of the batch was written");
    hub.stop().await;
}

#[tokio::test]
async fn nul_is_refused_in_every_agent_card_field_and_changes_nothing() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &["translate"]).await;
    let before = hub.snapshot().await;
    let cases = [
        ("description", json!({"description": "d\u{0}"})),
        ("version", json!({"version": "1.0\u{0}"})),
        ("metadata.owner", json!({"metadata": {"owner": "\u{0}"}})),
        ("capabilities[0].description", json!({"capabilities": [{"name": "c", "description": "\u{0}"}]})),
        ("capabilities[0].tags[1]", json!({"capabilities": [{"name": "c", "tags": ["ok", "t\u{0}"]}]})),
        ("capabilities[0].examples[0]", json!({"capabilities": [{"name": "c", "examples": ["\u{0}"]}]})),
    ];
    for (path, extra) in cases {
        let mut card = json!({"name": "eve"});
        for (k, v) in extra.as_object().unwrap() {
            card[k] = v.clone();
        }
        let p =
            problem(call(&hub, "POST", "/v1/agents", Some(ADMIN), Some(&card.to_string())).await, 422, "invalid_body");
        assert_eq!(paths(&p), [path], "register: {p}");
        card["name"] = json!("bob");
        let (path_of_bob, card) = (format!("/v1/agents/{}", bob.agent.id), card.to_string());
        let p = problem(call(&hub, "PUT", &path_of_bob, Some(ADMIN), Some(&card)).await, 422, "invalid_body");
        assert_eq!(paths(&p), [path], "update: {p}");
    }
    assert_unchanged(&before, &hub.snapshot().await, "agent cards with a NUL");
    hub.stop().await;
}

#[tokio::test]
async fn nul_is_refused_in_urls_and_other_bodies() {
    let hub = TestHub::start().await;
    let (bob, bob_client) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    for path in [
        "/v1/agents/%00".to_owned(),
        "/v1/agents?capability=a%00".to_owned(),
        format!("/v1/messages/{}%00", bob.agent.id),
        "/v1/topics/a%00/subscribers".to_owned(),
    ] {
        let p = problem(call(&hub, "GET", &path, Some(ADMIN), None).await, 400, "invalid_query");
        assert!(p["detail"].as_str().unwrap().contains("NUL"), "{path}: {p}");
    }
    let p = problem(
        call(&hub, "POST", "/v1/inbox/ack", Some(&bob.api_key), Some(r#"{"ids": ["\u0000"]}"#)).await,
        422,
        "invalid_body",
    );
    assert_eq!(paths(&p), ["ids[0]"]);
    let p = problem(
        call(&hub, "PUT", "/v1/tenant/push-settings", Some(ADMIN), Some(r#"{"events_to": "agent:\u0000"}"#)).await,
        422,
        "invalid_body",
    );
    assert_eq!(paths(&p), ["events_to"]);
    assert_unchanged(&before, &hub.snapshot().await, "URLs and bodies with a NUL");

    // On the WebSocket, a frame with a NUL is answered with an error frame, and the stream
    // goes on serving.
    let mut stream = bob_client.stream().await.unwrap();
    stream.ack("\0").await.unwrap();
    let err = within(10, "error frame", stream.next_message()).await.unwrap_err().to_string();
    assert!(err.contains("invalid_frame") && err.contains("NUL"), "{err}");
    let sent = hub.admin().send(&SendMessage::text(addr(&bob.agent.id), "still here")).await.unwrap();
    let m = within(10, "message after the refused frame", stream.next_message()).await.unwrap().expect("open");
    assert_eq!(m.message.id, sent.id);
    hub.stop().await;
}

// ---- 5: a nack holds a message back at most 24 h, on the WebSocket as over HTTP ----

/// The store behind a stopped hub, to look at what it wrote.
async fn open_store(hub: &TestHub) -> Arc<dyn Store> {
    match &hub.config.database_url {
        Some(url) => {
            Arc::new(switchboard_store::postgres::PostgresStore::connect(url, "inspect".into()).await.unwrap())
        }
        None => Arc::new(switchboard_store::sqlite::SqliteStore::open(&hub.config.data_dir).unwrap()),
    }
}

#[tokio::test]
async fn a_websocket_nack_with_a_huge_retry_is_clamped_to_a_day() {
    const DAY_MS: i64 = 24 * 3_600_000;
    let mut hub = TestHub::start().await;
    let (bob, bob_client) = hub.agent("bob", &[]).await;
    let (carol, carol_client) = hub.agent("carol", &[]).await;
    let admin = hub.admin();
    let t0 = now_ms();

    let mut stream = bob_client.stream().await.unwrap();
    for huge in [u64::MAX, i64::MAX as u64, 9_000_000_000_000_000_000] {
        let sent = admin.send(&SendMessage::text(addr(&bob.agent.id), format!("{huge}"))).await.unwrap();
        let m = within(10, "message", stream.next_message()).await.unwrap().expect("stream open");
        assert_eq!((m.message.id.as_str(), m.attempt), (sent.id.as_str(), 1), "no earlier nacked message came back");
        stream.nack(&sent.id, Some(huge)).await.unwrap();
        // The nack is committed once the delivery is pending again; a retry that wrapped into
        // the past would be leased again at once, and seen first below.
        eventually(10, "the nack to be committed", || {
            let (admin, id) = (admin.clone(), sent.id.clone());
            async move {
                let s = admin.get_message(&id).await.unwrap();
                (s.deliveries[0].state == DeliveryState::Pending).then_some(())
            }
        })
        .await;
    }
    let marker = admin.send(&SendMessage::text(addr(&bob.agent.id), "marker")).await.unwrap();
    let m = within(10, "marker", stream.next_message()).await.unwrap().expect("stream open");
    assert_eq!(m.message.id, marker.id, "a nacked message came back at once");
    stream.ack(&marker.id).await.unwrap();

    // Over HTTP too: the same clamp.
    let sent = admin.send(&SendMessage::text(addr(&carol.agent.id), "http")).await.unwrap();
    carol_client.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(carol_client.nack(vec![sent.id.clone()], Some(u64::MAX)).await.unwrap().ids, [sent.id]);

    // Every nacked message comes due within a day (and a minute of slack), none later.
    hub.hub.take().expect("running").shutdown().await;
    let store = open_store(&hub).await;
    let t1 = now_ms();
    let mut within_a_day: Vec<String> =
        store.due_recipients(t0 + DAY_MS - 60_000, t1 + DAY_MS).await.unwrap().into_iter().map(|k| k.1).collect();
    within_a_day.sort();
    let mut want = vec![addr(&bob.agent.id), addr(&carol.agent.id)];
    want.sort();
    assert_eq!(within_a_day, want);
    assert!(store.due_recipients(t1 + DAY_MS, i64::MAX).await.unwrap().is_empty(), "parked beyond a day");
    store.close().await;
}

// ---- 6: tokens in URLs only where browsers need them ----

#[tokio::test]
async fn access_token_in_the_url_works_only_on_the_streams() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    for path in [format!("/v1/whoami?access_token={ADMIN}"), format!("/v1/agents?access_token={ADMIN}")] {
        let p = problem(call(&hub, "GET", &path, None, None).await, 401, "unauthenticated");
        assert!(p["detail"].as_str().unwrap().contains("Authorization: Bearer"), "{p}");
        // Even beside a valid header: the token must come out of the URL.
        problem(call(&hub, "GET", &path, Some(ADMIN), None).await, 401, "unauthenticated");
    }
    // A POST with the token in the URL writes nothing.
    let body = json!({"to": addr(&bob.agent.id), "parts": [{"kind": "text", "text": "x"}]}).to_string();
    problem(
        call(&hub, "POST", &format!("/v1/messages?access_token={ADMIN}"), None, Some(&body)).await,
        401,
        "unauthenticated",
    );
    assert_unchanged(&before, &hub.snapshot().await, "requests with a token in the URL");

    // The streams still take it: SSE answers its event stream, and the WebSocket endpoint
    // gets past authentication to the handshake this plain request lacks.
    let res = reqwest::get(format!("{}/v1/events?access_token={}", hub.url(), bob.api_key)).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    drop(res);
    let path = format!("/v1/stream?access_token={}", bob.api_key);
    assert_ne!(call(&hub, "GET", &path, None, None).await.status, 401);
    hub.stop().await;
}

// ---- 10: small inconsistencies ----

#[tokio::test]
async fn a_bad_agent_cursor_is_400_like_the_deliveries_cursor() {
    let hub = TestHub::start().await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(hub.agent(name, &[]).await.0.agent.id);
    }
    ids.sort();
    for path in ["/v1/agents?cursor=not-a-cursor", "/v1/agents?cursor=%FF", "/v1/deliveries?cursor=not-a-cursor"] {
        let p = problem(call(&hub, "GET", path, Some(ADMIN), None).await, 400, "invalid_query");
        assert_eq!(paths(&p), ["cursor"], "{path}: {p}");
    }
    let p = problem(
        call(&hub, "GET", "/v1/topics/t/subscribers?after=nope", Some(ADMIN), None).await,
        400,
        "invalid_query",
    );
    assert_eq!(paths(&p), ["after"]);
    // A real cursor still pages.
    let first = call(&hub, "GET", "/v1/agents?limit=2", Some(ADMIN), None).await.body;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let rest = call(&hub, "GET", &format!("/v1/agents?limit=2&cursor={cursor}"), Some(ADMIN), None).await.body;
    assert_eq!(rest["agents"][0]["id"], ids[2].as_str(), "{rest}");
    hub.stop().await;
}

#[tokio::test]
async fn the_websocket_endpoint_answers_a_plain_request_with_a_problem() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let a = call(&hub, "GET", "/v1/stream", Some(&bob.api_key), None).await;
    assert_eq!(a.headers.get("upgrade").map(|v| v.to_str().unwrap()), Some("websocket"));
    let p = problem(a, 426, "upgrade_required");
    assert!(p["detail"].as_str().unwrap().contains("/v1/events"), "{p}");
    hub.stop().await;
}

#[tokio::test]
async fn wait_ms_over_the_maximum_is_400_for_sends_as_for_the_inbox() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let before = hub.snapshot().await;
    let body = json!({"to": addr(&bob.agent.id), "parts": [{"kind": "text", "text": "x"}]}).to_string();
    let send = "/v1/messages?wait=delivered&wait_ms=120001";
    let p = problem(call(&hub, "POST", send, Some(ADMIN), Some(&body)).await, 400, "invalid_query");
    assert_eq!(p["detail"], "`wait_ms` must be at most 120000 (milliseconds); wait less and ask again to wait longer");
    let p = problem(call(&hub, "GET", "/v1/inbox?wait_ms=60001", Some(&bob.api_key), None).await, 400, "invalid_query");
    assert_eq!(p["detail"], "`wait_ms` must be at most 60000 (milliseconds); wait less and ask again to wait longer");
    assert_unchanged(&before, &hub.snapshot().await, "waits over the maximum");
    // Within the maximum, the send goes through.
    let a = call(&hub, "POST", "/v1/messages?wait=delivered&wait_ms=0", Some(ADMIN), Some(&body)).await;
    assert_eq!(a.status, 202);
    hub.stop().await;
}

/// One HTTP/1.1 request written by hand, for paths an HTTP client library would rewrite
/// (`%2E%2E` is `..` to a WHATWG URL parser); returns the status and the body.
async fn raw_http(hub: &TestHub, request_line: &str, token: &str) -> (u16, Value) {
    let host = hub.url().trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&host).await.unwrap();
    let req = format!(
        "{request_line} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    within(10, "raw answer", conn.read_to_end(&mut out)).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn dot_segments_and_empty_tokens_are_not_topic_names() {
    let hub = TestHub::start().await;
    let (bob, _) = hub.agent("bob", &[]).await;
    let id = &bob.agent.id;
    let before = hub.snapshot().await;
    for name in ["%2E%2E", "%2E", "..", "orders..eu", ".orders", "orders.", "a%2F..%2Fb"] {
        let (status, p) = raw_http(&hub, &format!("PUT /v1/topics/{name}/subscribers/{id}"), ADMIN).await;
        assert_eq!(status, 400, "{name}: {p}");
        assert_eq!(p["code"], "invalid_query", "{name}: {p}");
        assert_eq!(paths(&p), ["topic"], "{name}: {p}");
    }
    for name in ["..", ".", "orders..eu", "a/./b"] {
        let body = json!({"to": format!("topic:{name}"), "parts": [{"kind": "text", "text": "x"}]}).to_string();
        let p = problem(call(&hub, "POST", "/v1/messages", Some(ADMIN), Some(&body)).await, 422, "invalid_body");
        assert_eq!(paths(&p), ["to"], "{name}: {p}");
    }
    assert_unchanged(&before, &hub.snapshot().await, "bad topic names");
    // Dotted names are fine.
    hub.admin().subscribe("orders.eu", id).await.unwrap();
    hub.stop().await;
}
