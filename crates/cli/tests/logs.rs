//! The hub's log on stderr as a file, a pipe or a log shipper receives it: text without
//! colour codes when stderr is not a terminal, and with `--log-format json` (or its
//! spellings) one JSON object per line, the shutdown notice and a fatal error included; and
//! no token or secret in it, at any level.

mod common;

use std::time::{Duration, Instant};

use switchboard_client::Client;
use switchboard_core::api::RegisterAgent;

use common::cli::{Running, switchboard};
use common::{ADMIN, agent_addr};

/// A hub on a free port with a temporary store and `args` / `env` added, its stderr a pipe.
/// It registers an agent (the hub logs that at info) and is stopped with Ctrl-C; returns
/// everything it wrote to stderr and the agent's id.
async fn log_of_a_short_run(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = switchboard();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path()).args(args);
    // The defaults are under test: no colour-off switch or filter from the caller.
    cmd.env("SWITCHBOARD_ADMIN_TOKEN", ADMIN).env_remove("NO_COLOR").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut hub = Running::spawn(cmd);
    let line = hub.line(30, "the hub's `listening on` line");
    let url = line
        .strip_prefix("switchboard listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"));
    let admin = Client::new(url, Some(ADMIN.into()));
    let agent = RegisterAgent { name: "logged".into(), ..Default::default() };
    let id = admin.register_agent(&agent).await.unwrap().agent.id;
    hub.interrupt();
    assert!(hub.exit(30, "the hub after Ctrl-C").success(), "{}", hub.stderr());
    (shutdown_log(&hub), id)
}

/// The log of a hub that has exited, once its shutdown notice and last whole line have come
/// through the pipe (they may still be on their way when the process is gone).
fn shutdown_log(hub: &Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(hub.stderr().contains("shutting down") && hub.stderr().ends_with('\n')) {
        assert!(Instant::now() < deadline, "no shutdown notice on stderr: {}", hub.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    hub.stderr()
}

#[tokio::test]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let (log, id) = log_of_a_short_run(&[], &[]).await;
    let registered = log.lines().find(|l| l.contains("agent registered")).unwrap_or_else(|| panic!("{log}"));
    assert!(registered.contains(" INFO ") && registered.contains(&id), "{registered}");
    assert!(!log.contains('\x1b'), "escape codes in a log written to a pipe: {log:?}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_however_json_is_asked_for() {
    // Flags, and environment variables.
    type Way<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let ways: [Way; 3] = [
        (&["--log-format", "json"], &[]),
        (&[], &[("SWITCHBOARD_LOG_FORMAT", "json")]),
        // The older spelling still works.
        (&["--log-json"], &[]),
    ];
    for (args, env) in ways {
        let (log, id) = log_of_a_short_run(args, env).await;
        let events: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?} {env:?}: not JSON ({e}): {l:?}")))
            .collect();
        let registered = events.iter().find(|e| e["fields"]["message"] == "agent registered");
        let registered = registered.unwrap_or_else(|| panic!("{args:?} {env:?}: {log}"));
        assert_eq!((&registered["level"], &registered["fields"]["agent"]), (&"INFO".into(), &id.clone().into()));
        let notice = events.iter().filter_map(|e| e["fields"]["message"].as_str());
        assert_eq!(notice.filter(|m| m.starts_with("shutting down")).count(), 1, "{args:?} {env:?}: {log}");
        assert!(!log.contains('\x1b'), "{args:?} {env:?}: {log:?}");
    }
}

#[test]
fn a_fatal_error_is_a_json_line_too_when_the_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let mut cmd = switchboard();
    cmd.args(["serve", "--log-format", "json", "--config"]).arg(&missing).env_remove("RUST_LOG");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {log}"));
    assert_eq!(event["level"], "ERROR", "{log}");
    let message = event["fields"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("missing.toml"), "{log}");
}

/// Everything secret one run handled: the admin token, two agents' API keys, webhook secrets
/// before and after a rotation, tokens the hub refused, and a person's password (and a wrong
/// one), session cookie, CSRF token and personal access token. None may reach the log, even with
/// every crate logging at `trace` — the level someone turns on when chasing a bug, and whose
/// log then goes into a ticket.
#[tokio::test]
async fn no_token_or_secret_reaches_the_log_even_at_trace_level() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use switchboard_client::InboxOptions;
    use switchboard_core::api::SendMessage;

    // A webhook receiver on loopback, so that a push is signed with the agent's secret.
    let pushed = Arc::new(AtomicUsize::new(0));
    let counter = pushed.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir().unwrap();
    let mut cmd = switchboard();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path());
    cmd.env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
        .env("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", "true")
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1");
    let mut hub = Running::spawn(cmd);
    let line = hub.line(30, "the hub's `listening on` line");
    let url = line.strip_prefix("switchboard listening on ").and_then(|r| r.split(' ').next()).unwrap().to_owned();

    let admin = Client::new(&url, Some(ADMIN.into()));
    let reader = admin.register_agent(&RegisterAgent { name: "reader".into(), ..Default::default() }).await.unwrap();
    let hooked = RegisterAgent { name: "hooked".into(), endpoint: Some(hook), ..Default::default() };
    let hooked = admin.register_agent(&hooked).await.unwrap();
    let rotated = admin.rotate_webhook_secret(&hooked.agent.id).await.unwrap();
    let mut secrets = vec![
        ADMIN.to_owned(),
        reader.api_key.clone(),
        hooked.api_key.clone(),
        hooked.webhook_secret.clone(),
        rotated.secret.clone(),
    ];

    // A push, signed with the rotated secret (and the previous one, still in its grace).
    let as_reader = Client::new(&url, Some(reader.api_key.clone()));
    let to_hooked = SendMessage::text(agent_addr(&hooked.agent.id), "pushed");
    as_reader.send(&to_hooked).await.unwrap();
    // Pulls: the inbox and both streams, the SSE one with the key in its URL.
    admin.send(&SendMessage::text(agent_addr(&reader.agent.id), "pulled")).await.unwrap();
    let inbox = as_reader.inbox(&InboxOptions { wait_ms: Some(5_000), ..Default::default() }).await.unwrap();
    assert_eq!(inbox.messages.len(), 1);
    as_reader.ack(inbox.messages.iter().map(|m| m.message.id.clone()).collect()).await.unwrap();
    as_reader.stream().await.unwrap().close().await.unwrap();
    let sse = reqwest::get(format!("{url}/v1/events?access_token={}", reader.api_key)).await.unwrap();
    assert_eq!(sse.status(), 200);
    drop(sse);
    // Tokens the hub refuses are secrets too: a mistyped real one is one character away.
    for wrong in ["sbk_not-a-real-key-0123456789abcdef", "sba_not-the-admin-token-0123456789"] {
        secrets.push(wrong.to_owned());
        let refused = Client::new(&url, Some(wrong.to_owned())).whoami().await;
        assert!(refused.is_err(), "{wrong} was accepted");
    }
    // People: a password (and a wrong one), the session cookie and its CSRF token, and a
    // personal access token, used.
    use switchboard_core::people::{CreateToken, CreateUser, Login};
    let password = "a-password-under-test-42";
    let user = CreateUser {
        email: "ann@example.com".into(),
        name: "Ann".into(),
        role: switchboard_core::principal::Role::Member,
        password: Some(password.into()),
    };
    admin.create_user(&user).await.unwrap();
    let wrong = Login { email: "ann@example.com".into(), password: "a-wrong-password-under-test".into(), tenant: None };
    assert!(admin.login(&wrong).await.is_err());
    let session = admin.login(&Login { password: password.into(), ..wrong.clone() }).await.unwrap();
    let pat = CreateToken { name: "t".into(), expires_in_days: None };
    let pat = admin.create_token_in_session(&session, &pat).await.unwrap().token;
    Client::new(&url, Some(pat.clone())).whoami().await.unwrap();
    admin.logout(&session).await.unwrap();
    secrets.extend([
        password.to_owned(),
        wrong.password.clone(),
        session.cookie.clone(),
        session.answer.csrf_token.clone(),
        pat,
    ]);
    // An OAuth2 access token, issued and used, and a tampered one the hub refuses.
    let jwt = as_reader.oauth_token(&reader.agent.id, &reader.api_key).await.unwrap().access_token;
    Client::new(&url, Some(jwt.clone())).whoami().await.unwrap();
    let mut tampered = jwt.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(Client::new(&url, Some(tampered.clone())).whoami().await.is_err(), "a tampered JWT was accepted");
    secrets.extend([jwt, tampered]);
    common::eventually(30, "the push to reach the receiver", || {
        let pushed = pushed.clone();
        async move { pushed.load(Ordering::SeqCst) > 0 }
    })
    .await;

    hub.interrupt();
    assert!(hub.exit(30, "the hub after Ctrl-C").success(), "{}", hub.stderr());
    let log = shutdown_log(&hub);
    // The log really is at trace, and really covers the run: otherwise this proves nothing.
    assert!(log.contains("TRACE"), "no trace lines: the filter was not applied");
    assert!(log.contains(&reader.agent.id) && log.contains(&hooked.agent.id), "{log}");
    for secret in &secrets {
        // The secret part alone, without its recognisable prefix, must not appear either.
        let body = secret.split_once('_').map_or(secret.as_str(), |(_, rest)| rest);
        for (n, line) in log.lines().enumerate() {
            assert!(!line.contains(body), "line {} of the log holds a secret ({}…): {line}", n + 1, &secret[..6]);
        }
    }
}
