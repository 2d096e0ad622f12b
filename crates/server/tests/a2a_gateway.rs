//! The A2A gateway: an external agent imported from its Agent Card (`POST /v1/agents:import`)
//! gets its messages as A2A `SendMessage` calls from the push engine, and its answers come
//! back as replies. The external agent is a small A2A JSON-RPC responder on loopback (axum).

mod common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::{TestHub, agent_addr, eventually};
use serde_json::{Value, json};
use switchboard_client::{Client, ClientError, DeliveryQuery, InboxOptions};
use switchboard_core::api::{A2aCredentials, DeliveryState, ImportAgent, MessageStatus, Part, SendMessage};

/// What the external agent answers to call number `n` (0-based): a status and a body.
type Plan = Arc<dyn Fn(usize, &Value) -> (u16, Value) + Send + Sync>;

#[derive(Clone)]
struct Remote {
    card: Arc<Mutex<Value>>,
    plan: Plan,
    calls: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

/// An external A2A agent on loopback: its card at `/.well-known/agent-card.json` (made by
/// `card` from the agent's base URL) and its JSON-RPC interface at `/rpc`.
struct Agent {
    base: String,
    state: Remote,
}

impl Agent {
    async fn start(
        card: impl Fn(&str) -> Value,
        plan: impl Fn(usize, &Value) -> (u16, Value) + Send + Sync + 'static,
    ) -> Agent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Remote { card: Arc::new(Mutex::new(card(&base))), plan: Arc::new(plan), calls: Arc::default() };
        let app = axum::Router::new()
            .route(
                "/.well-known/agent-card.json",
                get(|State(s): State<Remote>| async move { Json(s.card.lock().unwrap().clone()) }),
            )
            .route("/not-json", get(|| async { "<html>hello</html>" }))
            .route("/rpc", post(rpc))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Agent { base, state }
    }

    fn card_url(&self) -> String {
        format!("{}/.well-known/agent-card.json", self.base)
    }

    fn calls(&self) -> Vec<(HeaderMap, Value)> {
        self.state.calls.lock().unwrap().clone()
    }
}

async fn rpc(State(s): State<Remote>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let n = {
        let mut calls = s.calls.lock().unwrap();
        calls.push((headers, body.clone()));
        calls.len() - 1
    };
    let (status, answer) = (s.plan)(n, &body);
    (StatusCode::from_u16(status).unwrap(), Json(answer))
}

fn card_1_0(base: &str) -> Value {
    json!({
        "name": "Echo Agent", "description": "says it back", "version": "1.2.0",
        "supportedInterfaces": [{ "url": format!("{base}/rpc"), "protocolBinding": "JSONRPC", "protocolVersion": "1.0" }],
        "capabilities": {}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
        "skills": [{ "id": "echo", "name": "Echo", "description": "Says it back", "tags": ["text"] }],
    })
}

fn text_of(call: &Value) -> String {
    call.pointer("/params/message/parts/0/text").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A completed task whose artifact echoes the message's text (1.0 JSON-RPC result).
fn completed(call: &Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": call["id"], "result": { "task": {
        "id": "task-1", "contextId": "ctx-1", "status": { "state": "TASK_STATE_COMPLETED" },
        "artifacts": [{ "artifactId": "a1", "parts": [{ "text": format!("echo: {}", text_of(call)) }] }],
    } } })
}

async fn import(hub: &TestHub, req: ImportAgent) -> switchboard_core::api::AgentImported {
    hub.admin().import_agent(&req).await.expect("import")
}

fn import_req(card_url: String) -> ImportAgent {
    ImportAgent { card_url, ..Default::default() }
}

async fn state_of(c: &Client, id: &str, want: DeliveryState) -> MessageStatus {
    eventually(15, &format!("delivery {}", want.as_str()), || async {
        let s = c.get_message(id).await.unwrap();
        (s.deliveries[0].state == want).then_some(s)
    })
    .await
}

#[tokio::test]
async fn an_imported_agent_gets_send_message_and_its_answer_reaches_the_sender() {
    let hub = TestHub::start().await;
    let ext = Agent::start(card_1_0, |_, call| (200, completed(call))).await;
    let mut req = import_req(ext.card_url());
    req.auth = Some(A2aCredentials::Bearer { token: "ext-secret".into() });
    let imported = import(&hub, req).await;
    let agent = &imported.agent;
    assert_eq!(agent.name, "Echo-Agent");
    assert_eq!(agent.endpoint.as_deref(), Some(format!("{}/rpc", ext.base).as_str()));
    assert_eq!(agent.capabilities.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["echo"]);
    assert_eq!(agent.capabilities[0].description.as_deref(), Some("Says it back"));
    assert_eq!((imported.a2a.binding.as_str(), imported.a2a.protocol_version.as_str()), ("JSONRPC", "1.0"));
    assert_eq!(imported.a2a.auth.as_deref(), Some("bearer"));
    assert!(!serde_json::to_string(&imported).unwrap().contains("ext-secret"), "the token is never shown");

    let (_, alice) = hub.agent("alice", &[]).await;
    let sent = alice.send(&SendMessage::text(agent_addr(&agent.id), "hello")).await.unwrap();
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    let reply = &inbox.messages.first().expect("a reply").message;
    assert_eq!(reply.from, agent_addr(&agent.id));
    assert_eq!(reply.in_reply_to.as_deref(), Some(sent.id.as_str()));
    assert_eq!(reply.parts, vec![Part::text("echo: hello")]);
    let a2a = &reply.metadata.as_ref().unwrap()["a2a"];
    assert_eq!(a2a["state"], "TASK_STATE_COMPLETED");
    assert_eq!(a2a["task_id"], "task-1");

    let calls = ext.calls();
    assert_eq!(calls.len(), 1);
    let (headers, body) = &calls[0];
    assert_eq!(body["method"], "SendMessage");
    assert_eq!(body["params"]["message"]["messageId"], sent.id.as_str());
    assert_eq!(body["params"]["message"]["role"], "ROLE_USER");
    assert_eq!(headers["a2a-version"], "1.0");
    assert_eq!(headers["authorization"], "Bearer ext-secret");
    assert_eq!(body["params"]["message"]["metadata"]["switchboard"]["from"], agent_addr(&alice_id(&alice).await));
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Acked).await;
    assert_eq!(s.push_attempts[0].error_kind.as_deref(), Some("ok"));

    let (status, _, audit) = common::raw(&hub, "GET", "/v1/audit?action=agent.import", Some(common::ADMIN), None).await;
    assert_eq!(status, 200);
    let entries = audit["events"].as_array().expect("audit entries");
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["target"], agent_addr(&agent.id));
    assert_eq!(entries[0]["detail"]["card_url"], ext.card_url());
    hub.stop().await;
}

async fn alice_id(alice: &Client) -> String {
    alice.whoami().await.unwrap().agent_id.expect("an agent")
}

#[tokio::test]
async fn a_0_3_agent_is_called_with_message_send_and_answers_with_a_message() {
    let hub = TestHub::start().await;
    let ext = Agent::start(
        |base| {
            json!({ "name": "old", "url": format!("{base}/rpc"), "protocolVersion": "0.3.0",
            "skills": [{ "id": "sum", "name": "Sum" }] })
        },
        |_, call| {
            (
                200,
                json!({ "jsonrpc": "2.0", "id": call["id"], "result": {
                "kind": "message", "messageId": "r1", "role": "agent",
                "parts": [{ "kind": "text", "text": format!("got {}", text_of(call)) }] } }),
            )
        },
    )
    .await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    assert_eq!(imported.a2a.protocol_version, "0.3.0");
    let (_, alice) = hub.agent("alice", &[]).await;
    let sent = alice.send(&SendMessage::text(agent_addr(&imported.agent.id), "x")).await.unwrap();
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    let reply = &inbox.messages.first().expect("a reply").message;
    assert_eq!(reply.in_reply_to.as_deref(), Some(sent.id.as_str()));
    assert_eq!(reply.parts, vec![Part::text("got x")]);
    assert_eq!(reply.metadata.as_ref().unwrap()["a2a"]["state"], "TASK_STATE_COMPLETED");
    let (headers, body) = &ext.calls()[0];
    assert_eq!(body["method"], "message/send");
    assert_eq!(body["params"]["message"]["parts"][0]["kind"], "text");
    assert!(!headers.contains_key("a2a-version"), "0.3 has no version header");
    hub.stop().await;
}

#[tokio::test]
async fn forwarding_retries_on_5xx_and_the_answer_after_the_retry_arrives() {
    let hub = TestHub::start().await; // schedule: two retries, 50 ms each
    let ext = Agent::start(card_1_0, |n, call| match n {
        0 => (503, json!({})),
        1 => (500, json!({})),
        _ => (200, completed(call)),
    })
    .await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let sent = alice.send(&SendMessage::text(agent_addr(&imported.agent.id), "again")).await.unwrap();
    let s = state_of(&hub.admin(), &sent.id, DeliveryState::Acked).await;
    assert_eq!(s.push_attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), [Some(503), Some(500), Some(200)]);
    let calls = ext.calls();
    assert!(calls.iter().all(|(_, b)| b["params"]["message"]["messageId"] == sent.id.as_str()), "the same message");
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 1, "one reply");
    assert_eq!(inbox.messages[0].message.parts, vec![Part::text("echo: again")]);
    hub.stop().await;
}

#[tokio::test]
async fn a_dead_endpoint_dead_letters_like_a_webhook() {
    let hub = TestHub::start().await;
    let ext = Agent::start(card_1_0, |_, _| (500, json!({ "oops": true }))).await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    let admin = hub.admin();
    let sent = admin.send(&SendMessage::text(agent_addr(&imported.agent.id), "x")).await.unwrap();
    let s = state_of(&admin, &sent.id, DeliveryState::Dead).await;
    assert_eq!(s.deliveries[0].attempts, 3, "one try and two retries");
    let dead = admin.dead_letters(&DeliveryQuery::default()).await.unwrap();
    assert_eq!(dead.dead_letters.len(), 1);
    assert!(dead.dead_letters[0].last_error.as_deref().unwrap().contains("500"));
    hub.stop().await;
}

#[tokio::test]
async fn an_answer_that_is_not_a2a_is_retried_then_dead() {
    let hub = TestHub::start().await;
    let ext = Agent::start(card_1_0, |_, call| {
        (200, json!({ "jsonrpc": "2.0", "id": call["id"], "error": { "code": -32601, "message": "Method not found" } }))
    })
    .await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    let admin = hub.admin();
    let sent = admin.send(&SendMessage::text(agent_addr(&imported.agent.id), "x")).await.unwrap();
    let s = state_of(&admin, &sent.id, DeliveryState::Dead).await;
    assert!(s.push_attempts.iter().all(|a| a.error_kind.as_deref() == Some("a2a_answer")), "{:?}", s.push_attempts);
    assert!(s.deliveries[0].last_error.as_deref().unwrap().contains("-32601"), "{:?}", s.deliveries[0]);
    hub.stop().await;
}

#[tokio::test]
async fn a_working_task_is_read_again_with_get_task_until_it_completes() {
    let hub = TestHub::start().await;
    let ext = Agent::start(card_1_0, |n, call| {
        let id = call["id"].clone();
        match (call["method"].as_str(), n) {
            (Some("SendMessage"), _) => (
                200,
                json!({ "jsonrpc": "2.0", "id": id, "result": { "task": {
                "id": "t-9", "contextId": "c", "status": { "state": "TASK_STATE_WORKING" } } } }),
            ),
            (Some("GetTask"), n) if n < 3 => (
                200,
                json!({ "jsonrpc": "2.0", "id": id, "result": {
                "id": "t-9", "contextId": "c", "status": { "state": "TASK_STATE_WORKING" } } }),
            ),
            _ => (
                200,
                json!({ "jsonrpc": "2.0", "id": id, "result": {
                "id": "t-9", "contextId": "c", "status": { "state": "TASK_STATE_COMPLETED",
                "message": { "role": "ROLE_AGENT", "messageId": "s", "parts": [{ "text": "finally" }] } } } }),
            ),
        }
    })
    .await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    alice.send(&SendMessage::text(agent_addr(&imported.agent.id), "slow")).await.unwrap();
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    let reply = &inbox.messages.first().expect("a reply").message;
    assert_eq!(reply.parts, vec![Part::text("finally")]);
    assert_eq!(reply.metadata.as_ref().unwrap()["a2a"]["state"], "TASK_STATE_COMPLETED");
    let methods: Vec<String> = ext.calls().iter().map(|(_, b)| b["method"].as_str().unwrap().to_owned()).collect();
    assert_eq!(methods, ["SendMessage", "GetTask", "GetTask", "GetTask"]);
    assert_eq!(ext.calls()[1].1["params"]["id"], "t-9");
    hub.stop().await;
}

/// An A2A client reaches an imported agent through the hub's own A2A door: its blocking
/// `SendMessage` answers the task completed with the external agent's artifact.
#[tokio::test]
async fn an_a2a_client_reaches_an_imported_agent_through_the_hub() {
    let hub = TestHub::start().await;
    let ext = Agent::start(card_1_0, |_, call| (200, completed(call))).await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    let (alice, _) = hub.agent("alice", &[]).await;
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": { "messageId": "from-a2a-client", "role": "ROLE_USER", "parts": [{ "text": "via the hub" }] } } });
    let res = reqwest::Client::new()
        .post(format!("{}/a2a/{}", hub.url(), imported.agent.id))
        .bearer_auth(&alice.api_key)
        .header("A2A-Version", "1.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    let task = &v["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    assert!(v.to_string().contains("echo: via the hub"), "the external agent's answer: {v}");
    assert_eq!(text_of(&ext.calls()[0].1), "via the hub");
    hub.stop().await;
}

/// A task still running when the attempt's time is up is followed on the retry schedule with
/// `GetTask` (the message is not sent again), and its result arrives as the reply.
#[tokio::test]
async fn a_task_still_running_after_the_attempt_is_followed_on_the_retry_schedule() {
    let hub = TestHub::start_with(|c| {
        c.push_timeout_ms = 400;
        c.push_retry_schedule_ms = vec![100; 50];
    })
    .await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    let ext = Agent::start(card_1_0, move |_, call| {
        let id = call["id"].clone();
        let state = if finished.load(std::sync::atomic::Ordering::SeqCst) {
            "TASK_STATE_COMPLETED"
        } else {
            "TASK_STATE_WORKING"
        };
        let task = json!({ "id": "t-long", "contextId": "c", "status": { "state": state },
            "artifacts": [{ "artifactId": "a", "parts": [{ "text": "took a while" }] }] });
        match call["method"].as_str() {
            Some("SendMessage") => (200, json!({ "jsonrpc": "2.0", "id": id, "result": { "task": task } })),
            _ => (200, json!({ "jsonrpc": "2.0", "id": id, "result": task })),
        }
    })
    .await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let sent = alice.send(&SendMessage::text(agent_addr(&imported.agent.id), "long")).await.unwrap();
    let admin = hub.admin();
    eventually(15, "two attempts that found the task working", || async {
        let s = admin.get_message(&sent.id).await.unwrap();
        let working = s.push_attempts.iter().filter(|a| a.error_kind.as_deref() == Some("a2a_working")).count();
        (working >= 2).then_some(())
    })
    .await;
    assert!(alice.inbox(&InboxOptions::default()).await.unwrap().messages.is_empty(), "no reply while it runs");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let inbox = alice.inbox(&InboxOptions { wait_ms: Some(10_000), ..Default::default() }).await.unwrap();
    let reply = &inbox.messages.first().expect("the result").message;
    assert_eq!(reply.parts, vec![Part::text("took a while")]);
    assert_eq!(reply.metadata.as_ref().unwrap()["a2a"]["task_id"], "t-long");
    state_of(&admin, &sent.id, DeliveryState::Acked).await;
    let methods: Vec<String> = ext.calls().iter().map(|(_, b)| b["method"].as_str().unwrap().to_owned()).collect();
    assert_eq!(methods.iter().filter(|m| *m == "SendMessage").count(), 1, "sent once: {methods:?}");
    assert!(methods[1..].iter().all(|m| m == "GetTask"), "{methods:?}");
    hub.stop().await;
}

/// A task that never settles goes dead when the schedule is spent, saying so.
#[tokio::test]
async fn a_task_that_never_settles_goes_dead_when_the_schedule_is_spent() {
    let hub = TestHub::start_with(|c| c.push_timeout_ms = 300).await; // schedule: two retries
    let ext = Agent::start(card_1_0, |_, call| {
        let task = json!({ "id": "t-stuck", "status": { "state": "TASK_STATE_SUBMITTED" } });
        let result = if call["method"] == "SendMessage" { json!({ "task": task }) } else { task };
        (200, json!({ "jsonrpc": "2.0", "id": call["id"], "result": result }))
    })
    .await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    let admin = hub.admin();
    let sent = admin.send(&SendMessage::text(agent_addr(&imported.agent.id), "x")).await.unwrap();
    let s = state_of(&admin, &sent.id, DeliveryState::Dead).await;
    let error = s.deliveries[0].last_error.clone().unwrap();
    assert!(error.contains("t-stuck is still TASK_STATE_SUBMITTED"), "{error}");
    hub.stop().await;
}

/// The field a refused import names, and its message.
async fn refused(hub: &TestHub, req: ImportAgent) -> (String, String) {
    match hub.admin().import_agent(&req).await.unwrap_err() {
        ClientError::Api(p) => {
            assert_eq!(p.code, "invalid_body", "{p:?}");
            (p.errors[0].path.clone(), p.errors[0].message.clone())
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn bad_card_urls_and_bad_cards_are_refused_naming_card_url() {
    let hub = TestHub::start().await;
    let ext = Agent::start(card_1_0, |_, _| (200, json!({}))).await;
    let cases = [
        ("not a url".to_owned(), "is not a URL"),
        ("ftp://example.com/card".to_owned(), "http"),
        (format!("{}/missing", ext.base), "404"),
        (format!("{}/not-json", ext.base), "not JSON"),
        ("http://127.0.0.1:1/.well-known/agent-card.json".to_owned(), "could not be fetched"),
    ];
    for (url, says) in cases {
        let (path, message) = refused(&hub, import_req(url.clone())).await;
        assert_eq!(path, "card_url", "{url}");
        assert!(message.contains(says), "{url}: {message}");
    }
    *ext.state.card.lock().unwrap() = json!({ "name": "no-interface" });
    let (path, message) = refused(&hub, import_req(ext.card_url())).await;
    assert_eq!((path.as_str(), message.contains("no interface")), ("card_url", true), "{message}");
    *ext.state.card.lock().unwrap() =
        json!({ "name": "grpc", "supportedInterfaces": [{ "url": "http://x", "protocolBinding": "GRPC" }] });
    let (_, message) = refused(&hub, import_req(ext.card_url())).await;
    assert!(message.contains("GRPC"), "{message}");
    assert!(hub.admin().list_agents(None, None).await.unwrap().agents.is_empty(), "nothing registered");
    hub.stop().await;
}

#[tokio::test]
async fn a_card_on_a_private_address_is_refused_unless_allowed() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let ext = Agent::start(card_1_0, |_, _| (200, json!({}))).await;
    let (path, message) = refused(&hub, import_req(ext.card_url())).await;
    assert_eq!(path, "card_url");
    assert!(message.contains("loopback"), "{message}");
    assert!(ext.calls().is_empty());
    assert!(hub.admin().list_agents(None, None).await.unwrap().agents.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn a_tenant_that_allows_private_endpoints_may_import_from_them() {
    let hub = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let (status, _, body) = common::raw(
        &hub,
        "PUT",
        "/v1/tenant/push-settings",
        Some(common::ADMIN),
        Some(json!({ "allow_private_endpoints": true }).to_string()),
    )
    .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let ext = Agent::start(card_1_0, |_, call| (200, completed(call))).await;
    let imported = import(&hub, import_req(ext.card_url())).await;
    assert_eq!(imported.agent.name, "Echo-Agent");
    hub.stop().await;
}
