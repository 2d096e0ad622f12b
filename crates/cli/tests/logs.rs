//! The hub's log on stderr as a file, a pipe or a log shipper receives it: text without
//! colour codes when stderr is not a terminal, and with `--log-format json` (or its
//! spellings) one JSON object per line, the shutdown notice and a fatal error included.

mod common;

use std::time::{Duration, Instant};

use switchboard_client::Client;
use switchboard_core::api::RegisterAgent;

use common::ADMIN;
use common::cli::{Running, switchboard};

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
    // The process is gone; its last lines may still be on their way through the pipe, and
    // what has come may end inside a line.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(hub.stderr().contains("shutting down") && hub.stderr().ends_with('\n')) {
        assert!(Instant::now() < deadline, "no shutdown notice on stderr: {}", hub.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    (hub.stderr(), id)
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
