use serde_json::json;

use super::*;

fn remote(binding: Binding, version: &str) -> Remote {
    Remote {
        card_url: "https://a.example/.well-known/agent-card.json".into(),
        url: "https://a.example/a2a".into(),
        binding,
        protocol_version: version.into(),
        auth: None,
    }
}

#[test]
fn a_1_0_card_gives_its_json_rpc_interface_and_skills() {
    let card = json!({
        "name": "Echo Agent", "description": "says it back", "version": "2.1",
        "supportedInterfaces": [
            { "url": "https://a.example/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0" },
            { "url": "https://a.example/rpc03", "protocolBinding": "JSONRPC", "protocolVersion": "0.3" },
            { "url": "https://a.example/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0" },
        ],
        "skills": [
            { "id": "echo", "name": "Echo", "description": "d", "tags": ["t"] },
            { "id": "echo", "name": "again" },
            { "id": "sum up", "name": "Sum" },
        ],
        "securitySchemes": { "key": { "apiKeySecurityScheme": { "location": "header", "name": "X-Key" } } },
    });
    let c = read_card(&card).unwrap();
    assert_eq!(c.name, "Echo-Agent");
    assert_eq!(
        (c.url.as_str(), c.binding, c.protocol_version.as_str()),
        ("https://a.example/rpc", Binding::JsonRpc, "1.0")
    );
    let names: Vec<&str> = c.capabilities.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["echo", "sum-up"]);
    assert_eq!(c.capabilities[0].tags, ["t"]);
    assert_eq!(c.api_key_header.as_deref(), Some("X-Key"));
}

#[test]
fn a_0_3_card_and_an_http_json_only_card_are_read() {
    let c = read_card(&json!({ "name": "old", "url": "https://o/rpc", "protocolVersion": "0.3.0" })).unwrap();
    assert_eq!((c.binding, c.protocol_version.as_str()), (Binding::JsonRpc, "0.3.0"));
    let c = read_card(&json!({ "name": "r", "supportedInterfaces": [
        { "url": "https://r/", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0" }] }))
    .unwrap();
    assert_eq!(c.binding, Binding::HttpJson);
}

#[test]
fn cards_the_gateway_cannot_use_say_why() {
    assert!(read_card(&json!([])).unwrap_err().contains("not a JSON object"));
    assert!(read_card(&json!({ "url": "https://x" })).unwrap_err().contains("no `name`"));
    assert!(read_card(&json!({ "name": "n" })).unwrap_err().contains("no interface"));
    let grpc = json!({ "name": "g", "supportedInterfaces": [{ "url": "https://g", "protocolBinding": "GRPC" }] });
    assert!(read_card(&grpc).unwrap_err().contains("only GRPC"));
    let v2 = json!({ "name": "g", "supportedInterfaces": [
        { "url": "https://g", "protocolBinding": "JSONRPC", "protocolVersion": "2.0" }] });
    assert!(read_card(&v2).unwrap_err().contains("2.0"));
}

#[test]
fn send_calls_follow_the_version_and_binding() {
    let parts = [Part::text("hi")];
    let c = send_call(&remote(Binding::JsonRpc, "1.0"), "m1", &parts, json!({}));
    assert_eq!(c.body["method"], "SendMessage");
    assert_eq!(c.body["params"]["message"]["parts"], json!([{ "text": "hi" }]));
    assert_eq!(c.body["params"]["message"]["role"], "ROLE_USER");
    let c = send_call(&remote(Binding::JsonRpc, "0.3.0"), "m1", &parts, json!({}));
    assert_eq!(c.body["method"], "message/send");
    assert_eq!(c.body["params"]["message"]["parts"], json!([{ "kind": "text", "text": "hi" }]));
    let c = send_call(&remote(Binding::HttpJson, "1.0"), "m1", &parts, json!({}));
    assert_eq!(c.url, "https://a.example/a2a/message:send");
    assert!(c.body.get("jsonrpc").is_none());
    assert_eq!(get_task_call(&remote(Binding::JsonRpc, "0.3"), "t").body["method"], "tasks/get");
}

#[test]
fn answers_become_replies_with_the_task_state() {
    let task = json!({ "jsonrpc": "2.0", "id": 1, "result": { "task": {
        "id": "t1", "contextId": "c1", "status": { "state": "TASK_STATE_COMPLETED" },
        "artifacts": [{ "artifactId": "a", "parts": [{ "text": "done" }] }] } } });
    let a = read_answer(Binding::JsonRpc, task.to_string().as_bytes()).unwrap();
    assert_eq!(a.state, TaskState::Completed);
    assert_eq!(a.parts, [Part::text("done")]);
    assert_eq!(
        a.metadata(),
        json!({ "a2a": { "state": "TASK_STATE_COMPLETED", "task_id": "t1", "context_id": "c1" } })
    );

    let msg03 = json!({ "jsonrpc": "2.0", "id": 1, "result": {
        "kind": "message", "messageId": "x", "role": "agent", "parts": [{ "kind": "text", "text": "hello" }] } });
    let a = read_answer(Binding::JsonRpc, msg03.to_string().as_bytes()).unwrap();
    assert_eq!((a.state, a.parts.clone()), (TaskState::Completed, vec![Part::text("hello")]));

    let working = json!({ "id": "t2", "status": { "state": "working" } });
    let a = read_answer(Binding::HttpJson, working.to_string().as_bytes()).unwrap();
    assert_eq!(a.state, TaskState::Working);
    assert_eq!(a.parts.len(), 1, "a reply always has a part");

    let failed = json!({ "jsonrpc": "2.0", "id": 1, "result": { "task": { "id": "t3",
        "status": { "state": "TASK_STATE_FAILED", "message": { "role": "ROLE_AGENT", "parts": [{ "text": "boom" }] } } } } });
    let a = read_answer(Binding::JsonRpc, failed.to_string().as_bytes()).unwrap();
    assert_eq!((a.state, a.parts.clone()), (TaskState::Failed, vec![Part::text("boom")]));

    let err = json!({ "jsonrpc": "2.0", "id": 1, "error": { "code": -32601, "message": "Method not found" } });
    assert!(read_answer(Binding::JsonRpc, err.to_string().as_bytes()).unwrap_err().contains("-32601"));
    assert!(read_answer(Binding::JsonRpc, b"<html>").unwrap_err().contains("not JSON"));
}

#[test]
fn credentials_become_a_header() {
    let mut r = remote(Binding::JsonRpc, "1.0");
    r.auth = Some(Credentials::Bearer { token: "tok".into() });
    assert_eq!(r.auth_header(), Some(("authorization".into(), "Bearer tok".into())));
    r.auth = Some(Credentials::ApiKey { value: "k".into(), header: None });
    assert_eq!(r.auth_header(), Some(("X-API-Key".into(), "k".into())));
}
