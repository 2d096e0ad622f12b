//! Notification e-mails, against an SMTP sink on loopback: a request to a person arrives as
//! one e-mail with its sender, text and a signed link; the link leads to the request (through
//! sign-in); a bad or expired link says so; quiet hours hold requests for one digest; e-mail
//! off sends nothing; two nodes on one PostgreSQL send each once.

mod common;

use common::TestHub;
use common::smtp::{Mail, SmtpSink};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;
use switchboard_client::Client;
use switchboard_core::api::{NotificationPrefs, QuietHours, SendMessage};
use switchboard_core::people::{CreateToken, CreateUser, Login};
use switchboard_core::principal::Role;
use switchboard_server::cfg::{SmtpConfig, SmtpTls};
use switchboard_server::domain::notify::links::{Links, OpenLink};

const PASSWORD: &str = "correct horse battery";

/// A hub that e-mails through `sink`, looking for new requests every 50 ms.
async fn hub_with(sink: &SmtpSink) -> TestHub {
    let port = sink.port;
    TestHub::start_with(|c| {
        c.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Switchboard <hub@example.com>".into(),
        });
        c.notify_interval_ms = 50;
    })
    .await
}

/// A person who can sign in, and a client acting as them (a personal access token).
async fn person(hub: &TestHub, email: &str, name: &str) -> (String, Client) {
    let req =
        CreateUser { email: email.into(), name: name.into(), role: Role::Member, password: Some(PASSWORD.into()) };
    let id = hub.admin().create_user(&req).await.expect("create user").user.id;
    let s =
        hub.anonymous().login(&Login { email: email.into(), password: PASSWORD.into(), tenant: None }).await.unwrap();
    let req = CreateToken { name: "t".into(), expires_in_days: None };
    let t = hub.anonymous().create_token_in_session(&s, &req).await.expect("token").token;
    (id, hub.admin().with_token(t))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
}

/// The `/open/…` link in an e-mail.
fn link_in(mail: &Mail) -> String {
    let text = mail.text();
    let at = text.find("/open/").unwrap_or_else(|| panic!("no link in {text}"));
    let start = text[..at].rfind("http").expect("the link's scheme");
    text[start..].split_whitespace().next().expect("link").to_owned()
}

/// Waits until `address` has `n` e-mails, and returns them.
async fn mail_to(sink: &SmtpSink, address: &str, n: usize) -> Vec<Mail> {
    common::eventually(20, &format!("{n} e-mail(s) to {address}"), || async {
        let got = sink.mail_to(address);
        (got.len() >= n).then_some(got)
    })
    .await
}

/// The outbox rows, as (user, message, due_at, sent_at) — read from the store itself.
async fn outbox(hub: &TestHub) -> Vec<(String, String, i64, Option<i64>)> {
    let snap = hub.snapshot().await;
    let rows = snap.tables.get("notify_outbox").cloned().unwrap_or_default();
    rows.iter()
        .map(|r| {
            // SQLite: `a | b | …`; PostgreSQL: `(a,b,…)`.
            let r = r.trim_start_matches('(').trim_end_matches(')');
            let f: Vec<&str> = if r.contains(" | ") { r.split(" | ").collect() } else { r.split(',').collect() };
            let sent = f[6].trim();
            let sent = (!sent.is_empty() && sent != "NULL").then(|| sent.parse().expect("sent_at"));
            (f[1].to_owned(), f[2].to_owned(), f[4].parse().expect("due_at"), sent)
        })
        .collect()
}

/// The hub's link key, read from its store, to sign links as the hub would.
async fn link_key(hub: &TestHub) -> Vec<u8> {
    let snap = hub.snapshot().await;
    let row = snap.tables["hub_keys"].iter().find(|r| r.contains("open-link")).expect("the link key").clone();
    // SQLite shows the blob as hex; PostgreSQL's row text as \\x<hex>.
    let hex = row.split(|c: char| !c.is_ascii_hexdigit()).find(|w| w.len() == 64).expect("32 bytes of hex");
    (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[tokio::test]
async fn a_request_arrives_as_one_e_mail_whose_link_leads_to_it_through_sign_in() {
    let sink = SmtpSink::start().await;
    let hub = hub_with(&sink).await;
    let (ann, as_ann) = person(&hub, "ann@example.com", "Ann").await;
    let (_, bot) = hub.agent("deploy-bot", &[]).await;

    let asked = bot.send(&SendMessage::text(format!("user:{ann}"), "Ship 1.2 to production?")).await.unwrap();
    let mail = mail_to(&sink, "ann@example.com", 1).await.remove(0);
    assert_eq!(mail.header("Subject").as_deref(), Some("deploy-bot: Ship 1.2 to production?"));
    assert_eq!(mail.header("From").as_deref(), Some("Switchboard <hub@example.com>"));
    assert_eq!(mail.envelope_from, "hub@example.com");
    assert!(mail.header("To").unwrap().contains("ann@example.com"));
    let text = mail.text();
    assert!(text.contains("deploy-bot sent you a request") && text.contains("> Ship 1.2 to production?"), "{text}");
    let link = link_in(&mail);
    assert!(link.starts_with(&format!("{}/open/", hub.url())), "{link}");

    // Without a session the link goes through the sign-in form, which goes on to the message.
    let res = http().get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let next = format!("/messages/{}", asked.id);
    let to_sign_in = format!("/sign-in?next={}", next.replace('/', "%2F"));
    assert_eq!(res.headers()[LOCATION], to_sign_in.as_str());
    let form = http().get(format!("{}{to_sign_in}", hub.url())).send().await.unwrap().text().await.unwrap();
    // The template escapes `/` as `&#x2f;`, which the browser reads back as `/`.
    let form = form.replace("&#x2f;", "/");
    assert!(form.contains(&format!(r#"name="next" value="{next}""#)), "{form}");
    let signed_in = http()
        .post(format!("{}/sign-in", hub.url()))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD), ("next", &next)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()[LOCATION], next.as_str());
    let cookie = signed_in.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    // With a session, straight there.
    let res = http().get(&link).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()[LOCATION].to_str().unwrap()), (303, next.as_str()));

    // A reply to something Ann sent is not a request: no e-mail. An approval request's link
    // leads to the approval.
    let mine =
        as_ann.send(&SendMessage::text(format!("agent:{}", hub.agent("other", &[]).await.0.agent.id), "hi")).await;
    let mut reply = SendMessage::text(format!("user:{ann}"), "this answers you");
    reply.in_reply_to = Some(mine.unwrap().id);
    bot.send(&reply).await.unwrap();
    let mut approval = SendMessage::text(format!("user:{ann}"), "Approve the refund?");
    approval.metadata = Some(json!({ "approval_id": "apr_123" }));
    bot.send(&approval).await.unwrap();
    let got = mail_to(&sink, "ann@example.com", 2).await;
    assert!(got.iter().all(|m| !m.text().contains("this answers you")), "{got:?}");
    let last = got.last().unwrap();
    assert!(last.text().contains("Approve the refund?"), "{last:?}");
    let res = http().get(link_in(last)).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(res.headers()[LOCATION], "/approvals/apr_123");
    let settled = outbox(&hub).await;
    assert_eq!(settled.len(), 2, "the reply never entered the outbox: {settled:?}");
    // And nothing more was sent once everything in it was settled.
    common::eventually(10, "the outbox settled", || async {
        outbox(&hub).await.iter().all(|r| r.3.is_some()).then_some(())
    })
    .await;
    assert_eq!(sink.mail_to("ann@example.com").len(), 2);
}

#[tokio::test]
async fn a_bad_or_expired_link_gets_a_page_that_says_so() {
    let sink = SmtpSink::start().await;
    let hub = hub_with(&sink).await;
    let (ann, _) = person(&hub, "ann@example.com", "Ann").await;
    let (_, bot) = hub.agent("bot", &[]).await;
    let sent = bot.send(&SendMessage::text(format!("user:{ann}"), "hello")).await.unwrap();
    let tenant = hub.admin().whoami().await.unwrap().tenant;
    let links = Links::new(link_key(&hub).await);
    let sign = |expires_at| {
        links.sign(&OpenLink { tenant: tenant.clone(), user: ann.clone(), message: sent.id.clone(), expires_at })
    };
    let now = switchboard_core::time::now_ms();

    let good = http().get(format!("{}/open/{}", hub.url(), sign(now + 60_000))).send().await.unwrap();
    assert_eq!(good.status(), 303, "the hub's own key signs good links");
    let expired = http().get(format!("{}/open/{}", hub.url(), sign(now - 1000))).send().await.unwrap();
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.unwrap().contains("This link has expired"));
    let mut edited = sign(now + 60_000);
    edited.insert(3, 'x');
    for token in [edited.as_str(), "nonsense"] {
        let res = http().get(format!("{}/open/{token}", hub.url())).send().await.unwrap();
        assert_eq!(res.status(), 404, "{token}");
        assert!(res.text().await.unwrap().contains("This link is not valid"));
    }
}

#[tokio::test]
async fn quiet_hours_hold_requests_for_one_digest_and_e_mail_off_sends_nothing() {
    let sink = SmtpSink::start().await;
    let hub = hub_with(&sink).await;
    let (ann, as_ann) = person(&hub, "ann@example.com", "Ann").await;
    let (bob, as_bob) = person(&hub, "bob@example.com", "Bob").await;
    let (_, bot) = hub.agent("bot", &[]).await;

    // Preferences: the defaults, then quiet all day but the minute before now (so "now" is
    // in them, in Ann's time zone of UTC+2), and e-mail off for Bob.
    assert_eq!(as_ann.notification_prefs().await.unwrap(), NotificationPrefs { email: true, quiet_hours: None });
    let local = (switchboard_core::time::now_ms() / 60_000 + 120).rem_euclid(24 * 60);
    let hhmm = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(1440) % 60);
    let quiet = QuietHours { start: hhmm(local - 1), end: hhmm(local - 2), utc_offset_minutes: 120 };
    let prefs = NotificationPrefs { email: true, quiet_hours: Some(quiet) };
    assert_eq!(as_ann.put_notification_prefs(&prefs).await.unwrap(), prefs);
    as_bob.put_notification_prefs(&NotificationPrefs { email: false, quiet_hours: None }).await.unwrap();
    let bad = NotificationPrefs {
        email: true,
        quiet_hours: Some(QuietHours { start: "7".into(), end: "07:00".into(), utc_offset_minutes: 0 }),
    };
    match as_ann.put_notification_prefs(&bad).await {
        Err(switchboard_client::ClientError::Api(p)) => {
            assert_eq!(p.errors[0].path, "quiet_hours.start");
        }
        other => panic!("a bad time is refused: {other:?}"),
    }
    let e = bot.notification_prefs().await.unwrap_err();
    assert_eq!(e.code(), Some("forbidden"));

    // Two requests for Ann are held, not sent; Bob's is settled without an e-mail.
    let first = bot.send(&SendMessage::text(format!("user:{ann}"), "first question")).await.unwrap();
    bot.send(&SendMessage::text(format!("user:{bob}"), "bob's question")).await.unwrap();
    let second = bot.send(&SendMessage::text(format!("user:{ann}"), "second question")).await.unwrap();
    let now = switchboard_core::time::now_ms();
    common::eventually(20, "Ann's requests held to the end of quiet hours, Bob's settled", || async {
        let rows = outbox(&hub).await;
        let held = |id: &str| rows.iter().any(|r| r.1 == id && r.3.is_none() && r.2 > now + 30 * 60_000);
        let bob_settled = rows.iter().any(|r| r.0 == bob && r.3.is_some());
        (held(&first.id) && held(&second.id) && bob_settled).then_some(())
    })
    .await;
    assert!(sink.mail().is_empty(), "nothing is sent in quiet hours or with e-mail off: {:?}", sink.mail());

    // Quiet hours end (Ann takes them off): what was held goes out as one digest.
    as_ann.put_notification_prefs(&NotificationPrefs { email: true, quiet_hours: None }).await.unwrap();
    let digest = mail_to(&sink, "ann@example.com", 1).await.remove(0);
    assert_eq!(digest.header("Subject").as_deref(), Some("2 new requests in Switchboard"));
    let text = digest.text();
    assert!(text.contains("first question") && text.contains("second question"), "{text}");
    common::eventually(10, "the outbox settled", || async {
        outbox(&hub).await.iter().all(|r| r.3.is_some()).then_some(())
    })
    .await;
    assert_eq!(sink.mail().len(), 1, "one digest, nothing for Bob");
    let audit = hub
        .admin()
        .audit(&switchboard_client::AuditQuery {
            action: Some("notification_prefs.update".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.events.len(), 3, "each change of preferences is audited");
}

#[tokio::test]
async fn two_nodes_on_one_database_send_each_request_once() {
    let sink = SmtpSink::start().await;
    let hub = hub_with(&sink).await;
    let port = sink.port;
    let Some(url) = hub.database.as_ref().map(|d| d.url.clone()) else {
        eprintln!("two nodes need a shared PostgreSQL database (set {}); skipped", common::HUB_DATABASE_VAR);
        return;
    };
    let second = TestHub::start_with(|c| {
        c.database_url = Some(url);
        c.smtp = hub.config.smtp.clone().map(|s| SmtpConfig { port, ..s });
        c.notify_interval_ms = 50;
    })
    .await;
    let (registered, bot) = hub.agent("bot", &[]).await;
    let mut people = Vec::new();
    for i in 0..12 {
        let email = format!("p{i}@example.com");
        let req = CreateUser { email: email.clone(), name: format!("P{i}"), role: Role::Member, password: None };
        people.push((hub.admin().create_user(&req).await.unwrap().user.id, email));
    }
    for (i, (id, _)) in people.iter().enumerate() {
        // Half through each node.
        let c = if i % 2 == 0 { bot.clone() } else { Client::new(second.url(), Some(registered.api_key.clone())) };
        c.send(&SendMessage::text(format!("user:{id}"), format!("question {i}"))).await.unwrap();
    }
    common::eventually(30, "every request sent and settled", || async {
        let rows = outbox(&hub).await;
        (rows.len() == people.len() && rows.iter().all(|r| r.3.is_some())).then_some(())
    })
    .await;
    for (_, email) in &people {
        assert_eq!(sink.mail_to(email).len(), 1, "{email} gets exactly one e-mail");
    }
    second.stop().await;
}
