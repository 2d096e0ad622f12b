//! A2A (issue 14, first slice): Agent Cards and the JSON-RPC binding over the post office.
//! An A2A `SendMessage` becomes a durable message the agent pulls from its inbox; its reply
//! completes the task. With `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these run on PostgreSQL.

mod common;

use common::{TestHub, agent_addr, eventually, within};
use serde_json::{Value, json};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{Capability, InboxMessage, RegisterAgent, SendMessage};

/// GET with optional token and `If-None-Match`: (status, ETag, Cache-Control, JSON body).
async fn get(hub: &TestHub, path: &str, token: Option<&str>, etag: Option<&str>) -> (u16, String, String, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{}", hub.url(), path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    let res = req.send().await.expect("the hub answers");
    let h = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (status, etag, cache) = (res.status().as_u16(), h("etag"), h("cache-control"));
    let text = res.text().await.unwrap();
    (status, etag, cache, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One JSON-RPC call to agent `id` as written: (HTTP status, JSON body).
async fn post(hub: &TestHub, id: &str, token: &str, version: Option<&str>, body: String) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/a2a/{id}", hub.url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body);
    if let Some(v) = version {
        req = req.header("A2A-Version", v);
    }
    let res = req.send().await.expect("the hub answers");
    let status = res.status().as_u16();
    (status, serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null))
}

/// A 1.0 call; answers the JSON-RPC response (HTTP 200 checked).
async fn rpc(hub: &TestHub, id: &str, token: &str, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }).to_string();
    let (status, v) = post(hub, id, token, Some("1.0"), body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 7);
    v
}

/// A non-blocking send's params (`returnImmediately`).
fn text_message(message_id: &str, text: &str) -> Value {
    json!({ "message": { "messageId": message_id, "role": "ROLE_USER", "parts": [{ "text": text }] },
            "configuration": { "returnImmediately": true } })
}

/// A non-blocking send in a context.
fn in_context(message_id: &str, text: &str, context: &str) -> Value {
    let mut v = text_message(message_id, text);
    v["message"]["contextId"] = json!(context);
    v
}

#[track_caller]
fn error_code(v: &Value) -> i64 {
    assert!(v.get("result").is_none(), "expected an error: {v}");
    v["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error code: {v}"))
}

fn capability(name: &str, description: &str, tags: &[&str], examples: &[&str]) -> Capability {
    Capability {
        name: name.into(),
        description: Some(description.into()),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        examples: examples.iter().map(|t| (*t).to_owned()).collect(),
        input_schema: None,
        output_schema: None,
        output_schema_mode: None,
        reassign_on_timeout: None,
    }
}

/// The next message in this agent's inbox.
async fn next(agent: &Client) -> InboxMessage {
    within(10, "the agent gets the message", async {
        loop {
            let got = agent.inbox(&InboxOptions { wait_ms: Some(2000), ..Default::default() }).await.unwrap();
            if let Some(m) = got.messages.into_iter().next() {
                return m;
            }
        }
    })
    .await
}

#[tokio::test]
async fn cards_describe_the_hub_and_each_agent_with_caching() {
    let hub = TestHub::start().await;
    let translate = capability("translate", "Translates text", &["language", "text"], &["Translate 'hi' to French"]);
    let req = RegisterAgent {
        name: "translator".into(),
        description: Some("Turns words into other words".into()),
        version: Some("2.1.0".into()),
        capabilities: vec![translate.clone()],
        ..Default::default()
    };
    let reg = hub.admin().register_agent(&req).await.unwrap();
    let id = reg.agent.id.clone();
    let key = reg.api_key.clone();

    // The hub's card is public.
    let (status, etag, cache, card) = get(&hub, "/.well-known/agent-card.json", None, None).await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["name"], "Switchboard");
    assert!(cache.contains("max-age"), "{cache}");
    assert!(etag.starts_with('"') && etag.len() > 10 && !etag.starts_with("W/"), "a strong ETag: {etag}");
    assert_eq!(get(&hub, "/.well-known/agent-card.json", None, Some(&etag)).await.0, 304);

    // The agent's card, for a caller of its tenant.
    let path = format!("/a2a/{id}/.well-known/agent-card.json");
    let (status, etag, cache, card) = get(&hub, &path, Some(&key), None).await;
    assert_eq!(status, 200, "{card}");
    assert!(cache.contains("max-age"), "{cache}");
    assert_eq!(card["name"], "translator");
    assert_eq!(card["description"], "Turns words into other words");
    assert_eq!(card["version"], "2.1.0");
    let iface = &card["supportedInterfaces"][0];
    assert_eq!(iface["url"], format!("{}/a2a/{id}", hub.url()));
    assert_eq!(iface["protocolBinding"], "JSONRPC");
    assert_eq!(iface["protocolVersion"], "1.0");
    assert_eq!(card["capabilities"]["streaming"], true);
    assert_eq!(card["capabilities"]["pushNotifications"], true);
    assert_eq!(card["supportedInterfaces"][1]["protocolBinding"], "HTTP+JSON");
    assert_eq!(card["supportedInterfaces"][1]["url"], format!("{}/a2a/{id}/rest", hub.url()));
    assert!(card["defaultInputModes"].as_array().is_some_and(|m| m.contains(&json!("text/plain"))));
    assert!(card["defaultOutputModes"].as_array().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        card["skills"],
        json!([{ "id": "translate", "name": "translate", "description": "Translates text",
                 "tags": ["language", "text"], "examples": ["Translate 'hi' to French"] }])
    );
    assert_eq!(card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"], "Bearer");
    assert_eq!(
        card["securitySchemes"]["oauth2"]["oauth2SecurityScheme"]["flows"]["clientCredentials"]["tokenUrl"],
        format!("{}/oauth/token", hub.url())
    );
    assert_eq!(card["securityRequirements"][0]["schemes"]["bearer"]["list"], json!([]));
    // The same card again: 304; the card changed with the capabilities: a new ETag.
    assert_eq!(get(&hub, &path, Some(&key), Some(&etag)).await.0, 304);
    let mut changed = req.clone();
    changed.capabilities.push(capability("summarize", "Shortens text", &["text"], &[]));
    hub.admin().update_agent(&id, &changed).await.unwrap();
    let (status, new_etag, _, card) = get(&hub, &path, Some(&key), Some(&etag)).await;
    assert_eq!(status, 200, "a changed card is sent again");
    assert_ne!(new_etag, etag);
    assert_eq!(card["skills"][1]["id"], "summarize");

    // Unknown, unauthenticated and another tenant's: no card.
    assert_eq!(get(&hub, "/a2a/no-such-agent/.well-known/agent-card.json", Some(&key), None).await.0, 404);
    // Without credentials: a public card that names nothing of the tenant's.
    let (status, _, cache, public) = get(&hub, &path, None, None).await;
    assert_eq!(status, 200, "{public}");
    assert!(cache.starts_with("public"), "{cache}");
    assert_ne!(public["name"], "translator");
    assert!(!public.to_string().contains("Translates"), "{public}");
    assert_eq!(public["skills"], json!([]));
    assert_eq!(public["supportedInterfaces"], card["supportedInterfaces"]);
    assert_eq!(get(&hub, &path, Some("sbk_wrong"), None).await.0, 401);
    let other = hub.admin().create_tenant("tenant-b").await.unwrap();
    let other_admin = hub.admin().with_token(other.admin_token.clone());
    let b = other_admin.register_agent(&RegisterAgent { name: "b".into(), ..Default::default() }).await.unwrap();
    assert_eq!(get(&hub, &path, Some(&b.api_key), None).await.0, 404);
    assert_eq!(get(&hub, &path, Some(&other.admin_token), None).await.0, 404);
    hub.stop().await;
}

#[tokio::test]
async fn a_sent_message_is_pulled_answered_and_the_task_completes() {
    let hub = TestHub::start().await;
    let (alice_reg, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &["echo"]).await;
    let (key, bob_id) = (alice_reg.api_key.clone(), bob_reg.agent.id.clone());

    let sent = rpc(&hub, &bob_id, &key, "SendMessage", text_message("m-1", "ping")).await;
    let task = &sent["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_SUBMITTED", "{sent}");
    let (task_id, context) = (task["id"].as_str().unwrap().to_owned(), task["contextId"].as_str().unwrap().to_owned());
    assert_eq!(task["history"][0]["messageId"], "m-1");

    // A durable message in bob's inbox, in the conversation that is the context, from alice.
    let got = next(&bob).await.message;
    assert_eq!(got.id, task_id);
    assert_eq!(got.from, agent_addr(&alice_reg.agent.id));
    assert_eq!(got.conversation_id.as_deref(), Some(context.as_str()));
    assert_eq!(serde_json::to_value(&got.parts).unwrap(), json!([{ "kind": "text", "text": "ping" }]));
    let conversation = alice.get_conversation(&context).await.unwrap();
    assert_eq!(conversation.participants.len(), 2);

    // Handed to bob: working.
    let v = rpc(&hub, &bob_id, &key, "GetTask", json!({ "id": task_id })).await;
    assert_eq!(v["result"]["status"]["state"], "TASK_STATE_WORKING", "{v}");

    // Each send is a new task (messageIds are not taken for retries), in the context given.
    let again = rpc(&hub, &bob_id, &key, "SendMessage", in_context("m-1", "ping", &context)).await;
    assert_ne!(again["result"]["task"]["id"], task_id, "{again}");
    assert_eq!(again["result"]["task"]["contextId"], context, "{again}");
    assert_eq!(next(&bob).await.message.id, again["result"]["task"]["id"].as_str().unwrap());

    // bob answers with data: the task is completed with the reply's parts.
    let reply = SendMessage {
        in_reply_to: Some(task_id.clone()),
        conversation_id: Some(context.clone()),
        parts: vec![
            switchboard_core::api::Part::text("pong"),
            switchboard_core::api::Part::Data { data: json!({"n": 1}) },
        ],
        ..SendMessage::text(&got.from, "")
    };
    bob.ack(vec![task_id.clone()]).await.unwrap();
    let reply_id = bob.send(&reply).await.unwrap().id;
    let done = eventually(10, "the task completes", || async {
        let v = rpc(&hub, &bob_id, &key, "GetTask", json!({ "id": task_id })).await;
        (v["result"]["status"]["state"] == "TASK_STATE_COMPLETED").then_some(v)
    })
    .await;
    let t = &done["result"];
    assert_eq!(t["contextId"], context);
    assert_eq!(t["status"]["message"]["role"], "ROLE_AGENT");
    assert_eq!(t["status"]["message"]["messageId"], reply_id);
    let parts = json!([{ "text": "pong" }, { "data": { "n": 1 } }]);
    assert_eq!(t["status"]["message"]["parts"], parts);
    assert_eq!(t["artifacts"][0]["parts"], parts);
    assert_eq!(t["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        rpc(&hub, &bob_id, &key, "GetTask", json!({ "id": task_id, "historyLength": 0 })).await["result"]
            .get("history"),
        None
    );

    // A second task in the same context; bob asks for input by the metadata convention.
    let second = rpc(&hub, &bob_id, &key, "SendMessage", in_context("m-2", "book it", &context)).await;
    let second_id = second["result"]["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(second["result"]["task"]["contextId"], context);
    let asked = next(&bob).await.message;
    assert_eq!(asked.id, second_id);
    let question = SendMessage {
        in_reply_to: Some(second_id.clone()),
        conversation_id: Some(context.clone()),
        metadata: Some(json!({ "a2a": { "state": "input-required" } })),
        ..SendMessage::text(&asked.from, "which day?")
    };
    bob.send(&question).await.unwrap();
    let v = rpc(&hub, &bob_id, &key, "GetTask", json!({ "id": second_id })).await;
    assert_eq!(v["result"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{v}");
    assert!(v["result"].get("artifacts").is_none());

    // 0.3: no A2A-Version header, 0.3 method names and shapes.
    let body = json!({ "jsonrpc": "2.0", "id": "x", "method": "message/send", "params": { "message": {
        "kind": "message", "messageId": "m-3", "role": "user", "parts": [{ "kind": "text", "text": "old" }] },
        "configuration": { "blocking": false } } });
    let (status, v) = post(&hub, &bob_id, &key, None, body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["kind"], "task", "{v}");
    assert_eq!(v["result"]["status"]["state"], "submitted");
    assert_eq!(next(&bob).await.message.parts, vec![switchboard_core::api::Part::text("old")]);
    hub.stop().await;
}

#[tokio::test]
async fn json_rpc_errors_follow_the_spec() {
    let hub = TestHub::start().await;
    let (alice_reg, _) = hub.agent("alice", &[]).await;
    let (bob_reg, _) = hub.agent("bob", &[]).await;
    let (key, bob) = (alice_reg.api_key.as_str(), bob_reg.agent.id.as_str());
    let ok = json!({ "jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": { "id": "x" } }).to_string();

    // Versions: 1.0 and none (0.3) are served, others are not.
    let (_, v) = post(&hub, bob, key, Some("2.0"), ok.clone()).await;
    assert_eq!(error_code(&v), -32009, "{v}");
    assert_eq!(v["error"]["data"][0]["reason"], "VERSION_NOT_SUPPORTED");
    assert_eq!(v["id"], 1);
    for served in [None, Some(""), Some("0.3"), Some("1.0"), Some("1.0.1")] {
        let (_, v) = post(&hub, bob, key, served, ok.clone()).await;
        assert_eq!(error_code(&v), -32001, "version {served:?}: {v}");
    }
    // Method not found.
    let (status, v) =
        post(&hub, bob, key, Some("1.0"), json!({"jsonrpc": "2.0", "id": 2, "method": "Nope"}).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&v), -32601, "{v}");
    // CancelTask: unknown is not found; a task not finished is canceled, and then cannot be.
    let v = rpc(&hub, bob, key, "CancelTask", json!({ "id": "no-such-task" })).await;
    assert_eq!(error_code(&v), -32001, "{v}");
    let sent = rpc(&hub, bob, key, "SendMessage", text_message("m-c", "stop me")).await;
    let v = rpc(&hub, bob, key, "CancelTask", json!({ "id": sent["result"]["task"]["id"] })).await;
    assert_eq!(v["result"]["status"]["state"], "TASK_STATE_CANCELED", "{v}");
    let v = rpc(&hub, bob, key, "CancelTask", json!({ "id": sent["result"]["task"]["id"] })).await;
    assert_eq!(error_code(&v), -32002, "{v}");
    // Subscribing to a finished task is unsupported; continuing it too.
    let v = rpc(&hub, bob, key, "SubscribeToTask", json!({ "id": sent["result"]["task"]["id"] })).await;
    assert_eq!(error_code(&v), -32004, "{v}");
    let more = json!({ "message": { "messageId": "m-t2", "taskId": sent["result"]["task"]["id"], "parts": [{ "text": "more" }] } });
    assert_eq!(error_code(&rpc(&hub, bob, key, "SendMessage", more).await), -32004);
    // ListTasks: bad page sizes and tokens are invalid params.
    for bad in [
        json!({ "pageSize": 0 }),
        json!({ "pageSize": 101 }),
        json!({ "pageToken": "nope" }),
        json!({ "status": "RUNNING" }),
    ] {
        assert_eq!(error_code(&rpc(&hub, bob, key, "ListTasks", bad.clone()).await), -32602, "{bad}");
    }
    // Continuing an unknown task: not found.
    let more = json!({ "message": { "messageId": "m-t", "taskId": "no-such-task", "parts": [{ "text": "more" }] } });
    assert_eq!(error_code(&rpc(&hub, bob, key, "SendMessage", more).await), -32001);
    // A body that says it is not JSON.
    let res = reqwest::Client::new()
        .post(format!("{}/a2a/{bob}", hub.url()))
        .bearer_auth(key)
        .header("content-type", "text/plain")
        .body(ok.clone())
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(error_code(&v), -32005, "{v}");
    // Not JSON; not a JSON-RPC request; bad params.
    let (_, v) = post(&hub, bob, key, Some("1.0"), "{not json".into()).await;
    assert_eq!(error_code(&v), -32700, "{v}");
    assert_eq!(v["id"], Value::Null);
    let (_, v) = post(&hub, bob, key, Some("1.0"), json!({"id": 3, "method": "GetTask"}).to_string()).await;
    assert_eq!(error_code(&v), -32600, "{v}");
    let v = rpc(&hub, bob, key, "SendMessage", json!({ "message": { "messageId": "m", "parts": [] } })).await;
    assert_eq!(error_code(&v), -32602, "{v}");
    let v =
        rpc(&hub, bob, key, "SendMessage", json!({ "message": { "messageId": "m", "parts": [{"kind": "video"}] } }))
            .await;
    assert_eq!(error_code(&v), -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("parts[0]"), "{v}");
    // Unauthenticated is HTTP's 401; an unknown agent 404.
    let (status, _) = post(&hub, bob, "sbk_wrong", Some("1.0"), ok.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = post(&hub, "no-such-agent", key, Some("1.0"), ok.clone()).await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn a_task_is_found_only_by_its_sender_in_its_tenant() {
    let hub = TestHub::start().await;
    let (alice_reg, _) = hub.agent("alice", &[]).await;
    let (bob_reg, _) = hub.agent("bob", &[]).await;
    let (carol_reg, _) = hub.agent("carol", &[]).await;
    let bob = bob_reg.agent.id.as_str();
    let sent = rpc(&hub, bob, &alice_reg.api_key, "SendMessage", text_message("m-1", "secret")).await;
    let task_id = sent["result"]["task"]["id"].as_str().unwrap().to_owned();
    let get = json!({ "id": task_id });

    // Another tenant's agent, at its own agent's path: not found.
    let other = hub.admin().create_tenant("tenant-b").await.unwrap();
    let other_admin = hub.admin().with_token(other.admin_token.clone());
    let b = other_admin.register_agent(&RegisterAgent { name: "b".into(), ..Default::default() }).await.unwrap();
    let v = rpc(&hub, &b.agent.id, &b.api_key, "GetTask", get.clone()).await;
    assert_eq!(error_code(&v), -32001, "{v}");
    assert_eq!(v["error"]["data"][0]["reason"], "TASK_NOT_FOUND");
    assert_eq!(v["error"]["data"][0]["domain"], "a2a-protocol.org");
    // Another agent of the same tenant: not found either. At another agent's path: not found.
    assert_eq!(error_code(&rpc(&hub, bob, &carol_reg.api_key, "GetTask", get.clone()).await), -32001);
    let carol = carol_reg.agent.id.as_str();
    assert_eq!(error_code(&rpc(&hub, carol, &alice_reg.api_key, "GetTask", get.clone()).await), -32001);
    // The sender and the tenant's admin find it.
    let v = rpc(&hub, bob, &alice_reg.api_key, "GetTask", get.clone()).await;
    assert_eq!(v["result"]["id"], task_id, "{v}");
    assert_eq!(rpc(&hub, bob, common::ADMIN, "GetTask", get).await["result"]["id"], task_id);
    // A context another agent does not take part in cannot be joined.
    let context = sent["result"]["task"]["contextId"].as_str().unwrap();
    let v = rpc(
        &hub,
        bob,
        &carol_reg.api_key,
        "SendMessage",
        json!({ "message": {
        "messageId": "c-1", "role": "ROLE_USER", "contextId": context, "parts": [{ "text": "hi" }] } }),
    )
    .await;
    assert_eq!(error_code(&v), -32602, "{v}");
    hub.stop().await;
}

#[tokio::test]
async fn a_blocking_send_answers_with_the_settled_task() {
    let hub = TestHub::start().await;
    let (alice_reg, _) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let responder = tokio::spawn(async move {
        for (text, state) in [("done", None), ("which day?", Some("TASK_STATE_INPUT_REQUIRED"))] {
            let m = next(&bob).await.message;
            bob.ack(vec![m.id.clone()]).await.unwrap();
            let reply = SendMessage {
                in_reply_to: Some(m.id.clone()),
                metadata: state.map(|s| json!({ "a2a": { "state": s } })),
                ..SendMessage::text(&m.from, text)
            };
            bob.send(&reply).await.unwrap();
        }
    });
    let bob_id = bob_reg.agent.id.as_str();
    let blocking = |id: &str, text: &str| json!({ "message": { "messageId": id, "role": "ROLE_USER", "parts": [{ "text": text }] } });
    // No configuration: the answer waits for the agent's reply.
    let v = rpc(&hub, bob_id, &alice_reg.api_key, "SendMessage", blocking("b-1", "work")).await;
    assert_eq!(v["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    assert_eq!(v["result"]["task"]["artifacts"][0]["parts"], json!([{ "text": "done" }]));
    // An interrupted state answers too.
    let v = rpc(&hub, bob_id, &alice_reg.api_key, "SendMessage", blocking("b-2", "book")).await;
    assert_eq!(v["result"]["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{v}");
    responder.await.unwrap();
    hub.stop().await;
}
