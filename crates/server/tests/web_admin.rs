//! The web app's admin pages: users and roles, agent keys, the policy, dead letters and the
//! audit log. The HTTP tests run everywhere, on both stores; the browser test needs Debian's
//! `chromium` and `chromium-driver` (ignored in a plain `cargo test`; CI runs it with
//! `--ignored`).

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::web::{PASSWORD, csrf_of, get, http, sign_in};
use common::{TestHub, agent_addr, assert_unchanged, eventually, within};
use reqwest::header::{COOKIE, LOCATION};
use switchboard_client::{AuditQuery, Client, InboxOptions};
use switchboard_core::api::{Part, SendMessage};
use switchboard_core::people::CreateUser;
use switchboard_core::principal::Role;

/// Creates a user with `role` who can sign in with `PASSWORD`; returns its id.
async fn user(hub: &TestHub, email: &str, name: &str, role: Role) -> String {
    let req = CreateUser { email: email.into(), name: name.into(), role, password: Some(PASSWORD.into()) };
    hub.admin().create_user(&req).await.expect("create user").user.id
}

/// POSTs a form with the session; returns its status, `Location` and text.
async fn post(hub: &TestHub, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let res = http().post(format!("{}{path}", hub.url())).header(COOKIE, cookie).form(form).send().await.expect("post");
    let location = res.headers().get(LOCATION).map(|l| l.to_str().expect("location").to_owned()).unwrap_or_default();
    (res.status().as_u16(), location, res.text().await.expect("page"))
}

/// The session's CSRF token, from any page's forms.
async fn csrf(hub: &TestHub, cookie: &str) -> String {
    csrf_of(&get(hub, cookie, "/").await.1)
}

/// A message to `to` that dies: the hub allows one attempt, `bob` nacks it, and his next
/// lease finds it out of attempts.
async fn dead_letter(hub: &TestHub, bob: &Client, to: &str, text: &str) -> String {
    let id = hub.admin().send(&SendMessage::text(to, text)).await.expect("send").id;
    let got = bob.inbox(&InboxOptions { limit: Some(10), ..Default::default() }).await.expect("inbox");
    assert!(got.messages.iter().any(|m| m.message.id == id), "bob took it");
    bob.nack(vec![id.clone()], None).await.expect("nack");
    let again = bob.inbox(&InboxOptions::default()).await.expect("inbox");
    assert!(again.messages.iter().all(|m| m.message.id != id), "it died");
    id
}

#[tokio::test]
async fn a_member_is_refused_every_admin_page_and_an_admin_sees_each() {
    let hub = TestHub::start().await;
    user(&hub, "ada@example.com", "Ada Admin", Role::Admin).await;
    user(&hub, "mo@example.com", "Mo Member", Role::Member).await;
    let (reg, _) = hub.agent("reporter", &["summarize"]).await;
    let keys = format!("/admin/agents/{}/keys", reg.agent.id);
    let pages = [
        ("/admin/users", "Add a user"),
        (keys.as_str(), "API keys of reporter"),
        ("/admin/policies", "Check a decision"),
        ("/admin/dead-letters", "No dead letters"),
        ("/admin/audit", "Chain intact"),
    ];

    let member = sign_in(&hub, "mo@example.com").await;
    let (_, home) = get(&hub, &member, "/").await;
    assert!(!home.contains(r#"href="/admin/users""#), "a member's menu has no Admin entry");
    for (path, _) in pages {
        let (status, page) = get(&hub, &member, path).await;
        assert_eq!(status, 403, "{path} for a member");
        assert!(page.contains("for a tenant&#x27;s owners and admins") && page.contains("member"), "{path}: {page}");
    }
    // Nor can a member post an admin form, even with its own good token.
    let token = csrf(&hub, &member).await;
    let (status, _, _) =
        post(&hub, &member, "/admin/dead-letters/replay", &[("csrf_token", &token), ("scope", "all")]).await;
    assert_eq!(status, 403, "a member's replay");

    let admin = sign_in(&hub, "ada@example.com").await;
    let (_, home) = get(&hub, &admin, "/").await;
    assert!(home.contains(r#"href="/admin/users""#), "an admin's menu has the Admin entry");
    let (_, agent) = get(&hub, &admin, &format!("/agents/{}", reg.agent.id)).await;
    assert!(agent.contains(&format!(r#"href="{keys}""#)), "the agent page links to its keys for an admin");
    for (path, want) in pages {
        let (status, page) = get(&hub, &admin, path).await;
        assert_eq!(status, 200, "{path} for an admin: {page}");
        assert!(page.contains(want), "{path} shows {want:?}: {page}");
    }
    // The verdict counts what the API lists (reading the pages wrote no entry).
    let listed = hub.admin().audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.expect("audit");
    let (_, audit) = get(&hub, &admin, "/admin/audit").await;
    let want = format!("Chain intact, {} entries.", listed.events.len());
    assert!(audit.contains(&want), "the audit page says {want:?}: {audit}");
    let (_, filtered) = get(&hub, &admin, "/admin/audit?action=auth.login&actor=&since=").await;
    let row = |action: &str| format!(r#"<td class="mono">{action}</td>"#);
    assert!(audit.contains(&row("user.create")), "the entries are listed: {audit}");
    assert!(filtered.contains(&row("auth.login")) && !filtered.contains(&row("user.create")), "filtered: {filtered}");
    let (status, bad) = get(&hub, &admin, "/admin/audit?since=yesterday").await;
    assert_eq!(status, 422);
    assert!(bad.contains("<code>since</code>"), "the bad filter is named: {bad}");

    // An agent that is not in the tenant is a 404 page.
    let (status, _) = get(&hub, &admin, "/admin/agents/0192f000-0000-7000-8000-000000000000/keys").await;
    assert_eq!(status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn a_replay_with_a_wrong_csrf_token_changes_nothing_and_the_right_one_redelivers() {
    let hub = TestHub::start_with(|c| c.max_attempts = 1).await;
    user(&hub, "ada@example.com", "Ada Admin", Role::Admin).await;
    let (bob_reg, bob) = hub.agent("bob", &[]).await;
    let to = agent_addr(&bob_reg.agent.id);
    let id = dead_letter(&hub, &bob, &to, "The <b>nightly</b> report").await;
    let cookie = sign_in(&hub, "ada@example.com").await;

    let (status, list) = get(&hub, &cookie, "/admin/dead-letters").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("The &lt;b&gt;nightly&lt;&#x2f;b&gt; report") && list.contains(&to),
        "listed, escaped: {list}"
    );
    let (status, one) = get(&hub, &cookie, &format!("/admin/dead-letters/{id}")).await;
    assert_eq!(status, 200);
    assert!(one.contains("nightly") && one.contains("dead"), "inspected: {one}");

    let token = csrf(&hub, &cookie).await;
    let before = hub.snapshot().await;
    let forged = [("csrf_token", "forged"), ("id", id.as_str()), ("scope", "selected")];
    let (status, _, page) = post(&hub, &cookie, "/admin/dead-letters/replay", &forged).await;
    assert_eq!(status, 403, "{page}");
    let nothing = [("csrf_token", token.as_str()), ("scope", "selected")];
    let (status, _, page) = post(&hub, &cookie, "/admin/dead-letters/replay", &nothing).await;
    assert_eq!(status, 422, "an empty choice is not everything: {page}");
    let unconfirmed = [("csrf_token", token.as_str()), ("id", id.as_str()), ("scope", "selected")];
    let (status, _, page) = post(&hub, &cookie, "/admin/dead-letters/purge", &unconfirmed).await;
    assert_eq!(status, 200);
    assert!(page.contains("Purge the dead letter of message") && page.contains(r#"value="yes""#), "asks: {page}");
    assert_unchanged(&before, &hub.snapshot().await, "a forged replay, an empty one and an unconfirmed purge");

    let (status, location, _) = post(&hub, &cookie, "/admin/dead-letters/replay", &unconfirmed).await;
    assert_eq!((status, location.as_str()), (303, "/admin/dead-letters?done=replayed&count=1"));
    let (_, list) = get(&hub, &cookie, &location).await;
    assert!(list.contains("1 dead delivery is pending again.") && list.contains("No dead letters"), "{list}");
    let got = eventually(10, "bob gets the replayed message", || {
        let bob = bob.clone();
        let id = id.clone();
        async move {
            let inbox = bob.inbox(&InboxOptions::default()).await.ok()?;
            inbox.messages.into_iter().find(|m| m.message.id == id)
        }
    })
    .await;
    assert_eq!(got.message.parts, vec![Part::text("The <b>nightly</b> report")]);

    // A purge, confirmed, deletes it.
    bob.nack(vec![id.clone()], None).await.expect("nack again");
    assert!(bob.inbox(&InboxOptions::default()).await.expect("inbox").messages.is_empty(), "dead again");
    let confirmed = [("csrf_token", token.as_str()), ("id", id.as_str()), ("scope", "selected"), ("confirm", "yes")];
    let (status, location, _) = post(&hub, &cookie, "/admin/dead-letters/purge", &confirmed).await;
    assert_eq!((status, location.as_str()), (303, "/admin/dead-letters?done=purged&count=1"));
    let dead = hub.admin().dead_letters(&Default::default()).await.expect("dead letters");
    assert!(dead.dead_letters.is_empty(), "purged");
    hub.stop().await;
}

#[tokio::test]
async fn users_keys_and_the_policy_change_through_their_forms_and_refusals_name_the_field() {
    let hub = TestHub::start().await;
    user(&hub, "ada@example.com", "Ada Admin", Role::Admin).await;
    let (reg, _) = hub.agent("reporter", &[]).await;
    let (other, _) = hub.agent("other", &[]).await;
    let cookie = sign_in(&hub, "ada@example.com").await;
    let token = csrf(&hub, &cookie).await;
    let t = token.as_str();

    // Users: a short password is refused by name and changes nothing; then a good one.
    let before = hub.snapshot().await;
    let short =
        [("csrf_token", t), ("email", "cy@example.com"), ("name", "Cy"), ("role", "member"), ("password", "short")];
    let (status, _, page) = post(&hub, &cookie, "/admin/users", &short).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("<code>password</code>") && page.contains(r#"value="cy@example.com""#), "{page}");
    let owner = [("csrf_token", t), ("email", "cy@example.com"), ("name", "Cy"), ("role", "owner"), ("password", "")];
    let (status, _, page) = post(&hub, &cookie, "/admin/users", &owner).await;
    assert_eq!(status, 403, "only an owner makes an owner: {page}");
    assert_unchanged(&before, &hub.snapshot().await, "refused user forms");
    let good = [("csrf_token", t), ("email", "cy@example.com"), ("name", "Cy"), ("role", "member"), ("password", "")];
    let (status, location, _) = post(&hub, &cookie, "/admin/users", &good).await;
    assert_eq!((status, location.as_str()), (303, "/admin/users?done=user_created"));
    let users = hub.admin().list_users(None, Some(1000)).await.expect("users").users;
    let cy = users.iter().find(|u| u.email == "cy@example.com").expect("created").id.clone();
    let (status, _, _) =
        post(&hub, &cookie, &format!("/admin/users/{cy}/role"), &[("csrf_token", t), ("role", "viewer")]).await;
    assert_eq!(status, 303);
    assert_eq!(hub.admin().get_user(&cy).await.expect("user").role, Role::Viewer);
    let (status, ask) = get(&hub, &cookie, &format!("/admin/users/{cy}/delete")).await;
    assert!(status == 200 && ask.contains("Delete Cy &lt;cy@example.com&gt;?"), "asks first: {ask}");
    let (status, location, _) = post(&hub, &cookie, &format!("/admin/users/{cy}/delete"), &[("csrf_token", t)]).await;
    assert_eq!((status, location.as_str()), (303, "/admin/users?done=user_deleted"));
    assert!(hub.admin().get_user(&cy).await.is_err(), "deleted");

    // Keys: a new one is shown once and works; revoked, it stops.
    let keys = format!("/admin/agents/{}/keys", reg.agent.id);
    let (status, _, page) = post(&hub, &cookie, &keys, &[("csrf_token", t)]).await;
    assert_eq!(status, 200);
    let key = page
        .split(r#"class="secret">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new key is on the page")
        .to_owned();
    let as_agent = Client::new(hub.url(), Some(key.clone()));
    assert_eq!(as_agent.whoami().await.expect("the key works").agent_id.as_deref(), Some(reg.agent.id.as_str()));
    let listed = hub.admin().list_agent_keys(&reg.agent.id).await.expect("keys").keys;
    let key_id = listed.last().expect("listed").id.clone();
    let (_, page) = get(&hub, &cookie, &keys).await;
    assert!(page.contains(&key_id) && !page.contains(&key), "listed, never shown again");
    let revoke = format!("{keys}/{key_id}/revoke");
    let (status, ask) = get(&hub, &cookie, &revoke).await;
    assert!(status == 200 && ask.contains("grace_seconds"), "asks, with the grace period: {ask}");
    let (status, _, _) = post(&hub, &cookie, &revoke, &[("csrf_token", t), ("grace_seconds", "999999999")]).await;
    assert_eq!(status, 400, "a grace period over 7 days is refused, as the API refuses it");
    let (status, location, _) = post(&hub, &cookie, &revoke, &[("csrf_token", t), ("grace_seconds", "0")]).await;
    assert_eq!((status, location), (303, format!("{keys}?done=key_revoked")));
    assert!(as_agent.whoami().await.is_err(), "the revoked key stops at once");

    // The policy: a bad rule is named and changes nothing; a good one is in force and checked.
    let before = hub.snapshot().await;
    let bad = r#"{"rules": [{"from": "*", "to": "*", "effect": "maybe"}]}"#;
    let (status, _, page) = post(&hub, &cookie, "/admin/policies", &[("csrf_token", t), ("policy", bad)]).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("rules[0].effect") && page.contains("maybe"), "named, and the text kept: {page}");
    assert_unchanged(&before, &hub.snapshot().await, "a refused policy");
    let from = agent_addr(&reg.agent.id);
    let to = agent_addr(&other.agent.id);
    let good = format!(r#"{{"rules": [{{"id": "reporter-out", "from": "{from}", "to": "*", "effect": "allow"}}]}}"#);
    let (status, location, _) = post(&hub, &cookie, "/admin/policies", &[("csrf_token", t), ("policy", &good)]).await;
    assert_eq!((status, location.as_str()), (303, "/admin/policies?done=policy_saved"));
    let (_, page) = get(&hub, &cookie, &format!("/admin/policies?from={from}&to={to}&action=send")).await;
    assert!(page.contains("Allowed") && page.contains("reporter-out"), "{page}");
    let (_, page) = get(&hub, &cookie, &format!("/admin/policies?from={to}&to={from}&action=send")).await;
    assert!(page.contains("Denied") && page.contains("no rule matched"), "{page}");
    hub.stop().await;
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver (Debian chromium, chromium-driver); CI runs it with --ignored"]
async fn in_a_browser_an_admin_opens_every_admin_page_and_replays_a_dead_letter() {
    let hub = TestHub::start_with(|c| c.max_attempts = 1).await;
    user(&hub, "ada@example.com", "Ada Admin", Role::Admin).await;
    user(&hub, "mo@example.com", "Mo Member", Role::Member).await;
    let (bob_reg, bob) = hub.agent("bob", &["summarize"]).await;
    let to = agent_addr(&bob_reg.agent.id);
    let id = dead_letter(&hub, &bob, &to, "Summarize the weekly numbers").await;
    let rules = serde_json::json!({"rules": [{"id": "all-in", "from": "*", "to": "*", "effect": "allow"}]});
    hub.admin().put_policy(&serde_json::from_value(rules).expect("rules")).await.expect("policy");
    let b = Browser::start().await;

    b.goto(&format!("{}/sign-in", hub.url())).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form.stack button[type=submit]").await;
    b.wait_for_text("Inbox").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text().await.contains("Ada Admin"), "signed in as the admin");
    b.click("nav a[href='/admin/users']").await;
    b.wait_for_text("Add a user").await;
    b.assert_accessible("admin users").await;
    b.screenshots("admin-users").await;

    b.goto(&format!("{}/agents/{}", hub.url(), bob_reg.agent.id)).await;
    b.click(&format!("a[href='/admin/agents/{}/keys']", bob_reg.agent.id)).await;
    b.wait_for_text("API keys of bob").await;
    b.click("form.inline button[type=submit]").await;
    b.wait_for_text("shown only this once").await;
    b.assert_accessible("admin keys").await;
    b.screenshots("admin-keys").await;

    b.click("a[href='/admin/policies']").await;
    b.wait_for_text("Check a decision").await;
    b.fill("#check-from", &to).await;
    b.fill("#check-to", "user:someone").await;
    b.click("#check ~ form button[type=submit]").await;
    b.wait_for_text("Allowed by rule 0").await;
    b.assert_accessible("admin policies").await;
    b.screenshots("admin-policies").await;

    b.click("a[href='/admin/audit']").await;
    b.wait_for_text("Chain intact").await;
    b.assert_accessible("admin audit").await;
    b.screenshots("admin-audit").await;

    // The tenth page of this visit: the live streams of the pages left must have been
    // closed, or this one waits (about a minute) for one of the browser's six connections.
    within(30, "the tenth page loads", b.goto(&format!("{}/admin/dead-letters", hub.url()))).await;
    b.wait_for_text("Summarize the weekly numbers").await;
    b.assert_accessible("admin dead letters").await;
    b.screenshots("admin-dead-letters").await;
    b.click(&format!("a[href='/admin/dead-letters/{id}']")).await;
    b.wait_for_text("Push attempts").await;
    b.assert_accessible("admin dead letter").await;
    b.screenshots("admin-dead-letter").await;
    b.click("a[href='/admin/dead-letters']").await;
    b.wait_for_text("Summarize the weekly numbers").await;
    b.click("input[name=id]").await;
    b.click("button[name=scope][value=selected]:not([formaction])").await;
    b.wait_for_text("1 dead delivery is pending again.").await;
    let got = eventually(10, "bob gets the replayed message", || {
        let bob = bob.clone();
        let id = id.clone();
        async move {
            let inbox = bob.inbox(&InboxOptions::default()).await.ok()?;
            inbox.messages.into_iter().find(|m| m.message.id == id)
        }
    })
    .await;
    assert_eq!(got.message.parts, vec![Part::text("Summarize the weekly numbers")]);
    // The browser goes first: its open live stream (`/live`) would hold the hub's shutdown.
    drop(b);
    hub.stop().await;
}
