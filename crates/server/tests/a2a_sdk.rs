//! A2A with the official Python client (`a2a-sdk`, unmodified): `tests/py/a2a_client.py`
//! reads the card, sends, streams, gets, lists, cancels, and sets a push config whose
//! authentication its loopback receiver checks; the agent behind is the script too, through
//! the ordinary agent API. Needs `SWITCHBOARD_TEST_PYTHON`, an interpreter with
//! `.ci/requirements-standards.txt` (`.ci/run` makes one). With
//! `SWITCHBOARD_TEST_HUB_DATABASE_URL` set it runs on PostgreSQL.

mod common;

use common::TestHub;

#[tokio::test]
#[ignore = "needs SWITCHBOARD_TEST_PYTHON (a venv with .ci/requirements-standards.txt)"]
async fn the_official_python_client_drives_every_operation() {
    let python = std::env::var("SWITCHBOARD_TEST_PYTHON").expect("SWITCHBOARD_TEST_PYTHON names a Python with a2a-sdk");
    let hub = TestHub::start().await;
    let (caller, _) = hub.agent("py-client", &[]).await;
    let (agent, _) = hub.agent("py-agent", &[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/a2a_client.py");
    let run = tokio::process::Command::new(python)
        .arg(script)
        .arg(hub.url())
        .arg(&agent.agent.id)
        .arg(&caller.api_key)
        .arg(&agent.api_key)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), run).await.expect("the script ends").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the script failed:\n{stdout}\n{stderr}");
    for step in
        ["card", "send", "get", "stream", "list", "push config create", "cancel", "push payload", "push config delete"]
    {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("ok {step}"))), "step `{step}` ran:\n{stdout}");
    }
    hub.stop().await;
}
