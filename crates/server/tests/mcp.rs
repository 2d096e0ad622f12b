//! The MCP server at `/mcp` (issue 14), over real HTTP: protocol revision 2025-11-25 with
//! sessions and 2026-07-28 stateless, each tool called as an agent (policies apply), resources
//! for the caller's conversations, 401 with the protected-resource metadata, and DNS-rebinding
//! protection. With `SWITCHBOARD_TEST_HUB_DATABASE_URL` set these run on PostgreSQL.

mod common;

use common::{TestHub, within};
use serde_json::{Value, json};
use switchboard_client::InboxOptions;
use switchboard_core::api::{CreateConversation, Part, SendMessage};
use switchboard_core::policy::PolicyRules;

const V1: &str = "2025-11-25";

/// An MCP client of the 2025-11-25 revision: one session, requests numbered from 1.
struct Session {
    url: String,
    token: String,
    id: String,
    next: std::sync::atomic::AtomicU64,
}

/// The JSON-RPC message in an answer: the body itself, or the SSE event that carries it.
fn message_of(content_type: &str, text: &str) -> Value {
    if content_type.starts_with("text/event-stream") {
        let found = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("result").is_some() || v.get("error").is_some());
        return found.unwrap_or(Value::Null);
    }
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// One POST to `/mcp` as written: (status, headers, JSON-RPC message).
async fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.body(body.to_string()).send().await.expect("the hub answers");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = res.text().await.unwrap();
    (status, headers, message_of(&ct, &text))
}

impl Session {
    async fn open(hub: &TestHub, token: &str) -> Session {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": V1, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
        let (status, headers, v) = post(&hub.url(), &[("authorization", &format!("Bearer {token}"))], &init).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["result"]["protocolVersion"], V1, "{v}");
        let id = headers.get("mcp-session-id").expect("a session id").to_str().unwrap().to_owned();
        let s = Session { url: hub.url(), token: token.into(), id, next: 1.into() };
        let auth = format!("Bearer {token}");
        let mut headers = s.headers();
        headers.push(("authorization", &auth));
        let (status, _, _) =
            post(&s.url, &headers, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(status, 202);
        s
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        vec![("mcp-session-id", self.id.as_str()), ("mcp-protocol-version", V1)]
    }

    /// A request in the session; answers the JSON-RPC message.
    async fn rpc(&self, method: &str, params: Value) -> Value {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let auth = format!("Bearer {}", self.token);
        let mut headers = self.headers();
        headers.push(("authorization", &auth));
        let body = json!({"jsonrpc": "2.0", "id": n, "method": method, "params": params});
        let (status, _, v) = post(&self.url, &headers, &body).await;
        assert_eq!(status, 200, "{method}: {v}");
        assert_eq!(v["id"], n, "{v}");
        v
    }

    /// Calls a tool; answers its result (`isError` included).
    async fn tool(&self, name: &str, args: Value) -> Value {
        let v = self.rpc("tools/call", json!({"name": name, "arguments": args})).await;
        assert!(v.get("result").is_some(), "{name}: {v}");
        v["result"].clone()
    }

    /// Calls a tool that must succeed; answers its structured content.
    async fn ok(&self, name: &str, args: Value) -> Value {
        let r = self.tool(name, args).await;
        assert_eq!(r["isError"], false, "{name}: {r}");
        r["structuredContent"].clone()
    }

    /// Calls a tool that must fail; answers its text.
    async fn refused(&self, name: &str, args: Value) -> String {
        let r = self.tool(name, args).await;
        assert_eq!(r["isError"], true, "{name}: {r}");
        r["content"][0]["text"].as_str().unwrap_or_default().to_owned()
    }
}

#[tokio::test]
async fn initialize_opens_a_session_that_lists_every_tool_with_its_schema() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let s = Session::open(&hub, &a.api_key).await;
    let tools = s.rpc("tools/list", json!({})).await;
    let mut names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ack",
            "find_agents",
            "get_message",
            "list_agents",
            "list_conversations",
            "read_conversation",
            "read_inbox",
            "request",
            "request_approval",
            "send_message"
        ]
    );
    for t in tools["result"]["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(t["description"].as_str().is_some_and(|d| d.len() > 20), "{t}");
    }
    assert_eq!(s.rpc("ping", json!({})).await["result"], json!({}));
}

#[tokio::test]
async fn send_message_reaches_the_inbox_and_ack_settles_it() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let (b, _) = hub.agent("beta", &[]).await;
    let (sa, sb) = (Session::open(&hub, &a.api_key).await, Session::open(&hub, &b.api_key).await);
    let to = format!("agent:{}", b.agent.id);
    let sent = sa.ok("send_message", json!({"to": to, "text": "hello", "data": {"n": 1}})).await;
    let id = sent["id"].as_str().expect("the message id").to_owned();
    assert_eq!(sent["recipients"], json!([to]));

    let inbox = sb.ok("read_inbox", json!({"wait_ms": 5000})).await;
    let m = &inbox["messages"][0];
    assert_eq!((m["id"].as_str(), m["parts"][0]["text"].as_str()), (Some(id.as_str()), Some("hello")));
    assert_eq!(m["parts"][1]["data"], json!({"n": 1}));
    assert!(inbox["hint"].as_str().unwrap().contains("ack"));

    let acked = sb.ok("ack", json!({"ids": [id]})).await;
    assert_eq!(acked["ids"], json!([id]));
    let shown = sa.ok("get_message", json!({"id": id})).await;
    assert_eq!(shown["deliveries"][0]["state"], "acked", "{shown}");
    // The recipient's inbox is empty now.
    assert_eq!(sb.ok("read_inbox", json!({})).await["messages"], json!([]));
}

#[tokio::test]
async fn request_answers_the_reply_or_a_timeout_error() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("asker", &[]).await;
    let (_b, b_client) = hub.agent("answerer", &["echo"]).await;
    let s = Session::open(&hub, &a.api_key).await;
    let replier = tokio::spawn(async move {
        within(10, "the request in the answerer's inbox", async {
            loop {
                let got = b_client.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
                if let Some(m) = got.messages.into_iter().next() {
                    let reply = SendMessage {
                        to: m.message.from.clone(),
                        parts: vec![Part::text("pong")],
                        in_reply_to: Some(m.message.id.clone()),
                        ..Default::default()
                    };
                    b_client.send(&reply).await.unwrap();
                    b_client.ack(vec![m.message.id]).await.unwrap();
                    return;
                }
            }
        })
        .await
    });
    let answer = s.ok("request", json!({"to": "capability:echo", "text": "ping", "timeout_ms": 10000})).await;
    assert_eq!(answer["message"]["parts"][0]["text"], "ping");
    assert_eq!(answer["reply"]["parts"][0]["text"], "pong", "{answer}");
    replier.await.unwrap();

    let text = s.refused("request", json!({"to": "capability:echo", "text": "again", "timeout_ms": 200})).await;
    assert!(text.contains("no reply") && text.contains("reply_timeout"), "{text}");
}

#[tokio::test]
async fn list_agents_and_find_agents_by_capability_or_text() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    hub.agent("translator-fr", &["translate"]).await;
    hub.agent("summarizer", &["summarize"]).await;
    let s = Session::open(&hub, &a.api_key).await;
    let all = s.ok("list_agents", json!({})).await;
    assert_eq!(all["agents"].as_array().unwrap().len(), 3);
    let by_cap = s.ok("list_agents", json!({"capability": "translate"})).await;
    assert_eq!(by_cap["agents"][0]["name"], "translator-fr");

    let found = s.ok("find_agents", json!({"capability": "summarize"})).await;
    let names: Vec<&str> = found["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["summarizer"]);
    let found = s.ok("find_agents", json!({"text": "TRANSL"})).await;
    let names: Vec<&str> = found["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["translator-fr"]);
    let text = s.refused("find_agents", json!({})).await;
    assert!(text.contains("capability") && text.contains("text"), "{text}");
}

#[tokio::test]
async fn request_approval_creates_it_for_the_deciders_and_can_wait() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("deployer", &[]).await;
    let req = switchboard_core::people::CreateUser {
        email: "ops@example.com".into(),
        name: "Ops".into(),
        role: switchboard_core::principal::Role::Member,
        password: None,
    };
    let ops = hub.admin().create_user(&req).await.expect("create user").user.id;
    let s = Session::open(&hub, &a.api_key).await;
    let ask = json!({
        "question": "Deploy build 42?",
        "options": [{"id": "yes", "label": "Deploy"}, {"id": "no", "label": "Hold"}],
        "deciders": [format!("user:{ops}")],
        "default_outcome": "no",
        "expires_in_seconds": 3600,
    });
    let created = s.ok("request_approval", ask.clone()).await;
    assert_eq!(created["approval"]["state"], "pending", "{created}");
    assert_eq!(created["approval"]["deciders"], json!([format!("user:{ops}")]));

    let mut waiting = ask.clone();
    waiting["timeout_ms"] = json!(200);
    let waited = s.ok("request_approval", waiting).await;
    assert_eq!(waited["approval"]["state"], "pending");
    assert!(waited["note"].as_str().unwrap().contains("no outcome within 200 ms"), "{waited}");

    let mut bad = ask;
    bad["default_outcome"] = json!("maybe");
    let text = s.refused("request_approval", bad).await;
    assert!(text.contains("default_outcome"), "{text}");
}

#[tokio::test]
async fn conversations_are_tools_and_resources_of_their_participants() {
    let hub = TestHub::start().await;
    let (a, a_client) = hub.agent("alpha", &[]).await;
    let (b, _) = hub.agent("beta", &[]).await;
    let (outsider, _) = hub.agent("outsider", &[]).await;
    let req = CreateConversation { title: Some("launch".into()), participants: vec![format!("agent:{}", b.agent.id)] };
    let c = a_client.create_conversation(&req).await.expect("a conversation").conversation;
    let s = Session::open(&hub, &a.api_key).await;
    s.ok("send_message", json!({"to": format!("conversation:{}", c.id), "text": "first"})).await;

    let listed = s.ok("list_conversations", json!({})).await;
    assert_eq!(listed["conversations"][0]["id"], c.id.as_str());
    let history = s.ok("read_conversation", json!({"conversation_id": c.id})).await;
    assert_eq!(history["messages"][0]["parts"][0]["text"], "first", "{history}");

    let uri = format!("switchboard://conversations/{}", c.id);
    let resources = s.rpc("resources/list", json!({})).await;
    assert_eq!(resources["result"]["resources"][0]["uri"], uri.as_str(), "{resources}");
    assert_eq!(resources["result"]["resources"][0]["name"], "launch");
    let templates = s.rpc("resources/templates/list", json!({})).await;
    assert_eq!(templates["result"]["resourceTemplates"][0]["uriTemplate"], "switchboard://conversations/{id}");
    let read = s.rpc("resources/read", json!({"uri": uri})).await;
    let body: Value = serde_json::from_str(read["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["messages"][0]["parts"][0]["text"], "first", "{body}");

    // Someone who does not take part sees neither the history nor the resource.
    let o = Session::open(&hub, &outsider.api_key).await;
    let text = o.refused("read_conversation", json!({"conversation_id": c.id})).await;
    assert!(text.contains("not_found") || text.contains("forbidden"), "{text}");
    let read = o.rpc("resources/read", json!({"uri": uri})).await;
    assert!(read["error"]["code"].is_i64(), "{read}");
    assert_eq!(o.ok("list_conversations", json!({})).await["conversations"], json!([]));
}

#[tokio::test]
async fn tool_errors_name_the_argument_and_say_what_to_do() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let s = Session::open(&hub, &a.api_key).await;
    let text = s.refused("send_message", json!({"to": "agent:nobody"})).await;
    assert!(text.contains("`text`"), "{text}");
    let text =
        s.refused("send_message", json!({"to": "agent:0192f0c0-0000-7000-8000-000000000000", "text": "x"})).await;
    assert!(text.contains("unknown_recipient"), "{text}");
    let text = s.refused("send_message", json!({"to": "agent:x", "text": "x", "colour": "red"})).await;
    assert!(text.contains("colour"), "{text}");
    let text = s.refused("read_inbox", json!({"limit": 0})).await;
    assert!(text.contains("limit"), "{text}");
    let text = s.refused("get_message", json!({})).await;
    assert!(text.contains("`id`") && text.contains("required"), "{text}");
    let text = s.refused("send_message", json!({"to": "topic:a", "text": "nul \u{0} here"})).await;
    assert!(text.contains("text"), "{text}");
    // An unknown tool is a protocol error, as the spec has it.
    let v = s.rpc("tools/call", json!({"name": "teleport", "arguments": {}})).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("tools/list"));
}

#[tokio::test]
async fn policies_apply_to_tools_as_to_the_api() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let (b, _) = hub.agent("beta", &[]).await;
    let to = format!("agent:{}", b.agent.id);
    let rules: PolicyRules = serde_json::from_value(json!({"rules": [
        {"from": "*", "to": to, "effect": "deny"}, {"from": "*", "to": "*", "effect": "allow"}]}))
    .unwrap();
    hub.admin().put_policy(&rules).await.expect("set the policy");
    let s = Session::open(&hub, &a.api_key).await;
    let text = s.refused("send_message", json!({"to": to, "text": "let me in"})).await;
    assert!(text.contains("policy_denied"), "{text}");
}

#[tokio::test]
async fn people_and_oauth_bearer_tokens_are_callers_too() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let password = "correct horse battery";
    let req = switchboard_core::people::CreateUser {
        email: "p@example.com".into(),
        name: "P".into(),
        role: switchboard_core::principal::Role::Member,
        password: Some(password.into()),
    };
    hub.admin().create_user(&req).await.expect("create user");
    let login =
        switchboard_core::people::Login { email: "p@example.com".into(), password: password.into(), tenant: None };
    let session = hub.anonymous().login(&login).await.unwrap();
    let pat = hub
        .anonymous()
        .create_token_in_session(
            &session,
            &switchboard_core::people::CreateToken { name: "mcp".into(), expires_in_days: None },
        )
        .await
        .expect("a personal access token")
        .token;
    let p = Session::open(&hub, &pat).await;
    assert_eq!(p.ok("read_inbox", json!({})).await["messages"], json!([]));

    let form =
        [("grant_type", "client_credentials"), ("client_id", a.agent.id.as_str()), ("client_secret", &a.api_key)];
    let res = reqwest::Client::new().post(format!("{}/oauth/token", hub.url())).form(&form).send().await.unwrap();
    let jwt = res.json::<Value>().await.unwrap()["access_token"].as_str().expect("an access token").to_owned();
    let j = Session::open(&hub, &jwt).await;
    let sent = j.ok("send_message", json!({"to": "topic:news", "text": "by jwt"})).await;
    let shown = j.ok("get_message", json!({"id": sent["id"]})).await;
    assert_eq!(shown["message"]["from"], format!("agent:{}", a.agent.id));
}

#[tokio::test]
async fn no_token_is_401_with_the_protected_resource_metadata() {
    let hub = TestHub::start().await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": V1, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    for headers in [vec![], vec![("authorization", "Bearer sbk_not-a-key")]] {
        let (status, h, _) = post(&hub.url(), &headers, &init).await;
        assert_eq!(status, 401);
        let challenge = h.get("www-authenticate").expect("a challenge").to_str().unwrap();
        let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", hub.url());
        assert_eq!(challenge, format!("Bearer resource_metadata=\"{metadata}\""));
    }
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let res = reqwest::get(format!("{}{path}", hub.url())).await.unwrap();
        assert_eq!(res.status(), 200);
        let m: Value = res.json().await.unwrap();
        assert_eq!(m["resource"], format!("{}/mcp", hub.url()));
        assert_eq!(m["authorization_servers"], json!([hub.url()]));
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    }
    // The authorization server it names publishes its metadata.
    let res = reqwest::get(format!("{}/.well-known/oauth-authorization-server", hub.url())).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn another_sites_host_or_origin_is_refused() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let port = hub.hub.as_ref().unwrap().url().rsplit(':').next().unwrap().to_owned();
    let auth = format!("Bearer {}", a.api_key);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": V1, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let evil_host = format!("evil.example:{port}");
    let (status, _, _) = post(&hub.url(), &[("authorization", &auth), ("host", &evil_host)], &ping).await;
    assert_eq!(status, 403, "another site's Host");
    let (status, _, _) = post(&hub.url(), &[("authorization", &auth), ("origin", "http://evil.example")], &ping).await;
    assert_eq!(status, 403, "another site's Origin");
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let origin = format!("http://{host}");
        let (status, _, v) =
            post(&hub.url(), &[("authorization", &auth), ("host", &host), ("origin", &origin)], &ping).await;
        assert_eq!(status, 200, "{host}: {v}");
    }
}

const V2: &str = "2026-07-28";

/// One stateless request of the 2026-07-28 revision: the per-request `_meta` and the standard
/// headers (`Mcp-Method`, `Mcp-Name`), no session. Answers (status, headers, message).
async fn stateless(
    hub: &TestHub,
    token: &str,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V2,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    });
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str()), ("mcp-protocol-version", V2), ("mcp-method", method)];
    if let Some(n) = name {
        headers.push(("mcp-name", n));
    }
    post(&hub.url(), &headers, &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).await
}

#[tokio::test]
async fn the_2026_revision_is_stateless_with_server_discover() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let (b, b_client) = hub.agent("beta", &[]).await;
    let (status, headers, v) = stateless(&hub, &a.api_key, "server/discover", None, json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert!(headers.get("mcp-session-id").is_none(), "no session in 2026-07-28");
    let versions = v["result"]["supportedVersions"].as_array().expect("supported versions");
    assert!(versions.contains(&json!(V1)) && versions.contains(&json!(V2)), "{v}");
    assert_eq!(v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "switchboard", "{v}");
    assert!(v["result"]["capabilities"]["tools"].is_object(), "{v}");

    let (status, _, v) = stateless(&hub, &a.api_key, "tools/list", None, json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 10);

    let to = format!("agent:{}", b.agent.id);
    let args = json!({"name": "send_message", "arguments": {"to": to, "text": "stateless"}});
    let (status, headers, v) = stateless(&hub, &a.api_key, "tools/call", Some("send_message"), args).await;
    assert_eq!(status, 200, "{v}");
    assert!(headers.get("mcp-session-id").is_none());
    assert_eq!(v["result"]["isError"], false, "{v}");
    let got = b_client.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(got.messages[0].message.parts, vec![Part::text("stateless")]);

    // Every request authenticates: without a token, 401 as in 2025-11-25.
    let (status, _, _) = post(
        &hub.url(),
        &[("mcp-protocol-version", V2), ("mcp-method", "tools/list")],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn prompts_put_the_tools_to_work() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let s = Session::open(&hub, &a.api_key).await;
    let listed = s.rpc("prompts/list", json!({})).await;
    let names: Vec<&str> =
        listed["result"]["prompts"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["handle_inbox", "ask_capability"]);
    let got = s.rpc("prompts/get", json!({"name": "handle_inbox"})).await;
    assert!(got["result"]["messages"][0]["content"]["text"].as_str().unwrap().contains("read_inbox"), "{got}");
}

#[tokio::test]
async fn the_public_url_host_is_accepted_and_named_in_the_metadata() {
    let hub = TestHub::start_with(|c| c.public_url = Some("https://hub.example.com".into())).await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let auth = format!("Bearer {}", a.api_key);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": V1, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let headers =
        [("authorization", auth.as_str()), ("host", "hub.example.com"), ("origin", "https://hub.example.com")];
    let (status, _, v) = post(&hub.url(), &headers, &init).await;
    assert_eq!(status, 200, "{v}");
    let (status, _, _) = post(&hub.url(), &[("authorization", &auth), ("host", "other.example.com")], &init).await;
    assert_eq!(status, 403);
    let (status, h, _) = post(&hub.url(), &[("host", "hub.example.com")], &init).await;
    assert_eq!(status, 401);
    let challenge = h.get("www-authenticate").unwrap().to_str().unwrap();
    assert!(challenge.contains("https://hub.example.com/.well-known/oauth-protected-resource/mcp"), "{challenge}");
    let m: Value = reqwest::get(format!("{}/.well-known/oauth-protected-resource/mcp", hub.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["resource"], "https://hub.example.com/mcp");
}

#[tokio::test]
async fn a_session_answers_only_the_caller_that_opened_it() {
    let hub = TestHub::start().await;
    let (a, _) = hub.agent("alpha", &[]).await;
    let (b, _) = hub.agent("beta", &[]).await;
    let s = Session::open(&hub, &a.api_key).await;
    let other = format!("Bearer {}", b.api_key);
    let mut headers = s.headers();
    headers.push(("authorization", &other));
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    let (status, _, _) = post(&hub.url(), &headers, &ping).await;
    assert_eq!(status, 404, "another caller's token on A's session");
    assert_eq!(s.rpc("ping", json!({})).await["result"], json!({}), "A's session still works for A");
}
