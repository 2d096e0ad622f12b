//! Conversations: two agents and a person share one history in one total order; only
//! participants read it or send to it; read markers move forward only; a removed participant
//! stops receiving.

mod common;

use common::{ADMIN, TestHub, agent_addr, assert_problem, assert_unchanged, raw};
use serde_json::json;
use switchboard_client::{AuditQuery, Client, HistoryOptions, InboxOptions};
use switchboard_core::api::{ConversationMessage, CreateConversation, SendMessage};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;

const PASSWORD: &str = "correct horse battery";

/// A person of the tenant and a client acting as it by a personal access token.
async fn person(hub: &TestHub, email: &str) -> (String, Client) {
    person_as(hub, email, Role::Member).await
}

/// [`person`] with `role`.
async fn person_as(hub: &TestHub, email: &str, role: Role) -> (String, Client) {
    let req = CreateUser { email: email.into(), name: email.into(), role, password: Some(PASSWORD.into()) };
    let id = hub.admin().create_user(&req).await.expect("create user").user.id;
    let login = Login { email: email.into(), password: PASSWORD.into(), tenant: None };
    let session = hub.anonymous().login(&login).await.expect("sign in");
    let pat = CreateToken { name: "test".into(), expires_in_days: None };
    let token = hub.anonymous().create_token_in_session(&session, &pat).await.expect("a token").token;
    (id, hub.admin().with_token(token))
}

async fn history(c: &Client, id: &str) -> Vec<ConversationMessage> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let opts = HistoryOptions { cursor, limit: Some(7), thread: None };
        let page = c.conversation_history(id, &opts).await.expect("history");
        all.extend(page.messages);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

/// Takes `n` messages from `c`'s inbox (acking them), in the order they were handed out.
async fn drain(c: &Client, n: usize) -> Vec<String> {
    common::within(20, "the inbox to fill", async {
        let mut got = Vec::new();
        while got.len() < n {
            let opts = InboxOptions { wait_ms: Some(1000), limit: Some(100), ..Default::default() };
            let ids: Vec<String> =
                c.inbox(&opts).await.expect("inbox").messages.into_iter().map(|m| m.message.id).collect();
            if !ids.is_empty() {
                c.ack(ids.clone()).await.expect("ack");
            }
            got.extend(ids);
        }
        got
    })
    .await
}

fn to(id: &str, text: &str) -> SendMessage {
    SendMessage::text(format!("conversation:{id}"), text)
}

#[tokio::test]
async fn two_agents_and_a_person_share_one_total_order() {
    let hub = TestHub::start().await;
    let (a, a_client) = hub.agent("ann", &[]).await;
    let (b, b_client) = hub.agent("bob", &[]).await;
    let (u, u_client) = person(&hub, "una@example.com").await;
    let people = vec![agent_addr(&b.agent.id), format!("user:{u}")];
    let created = a_client
        .create_conversation(&CreateConversation { title: Some("launch".into()), participants: people })
        .await
        .expect("an agent creates a conversation")
        .conversation;
    let who: Vec<&str> = created.participants.iter().map(|p| p.address.as_str()).collect();
    assert_eq!(who, [agent_addr(&a.agent.id), agent_addr(&b.agent.id), format!("user:{u}")], "the creator first");
    let id = created.id.clone();

    // Two agents send at once, and the person in between.
    const EACH: usize = 10;
    let sender = |c: Client, name: &'static str| {
        let id = id.clone();
        async move {
            for n in 0..EACH {
                c.send(&to(&id, &format!("{name}-{n:02}"))).await.expect("a participant sends");
            }
        }
    };
    let (_, _, _) =
        tokio::join!(sender(a_client.clone(), "ann"), sender(b_client.clone(), "bob"), sender(u_client.clone(), "una"));
    let total = 3 * EACH;

    // Every participant reads the same history, numbered 1..n without gaps, in which each
    // sender's messages keep the order it sent them in.
    let seen = history(&u_client, &id).await;
    let seqs: Vec<i64> = seen.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
    let text = |m: &ConversationMessage| match &m.message.parts[0] {
        switchboard_core::api::Part::Text { text } => text.clone(),
        p => panic!("{p:?}"),
    };
    for name in ["ann", "bob", "una"] {
        let mine: Vec<String> = seen.iter().map(text).filter(|t| t.starts_with(name)).collect();
        let want: Vec<String> = (0..EACH).map(|n| format!("{name}-{n:02}")).collect();
        assert_eq!(mine, want, "{name}'s messages in the order sent");
    }
    assert!(seen.iter().all(|m| m.message.conversation_id.as_deref() == Some(id.as_str())));
    let ids: Vec<String> = seen.iter().map(|m| m.message.id.clone()).collect();
    for c in [&a_client, &b_client, &hub.admin()] {
        let theirs: Vec<String> = history(c, &id).await.into_iter().map(|m| m.message.id).collect();
        assert_eq!(theirs, ids, "one order for everyone");
    }

    // Each participant's inbox gets everyone else's messages, in the conversation's order;
    // the person reads its inbox with its token like an agent.
    for (c, me) in
        [(&a_client, agent_addr(&a.agent.id)), (&b_client, agent_addr(&b.agent.id)), (&u_client, format!("user:{u}"))]
    {
        let want: Vec<String> = seen.iter().filter(|m| m.message.from != me).map(|m| m.message.id.clone()).collect();
        assert_eq!(drain(c, want.len()).await, want, "{me}'s inbox");
    }

    // Read markers: forward only, with the unread count of others' messages after them.
    let marker = u_client.mark_read(&id, 5).await.expect("mark read");
    assert_eq!(marker.read_up_to, 5);
    let after_5 = seen[5..].iter().filter(|m| m.message.from != format!("user:{u}")).count() as i64;
    assert_eq!(marker.unread, after_5);
    assert_eq!(u_client.mark_read(&id, 3).await.unwrap().read_up_to, 5, "never back");
    let shown = u_client.get_conversation(&id).await.unwrap();
    assert_eq!(shown.last_seq, total as i64);
    assert_eq!(shown.unread, Some(after_5));
    let marks: Vec<i64> = shown.participants.iter().map(|p| p.read_up_to).collect();
    assert_eq!(marks, [0, 0, 5]);
    let before = hub.snapshot().await;
    let path = format!("/v1/conversations/{id}/read");
    for bad in [json!({"up_to": 0}), json!({"up_to": total + 1})] {
        let p = assert_problem(raw(&hub, "POST", &path, Some(ADMIN), Some(bad.to_string())).await, 403, "forbidden");
        assert!(p["detail"].as_str().unwrap().contains("participants"), "{p}");
        let e = u_client.mark_read(&id, bad["up_to"].as_i64().unwrap()).await.unwrap_err().to_string();
        assert!(e.contains("up_to"), "{e}");
    }
    assert_unchanged(&before, &hub.snapshot().await, "refused read markers");

    // A thread: a reply to the first message, and a reply to that reply.
    let root = seen[0].message.id.clone();
    let r1 = b_client.send(&SendMessage { in_reply_to: Some(root.clone()), ..to(&id, "re") }).await.unwrap().id;
    let r2 = a_client.send(&SendMessage { in_reply_to: Some(r1.clone()), ..to(&id, "re re") }).await.unwrap().id;
    let opts = HistoryOptions { thread: Some(root.clone()), ..Default::default() };
    let thread: Vec<String> =
        u_client.conversation_history(&id, &opts).await.unwrap().messages.into_iter().map(|m| m.message.id).collect();
    assert_eq!(thread, [root, r1, r2], "the root and its replies, through replies");
    hub.stop().await;
}

#[tokio::test]
async fn only_participants_read_or_send_and_a_removed_one_stops_receiving() {
    let hub = TestHub::start().await;
    let (a, a_client) = hub.agent("ann", &[]).await;
    let (b, b_client) = hub.agent("bob", &[]).await;
    let (c, c_client) = hub.agent("cat", &[]).await;
    let (b_addr, c_addr) = (agent_addr(&b.agent.id), agent_addr(&c.agent.id));

    // A participant that does not exist: 422 naming it, nothing written.
    let before = hub.snapshot().await;
    let bad = json!({ "participants": ["agent:nobody", "topic:x"] }).to_string();
    let p =
        assert_problem(raw(&hub, "POST", "/v1/conversations", Some(&a.api_key), Some(bad)).await, 422, "invalid_body");
    let paths: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["participants[1]", "participants[0]"], "{p}");
    assert_unchanged(&before, &hub.snapshot().await, "a refused conversation");

    let made = CreateConversation { title: None, participants: vec![b_addr.clone()] };
    let id = a_client.create_conversation(&made).await.unwrap().conversation.id;

    // An outsider: the conversation is not there for it, and it changes nothing (its
    // first request, which records it seen, made before).
    assert!(c_client.list_conversations(None, None).await.unwrap().conversations.is_empty());
    let before = hub.snapshot().await;
    let key = c.api_key.as_str();
    for (method, path, body) in [
        ("GET", format!("/v1/conversations/{id}"), None),
        ("GET", format!("/v1/conversations/{id}/messages"), None),
        ("POST", format!("/v1/conversations/{id}/read"), Some(json!({"up_to": 1}).to_string())),
        ("PUT", format!("/v1/conversations/{id}/participants/{c_addr}"), None),
        ("DELETE", format!("/v1/conversations/{id}/participants/{b_addr}"), None),
    ] {
        assert_problem(raw(&hub, method, &path, Some(key), body).await, 404, "not_found");
    }
    let send = json!({ "to": format!("conversation:{id}"), "parts": [{ "kind": "text", "text": "let me in" }] });
    assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(key), Some(send.to_string())).await,
        422,
        "unknown_recipient",
    );
    let label =
        json!({ "to": agent_addr(&a.agent.id), "conversation_id": id, "parts": [{ "kind": "text", "text": "x" }] });
    let p = assert_problem(
        raw(&hub, "POST", "/v1/messages", Some(key), Some(label.to_string())).await,
        422,
        "invalid_body",
    );
    assert_eq!(p["errors"][0]["path"], "conversation_id");
    assert_unchanged(&before, &hub.snapshot().await, "an outsider's attempts");
    // A free-form conversation_id that names no conversation is a label, as it always was.
    let free =
        SendMessage { conversation_id: Some("thread-42".into()), ..SendMessage::text(agent_addr(&a.agent.id), "x") };
    c_client.send(&free).await.expect("a free-form conversation_id");
    assert_eq!(hub.admin().list_conversations(None, None).await.unwrap().conversations.len(), 1, "the admin sees all");

    // Added (201, then 200 for the same), the outsider reads and receives.
    let added = b_client.add_participant(&id, &c_addr).await.expect("a participant adds another");
    assert_eq!(added.participants.len(), 3);
    let (status, _, _) =
        raw(&hub, "PUT", &format!("/v1/conversations/{id}/participants/{c_addr}"), Some(key), None).await;
    assert_eq!(status, 200, "already in");
    let first = a_client.send(&to(&id, "welcome")).await.unwrap();
    assert_eq!(drain(&c_client, 1).await, std::slice::from_ref(&first.id));
    assert_eq!(history(&c_client, &id).await.len(), 1);

    // Removed, bob no longer receives, nor reads.
    a_client.remove_participant(&id, &b_addr).await.expect("removed");
    let after = a_client.send(&to(&id, "bob has left")).await.unwrap();
    assert_eq!(after.recipients, std::slice::from_ref(&c_addr), "not to bob");
    let status = hub.admin().get_message(&after.id).await.unwrap();
    assert!(status.deliveries.iter().all(|d| d.recipient != b_addr), "{:?}", status.deliveries);
    assert_eq!(drain(&b_client, 1).await, std::slice::from_ref(&first.id), "bob got what came before");
    let e = b_client.conversation_history(&id, &HistoryOptions::default()).await.unwrap_err().to_string();
    assert!(e.contains("not_found"), "{e}");

    // A message to one participant with the conversation's id joins the history.
    let aside =
        SendMessage { conversation_id: Some(id.clone()), ..SendMessage::text(agent_addr(&a.agent.id), "aside") };
    let aside = c_client.send(&aside).await.expect("a participant's aside").id;
    let seen = history(&a_client, &id).await;
    assert_eq!(
        seen.iter().map(|m| (m.seq, m.message.id.clone())).collect::<Vec<_>>(),
        [(1, first.id), (2, after.id), (3, aside)]
    );

    // Every change was audited.
    let q = AuditQuery { action: None, ..Default::default() };
    let actions: Vec<String> = hub.admin().audit(&q).await.unwrap().events.into_iter().map(|e| e.action).collect();
    for want in ["conversation.create", "conversation.participant_add", "conversation.participant_remove"] {
        assert_eq!(actions.iter().filter(|a| *a == want).count(), 1, "{want} in {actions:?}");
    }
    hub.stop().await;
}

/// A webhook agent's reply to a message of its conversation goes to the whole conversation
/// (all but itself), in the conversation's order.
#[tokio::test]
async fn a_webhook_reply_goes_to_the_whole_conversation() {
    let hub = TestHub::start().await;
    let rx = common::receiver::Receiver::start(|_| common::receiver::Plan::StatusWith {
        status: 200,
        headers: vec![],
        body: r#"{"parts":[{"kind":"text","text":"on it"}]}"#.into(),
    })
    .await;
    let (hook, _) = hub.agent_at("hook", &[], Some(&rx.url)).await;
    let (_, a_client) = hub.agent("ann", &[]).await;
    let (u, u_client) = person(&hub, "una@example.com").await;
    let with = vec![agent_addr(&hook.agent.id), format!("user:{u}")];
    let id = a_client.create_conversation(&CreateConversation { title: None, participants: with }).await.unwrap();
    let id = id.conversation.id;
    let asked = a_client.send(&to(&id, "can someone?")).await.unwrap().id;
    // The person receives the question, then the agent's reply to it.
    let got = drain(&u_client, 2).await;
    assert_eq!(got[0], asked);
    let seen = history(&u_client, &id).await;
    assert_eq!(seen.len(), 2);
    let reply = &seen[1].message;
    assert_eq!((reply.id.as_str(), reply.from.as_str()), (got[1].as_str(), agent_addr(&hook.agent.id).as_str()));
    assert_eq!(reply.to, format!("conversation:{id}"));
    assert_eq!(reply.in_reply_to.as_deref(), Some(asked.as_str()));
    assert_eq!(drain(&a_client, 1).await, std::slice::from_ref(&got[1]), "the asker hears it too");
    hub.stop().await;
}

/// A viewer taking part reads the history and marks it read, but neither sends to it nor
/// starts or changes conversations.
#[tokio::test]
async fn a_viewer_reads_a_conversation_but_changes_nothing() {
    let hub = TestHub::start().await;
    let (a, a_client) = hub.agent("ann", &[]).await;
    let (v, v_client) = person_as(&hub, "vic@example.com", Role::Viewer).await;
    let with = vec![format!("user:{v}")];
    let id = a_client.create_conversation(&CreateConversation { title: None, participants: with }).await.unwrap();
    let id = id.conversation.id;
    a_client.send(&to(&id, "fyi")).await.unwrap();
    assert_eq!(history(&v_client, &id).await.len(), 1);
    assert_eq!(v_client.mark_read(&id, 1).await.expect("a viewer marks read").unread, 0);
    let before = hub.snapshot().await;
    let refused = [
        v_client.send(&to(&id, "me too")).await.unwrap_err().to_string(),
        v_client.create_conversation(&CreateConversation::default()).await.unwrap_err().to_string(),
        v_client.remove_participant(&id, &agent_addr(&a.agent.id)).await.unwrap_err().to_string(),
    ];
    for e in refused {
        assert!(e.contains("(forbidden)") && e.contains("viewer"), "{e}");
    }
    assert_unchanged(&before, &hub.snapshot().await, "a viewer's changes");
    hub.stop().await;
}
