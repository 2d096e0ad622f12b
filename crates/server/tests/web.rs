//! The web app: pages for people, served by the hub at `/`. The first tests speak HTTP to the
//! pages (they run everywhere, on both stores); the browser tests drive a real headless
//! Chromium and check each page with axe-core (they need Debian's `chromium` and
//! `chromium-driver`, so they are ignored in a plain `cargo test`; CI installs both and runs
//! them with `--ignored`).

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::TestHub;
use common::web::{PASSWORD, http, sign_in, user};
use fantoccini::key::Key;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use switchboard_client::InboxOptions;
use switchboard_core::api::{CreateConversation, Part, PutGroup, SendMessage};

#[tokio::test]
async fn pages_need_a_session_and_the_sign_in_form_says_what_went_wrong() {
    let hub = TestHub::start().await;
    user(&hub, "ann@example.com", "Ann").await;
    for path in ["/", "/agents", "/agents/nobody"] {
        let res = http().get(format!("{}{path}", hub.url())).send().await.expect("get");
        assert_eq!(res.status(), 303, "{path} without a session");
        assert_eq!(res.headers()[LOCATION], "/sign-in", "{path}");
    }
    let res = http()
        .post(format!("{}/sign-in", hub.url()))
        .form(&[("email", "ann@example.com"), ("password", "wrong")])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(SET_COOKIE).is_none(), "no session for a wrong password");
    let page = res.text().await.expect("page");
    assert!(page.contains("the email or password is wrong"), "{page}");
    assert!(page.contains(r#"value="ann@example.com""#), "the form keeps the email: {page}");

    // Another site's form posting to the sign-in is refused (login CSRF).
    let res = http()
        .post(format!("{}/sign-in", hub.url()))
        .header("origin", "https://evil.example")
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 403);
    assert!(res.headers().get(SET_COOKIE).is_none());
    hub.stop().await;
}

#[tokio::test]
async fn the_inbox_shows_messages_escaped_with_strict_headers_and_sign_out_needs_the_form_token() {
    let hub = TestHub::start().await;
    let id = user(&hub, "bo@example.com", "Bo").await;
    let (_, agent) = hub.agent("reporter", &["summarize"]).await;
    let text = "<script>alert(1)</script> Quarterly numbers are ready";
    let m = SendMessage { to: format!("user:{id}"), parts: vec![Part::text(text)], ..Default::default() };
    agent.send(&m).await.expect("send to the person");

    let cookie = sign_in(&hub, "bo@example.com").await;
    let res = http().get(format!("{}/", hub.url())).header(COOKIE, &cookie).send().await.expect("inbox");
    assert_eq!(res.status(), 200);
    let csp = res.headers()[CONTENT_SECURITY_POLICY].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let page = res.text().await.expect("page");
    assert!(page.contains("&lt;script&gt;alert(1)") && page.contains("Quarterly numbers are ready"), "escaped: {page}");
    assert!(!page.contains("<script>alert(1)"), "never raw");

    // The directory lists the agent; its page shows the capability.
    let res = http().get(format!("{}/agents", hub.url())).header(COOKIE, &cookie).send().await.expect("agents");
    let page = res.text().await.expect("page");
    assert!(page.contains("reporter") && page.contains("summarize"), "{page}");

    // Sign-out with a wrong form token changes nothing; with the right one it ends the session.
    let res = http()
        .post(format!("{}/sign-out", hub.url()))
        .header(COOKIE, &cookie)
        .form(&[("csrf_token", "not-it")])
        .send()
        .await
        .expect("sign out");
    assert_eq!(res.status(), 403);
    let still = http().get(format!("{}/", hub.url())).header(COOKIE, &cookie).send().await.expect("inbox");
    assert_eq!(still.status(), 200, "the session survives a forged sign-out");
    let page = still.text().await.expect("page");
    let csrf = page
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out form carries the token")
        .to_owned();
    let res = http()
        .post(format!("{}/sign-out", hub.url()))
        .header(COOKIE, &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("sign out");
    assert_eq!(res.status(), 303);
    assert!(res.headers()[SET_COOKIE].to_str().expect("cookie").contains("Max-Age=0"));
    let after = http().get(format!("{}/", hub.url())).header(COOKIE, &cookie).send().await.expect("inbox");
    assert_eq!(after.status(), 303, "the ended session no longer opens pages");
    hub.stop().await;
}

#[tokio::test]
async fn assets_and_the_manifest_are_served_from_the_binary() {
    let hub = TestHub::start().await;
    for (path, ty) in [
        ("/assets/app.css", "text/css"),
        ("/assets/htmx.min.js", "text/javascript"),
        ("/assets/icon.svg", "image/svg+xml"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/sw.js", "text/javascript"),
    ] {
        let res = http().get(format!("{}{path}", hub.url())).send().await.expect("get");
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers()[CONTENT_TYPE].to_str().expect("type").starts_with(ty), "{path}");
        assert!(!res.bytes().await.expect("body").is_empty(), "{path}");
    }
    let res = http().get(format!("{}/assets/nothing.js", hub.url())).send().await.expect("get");
    assert_eq!(res.status(), 404);
    hub.stop().await;
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver (Debian chromium, chromium-driver); CI runs it with --ignored"]
async fn in_a_browser_a_person_signs_in_reads_the_inbox_browses_agents_and_signs_out() {
    let hub = TestHub::start().await;
    let id = user(&hub, "cy@example.com", "Cy Person").await;
    let (reg, agent) = hub.agent("translator", &["translate"]).await;
    let m = SendMessage {
        to: format!("user:{id}"),
        parts: vec![Part::text("Please check the French draft")],
        ..Default::default()
    };
    agent.send(&m).await.expect("send");
    let b = Browser::start().await;

    b.goto(&format!("{}/", hub.url())).await;
    assert_eq!(b.path().await, "/sign-in", "no session: the sign-in form");
    b.assert_accessible("sign-in").await;
    b.screenshots("sign-in").await;
    b.fill("#email", "cy@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for_text("Please check the French draft").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text().await.contains("Cy Person"), "the header names the person");
    b.assert_accessible("inbox").await;
    b.screenshots("inbox").await;

    b.click("nav a[href='/agents']").await;
    b.wait_for_text("translator").await;
    b.assert_accessible("agents").await;
    b.screenshots("agents").await;
    b.click(&format!("a[href='/agents/{}']", reg.agent.id)).await;
    b.wait_for_text("Capabilities").await;
    assert!(b.text().await.contains(&format!("agent:{}", reg.agent.id)));
    b.assert_accessible("agent").await;
    b.screenshots("agent").await;

    b.click(".who button[type=submit]").await;
    b.wait_for_text("You are signed out").await;
    b.goto(&format!("{}/agents", hub.url())).await;
    assert_eq!(b.path().await, "/sign-in", "signed out: pages send the browser to sign in again");
    hub.stop().await;
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver (Debian chromium, chromium-driver); CI runs it with --ignored"]
async fn in_a_browser_the_keyboard_alone_signs_in_and_reaches_every_link() {
    let hub = TestHub::start().await;
    user(&hub, "di@example.com", "Di").await;
    let b = Browser::start().await;
    b.goto(&format!("{}/sign-in", hub.url())).await;
    // The email field has the focus; Tab moves to the password; Enter submits.
    let email = b.client.active_element().await.expect("focus");
    assert_eq!(email.attr("id").await.expect("id").as_deref(), Some("email"), "the form starts at the email");
    email.send_keys("di@example.com").await.expect("type");
    email.send_keys(&String::from(char::from(Key::Tab))).await.expect("tab");
    let password = b.client.active_element().await.expect("focus");
    assert_eq!(password.attr("id").await.expect("id").as_deref(), Some("password"));
    password.send_keys(&format!("{PASSWORD}{}", char::from(Key::Enter))).await.expect("type and enter");
    b.wait_for_text("Inbox").await;
    assert_eq!(b.path().await, "/");

    // From the top of the inbox, Tab reaches the skip link first, then the app's links in order.
    let body = b.client.find(fantoccini::Locator::Css("body")).await.expect("body");
    body.send_keys(&String::from(char::from(Key::Tab))).await.expect("tab");
    let mut seen = Vec::new();
    for _ in 0..9 {
        let e = b.client.active_element().await.expect("focus");
        let label = e.text().await.expect("text");
        seen.push(label.trim().to_owned());
        e.send_keys(&String::from(char::from(Key::Tab))).await.expect("tab");
    }
    for want in ["Skip to content", "Inbox", "Conversations", "Triage", "Agents", "Sign out"] {
        assert!(seen.iter().any(|s| s == want), "Tab never reached {want:?}; it went {seen:?}");
    }
    // And Enter on the focused "Agents" link follows it.
    b.goto(&format!("{}/", hub.url())).await;
    let agents = b.client.find(fantoccini::Locator::Css("nav a[href='/agents']")).await.expect("link");
    agents.send_keys(&String::from(char::from(Key::Enter))).await.expect("enter");
    b.wait_for_text("No agents are registered yet").await;
    hub.stop().await;
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver (Debian chromium, chromium-driver); CI runs it with --ignored"]
async fn in_a_browser_messages_arrive_live_replies_reach_the_agent_and_triage_is_routed() {
    let hub = TestHub::start().await;
    let ann = user(&hub, "ann@example.com", "Ann Person").await;
    let put = PutGroup { description: None, members: vec![ann.clone()] };
    hub.admin().put_group("triage", &put).await.expect("triage group");
    let (reg, agent) = hub.agent("analyst", &[]).await;
    let (_, invoices) = hub.agent("invoices", &["refund-invoices"]).await;
    let wait = InboxOptions { wait_ms: Some(5000), ..Default::default() };
    let b = Browser::start().await;
    b.goto(&format!("{}/sign-in", hub.url())).await;
    b.fill("#email", "ann@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for_text("Nothing here yet").await;

    // A message arrives while the inbox is open: it appears, and the badge counts it, without
    // a reload (the marker set on this page survives).
    b.client.execute("window.sbMarker = 'still here'; return null;", vec![]).await.expect("mark the page");
    let sent = agent
        .send(&SendMessage {
            to: format!("user:{ann}"),
            parts: vec![Part::text("The numbers are in; shall I publish?")],
            ..Default::default()
        })
        .await
        .expect("send")
        .id;
    b.wait_for_text("The numbers are in; shall I publish?").await;
    let marker = b.client.execute("return window.sbMarker || null;", vec![]).await.expect("read the marker");
    assert_eq!(marker, serde_json::json!("still here"), "the message arrived live, not by reloading");
    let badge = b.client.find(fantoccini::Locator::Css("#unread-count")).await.expect("badge");
    assert_eq!(badge.text().await.expect("text"), "1");
    b.assert_accessible("inbox with a message").await;
    b.screenshots("inbox").await;

    // Open it by keyboard (J moves to the first message, Enter opens it) and reply: the
    // agent receives the reply.
    let body = b.client.find(fantoccini::Locator::Css("body")).await.expect("body");
    body.send_keys("j").await.expect("j");
    let focused = b.client.active_element().await.expect("focus");
    assert_eq!(focused.attr("href").await.expect("href"), Some(format!("/messages/{sent}")), "J focuses the message");
    focused.send_keys(&String::from(char::from(Key::Enter))).await.expect("enter");
    b.wait_for_text("Send reply").await;
    b.assert_accessible("message").await;
    b.screenshots("message").await;
    b.fill("#text", "Yes, publish it").await;
    b.click("form[action$='/reply'] button[type=submit]").await;
    b.wait_for_text("Answered by").await;
    let inbox = agent.inbox(&wait).await.expect("inbox");
    assert_eq!(inbox.messages[0].message.in_reply_to.as_deref(), Some(sent.as_str()));
    assert_eq!(inbox.messages[0].message.parts, vec![Part::text("Yes, publish it")]);

    // A conversation: the agent's status and its next message appear while the page is open.
    let req = CreateConversation {
        title: Some("Launch plan".into()),
        participants: vec![format!("agent:{}", reg.agent.id), format!("user:{ann}")],
    };
    let c = agent.create_conversation(&req).await.expect("conversation").conversation;
    let to = format!("conversation:{}", c.id);
    agent
        .send(&SendMessage { to: to.clone(), parts: vec![Part::text("Draft one")], ..Default::default() })
        .await
        .expect("send");
    b.click("nav a[href='/conversations']").await;
    b.wait_for_text("Launch plan").await;
    b.assert_accessible("conversations").await;
    b.screenshots("conversations").await;
    b.click(&format!("a[href='/conversations/{}']", c.id)).await;
    b.wait_for_text("Draft one").await;
    b.client.execute("window.sbMarker = 'conversation'; return null;", vec![]).await.expect("mark");
    agent.set_status(&c.id, "summarizing the feedback…", Some(120)).await.expect("status");
    b.wait_for_text("is summarizing the feedback…").await;
    agent.send(&SendMessage { to, parts: vec![Part::text("Draft two")], ..Default::default() }).await.expect("send");
    b.wait_for_text("Draft two").await;
    let marker = b.client.execute("return window.sbMarker || null;", vec![]).await.expect("marker");
    assert_eq!(marker, serde_json::json!("conversation"), "live, not reloaded");
    b.assert_accessible("conversation").await;
    b.screenshots("conversation").await;

    // Triage: what the router could not place, routed by hand, reaches the chosen agent.
    let item = agent
        .send(&SendMessage {
            to: "auto".into(),
            parts: vec![Part::text("zebra crossing paint colour")],
            ..Default::default()
        })
        .await
        .expect("send")
        .id;
    b.click("nav a[href='/triage']").await;
    b.wait_for_text("zebra crossing paint colour").await;
    b.assert_accessible("triage").await;
    b.screenshots("triage").await;
    b.fill(&format!("#cap-{item}"), "refund-invoices").await;
    b.click(&format!("form[action='/triage/{item}/route'] button[type=submit]")).await;
    b.wait_for_text("Routed to refund-invoices").await;
    let got = invoices.inbox(&wait).await.expect("inbox");
    assert_eq!(got.messages[0].message.id, item);

    b.click(".who button[type=submit]").await;
    b.wait_for_text("You are signed out").await;
    hub.stop().await;
}
