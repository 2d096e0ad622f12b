//! A2A (issue 14): the operations beyond send/get: streaming and subscriptions over SSE,
//! ListTasks, continuing a task, direct answers, push configs (with their authentication
//! received by a loopback receiver), and the HTTP+JSON binding. With
//! `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these run on PostgreSQL.

mod common;

use common::receiver::{Plan, Receiver};
use common::{TestHub, eventually, within};
use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_client::a2a::{A2aReply, TaskState};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{InboxMessage, SendMessage};

/// A 1.0 JSON-RPC call: the response (HTTP 200 checked).
async fn rpc(hub: &TestHub, agent: &str, key: &str, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let res = reqwest::Client::new()
        .post(format!("{}/a2a/{agent}/", hub.url()))
        .bearer_auth(key)
        .header("A2A-Version", "1.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The events of an SSE answer, until it ends (each `data:` as JSON).
async fn events(res: reqwest::Response) -> Vec<Value> {
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut body = res.bytes_stream();
    within(20, "the stream ends", async {
        while let Some(chunk) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(i) = buf.find("\n\n") {
                let event: String = buf.drain(..i + 2).collect();
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        out.push(serde_json::from_str(data.trim()).unwrap());
                    }
                }
            }
        }
    })
    .await;
    out
}

async fn stream(hub: &TestHub, agent: &str, key: &str, method: &str, params: Value) -> Vec<Value> {
    let body = json!({ "jsonrpc": "2.0", "id": "s", "method": method, "params": params });
    let res = reqwest::Client::new()
        .post(format!("{}/a2a/{agent}", hub.url()))
        .bearer_auth(key)
        .header("A2A-Version", "1.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    events(res).await.into_iter().map(|e| e["result"].clone()).collect()
}

fn message(id: &str, text: &str) -> Value {
    json!({ "message": { "messageId": id, "role": "ROLE_USER", "parts": [{ "text": text }] },
            "configuration": { "returnImmediately": true } })
}

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

/// The agent's reply to `m` in its thread, with `metadata.a2a` = `a2a`.
async fn reply(agent: &Client, m: &InboxMessage, text: &str, a2a: Value) {
    let mut r = SendMessage {
        in_reply_to: Some(m.message.id.clone()),
        conversation_id: m.message.conversation_id.clone(),
        ..SendMessage::text(&m.message.from, text)
    };
    if a2a != json!({}) {
        r.metadata = Some(json!({ "a2a": a2a }));
    }
    agent.send(&r).await.unwrap();
}

#[tokio::test]
async fn a_streamed_send_and_a_subscription_follow_the_agents_replies() {
    let hub = TestHub::start().await;
    let (alice, _) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let (key, id) = (alice.api_key.clone(), bob_reg.agent.id.clone());
    let agent = tokio::spawn(async move {
        let m = next(&bob).await;
        bob.ack(vec![m.message.id.clone()]).await.unwrap();
        reply(&bob, &m, "on it", json!({ "state": "working" })).await;
        bob.send(&A2aReply::to(&m).artifact("r", Some("report")).text("the report").build()).await.unwrap();
        reply(&bob, &m, "done", json!({ "state": "completed" })).await;
        bob
    });
    let got = stream(&hub, &id, &key, "SendStreamingMessage", message("s-1", "report please")).await;
    let kinds: Vec<&str> = got.iter().map(|e| e.as_object().unwrap().keys().next().unwrap().as_str()).collect();
    // The task first (as the stream found it: the agent may have been handed it, or have
    // said `working`, already), then what followed, in order, ending with the task completed.
    let n = got.len();
    assert_eq!(kinds[0], "task", "{got:?}");
    assert_eq!(&kinds[n - 2..], ["artifactUpdate", "statusUpdate"], "{got:?}");
    for e in &got[1..n - 2] {
        assert_eq!(e["statusUpdate"]["status"]["state"], "TASK_STATE_WORKING", "{got:?}");
    }
    let n = got.len();
    assert_eq!(got[n - 2]["artifactUpdate"]["artifact"]["artifactId"], "r");
    assert_eq!(got[n - 2]["artifactUpdate"]["artifact"]["parts"], json!([{ "text": "the report" }]));
    assert_eq!(got[n - 1]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");
    let task_id = got[0]["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(got[n - 1]["statusUpdate"]["taskId"], task_id);
    let bob = agent.await.unwrap();

    // A finished task: its artifacts; no subscription.
    let v = rpc(&hub, &id, &key, "GetTask", json!({ "id": task_id })).await;
    assert_eq!(
        v["result"]["artifacts"],
        json!([{ "artifactId": "r", "name": "report", "parts": [{ "text": "the report" }] }])
    );
    let v = rpc(&hub, &id, &key, "SubscribeToTask", json!({ "id": task_id })).await;
    assert_eq!(v["error"]["code"], -32004, "{v}");

    // A subscription to a task in progress: the task, then its updates, to its end.
    let sent = rpc(&hub, &id, &key, "SendMessage", message("s-2", "more")).await;
    let task2 = sent["result"]["task"]["id"].as_str().unwrap().to_owned();
    let agent = tokio::spawn(async move {
        let m = next(&bob).await;
        bob.ack(vec![m.message.id.clone()]).await.unwrap();
        // The client crate's helper writes the same convention.
        let ask = A2aReply::to(&m).state(TaskState::InputRequired).text("which day?").build();
        bob.send(&ask).await.unwrap();
        let more = next(&bob).await;
        assert_eq!(more.message.in_reply_to.as_deref(), Some(m.message.id.as_str()), "a continuation is in the thread");
        bob.ack(vec![more.message.id.clone()]).await.unwrap();
        reply(&bob, &more, "booked", json!({})).await;
    });
    let hub_url = hub.url();
    let (k2, id2, t2) = (key.clone(), id.clone(), task2.clone());
    let subscription = tokio::spawn(async move {
        let body = json!({ "jsonrpc": "2.0", "id": 2, "method": "SubscribeToTask", "params": { "id": t2 } });
        let res = reqwest::Client::new()
            .post(format!("{hub_url}/a2a/{id2}"))
            .bearer_auth(&k2)
            .json(&body)
            .send()
            .await
            .unwrap();
        events(res).await
    });
    let paused = eventually(10, "the task needs input", || async {
        let v = rpc(&hub, &id, &key, "GetTask", json!({ "id": task2 })).await;
        (v["result"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED").then_some(v)
    })
    .await;
    let context = paused["result"]["contextId"].as_str().unwrap();
    // A continuation naming another context is refused; with the task's, it goes on.
    let mut more = message("s-3", "Friday");
    more["message"]["taskId"] = json!(task2);
    more["message"]["contextId"] = json!("another");
    assert_eq!(rpc(&hub, &id, &key, "SendMessage", more.clone()).await["error"]["code"], -32602);
    more["message"]["contextId"] = json!(context);
    let v = rpc(&hub, &id, &key, "SendMessage", more).await;
    assert_eq!(v["result"]["task"]["id"], task2, "the same task: {v}");
    agent.await.unwrap();
    let sub = subscription.await.unwrap();
    assert_eq!(sub[0]["result"]["task"]["id"], task2, "{sub:?}");
    let last = &sub.last().unwrap()["result"]["statusUpdate"]["status"];
    assert_eq!(last["state"], "TASK_STATE_COMPLETED", "the subscription ends at the end: {sub:?}");
    let v = rpc(&hub, &id, &key, "GetTask", json!({ "id": task2, "historyLength": 2 })).await;
    assert_eq!(v["result"]["history"].as_array().unwrap().len(), 2);
    assert_eq!(v["result"]["history"][1]["parts"], json!([{ "text": "booked" }]));
    hub.stop().await;
}

#[tokio::test]
async fn a_direct_answer_is_a_message_and_tasks_list_by_filter_and_page() {
    let hub = TestHub::start().await;
    let (alice, _) = hub.agent("alice", &[]).await;
    let (carol, _) = hub.agent("carol", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let (key, id) = (alice.api_key.clone(), bob_reg.agent.id.clone());
    let agent = tokio::spawn(async move {
        let m = next(&bob).await;
        bob.ack(vec![m.message.id.clone()]).await.unwrap();
        reply(&bob, &m, "hi there", json!({ "message": true })).await;
    });
    let blocking = json!({ "message": { "messageId": "d-1", "role": "ROLE_USER", "parts": [{ "text": "hi" }] } });
    let v = rpc(&hub, &id, &key, "SendMessage", blocking).await;
    assert_eq!(v["result"]["message"]["role"], "ROLE_AGENT", "{v}");
    assert_eq!(v["result"]["message"]["parts"], json!([{ "text": "hi there" }]));
    assert!(v["result"].get("task").is_none());
    agent.await.unwrap();

    // Three more tasks, one in a context the client names.
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut p = message(&format!("l-{n}"), "x");
        if n == 2 {
            p["message"]["contextId"] = json!("my-context");
        }
        let v = rpc(&hub, &id, &key, "SendMessage", p).await;
        ids.push(v["result"]["task"]["id"].as_str().unwrap().to_owned());
        if n == 2 {
            assert_eq!(v["result"]["task"]["contextId"], "my-context", "a client's context is kept: {v}");
        }
    }
    rpc(&hub, &id, &carol.api_key, "SendMessage", message("c-1", "mine")).await;
    let page = rpc(&hub, &id, &key, "ListTasks", json!({ "pageSize": 3 })).await["result"].clone();
    assert_eq!(page["totalSize"], 4, "alice's four, not carol's: {page}");
    assert_eq!(page["tasks"].as_array().unwrap().len(), 3);
    assert!(page["tasks"][0].get("artifacts").is_none(), "no artifacts unless asked");
    let token = page["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty());
    let rest = rpc(&hub, &id, &key, "ListTasks", json!({ "pageSize": 3, "pageToken": token })).await["result"].clone();
    assert_eq!(rest["tasks"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["nextPageToken"], "");
    let mut seen: Vec<Value> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["tasks"].as_array().unwrap())
        .map(|t| t["id"].clone())
        .collect();
    seen.sort_by_key(|v| v.to_string());
    seen.dedup();
    assert_eq!(seen.len(), 4, "every task once across the pages");
    let v = rpc(&hub, &id, &key, "ListTasks", json!({ "contextId": "my-context" })).await;
    assert_eq!(v["result"]["tasks"][0]["id"], ids[2], "{v}");
    assert_eq!(v["result"]["totalSize"], 1);
    let v =
        rpc(&hub, &id, &key, "ListTasks", json!({ "status": "TASK_STATE_COMPLETED", "includeArtifacts": true })).await;
    assert_eq!(v["result"]["totalSize"], 1, "the direct answer completed its task: {v}");
    hub.stop().await;
}

#[tokio::test]
async fn push_configs_post_the_tasks_updates_with_their_authentication() {
    let hub = TestHub::start().await;
    let receiver = Receiver::start(|_| Plan::Status(200)).await;
    let (alice, _) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let (key, id) = (alice.api_key.clone(), bob_reg.agent.id.clone());
    let sent = rpc(&hub, &id, &key, "SendMessage", message("p-1", "tell me later")).await;
    let task = sent["result"]["task"]["id"].as_str().unwrap().to_owned();
    let config = json!({ "taskId": task, "id": "cfg-1", "url": receiver.url, "token": "tok-1",
                         "authentication": { "scheme": "Bearer", "credentials": "s3cret" } });
    let v = rpc(&hub, &id, &key, "CreateTaskPushNotificationConfig", config.clone()).await;
    assert_eq!(v["result"], config, "{v}");
    let v = rpc(&hub, &id, &key, "GetTaskPushNotificationConfig", json!({ "taskId": task, "id": "cfg-1" })).await;
    assert_eq!(v["result"]["url"], receiver.url);
    let v = rpc(&hub, &id, &key, "ListTaskPushNotificationConfigs", json!({ "taskId": task })).await;
    assert_eq!(v["result"]["configs"].as_array().unwrap().len(), 1, "{v}");

    let m = next(&bob).await;
    bob.ack(vec![m.message.id.clone()]).await.unwrap();
    reply(&bob, &m, "done", json!({})).await;
    // The completing reply is an artifact and a status update: two posts, in that order.
    let got = receiver.wait_for(2, 10).await;
    let last = &got[1];
    let first: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(first["artifactUpdate"]["artifact"]["parts"], json!([{ "text": "done" }]), "{first}");
    assert_eq!(last.header("authorization"), "Bearer s3cret");
    assert_eq!(last.header("x-a2a-notification-token"), "tok-1");
    assert!(last.signature.starts_with("v1a,"), "signed with the hub's key: {}", last.signature);
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["statusUpdate"]["taskId"], task, "{body}");
    assert_eq!(body["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");

    // A private address is refused where the node does not allow it; deleting is idempotent.
    let v = rpc(&hub, &id, &key, "DeleteTaskPushNotificationConfig", json!({ "taskId": task, "id": "cfg-1" })).await;
    assert_eq!(v["result"], json!({}), "{v}");
    let v = rpc(&hub, &id, &key, "DeleteTaskPushNotificationConfig", json!({ "taskId": task, "id": "cfg-1" })).await;
    assert!(v.get("error").is_none(), "{v}");
    let v = rpc(&hub, &id, &key, "GetTaskPushNotificationConfig", json!({ "taskId": task, "id": "cfg-1" })).await;
    assert_eq!(v["error"]["code"], -32001, "{v}");
    let v = rpc(&hub, &id, &key, "CreateTaskPushNotificationConfig", json!({ "taskId": "nope", "url": receiver.url }))
        .await;
    assert_eq!(v["error"]["code"], -32001, "{v}");
    let v = rpc(&hub, &id, &key, "CreateTaskPushNotificationConfig", json!({ "taskId": task, "url": "ftp://x" })).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    hub.stop().await;
    let strict = TestHub::start_with(|c| c.allow_private_endpoints = false).await;
    let (alice, _) = strict.agent("alice", &[]).await;
    let (bob_reg, _) = strict.agent("bob", &[]).await;
    let sent = rpc(&strict, &bob_reg.agent.id, &alice.api_key, "SendMessage", message("p-2", "x")).await;
    let config = json!({ "taskId": sent["result"]["task"]["id"], "url": "http://127.0.0.1:9/hook" });
    let v = rpc(&strict, &bob_reg.agent.id, &alice.api_key, "CreateTaskPushNotificationConfig", config).await;
    assert_eq!(v["error"]["code"], -32602, "SSRF guard: {v}");
    strict.stop().await;
}

#[tokio::test]
async fn the_http_json_binding_serves_the_same_operations() {
    let hub = TestHub::start().await;
    let (alice, _) = hub.agent("alice", &[]).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let base = format!("{}/a2a/{}/rest", hub.url(), bob_reg.agent.id);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http.request(method, format!("{base}{path}")).header("x-api-key", &alice.api_key);
        if let Some(b) = body {
            req = req.header("content-type", "application/a2a+json").body(b.to_string());
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            let v: Value = res.json().await.unwrap_or(Value::Null);
            (status, ctype, v)
        }
    };
    let (status, ctype, v) = call(reqwest::Method::POST, "/message:send", Some(message("r-1", "hello"))).await;
    assert_eq!((status, ctype.as_str()), (200, "application/a2a+json"), "{v}");
    let task = v["task"]["id"].as_str().unwrap().to_owned();
    let (status, _, v) = call(reqwest::Method::GET, &format!("/tasks/{task}?historyLength=1"), None).await;
    assert_eq!(status, 200);
    assert_eq!(v["id"], task);
    let (_, _, v) = call(reqwest::Method::GET, "/tasks?pageSize=10", None).await;
    assert_eq!(v["totalSize"], 1, "{v}");
    let (status, _, v) = call(reqwest::Method::GET, "/tasks/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["details"][0]["reason"], "TASK_NOT_FOUND", "{v}");
    assert_eq!(v["error"]["details"][0]["domain"], "a2a-protocol.org");
    let (status, _, _) = call(reqwest::Method::GET, "/tasks?pageSize=1000", None).await;
    assert_eq!(status, 400);
    let cfg = json!({ "url": "http://127.0.0.1:9/hook", "id": "c" });
    let (status, _, v) =
        call(reqwest::Method::POST, &format!("/tasks/{task}/pushNotificationConfigs"), Some(cfg)).await;
    assert_eq!((status, v["taskId"].as_str()), (200, Some(task.as_str())), "{v}");
    let (_, _, v) = call(reqwest::Method::GET, &format!("/tasks/{task}/pushNotificationConfigs"), None).await;
    assert_eq!(v["configs"][0]["id"], "c");
    let (status, _, _) = call(reqwest::Method::DELETE, &format!("/tasks/{task}/pushNotificationConfigs/c"), None).await;
    assert_eq!(status, 200);
    let (status, _, v) = call(reqwest::Method::POST, &format!("/tasks/{task}:cancel"), None).await;
    assert_eq!((status, &v["status"]["state"]), (200, &json!("TASK_STATE_CANCELED")), "{v}");
    // The agent hears of the cancel, in the task's thread.
    let cancel = within(10, "the agent hears of the cancel", async {
        loop {
            let got = bob.inbox(&InboxOptions { wait_ms: Some(2000), ..Default::default() }).await.unwrap();
            bob.ack(got.messages.iter().map(|m| m.message.id.clone()).collect()).await.unwrap();
            if let Some(m) = got.messages.into_iter().find(|m| m.message.in_reply_to.is_some()) {
                return m;
            }
        }
    })
    .await;
    assert_eq!(cancel.message.in_reply_to.as_deref(), Some(task.as_str()));
    assert_eq!(cancel.message.metadata.as_ref().unwrap()["a2a"]["cancel"], true);
    let (status, _, v) = call(reqwest::Method::POST, &format!("/tasks/{task}:cancel"), None).await;
    assert_eq!((status, &v["error"]["details"][0]["reason"]), (400, &json!("TASK_NOT_CANCELABLE")), "{v}");
    let (_, _, v) = call(reqwest::Method::GET, "/extendedAgentCard", None).await;
    assert_eq!(v["name"], "bob");
    let res = http
        .post(format!("{base}/message:send"))
        .header("x-api-key", &alice.api_key)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = http
        .post(format!("{base}/message:stream"))
        .header("x-api-key", &alice.api_key)
        .json(&message("r-2", "s"))
        .send()
        .await
        .unwrap();
    let agent = tokio::spawn(async move {
        let m = next(&bob).await;
        reply(&bob, &m, "fine", json!({})).await;
    });
    let got = events(res).await;
    agent.await.unwrap();
    assert!(got.first().and_then(|e| e.get("task")).is_some(), "{got:?}");
    assert_eq!(got.last().unwrap()["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED", "{got:?}");
    hub.stop().await;
}
