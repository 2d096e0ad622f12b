//! The web app's people pages over HTTP, on both stores: the inbox (newest first, unread,
//! filters, search), a message (opening marks it read, replies with text and files reach the
//! agent), conversations (history, live fragment, working status, writing to everyone), the
//! triage queue (route by hand), and `/live` (the unread count, pushed when a message lands).

mod common;

use common::web::{csrf_of, get, http, sign_in, user};
use common::{TestHub, eventually, within};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_DISPOSITION, COOKIE, LOCATION};
use switchboard_client::InboxOptions;
use switchboard_core::api::{CreateConversation, DeliveryState, Part, PutGroup, SendMessage};

fn text(to: &str, t: &str) -> SendMessage {
    SendMessage { to: to.into(), parts: vec![Part::text(t)], ..Default::default() }
}

/// The ids of the messages the inbox page links to, in page order.
fn listed(page: &str) -> Vec<String> {
    page.split(r#"<a href="/messages/"#).skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

#[tokio::test]
async fn the_inbox_is_newest_first_with_filters_search_and_opening_marks_read() {
    let hub = TestHub::start().await;
    let ann = user(&hub, "ann@example.com", "Ann").await;
    let (_, reporter) = hub.agent("reporter", &[]).await;
    let (reg_b, builder) = hub.agent("builder", &[]).await;
    let me = format!("user:{ann}");
    let first = reporter.send(&text(&me, "Quarterly NUMBERS are ready")).await.expect("send").id;
    let second = builder.send(&text(&me, "Build 50% done")).await.expect("send").id;
    let third = reporter.send(&text(&me, "lunch?")).await.expect("send").id;

    let cookie = sign_in(&hub, "ann@example.com").await;
    let (status, page) = get(&hub, &cookie, "/").await;
    assert_eq!(status, 200);
    assert_eq!(listed(&page), [third.clone(), second.clone(), first.clone()], "newest first");
    assert!(page.contains("3 unread"), "the heading counts the unread: {page}");

    let (_, found) = get(&hub, &cookie, "/?q=numbers").await;
    assert_eq!(listed(&found), std::slice::from_ref(&first), "search is case-insensitive");
    let (_, found) = get(&hub, &cookie, "/?q=50%25").await;
    assert_eq!(listed(&found), std::slice::from_ref(&second), "a % is looked for, not a wildcard");
    let (_, from) = get(&hub, &cookie, &format!("/?from=agent:{}", reg_b.agent.id)).await;
    assert_eq!(listed(&from), std::slice::from_ref(&second));
    let (_, none) = get(&hub, &cookie, "/?q=nothing-like-this").await;
    assert!(listed(&none).is_empty() && none.contains("No message matches"), "{none}");

    // Opening a message is reading it: the person's delivery is acknowledged.
    let (status, opened) = get(&hub, &cookie, &format!("/messages/{first}")).await;
    assert_eq!(status, 200);
    assert!(opened.contains("Quarterly NUMBERS are ready"), "{opened}");
    let m = reporter.get_message(&first).await.expect("get");
    let d = m.deliveries.iter().find(|d| d.recipient == me).expect("delivery");
    assert_eq!(d.state, DeliveryState::Acked, "opened means read");
    let (_, unread) = get(&hub, &cookie, "/?show=unread").await;
    assert_eq!(listed(&unread), [third.clone(), second.clone()], "only unread ones");

    // Another person cannot open it: it is not found, as the API answers.
    user(&hub, "bo@example.com", "Bo").await;
    let bo = sign_in(&hub, "bo@example.com").await;
    let (status, _) = get(&hub, &bo, &format!("/messages/{first}")).await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn a_reply_with_a_file_reaches_the_agent_and_a_forged_one_changes_nothing() {
    let hub = TestHub::start().await;
    let cy = user(&hub, "cy@example.com", "Cy").await;
    let (reg, agent) = hub.agent("drafter", &[]).await;
    let asked = agent.send(&text(&format!("user:{cy}"), "Approve the draft?")).await.expect("send").id;
    let cookie = sign_in(&hub, "cy@example.com").await;
    let (_, page) = get(&hub, &cookie, &format!("/messages/{asked}")).await;
    let csrf = csrf_of(&page);

    let form = |token: &str| {
        reqwest::multipart::Form::new()
            .text("csrf_token", token.to_owned())
            .text("text", "Yes, with the fix on page 2")
            .part(
                "file",
                reqwest::multipart::Part::bytes(b"line one\nline two\n".to_vec())
                    .file_name("notes.txt")
                    .mime_str("text/plain")
                    .expect("mime"),
            )
    };
    let url = format!("{}/messages/{asked}/reply", hub.url());
    let forged = http().post(&url).header(COOKIE, &cookie).multipart(form("forged")).send().await.expect("post");
    assert_eq!(forged.status(), 403);
    let res = http().post(&url).header(COOKIE, &cookie).multipart(form(&csrf)).send().await.expect("post");
    assert_eq!(res.status(), 303, "{:?}", res.text().await);

    let inbox = agent.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.expect("inbox");
    assert_eq!(inbox.messages.len(), 1, "one reply, not two: the forged form sent nothing");
    let reply = &inbox.messages[0].message;
    assert_eq!(reply.from, format!("user:{cy}"));
    assert_eq!(reply.in_reply_to.as_deref(), Some(asked.as_str()));
    assert_eq!(reply.parts[0], Part::text("Yes, with the fix on page 2"));
    let Part::File { file } = &reply.parts[1] else { panic!("a file part: {:?}", reply.parts) };
    assert_eq!(file.name.as_deref(), Some("notes.txt"));
    assert_eq!(file.media_type.as_deref(), Some("text/plain"));
    assert!(reg.agent.id.len() > 1);

    // The person's own reply opens, and its file downloads as an attachment.
    let res = http()
        .get(format!("{}/messages/{}/files/1", hub.url(), reply.id))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200);
    assert!(res.headers()[CONTENT_DISPOSITION].to_str().expect("disposition").starts_with("attachment"));
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), b"line one\nline two\n");
    hub.stop().await;
}

#[tokio::test]
async fn a_conversation_shows_history_statuses_and_live_fragments_and_takes_a_message() {
    let hub = TestHub::start().await;
    let di = user(&hub, "di@example.com", "Di").await;
    let (reg, agent) = hub.agent("summarizer", &[]).await;
    let (_, outsider) = hub.agent("outsider", &[]).await;
    let req = CreateConversation {
        title: Some("Q3 report".into()),
        participants: vec![format!("agent:{}", reg.agent.id), format!("user:{di}")],
    };
    let c = agent.create_conversation(&req).await.expect("create").conversation;
    let to = format!("conversation:{}", c.id);
    agent.send(&text(&to, "Here is the first draft")).await.expect("send");
    agent.set_status(&c.id, "summarizing the appendix…", Some(60)).await.expect("status");
    let refused = outsider.set_status(&c.id, "lurking", None).await.expect_err("not a participant");
    assert!(refused.to_string().contains("404") || refused.to_string().contains("not"), "{refused}");

    let cookie = sign_in(&hub, "di@example.com").await;
    let (status, page) = get(&hub, &cookie, &format!("/conversations/{}", c.id)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Q3 report") && page.contains("Here is the first draft"), "{page}");
    assert!(page.contains("is summarizing the appendix…"), "the agent's status shows: {page}");
    let (_, list) = get(&hub, &cookie, "/conversations").await;
    assert!(list.contains("Q3 report"), "{list}");
    let seen = agent.get_conversation(&c.id).await.expect("get");
    let marker = seen.participants.iter().find(|p| p.address == format!("user:{di}")).expect("di").read_up_to;
    assert_eq!(marker, 1, "showing the conversation moved the read marker");

    // The live fragment brings what came after, and the status once cleared is gone.
    agent.send(&text(&to, "Second draft, shorter")).await.expect("send");
    agent.clear_status(&c.id).await.expect("clear");
    let (_, live) = get(&hub, &cookie, &format!("/conversations/{}/live?after=1", c.id)).await;
    assert!(live.contains("Second draft, shorter") && !live.contains("Here is the first draft"), "{live}");
    assert!(!live.contains("summarizing"), "a cleared status is gone: {live}");

    // Writing to everyone: the agent receives it as a conversation message.
    let csrf = csrf_of(&page);
    let form = reqwest::multipart::Form::new().text("csrf_token", csrf).text("text", "Looks good to me");
    let res = http()
        .post(format!("{}/conversations/{}/send", hub.url(), c.id))
        .header(COOKIE, &cookie)
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 303);
    let got = eventually(10, "the agent receives the person's message", || async {
        let inbox = agent.inbox(&InboxOptions { wait_ms: Some(1000), ..Default::default() }).await.ok()?;
        inbox.messages.into_iter().find(|m| m.message.parts == vec![Part::text("Looks good to me")])
    })
    .await;
    assert_eq!(got.message.conversation_id.as_deref(), Some(c.id.as_str()));
    hub.stop().await;
}

#[tokio::test]
async fn a_person_routes_a_triage_item_by_hand_and_the_agent_receives_it() {
    let hub = TestHub::start().await;
    let eve = user(&hub, "eve@example.com", "Eve").await;
    let put = PutGroup { description: None, members: vec![eve.clone()] };
    hub.admin().put_group("triage", &put).await.expect("triage group");
    let (_, sender) = hub.agent("intake", &[]).await;
    let (_, invoices) = hub.agent("invoices", &["refund-invoices"]).await;
    let sent = sender.send(&text("auto", "zebra crossing paint colour question")).await.expect("send").id;

    let cookie = sign_in(&hub, "eve@example.com").await;
    let (status, page) = get(&hub, &cookie, "/triage").await;
    assert_eq!(status, 200);
    assert!(page.contains("zebra crossing paint colour question"), "{page}");
    assert!(page.contains(&format!("/triage/{sent}/route")), "a route form: {page}");
    let res = http()
        .post(format!("{}/triage/{sent}/route", hub.url()))
        .header(COOKIE, &cookie)
        .form(&[("csrf_token", csrf_of(&page).as_str()), ("capability", "refund-invoices")])
        .send()
        .await
        .expect("route");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/triage?routed=1");
    let inbox = invoices.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.expect("inbox");
    assert_eq!(inbox.messages.len(), 1, "the chosen agent receives it");
    assert_eq!(inbox.messages[0].message.id, sent);
    let (_, after) = get(&hub, &cookie, "/triage").await;
    assert!(after.contains("Routed to") && after.contains(&format!("user:{eve}")), "who chose is shown: {after}");
    hub.stop().await;
}

#[tokio::test]
async fn live_pushes_the_unread_count_when_a_message_lands() {
    let hub = TestHub::start().await;
    let fay = user(&hub, "fay@example.com", "Fay").await;
    let (_, agent) = hub.agent("pinger", &[]).await;
    let cookie = sign_in(&hub, "fay@example.com").await;
    let res = http().get(format!("{}/live", hub.url())).header(COOKIE, &cookie).send().await.expect("live");
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().expect("type").starts_with("text/event-stream"));
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    let mut next_count = async |seen: &mut String| -> i64 {
        loop {
            if let Some(at) = seen.find("event: unread\ndata: ") {
                let rest = &seen[at + 20..];
                if let Some(end) = rest.find('\n') {
                    let v: serde_json::Value = serde_json::from_str(&rest[..end]).expect("json");
                    *seen = rest[end..].to_owned();
                    return v["unread"].as_i64().expect("count");
                }
            }
            let chunk = body.next().await.expect("the stream stays open").expect("bytes");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    assert_eq!(within(10, "the first count", next_count(&mut seen)).await, 0);
    agent.send(&text(&format!("user:{fay}"), "ping")).await.expect("send");
    // The wake-up pushes the new count (a periodic tick may repeat the old one first).
    let n = within(10, "the count after the send", async {
        loop {
            let n = next_count(&mut seen).await;
            if n != 0 {
                return n;
            }
        }
    })
    .await;
    assert_eq!(n, 1);
    hub.stop().await;
}
