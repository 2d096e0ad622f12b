//! Tenants: the platform operator (the bootstrap admin token) creates and lists them, each
//! with its own admin token; and the cross-tenant sweep, which calls every operation of
//! `/openapi.json` as a second tenant's admin and agent with the first tenant's ids, and
//! proves that none of them reveals or changes anything of the first.

mod common;

use std::collections::BTreeMap;

use common::{ADMIN, Snapshot, TestHub, agent_addr, assert_problem, assert_unchanged, eventually, raw};
use serde_json::{Value, json};
use switchboard_client::{Client, InboxOptions};
use switchboard_core::api::{
    CreateConversation, DeliveryState, PutGroup, RegisterAgent, SendMessage, TenantPushSettings,
};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;

/// Calls the hub as written; returns the status and the body as text.
async fn call(hub: &TestHub, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, String) {
    let http = reqwest::Client::new();
    let mut req = http.request(method.parse().expect("an HTTP method"), format!("{}{}", hub.url(), path));
    req = req.bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let res = req.send().await.expect("the hub answers");
    let status = res.status().as_u16();
    (status, res.text().await.expect("a readable body"))
}

// ---- the operator and tenant admins ----

#[tokio::test]
async fn the_operator_creates_and_lists_tenants_and_no_one_else_may() {
    let hub = TestHub::start().await;
    let op = hub.admin();

    let b = op.create_tenant("tenant-b").await.expect("the operator creates a tenant");
    assert_eq!(b.tenant.name, "tenant-b");
    assert!(b.admin_token.starts_with("sba_") && b.admin_token.len() > 40, "{}", b.admin_token);
    assert_ne!(b.tenant.id, "default");

    // B's admin administers B: registers an agent, sends to it, the agent receives it.
    let b_admin = op.with_token(b.admin_token.clone());
    let who = b_admin.whoami().await.expect("whoami");
    assert!(who.agent_id.is_none());
    let reg = b_admin
        .register_agent(&RegisterAgent { name: "worker".into(), ..Default::default() })
        .await
        .expect("B's admin registers an agent");
    let worker = b_admin.with_token(reg.api_key.clone());
    let sent = b_admin.send(&SendMessage::text(agent_addr(&reg.agent.id), "hello B")).await.expect("send in B");
    let inbox = worker.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.expect("inbox");
    assert_eq!(inbox.messages.iter().map(|m| m.message.id.as_str()).collect::<Vec<_>>(), [sent.id.as_str()]);
    // The operator's default tenant does not see B's agent.
    assert!(op.list_agents(None, None).await.unwrap().agents.iter().all(|a| a.id != reg.agent.id));

    // The operator lists default and B, paged.
    let all = op.list_tenants(None, None).await.expect("list tenants");
    let names: Vec<&str> = all.tenants.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"default") && names.contains(&"tenant-b"), "{names:?}");
    let first = op.list_tenants(None, Some(1)).await.unwrap();
    assert_eq!(first.tenants.len(), 1);
    let rest = op.list_tenants(first.next_cursor.as_deref(), Some(10)).await.unwrap();
    assert_eq!(rest.tenants.len(), all.tenants.len() - 1);
    assert!(rest.next_cursor.is_none());

    // B's admin, and B's agent: 403 on both routes, saying only the operator may.
    for token in [b.admin_token.as_str(), reg.api_key.as_str()] {
        let before = hub.snapshot().await;
        for (method, body) in [("GET", None), ("POST", Some(r#"{"name":"tenant-c"}"#.to_owned()))] {
            let p = assert_problem(raw(&hub, method, "/v1/tenants", Some(token), body).await, 403, "forbidden");
            assert!(p["detail"].as_str().unwrap().contains("only the platform operator"), "{p}");
        }
        assert_unchanged(&before, &hub.snapshot().await, "a refused tenant creation");
    }

    // A taken name: 409 naming it; bad names: 422 naming `name`; nothing written.
    let before = hub.snapshot().await;
    let body = |name: &str| Some(json!({ "name": name }).to_string());
    let p = assert_problem(raw(&hub, "POST", "/v1/tenants", Some(ADMIN), body("tenant-b")).await, 409, "conflict");
    assert!(p["detail"].as_str().unwrap().contains("`tenant-b`"), "{p}");
    for bad in ["", "has space", "slash/no", &"x".repeat(101)] {
        let p = assert_problem(raw(&hub, "POST", "/v1/tenants", Some(ADMIN), body(bad)).await, 422, "invalid_body");
        assert_eq!(p["errors"][0]["path"], "name", "{bad}: {p}");
    }
    let p = assert_problem(
        raw(&hub, "POST", "/v1/tenants", Some(ADMIN), Some(r#"{"name":"ok","extra":1}"#.into())).await,
        422,
        "invalid_body",
    );
    assert!(p["detail"].as_str().unwrap().contains("extra"), "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "refused tenant creations");

    // The audit entry: in the operator's (default) chain, naming the new tenant.
    let snap = hub.snapshot().await;
    let entries: Vec<&String> = snap.tables["audit_events"].iter().filter(|r| r.contains("tenant.create")).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = entries[0];
    assert!(e.contains("default") && e.contains(&format!("tenant:{}", b.tenant.id)) && e.contains("operator"), "{e}");
    // The token is stored hashed: its text is nowhere in the store.
    assert!(snap.tables.values().flatten().all(|r| !r.contains(&b.admin_token)));
    hub.stop().await;
}

// ---- the cross-tenant sweep ----

/// Everything tenant A (the default tenant) holds that B must not reach.
struct TenantA {
    pusher: String,
    puller: String,
    /// The id of the puller's key (the one it was registered with).
    puller_key: String,
    names: Vec<String>,
    topic: String,
    /// Its messages: to the pusher (dead), to the topic (pending), to the topic and the
    /// puller (acked).
    dead: String,
    pending: String,
    acked: Vec<String>,
    /// A person: its id, email and a personal access token's id.
    user: String,
    email: String,
    token_id: String,
    /// A group of that person.
    group: String,
    /// A conversation of the puller and the person, with one message.
    conversation: String,
    /// An approval asked of the person.
    approval: String,
}

impl TenantA {
    /// Strings whose presence in an answer to B would reveal A's data.
    fn markers(&self) -> Vec<&str> {
        let mut m = vec![self.pusher.as_str(), self.puller.as_str(), self.puller_key.as_str(), self.topic.as_str()];
        m.extend(self.names.iter().map(String::as_str));
        m.extend([self.dead.as_str(), self.pending.as_str(), "a-secret-payload"]);
        m.extend(self.acked.iter().map(String::as_str));
        m.extend([self.user.as_str(), self.email.as_str(), self.token_id.as_str(), self.conversation.as_str()]);
        m.push(self.approval.as_str());
        m
    }
}

/// One of everything in the default tenant, settled: no push attempt or lease left to run,
/// so that its rows stay as they are unless someone changes them.
async fn seed_a(hub: &TestHub) -> TenantA {
    let admin = hub.admin();
    // An endpoint nobody listens on: pushes fail and go dead after the schedule.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let (pusher, _) = hub.agent_at("a-pusher-secret", &["a-cap-secret"], Some(&endpoint)).await;
    let (puller, puller_client) = hub.agent("a-puller-secret", &["a-cap-secret"]).await;
    let topic = "a-topic-secret.eu".to_owned();
    admin.subscribe(&topic, &puller.agent.id).await.expect("subscribe");

    let dead = admin.send(&SendMessage::text(agent_addr(&pusher.agent.id), "a-secret-payload")).await.unwrap().id;
    let to_topic = admin.send(&SendMessage::text(format!("topic:{topic}"), "a-secret-payload")).await.unwrap().id;
    let to_puller = admin.send(&SendMessage::text(agent_addr(&puller.agent.id), "a-secret-payload")).await.unwrap().id;
    // The puller takes and acks both, so no lease is left to run out; then one more waits
    // for it, pending.
    let mut acked = Vec::new();
    while acked.len() < 2 {
        let opts = InboxOptions { wait_ms: Some(5000), limit: Some(10), ..Default::default() };
        let got = puller_client.inbox(&opts).await.expect("inbox");
        let ids: Vec<String> = got.messages.into_iter().map(|m| m.message.id).collect();
        puller_client.ack(ids.clone()).await.expect("ack");
        acked.extend(ids);
    }
    acked.sort();
    let mut want = vec![to_topic, to_puller];
    want.sort();
    assert_eq!(acked, want);
    let pending = admin.send(&SendMessage::text(format!("topic:{topic}"), "a-secret-payload")).await.unwrap().id;
    eventually(30, "A's push to a closed port to go dead", || {
        let admin = admin.clone();
        let dead = dead.clone();
        async move {
            let s = admin.get_message(&dead).await.ok()?;
            (s.deliveries.iter().all(|d| d.state == DeliveryState::Dead)).then_some(())
        }
    })
    .await;
    admin
        .put_tenant_push_settings(&TenantPushSettings {
            sign_ed25519: true,
            retry_schedule_ms: Some(vec![4242]),
            allow_private_endpoints: true,
            events_to: Some(agent_addr(&puller.agent.id)),
        })
        .await
        .expect("A's push settings");
    // A policy and limits naming A's agent: B must see neither.
    let policy = json!({ "rules": [
        { "id": "a-puller", "from": agent_addr(&puller.agent.id), "to": "*", "effect": "allow" },
        { "from": "*", "to": "*", "effect": "allow" },
    ]});
    admin.put_policy(&serde_json::from_value(policy).unwrap()).await.expect("A's policy");
    let limits = switchboard_core::limits::TenantLimits { max_streams: Some(1000), ..Default::default() };
    admin.put_limits(&limits).await.expect("A's limits");
    let keys = admin.list_agent_keys(&puller.agent.id).await.expect("A's puller's keys");
    let email = "a-person-secret@example.com".to_owned();
    let password = "a-password-secret-123";
    let new_user =
        CreateUser { email: email.clone(), name: "A".into(), role: Role::Member, password: Some(password.into()) };
    let user = admin.create_user(&new_user).await.expect("A's user").user.id;
    let session =
        admin.login(&Login { email: email.clone(), password: password.into(), tenant: None }).await.expect("sign in");
    let pat = CreateToken { name: "a-token".into(), expires_in_days: None };
    let token_id = admin.create_token_in_session(&session, &pat).await.expect("A's user's token").id;
    let group = "a-group".to_owned();
    let put = PutGroup { description: Some("a-secret-payload".into()), members: vec![user.clone()] };
    admin.put_group(&group, &put).await.expect("A's group");
    let model = json!({ "triage_group": group, "model": {
        "kind": "chat", "base_url": "http://127.0.0.1:9/v1", "model": "a-model", "api_key": "a-secret-payload-key" } });
    admin.put_routing_settings(&serde_json::from_value(model).unwrap()).await.expect("A's routing settings");
    let with = vec![agent_addr(&puller.agent.id), format!("user:{user}")];
    let conversation = admin
        .create_conversation(&CreateConversation { title: Some("a-title-secret".into()), participants: with })
        .await
        .expect("A's conversation")
        .conversation
        .id;
    puller_client
        .send(&SendMessage::text(format!("conversation:{conversation}"), "a-secret-payload"))
        .await
        .expect("a message in A's conversation");
    let ask = json!({ "question": "a-secret-payload?", "options": [{ "id": "approve", "label": "Yes" }],
        "deciders": [format!("user:{user}")], "default_outcome": "approve",
        "deadline": switchboard_core::time::rfc3339(switchboard_core::time::now_ms() + 3_600_000) });
    let approval =
        admin.create_approval(&serde_json::from_value(ask).unwrap()).await.expect("A's approval").approval.id;
    TenantA {
        approval,
        group,
        conversation,
        user,
        email,
        token_id,
        puller_key: keys.keys[0].id.clone(),
        names: vec![pusher.agent.name.clone(), puller.agent.name.clone()],
        pusher: pusher.agent.id,
        puller: puller.agent.id,
        topic,
        dead,
        pending,
        acked,
    }
}

/// What an answer to B must be.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// 404: A's id is not there for B.
    NotFound,
    /// 403: not B's to do at all (admin-only for an agent, operator-only for both).
    Forbidden,
    /// 403 or 404: an agent acting on an id not its own.
    NotFoundOrForbidden,
    /// 2xx on B's own data, with nothing of A's in it but what the request itself carried.
    Clean,
    /// 200 `{count: 0}`: a dead-letter replay or purge naming A's messages changed none.
    CountZero,
    /// 200 with every id (A's) `ignored`: an ack or nack of A's messages took none.
    AllIgnored,
    /// 422 `unknown_recipient`: a send to A's agent, answered as one to an id that never
    /// existed (the address is in the body, not the path, so it is not a 404).
    UnknownRecipient,
    /// The batch answer refuses its one item (to A's agent) as `unknown_recipient`.
    BatchRefused,
    /// The stream (WebSocket or SSE): refused for the admin; B's messages for its agent.
    Stream,
    /// 422 `invalid_body`: a body naming A's agent, refused as one naming an id that never
    /// existed.
    Invalid,
}

/// How to call one operation as B: path parameters and body from A's ids, and what B's
/// admin and B's agent must hear. Every operation of the document must be here, so that a
/// new one cannot escape the sweep.
fn plan(op_id: &str, a: &TenantA) -> Option<(Option<Value>, Option<&'static str>, Want, Want)> {
    use Want::*;
    let a_ids = json!([a.dead, a.pending, a.acked[0], a.acked[1]]);
    let p = |v: Value| Some(v);
    Some(match op_id {
        "listDeliveries" => (None, None, Clean, Clean),
        "listDeadLetters" => (None, None, Clean, Clean),
        "replayDeadLetters" | "purgeDeadLetters" => {
            (p(json!({ "message_ids": a_ids, "recipient": agent_addr(&a.pusher) })), None, CountZero, Forbidden)
        }
        "sendMessage" => (
            p(json!({ "to": agent_addr(&a.puller), "parts": [{ "kind": "text", "text": "from B" }] })),
            None,
            UnknownRecipient,
            UnknownRecipient,
        ),
        "sendBatch" => (
            p(
                json!({ "messages": [{ "to": agent_addr(&a.puller), "parts": [{ "kind": "text", "text": "from B" }] }] }),
            ),
            None,
            BatchRefused,
            BatchRefused,
        ),
        "getMessage" => (None, None, NotFound, NotFound),
        "getPushSettings" => (None, None, Clean, Forbidden),
        "putPushSettings" => (p(json!({})), None, Clean, Forbidden),
        "getRetention" => (None, None, Clean, Forbidden),
        // B's own retention, of a minute: A's messages are not B's to purge.
        "putRetention" => (p(json!({ "messages_max_age_seconds": 60 })), None, Clean, Forbidden),
        // A's agent's own name: B may use it (names are per tenant), and a 409 would tell B
        // that A has an agent of that name.
        "registerAgent" => (p(json!({ "name": a.names[1] })), None, Clean, Forbidden),
        "listAgents" => (None, None, Clean, Clean),
        // A card nobody serves: refused as a card that cannot be fetched, for B's admin.
        "importAgent" => {
            (p(json!({ "card_url": "http://127.0.0.1:9/.well-known/agent-card.json" })), None, Invalid, Forbidden)
        }
        "getAgent" => (None, None, NotFound, NotFound),
        "updateAgent" => (p(json!({ "name": "renamed-by-b" })), None, NotFound, NotFoundOrForbidden),
        "deleteAgent" => (None, None, NotFound, NotFoundOrForbidden),
        // Only an agent may beat its own heart: 403 for any admin.
        "heartbeat" => (None, None, Forbidden, NotFoundOrForbidden),
        "getWebhookSecret" => (None, None, NotFound, NotFoundOrForbidden),
        "rotateWebhookSecret" => (None, None, NotFound, NotFoundOrForbidden),
        // A's agent's keys: B may neither add one, nor see them, nor revoke A's key by its id.
        "createAgentKey" | "listAgentKeys" | "revokeAgentKey" => (None, None, NotFound, NotFoundOrForbidden),
        "fetchInbox" => (None, Some("wait_ms=0"), Forbidden, Clean),
        "ack" => (p(json!({ "ids": a_ids })), None, Forbidden, AllIgnored),
        "nack" => (p(json!({ "ids": a_ids })), None, Forbidden, AllIgnored),
        "subscribe" | "unsubscribe" => (None, None, NotFound, NotFoundOrForbidden),
        "listSubscribers" => (None, None, Clean, Clean),
        "listTopics" => (None, None, Clean, Clean),
        "createTenant" => (p(json!({ "name": "made-by-b" })), None, Forbidden, Forbidden),
        "listTenants" => (None, None, Forbidden, Forbidden),
        "stream" | "events" => (None, None, Stream, Stream),
        "whoami" => (None, None, Clean, Clean),
        // B's own log (its admin's changes during the sweep), none of A's entries.
        "listAudit" | "exportAudit" => (None, None, Clean, Forbidden),
        "getAuditSettings" => (None, None, Clean, Forbidden),
        "putAuditSettings" => (p(json!({ "sends": false })), None, Clean, Forbidden),
        // A's user's email: B may use it (emails are per tenant); a 409 would tell B of A's user.
        "createUser" => (p(json!({ "email": a.email, "name": "by B", "role": "member" })), None, Clean, Forbidden),
        "listUsers" => (None, None, Clean, Forbidden),
        "getUser" | "deleteUser" => (None, None, NotFound, Forbidden),
        "updateUser" => (p(json!({ "name": "renamed-by-b" })), None, NotFound, Forbidden),
        // Neither an admin token nor an agent key is a person with tokens of its own.
        "createToken" => (p(json!({ "name": "by-b" })), None, Forbidden, Forbidden),
        "listTokens" | "revokeToken" => (None, None, Forbidden, Forbidden),
        // Notification preferences are a person's own: neither an admin nor an agent has any.
        "getNotificationPrefs" => (None, None, Forbidden, Forbidden),
        "putNotificationPrefs" => (p(json!({ "email": false })), None, Forbidden, Forbidden),
        // B's own policy and limits (none), never A's; an agent may not see or set them.
        "getPolicy" | "getLimits" => (None, None, Clean, Forbidden),
        "putPolicy" => (p(json!({ "rules": null })), None, Clean, Forbidden),
        "putLimits" => (p(json!({})), None, Clean, Forbidden),
        // Asked about A's agents, B's (empty) policy answers; nothing of A's policy shows.
        "checkPolicy" => {
            (p(json!({ "from": agent_addr(&a.puller), "to": agent_addr(&a.pusher) })), None, Clean, Forbidden)
        }
        // B's own identity providers (none); replacing them touches B's rows alone.
        "getIdentityProviders" => (None, None, Clean, Forbidden),
        "putIdentityProviders" => (p(json!({ "providers": [] })), None, Clean, Forbidden),
        // Groups: B's own (none of A's); A's group's name is a 404 for B, and B may use it.
        "listGroups" => (None, None, Clean, Forbidden),
        "getGroup" | "deleteGroup" | "addGroupMember" | "removeGroupMember" => (None, None, NotFound, Forbidden),
        "putGroup" => (p(json!({ "members": [] })), None, Clean, Forbidden),
        // B's own routing settings; A's model and key never show.
        "getRoutingSettings" => (None, None, Clean, Forbidden),
        "putRoutingSettings" => (p(json!({})), None, Clean, Forbidden),
        // A's message is not there for B.
        "routeMessage" => (p(json!({ "capability": "a-capability" })), None, NotFound, NotFound),
        // The hub's signing key is the platform operator's: no tenant's admin rotates it.
        "rotateOAuthKey" => (None, None, Forbidden, Forbidden),
        // A's agent is no one B can talk with; A's conversation is not there for B.
        "createConversation" => (p(json!({ "participants": [agent_addr(&a.puller)] })), None, Invalid, Invalid),
        "listConversations" => (None, None, Clean, Clean),
        "getConversation" | "conversationHistory" | "addParticipant" | "removeParticipant" => {
            (None, None, NotFound, NotFound)
        }
        "markConversationRead" => (p(json!({ "up_to": 1 })), None, NotFound, NotFound),
        // A's conversation is not there for B: no status is set or cleared in it.
        "putConversationStatus" => (p(json!({ "text": "lurking" })), None, NotFound, NotFound),
        "deleteConversationStatus" => (None, None, NotFound, NotFound),
        // A's person is no one B can ask; A's approval is not there for B (only a person
        // decides, so the admin and the agent are refused before the look-up).
        "createApproval" => (
            p(json!({ "question": "q", "options": [{ "id": "approve", "label": "Yes" }],
                "deciders": [format!("user:{}", a.user)], "default_outcome": "approve",
                "deadline": "2099-01-01T00:00:00Z" })),
            None,
            Invalid,
            Invalid,
        ),
        "listApprovals" => (None, None, Clean, Clean),
        "getApproval" | "cancelApproval" => (None, None, NotFound, NotFound),
        "decideApproval" => (p(json!({ "option": "approve" })), None, NotFoundOrForbidden, NotFoundOrForbidden),
        _ => return None,
    })
}

/// The operation's path with A's ids for its parameters.
fn fill_path(path: &str, a: &TenantA) -> String {
    let id = if path.starts_with("/v1/messages/") {
        &a.acked[0]
    } else if path.starts_with("/v1/users/me/tokens/") {
        &a.token_id
    } else if path.starts_with("/v1/users/") {
        &a.user
    } else if path.starts_with("/v1/conversations/") {
        &a.conversation
    } else if path.starts_with("/v1/approvals/") {
        &a.approval
    } else {
        &a.puller
    };
    path.replace("{id}", id)
        .replace("{agent_id}", &a.puller)
        .replace("{topic}", &a.topic)
        .replace("{key_id}", &a.puller_key)
        .replace("{name}", &a.group)
        .replace("{user}", &a.user)
        .replace("{address}", &agent_addr(&a.puller))
}

/// Rows of every table that B's tenant id does not appear in: A's, and the node's.
fn not_of(snap: &Snapshot, b_tenant: &str) -> Snapshot {
    let tables: BTreeMap<String, Vec<String>> = snap
        .tables
        .iter()
        .map(|(t, rows)| (t.clone(), rows.iter().filter(|r| !r.contains(b_tenant)).cloned().collect()))
        .collect();
    Snapshot { tables }
}

/// Checks one answer to B against what it must be; returns what was wrong.
fn judge(want: Want, status: u16, text: &str, sent: &str, markers: &[&str]) -> Result<(), String> {
    let json: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let leaked: Vec<&&str> = markers.iter().filter(|m| text.contains(**m) && !sent.contains(**m)).collect();
    let ok_status = (200..300).contains(&status);
    match want {
        Want::NotFound if status == 404 => Ok(()),
        Want::Forbidden if status == 403 => Ok(()),
        Want::NotFoundOrForbidden if status == 403 || status == 404 => Ok(()),
        Want::Clean if ok_status && leaked.is_empty() => Ok(()),
        Want::CountZero if status == 200 && json["count"] == 0 && leaked.is_empty() => Ok(()),
        Want::AllIgnored if status == 200 && json["ids"].as_array().is_some_and(Vec::is_empty) => Ok(()),
        Want::UnknownRecipient if status == 422 && json["code"] == "unknown_recipient" => Ok(()),
        Want::Invalid if status == 422 && json["code"] == "invalid_body" && leaked.is_empty() => Ok(()),
        Want::BatchRefused
            if ok_status
                && json["results"]
                    .as_array()
                    .is_some_and(|r| r.len() == 1 && r[0]["error"]["code"] == "unknown_recipient") =>
        {
            Ok(())
        }
        _ => Err(format!("{status}, leaking {leaked:?}: {text}")),
    }
}

/// A stream (`stream`: WebSocket, `events`: SSE) as B: the admin is refused with 403; B's
/// agent is handed one of the messages B sent it, and nothing of A's.
async fn stream_is_own(op_id: &str, client: &Client, b_sent: &[String], markers: &[&str]) -> Result<(), String> {
    let is_agent = client.whoami().await.map_err(|e| e.to_string())?.agent_id.is_some();
    let first = async {
        let got = if op_id == "stream" {
            match client.stream().await {
                Ok(mut ws) => ws.next_message().await,
                Err(e) => Err(e),
            }
        } else {
            match client.events().await {
                Ok(mut sse) => sse.next_message().await,
                Err(e) => Err(e),
            }
        };
        got.map_err(|e| e.to_string())
    };
    match (is_agent, common::within(20, "B's stream to answer", first).await) {
        (false, Err(e)) if e.contains("(forbidden)") => Ok(()),
        (true, Ok(Some(m))) => {
            let text = serde_json::to_string(&m).unwrap();
            if b_sent.contains(&m.message.id) && !markers.iter().any(|k| text.contains(k)) {
                Ok(())
            } else {
                Err(format!("B's agent was streamed {text}"))
            }
        }
        (_, got) => Err(format!("{got:?}")),
    }
}

#[tokio::test]
async fn no_operation_reaches_another_tenants_data() {
    let hub = TestHub::start().await;
    let a = seed_a(&hub).await;
    let markers = a.markers();

    // Tenant B: its admin, an agent, and two messages of its own for the streams.
    let b = hub.admin().create_tenant("tenant-b").await.expect("create B");
    let b_admin = hub.admin().with_token(b.admin_token.clone());
    let b_reg = b_admin.register_agent(&RegisterAgent { name: "b-agent".into(), ..Default::default() }).await.unwrap();
    let b_agent = b_admin.with_token(b_reg.api_key.clone());
    let mut b_sent = vec![b_admin.send(&SendMessage::text(agent_addr(&b_reg.agent.id), "b's own")).await.unwrap().id];

    let before = not_of(&hub.snapshot().await, &b.tenant.id);
    // What the comparison covers: A's rows are in it.
    for (table, id) in [("agents", &a.puller), ("agents", &a.pusher), ("messages", &a.dead), ("deliveries", &a.pending)]
    {
        assert_eq!(before.tables[table].iter().filter(|r| r.contains(id.as_str())).count(), 1, "{table} {id}");
    }
    let doc: Value = reqwest::get(format!("{}/openapi.json", hub.url())).await.unwrap().json().await.unwrap();
    let mut failures = Vec::new();
    let mut called = 0;
    // A's agent name, once B has registered an agent of its own by it: from then on B's
    // own data (its audit log records it), so not a marker of A's.
    let mut b_owns = String::new();
    let mut public = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            // Unauthenticated operations (`security: [{}]`) hold nothing of a tenant.
            if op["security"].as_array().is_some_and(|s| s.iter().all(|r| r == &json!({}))) {
                public.push(format!("{} {path}", method.to_uppercase()));
                continue;
            }
            let op_id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            let Some((body, query, as_admin, as_agent)) = plan(op_id, &a) else {
                panic!("the sweep does not know how to call `{op_id}` ({method} {path}): add it to `plan`")
            };
            let mut url = fill_path(path, &a);
            if let Some(q) = query {
                url = format!("{url}?{q}");
            }
            let sent = format!("{url} {} {b_owns}", body.as_ref().map(Value::to_string).unwrap_or_default());
            for (who, token, client, want) in
                [("B's admin", &b.admin_token, &b_admin, as_admin), ("B's agent", &b_reg.api_key, &b_agent, as_agent)]
            {
                called += 1;
                let verdict = if want == Want::Stream {
                    // A fresh message for B's agent: earlier calls may hold the older ones.
                    let to_b = SendMessage::text(agent_addr(&b_reg.agent.id), "b's own");
                    b_sent.push(b_admin.send(&to_b).await.unwrap().id);
                    stream_is_own(op_id, client, &b_sent, &markers).await
                } else {
                    let (status, text) = call(&hub, &method.to_uppercase(), &url, token, body.as_ref()).await;
                    // The agent B's admin registered under A's agent's name: gone again, so
                    // that later lists in B do not show it; the name is B's too from now on.
                    if op_id == "registerAgent" && status == 201 {
                        let id: Value = serde_json::from_str(&text).unwrap();
                        b_admin.delete_agent(id["agent"]["id"].as_str().unwrap()).await.unwrap();
                        b_owns.push_str(id["agent"]["name"].as_str().unwrap());
                    }
                    // Likewise the user B's admin made with A's user's email.
                    if op_id == "createUser" && status == 201 {
                        let u: Value = serde_json::from_str(&text).unwrap();
                        b_admin.delete_user(u["user"]["id"].as_str().unwrap()).await.unwrap();
                        b_owns.push_str(u["user"]["email"].as_str().unwrap());
                    }
                    judge(want, status, &text, &sent, &markers)
                };
                if let Err(e) = verdict {
                    failures.push(format!("{op_id} {} {url} as {who} (want {want:?}): {e}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "answers to tenant B that reach tenant A:\n  {}", failures.join("\n  "));
    assert!(called >= 112, "only {called} calls (56 operations × 2 callers): the document lost operations?");
    public.sort();
    // The token endpoint authenticates its client by the form or HTTP Basic, not a bearer
    // token; `oauth.rs` proves another tenant's key gets no token for A's agent.
    assert_eq!(
        public,
        [
            "GET /.well-known/jwks.json",
            "GET /.well-known/oauth-authorization-server",
            "GET /.well-known/switchboard-keys.json",
            "GET /health",
            "GET /ready",
            "POST /oauth/token",
            "POST /v1/auth/login",
            "POST /v1/auth/logout"
        ]
    );

    let after = not_of(&hub.snapshot().await, &b.tenant.id);
    assert_unchanged(&before, &after, "tenant B's sweep of every operation, in tenant A (and node-wide)");
    hub.stop().await;
}
