//! The approvals pages: a person sees what waits for them with its deadline stated honestly,
//! answers with a button (a CSRF-checked form, with a form generated from the request's
//! schema), and the agent's `?wait=reply` returns the decision. The HTTP tests run on both
//! stores; the browser tests drive headless Chromium with axe-core (ignored without it; CI
//! runs them with `--ignored`).

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{TestHub, eventually, within};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use switchboard_core::api::CreateApproval;
use switchboard_core::people::CreateUser;
use switchboard_core::principal::Role;
use switchboard_core::time::{now_ms, rfc3339};

const PASSWORD: &str = "correct horse battery";

async fn user(hub: &TestHub, email: &str) -> String {
    let req =
        CreateUser { email: email.into(), name: email.into(), role: Role::Member, password: Some(PASSWORD.into()) };
    hub.admin().create_user(&req).await.expect("create user").user.id
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
}

async fn sign_in(hub: &TestHub, email: &str) -> String {
    let res = http()
        .post(format!("{}/sign-in", hub.url()))
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 303);
    res.headers()[SET_COOKIE].to_str().expect("cookie").split(';').next().expect("pair").to_owned()
}

fn ask(deciders: &[String], secs: i64, extra: Value) -> CreateApproval {
    let mut body = json!({
        "question": "Refund order 7781?",
        "parts": [{"kind": "text", "text": "The customer was charged twice"}],
        "options": [{"id": "approve", "label": "Refund"}, {"id": "reject", "label": "Decline"}],
        "deciders": deciders,
        "deadline": rfc3339(now_ms() + secs * 1000),
        "default_outcome": "reject",
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(body).unwrap()
}

async fn get_page(hub: &TestHub, cookie: &str, path: &str) -> (u16, String) {
    let res = http().get(format!("{}{path}", hub.url())).header(COOKIE, cookie).send().await.expect("get");
    (res.status().as_u16(), res.text().await.expect("page"))
}

fn csrf_of(page: &str) -> String {
    page.split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a form token")
        .to_owned()
}

#[tokio::test]
async fn a_person_answers_on_the_page_with_a_form_from_the_schema() {
    let hub = TestHub::start().await;
    let ann = user(&hub, "ann@example.com").await;
    let (agent, agent_c) = hub.agent("refunds", &[]).await;
    let schema = json!({"form_schema": {"type": "object", "required": ["amount"],
        "properties": {"amount": {"type": "number", "title": "Amount"}, "reason": {"enum": ["duplicate", "fraud"]}}}});
    let created = agent_c.create_approval(&ask(&[format!("user:{ann}")], 3600, schema)).await.unwrap().approval;
    let cookie = sign_in(&hub, "ann@example.com").await;

    for path in ["/approvals", "/approvals/x"] {
        let res = http().get(format!("{}{path}", hub.url())).send().await.expect("get");
        assert_eq!(res.headers()[LOCATION], "/sign-in", "{path} needs a session");
    }
    let (status, list) = get_page(&hub, &cookie, "/approvals").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("Refund order 7781?") && list.contains("expires in ") && list.contains("→ Decline"),
        "{list}"
    );
    let (_, page) = get_page(&hub, &cookie, &format!("/approvals/{}", created.id)).await;
    assert!(page.contains(r#"<label for="f-amount">Amount</label>"#), "a field per property: {page}");
    assert!(page.contains(r#"<option value="fraud">"#) && page.contains("The customer was charged twice"));
    let csrf = csrf_of(&page);
    let post = |form: Vec<(&'static str, String)>| {
        let url = format!("{}/approvals/{}/decide", hub.url(), created.id);
        http().post(url).header(COOKIE, cookie.clone()).form(&form).send()
    };

    let forged = post(vec![("csrf_token", "no".into()), ("option", "approve".into())]).await.unwrap();
    assert_eq!(forged.status(), 403);
    let bad = post(vec![("csrf_token", csrf.clone()), ("option", "approve".into()), ("f.amount", "lots".into())]).await;
    let bad = bad.unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("<code>form.amount</code>"), "the failing field is named");
    let missing = post(vec![("csrf_token", csrf.clone()), ("option", "approve".into())]).await.unwrap();
    assert_eq!(missing.status(), 422, "the schema's required field");
    assert!(agent_c.get_approval(&created.id).await.unwrap().approval.decisions.is_empty(), "nothing recorded");

    let form = vec![
        ("csrf_token", csrf),
        ("option", "approve".into()),
        ("f.amount", "12.5".into()),
        ("f.reason", "duplicate".into()),
        ("comment", "refund it".into()),
    ];
    let done = post(form).await.unwrap();
    assert_eq!(done.status(), 303);
    let shown = agent_c.get_approval(&created.id).await.unwrap().approval;
    assert_eq!(shown.state, "approved");
    assert_eq!(shown.decisions[0].form, Some(json!({"amount": 12.5, "reason": "duplicate"})));
    let (_, decided) = get_page(&hub, &cookie, "/approvals?tab=decided").await;
    assert!(decided.contains("Refund by user:"), "{decided}");
    let _ = agent;
    hub.stop().await;
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver (Debian chromium, chromium-driver); CI runs it with --ignored"]
async fn in_a_browser_a_person_approves_and_the_agents_wait_returns_the_decision() {
    let hub = TestHub::start().await;
    let ann = user(&hub, "ann@example.com").await;
    let (agent, _) = hub.agent("refunds", &[]).await;
    let mut body = serde_json::to_value(ask(&[], 600, json!({}))).unwrap();
    body.as_object_mut().unwrap().remove("deciders");
    let send =
        json!({"to": format!("user:{ann}"), "kind": "approval_request", "parts": [{"kind": "data", "data": body}]});
    let url = format!("{}/v1/messages?wait=reply&timeout_ms=60000", hub.url());
    let key = agent.api_key.clone();
    let waiting = tokio::spawn(async move {
        let res = reqwest::Client::new().post(url).bearer_auth(key).json(&send).send().await.unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    });

    let b = Browser::start().await;
    b.goto(&format!("{}/sign-in", hub.url())).await;
    b.fill("#email", "ann@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for_text("Inbox").await;
    b.click("nav a[href='/approvals']").await;
    b.wait_for_text("Refund order 7781?").await;
    b.assert_accessible("approvals").await;
    b.screenshots("approvals").await;
    b.click("table.list a").await;
    b.wait_for_text("expires in").await;
    assert!(b.text().await.contains("→ Decline"), "the page says what happens at the deadline");
    b.assert_accessible("approval").await;
    b.screenshots("approval").await;
    b.fill("#comment", "charged twice, refund").await;
    b.click("#option-approve").await;
    b.wait_for_text("decided by").await;

    let (status, answer) = within(30, "the agent's wait", waiting).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let data =
        answer["reply"]["parts"].as_array().unwrap().iter().find(|p| p["kind"] == "data").unwrap()["data"].clone();
    assert_eq!(data["outcome"], "approve");
    assert_eq!(data["decided_by"], format!("user:{ann}"));
    assert_eq!(data["comment"], "charged twice, refund");
    hub.stop().await;
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver (Debian chromium, chromium-driver); CI runs it with --ignored"]
async fn in_a_browser_an_unanswered_request_escalates_then_expires_to_its_default() {
    let hub = TestHub::start().await;
    let ann = user(&hub, "ann@example.com").await;
    let bea = user(&hub, "bea@example.com").await;
    let (_, agent_c) = hub.agent("refunds", &[]).await;
    let steps = json!({"escalation": [{"after_seconds": 1, "add": [format!("user:{bea}")]}]});
    let created = agent_c.create_approval(&ask(&[format!("user:{ann}")], 8, steps)).await.unwrap().approval;

    let b = Browser::start().await;
    b.goto(&format!("{}/sign-in", hub.url())).await;
    b.fill("#email", "bea@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for_text("Inbox").await;
    let page = format!("{}/approvals/{}", hub.url(), created.id);
    // Bea sees it once the escalation made her a decider, with the answer buttons.
    eventually(10, "the escalation to reach Bea", || async {
        b.goto(&page).await;
        b.text().await.contains(&format!("user:{bea}")).then_some(())
    })
    .await;
    assert_eq!(b.path().await, format!("/approvals/{}", created.id));
    assert!(b.text().await.contains("expires in"));
    b.assert_accessible("escalated approval").await;
    // Nobody answers: the deadline ends it with the default, on the page too.
    eventually(15, "the deadline to end it", || async {
        b.goto(&page).await;
        b.text().await.contains("decided by deadline").then_some(())
    })
    .await;
    let text = b.text().await;
    assert!(text.contains("expired") && text.contains("→ Decline"), "{text}");
    assert!(!text.contains("Your answer"), "an expired approval offers no buttons");
    b.assert_accessible("expired approval").await;
    b.goto(&format!("{}/approvals?tab=expired", hub.url())).await;
    b.wait_for_text("Refund order 7781?").await;
    hub.stop().await;
}
