//! People: users and roles, password sign-in with a session cookie and its CSRF token,
//! throttled failures, personal access tokens, and what each role may not do.

mod common;

use std::time::{Duration, Instant};

use common::{TestHub, agent_addr, assert_problem, eventually};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use switchboard_client::{AuditQuery, Client, ClientError, InboxOptions, Session};
use switchboard_core::api::SendMessage;
use switchboard_core::people::{CreateToken, CreateUser, Login, UpdateUser};
use switchboard_core::principal::Role;

const PASSWORD: &str = "correct horse battery";

/// Creates a user with `PASSWORD`; returns its id.
async fn user(hub: &TestHub, email: &str, role: Role) -> String {
    let req = CreateUser { email: email.into(), name: email.into(), role, password: Some(PASSWORD.into()) };
    hub.admin().create_user(&req).await.expect("create user").user.id
}

async fn login(hub: &TestHub, email: &str) -> Session {
    let req = Login { email: email.into(), password: PASSWORD.into(), tenant: None };
    hub.anonymous().login(&req).await.expect("sign in")
}

/// A client acting as the user by a new personal access token.
async fn as_user(hub: &TestHub, email: &str) -> Client {
    let s = login(hub, email).await;
    let t = hub.anonymous().create_token_in_session(&s, &token("test", None)).await.expect("create a token");
    hub.admin().with_token(t.token)
}

fn token(name: &str, days: Option<f64>) -> CreateToken {
    CreateToken { name: name.into(), expires_in_days: days }
}

fn problem(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Api(p) => (p.status, p.code, p.detail),
        e => panic!("expected a problem, got {e}"),
    }
}

/// A raw request with the session's cookie (and `csrf` as `X-CSRF-Token`, if given).
async fn with_cookie(
    hub: &TestHub,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", hub.url()))
        .header(COOKIE, format!("sb_session={cookie}"));
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("the hub answers")
}

async fn status_code(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ctype, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_password_sign_in_sets_an_http_only_lax_session_cookie() {
    let hub = TestHub::start().await;
    let id = user(&hub, "Ann@Example.com", Role::Member).await;
    let res = reqwest::Client::new()
        .post(format!("{}/v1/auth/login", hub.url()))
        .json(&json!({ "email": "ann@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers().get(SET_COOKIE).expect("a cookie").to_str().unwrap().to_owned();
    assert!(cookie.starts_with("sb_session=sbs_"), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.split("; ").any(|a| a == attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "no TLS here, so no Secure: {cookie}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], id.as_str());
    assert_eq!(body["user"]["role"], "member");
    assert!(body["csrf_token"].as_str().is_some_and(|t| t.len() >= 40), "{body}");

    let session = cookie.split(';').next().unwrap().trim_start_matches("sb_session=").to_owned();
    let who: Value = with_cookie(&hub, "GET", "/v1/whoami", &session, None, None).await.json().await.unwrap();
    assert_eq!(who["principal"], format!("user:{id}"));
    assert_eq!(
        who["user"],
        json!({ "id": id, "email": "ann@example.com", "name": "Ann@Example.com", "role": "member" })
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer_in_about_the_same_time() {
    let hub = TestHub::start().await;
    user(&hub, "ann@example.com", Role::Member).await;
    let attempt = |email: &'static str| {
        let anon = hub.anonymous();
        async move {
            let started = Instant::now();
            let e = anon
                .login(&Login { email: email.into(), password: "not the password".into(), tenant: None })
                .await
                .expect_err("refused");
            (problem(e), started.elapsed())
        }
    };
    let (mut wrong, mut unknown) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        let (a, t) = attempt("ann@example.com").await;
        wrong = wrong.min(t);
        let (b, u) = attempt("bob@example.com").await;
        unknown = unknown.min(u);
        assert_eq!(a, b, "the two refusals must not tell an email that exists");
        assert_eq!(a.0, 401);
        assert_eq!(a.1, "unauthenticated");
    }
    // Both check an argon2 hash (a dummy one for the unknown email), so neither is quick.
    assert!(unknown * 3 > wrong && wrong * 3 > unknown, "wrong password {wrong:?}, unknown email {unknown:?}");
}

#[tokio::test]
async fn a_cookie_request_that_changes_something_needs_the_csrf_token() {
    let hub = TestHub::start().await;
    user(&hub, "ann@example.com", Role::Member).await;
    let s = login(&hub, "ann@example.com").await;
    let body = json!({ "name": "laptop" });
    let before = hub.snapshot().await;
    let missing = with_cookie(&hub, "POST", "/v1/users/me/tokens", &s.cookie, None, Some(body.clone())).await;
    let p = assert_problem(status_code(missing).await, 403, "csrf_failed");
    assert!(p["detail"].as_str().unwrap().contains("X-CSRF-Token"), "{p}");
    let wrong = with_cookie(&hub, "POST", "/v1/users/me/tokens", &s.cookie, Some("nope"), Some(body.clone())).await;
    assert_problem(status_code(wrong).await, 403, "csrf_failed");
    common::assert_unchanged(&before, &hub.snapshot().await, "refused cookie requests");

    let right =
        with_cookie(&hub, "POST", "/v1/users/me/tokens", &s.cookie, Some(&s.answer.csrf_token), Some(body)).await;
    assert_eq!(right.status(), 201);
    // Reads need no CSRF token.
    let list = with_cookie(&hub, "GET", "/v1/users/me/tokens", &s.cookie, None, None).await;
    assert_eq!(list.status(), 200);
    // A bearer token wins over the cookie, and needs no CSRF token.
    let pat = hub.admin().create_token_in_session(&s, &token("cli", None)).await.unwrap().token;
    let res = reqwest::Client::new()
        .post(format!("{}/v1/users/me/tokens", hub.url()))
        .bearer_auth(&pat)
        .header(COOKIE, "sb_session=sbs_not-a-session")
        .json(&json!({ "name": "by bearer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A GET of the inbox leases messages, so a cookie request that the browser says another
/// site made is refused even without a body to forge; the hub's own pages pass.
#[tokio::test]
async fn a_cookie_request_from_another_site_is_refused_even_a_read() {
    let hub = TestHub::start().await;
    user(&hub, "ann@example.com", Role::Member).await;
    let s = login(&hub, "ann@example.com").await;
    let get = |headers: &'static [(&'static str, &'static str)]| {
        let mut req = reqwest::Client::new()
            .get(format!("{}/v1/inbox?wait_ms=0", hub.url()))
            .header(COOKIE, format!("sb_session={}", s.cookie));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move { status_code(req.send().await.expect("the hub answers")).await }
    };
    assert_problem(get(&[("sec-fetch-site", "cross-site")]).await, 403, "csrf_failed");
    assert_problem(get(&[("origin", "https://evil.example")]).await, 403, "csrf_failed");
    assert_eq!(get(&[("sec-fetch-site", "same-origin")]).await.0, 200);
    assert_eq!(get(&[]).await.0, 200, "no browser headers: not a browser, nothing to forge");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let hub = TestHub::start().await;
    user(&hub, "ann@example.com", Role::Member).await;
    let s = login(&hub, "ann@example.com").await;
    assert_eq!(with_cookie(&hub, "GET", "/v1/whoami", &s.cookie, None, None).await.status(), 200);
    let no_csrf = with_cookie(&hub, "POST", "/v1/auth/logout", &s.cookie, None, None).await;
    assert_problem(status_code(no_csrf).await, 403, "csrf_failed");
    assert_eq!(with_cookie(&hub, "GET", "/v1/whoami", &s.cookie, None, None).await.status(), 200, "still signed in");

    let out = with_cookie(&hub, "POST", "/v1/auth/logout", &s.cookie, Some(&s.answer.csrf_token), None).await;
    assert_eq!(out.status(), 204);
    let cleared = out.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cleared.starts_with("sb_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let after = with_cookie(&hub, "GET", "/v1/whoami", &s.cookie, None, None).await;
    assert_problem(status_code(after).await, 401, "unauthenticated");

    let audit = hub.admin().audit(&AuditQuery::default()).await.unwrap();
    let actions: Vec<_> = audit.events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"auth.login") && actions.contains(&"auth.logout"), "{actions:?}");
}

#[tokio::test]
async fn repeated_failures_for_one_account_are_throttled_with_retry_after() {
    let hub = TestHub::start().await;
    user(&hub, "ann@example.com", Role::Member).await;
    let bad = Login { email: "ann@example.com".into(), password: "guess guess guess".into(), tenant: None };
    for _ in 0..5 {
        assert_eq!(problem(hub.anonymous().login(&bad).await.unwrap_err()).0, 401);
    }
    let res = reqwest::Client::new()
        .post(format!("{}/v1/auth/login", hub.url()))
        .json(&json!({ "email": "ann@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "even the right password waits out the throttle");
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_problem(status_code(res).await, 429, "rate_limited");
    // Another account is not held up by this one.
    user(&hub, "bob@example.com", Role::Member).await;
    login(&hub, "bob@example.com").await;
    // The failures are in the audit log, without the password.
    let failed = eventually(10, "failed sign-ins audited", || async {
        let q = AuditQuery { action: Some("auth.login_failed".into()), ..Default::default() };
        let page = hub.admin().audit(&q).await.unwrap();
        (page.events.len() == 5).then_some(page)
    })
    .await;
    assert!(!serde_json::to_string(&failed).unwrap().contains("guess"));
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_throttled_across_accounts() {
    let hub = TestHub::start().await;
    user(&hub, "ann@example.com", Role::Member).await;
    // 20 failures from this address, none more than 4 for one account.
    for i in 0..20 {
        let guess =
            Login { email: format!("guess{}@example.com", i / 4), password: "wrong wrong wrong".into(), tenant: None };
        assert_eq!(problem(hub.anonymous().login(&guess).await.unwrap_err()).0, 401, "attempt {i}");
    }
    let right = Login { email: "ann@example.com".into(), password: PASSWORD.into(), tenant: None };
    let e = problem(hub.anonymous().login(&right).await.unwrap_err());
    assert_eq!((e.0, e.1.as_str()), (429, "rate_limited"), "{}", e.2);
}

#[tokio::test]
async fn a_personal_access_token_acts_as_its_user_until_it_expires_or_is_revoked() {
    let hub = TestHub::start().await;
    let id = user(&hub, "ann@example.com", Role::Member).await;
    let ann = as_user(&hub, "ann@example.com").await;
    assert_eq!(ann.whoami().await.unwrap().user.unwrap().id, id);

    // Two seconds' worth of a day: it works, then answers 401 saying it expired.
    let short = ann.create_token(&token("short", Some(2.0 / 86_400.0))).await.unwrap();
    assert!(short.token.starts_with("sbp_") && short.expires_at.is_some());
    let brief = hub.admin().with_token(short.token.clone());
    assert_eq!(brief.whoami().await.unwrap().principal, format!("user:{id}"));
    let expired = eventually(10, "the token expires", || async { brief.whoami().await.err().map(problem) }).await;
    assert_eq!(expired.0, 401);
    assert!(expired.2.contains("expired"), "{}", expired.2);

    // Listed without secrets, with its last use.
    let listed = eventually(10, "the last use is recorded", || async {
        let list = ann.list_tokens().await.unwrap();
        list.tokens.iter().any(|t| t.name == "test" && t.last_used_at.is_some()).then_some(list)
    })
    .await;
    assert_eq!(listed.tokens.len(), 2);
    assert!(!serde_json::to_string(&listed).unwrap().contains("sbp_"));

    // Revoked: 401 at once.
    let extra = ann.create_token(&token("extra", None)).await.unwrap();
    let extra_client = hub.admin().with_token(extra.token);
    extra_client.whoami().await.unwrap();
    ann.revoke_token(&extra.id).await.unwrap();
    assert_eq!(problem(extra_client.whoami().await.unwrap_err()).0, 401);
    assert_eq!(problem(ann.revoke_token(&extra.id).await.unwrap_err()).0, 404);
    let q = AuditQuery { actor: Some(format!("user:{id}")), ..Default::default() };
    let actions: Vec<_> = hub.admin().audit(&q).await.unwrap().events.into_iter().map(|e| e.action).collect::<Vec<_>>();
    assert!(actions.contains(&"token.create".into()) && actions.contains(&"token.revoke".into()), "{actions:?}");

    // Admins have no personal tokens.
    let e = problem(hub.admin().create_token(&token("x", None)).await.unwrap_err());
    assert_eq!((e.0, e.1.as_str()), (403, "forbidden"));
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_send() {
    let hub = TestHub::start().await;
    let (bot, _) = hub.agent("bot", &[]).await;
    user(&hub, "vi@example.com", Role::Viewer).await;
    let vi = as_user(&hub, "vi@example.com").await;
    assert_eq!(vi.list_agents(None, None).await.unwrap().agents.len(), 1);
    let before = hub.snapshot().await;
    let e = problem(vi.send(&SendMessage::text(agent_addr(&bot.agent.id), "hi")).await.unwrap_err());
    assert_eq!((e.0, e.1.as_str()), (403, "forbidden"));
    assert!(e.2.contains("viewer"), "{}", e.2);
    common::assert_unchanged(&before, &hub.snapshot().await, "a viewer's send");
}

#[tokio::test]
async fn a_member_sends_and_reads_its_inbox_but_administers_nothing() {
    let hub = TestHub::start().await;
    let (bot, bot_client) = hub.agent("bot", &[]).await;
    let id = user(&hub, "mem@example.com", Role::Member).await;
    let mem = as_user(&hub, "mem@example.com").await;

    mem.send(&SendMessage::text(agent_addr(&bot.agent.id), "hello bot")).await.expect("a member sends");
    bot_client.send(&SendMessage::text(format!("user:{id}"), "hello person")).await.unwrap();
    let inbox = mem.inbox(&InboxOptions { wait_ms: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 1);
    mem.ack(vec![inbox.messages[0].message.id.clone()]).await.unwrap();

    let register = mem.register_agent(&Default::default()).await.unwrap_err();
    assert_eq!(problem(register).0, 403);
    let new_user = CreateUser { email: "x@example.com".into(), name: "x".into(), role: Role::Member, password: None };
    let e = problem(mem.create_user(&new_user).await.unwrap_err());
    assert!(e.0 == 403 && e.2.contains("member"), "{e:?}");
    assert_eq!(problem(mem.list_users(None, None).await.unwrap_err()).0, 403);

    // Promoted, the same token administers at once.
    let promote = UpdateUser { role: Some(Role::Admin), ..Default::default() };
    hub.admin().update_user(&id, &promote).await.unwrap();
    mem.create_user(&new_user).await.expect("an admin now");
}

#[tokio::test]
async fn only_an_owner_makes_or_touches_owners() {
    let hub = TestHub::start().await;
    let owner_id = user(&hub, "own@example.com", Role::Owner).await;
    user(&hub, "adm@example.com", Role::Admin).await;
    let adm = as_user(&hub, "adm@example.com").await;
    let own = as_user(&hub, "own@example.com").await;
    let owner2 = CreateUser { email: "o2@example.com".into(), name: "o2".into(), role: Role::Owner, password: None };

    let before = hub.snapshot().await;
    let e = problem(adm.create_user(&owner2).await.unwrap_err());
    assert!(e.0 == 403 && e.2.contains("owner"), "{e:?}");
    assert_eq!(problem(adm.delete_user(&owner_id).await.unwrap_err()).0, 403);
    let demote = UpdateUser { role: Some(Role::Member), ..Default::default() };
    assert_eq!(problem(adm.update_user(&owner_id, &demote).await.unwrap_err()).0, 403);
    common::assert_unchanged(&before, &hub.snapshot().await, "an admin's refused changes to owners");

    own.create_user(&owner2).await.expect("an owner makes an owner");
    // An admin manages members.
    let m = CreateUser { email: "m@example.com".into(), name: "m".into(), role: Role::Member, password: None };
    let m = adm.create_user(&m).await.unwrap().user;
    adm.delete_user(&m.id).await.unwrap();
}

#[tokio::test]
async fn users_are_checked_and_unique_per_tenant() {
    let hub = TestHub::start().await;
    let admin = hub.admin();
    let before = hub.snapshot().await;
    let bad =
        CreateUser { email: "ann".into(), name: "Ann".into(), role: Role::Member, password: Some("short".into()) };
    let e = admin.create_user(&bad).await.unwrap_err();
    let ClientError::Api(p) = e else { panic!("a problem") };
    assert_eq!((p.status, p.code.as_str()), (422, "invalid_body"));
    let paths: Vec<_> = p.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["email", "password"]);
    assert!(p.errors[1].message.contains("12"), "{}", p.errors[1].message);
    common::assert_unchanged(&before, &hub.snapshot().await, "a refused user");

    user(&hub, "ann@example.com", Role::Member).await;
    let again = CreateUser { email: "ANN@example.com".into(), name: "Ann".into(), role: Role::Viewer, password: None };
    assert_eq!(problem(admin.create_user(&again).await.unwrap_err()).0, 409);
    // Another tenant may have its own Ann.
    let other = admin.create_tenant("other").await.unwrap();
    hub.admin().with_token(other.admin_token).create_user(&again).await.expect("another tenant");
}

#[tokio::test]
async fn deleting_a_user_ends_its_sessions_and_tokens() {
    let hub = TestHub::start().await;
    let id = user(&hub, "ann@example.com", Role::Member).await;
    let s = login(&hub, "ann@example.com").await;
    let ann = as_user(&hub, "ann@example.com").await;
    ann.whoami().await.unwrap();
    hub.admin().delete_user(&id).await.unwrap();
    assert_eq!(problem(ann.whoami().await.unwrap_err()).0, 401);
    assert_eq!(with_cookie(&hub, "GET", "/v1/whoami", &s.cookie, None, None).await.status(), 401);
    let snap = hub.snapshot().await;
    assert_eq!(snap.rows("sessions"), 0);
    assert_eq!(snap.rows("tokens"), 1, "only the admin token");
    assert_eq!(problem(hub.admin().get_user(&id).await.unwrap_err()).0, 404);
}

#[tokio::test]
async fn a_new_password_ends_the_sessions_and_the_old_one_stops_working() {
    let hub = TestHub::start().await;
    let id = user(&hub, "ann@example.com", Role::Member).await;
    let s = login(&hub, "ann@example.com").await;
    let change = UpdateUser { password: Some("a brand new password".into()), ..Default::default() };
    hub.admin().update_user(&id, &change).await.unwrap();
    assert_eq!(with_cookie(&hub, "GET", "/v1/whoami", &s.cookie, None, None).await.status(), 401);
    let old = Login { email: "ann@example.com".into(), password: PASSWORD.into(), tenant: None };
    assert_eq!(problem(hub.anonymous().login(&old).await.unwrap_err()).0, 401);
    let new = Login { password: "a brand new password".into(), tenant: Some("default".into()), ..old };
    hub.anonymous().login(&new).await.expect("the new password");
}
