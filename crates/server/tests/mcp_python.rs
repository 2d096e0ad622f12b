//! The official `mcp` Python client, unmodified, against `/mcp` (issue 14): it lists the tools
//! and calls each one, reads resources and prompts, over both protocol revisions (2025-11-25
//! with the initialize handshake and a session; 2026-07-28 stateless after `server/discover`).
//! The script is `tests/py/mcp_client.py`; the interpreter is the one `SWITCHBOARD_TEST_PYTHON`
//! names (a venv with `.ci/requirements-standards.txt`, which `.ci/run` makes). With
//! `SWITCHBOARD_TEST_HUB_DATABASE_URL` set the hub runs on PostgreSQL.

mod common;

use common::{TestHub, within};
use serde_json::json;
use switchboard_client::InboxOptions;
use switchboard_core::api::{CreateConversation, Part, SendMessage};

/// Sets up two agents, an `echo` agent that answers every message, a person and a conversation,
/// then runs the script for `mode`; answers its output.
async fn run_python_client(mode: &str) -> String {
    let python = std::env::var("SWITCHBOARD_TEST_PYTHON").expect("SWITCHBOARD_TEST_PYTHON names a Python interpreter");
    let hub = TestHub::start().await;
    let (a, a_client) = hub.agent("alpha", &[]).await;
    let (b, _) = hub.agent("beta", &[]).await;
    let (_, echo) = hub.agent("echoer", &["echo"]).await;
    let req = switchboard_core::people::CreateUser {
        email: "decider@example.com".into(),
        name: "Decider".into(),
        role: switchboard_core::principal::Role::Member,
        password: None,
    };
    let person = hub.admin().create_user(&req).await.expect("create user").user.id;
    let req = CreateConversation { title: Some("py".into()), participants: vec![format!("agent:{}", b.agent.id)] };
    let conversation = a_client.create_conversation(&req).await.expect("a conversation").conversation.id;
    let welcome = SendMessage {
        to: format!("conversation:{conversation}"),
        parts: vec![Part::text("welcome")],
        ..Default::default()
    };
    a_client.send(&welcome).await.expect("send to the conversation");

    // Owned by this test: aborted when the script has finished.
    let echoer = tokio::spawn(async move {
        loop {
            let Ok(got) = echo.inbox(&InboxOptions { wait_ms: Some(1000), ..Default::default() }).await else {
                continue;
            };
            for m in got.messages {
                let text = m.message.parts.iter().find_map(|p| match p {
                    Part::Text { text } => Some(text.clone()),
                    _ => None,
                });
                let reply = SendMessage {
                    to: m.message.from.clone(),
                    parts: vec![Part::text(format!("echo: {}", text.unwrap_or_default()))],
                    in_reply_to: Some(m.message.id.clone()),
                    ..Default::default()
                };
                let _ = echo.send(&reply).await;
                let _ = echo.ack(vec![m.message.id]).await;
            }
        }
    });

    let setup = json!({
        "url": hub.url(), "modes": [mode],
        "a_key": a.api_key, "b_key": b.api_key, "b_id": b.agent.id,
        "person_id": person, "conversation_id": conversation,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/mcp_client.py");
    let out = within(
        120,
        "the Python MCP client",
        tokio::process::Command::new(&python).arg(script).arg(setup.to_string()).output(),
    )
    .await
    .expect("run the Python interpreter");
    echoer.abort();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the script failed ({}):\n{stdout}\n{stderr}", out.status);
    stdout
}

#[tokio::test]
#[ignore = "needs SWITCHBOARD_TEST_PYTHON (a venv with .ci/requirements-standards.txt)"]
async fn the_python_client_calls_every_tool_over_2025_11_25() {
    let out = run_python_client("legacy").await;
    assert_eq!(out.trim(), "ok legacy 2025-11-25 10");
}

#[tokio::test]
#[ignore = "needs SWITCHBOARD_TEST_PYTHON (a venv with .ci/requirements-standards.txt)"]
async fn the_python_client_calls_every_tool_over_2026_07_28() {
    let out = run_python_client("2026-07-28").await;
    assert_eq!(out.trim(), "ok 2026-07-28 2026-07-28 10");
}
