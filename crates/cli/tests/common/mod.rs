//! Shared by the process-level tests: start the real `switchboard` binary and wait on
//! conditions with deadlines.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_client::Client;

pub const ADMIN: &str = "sba_process-test-admin-token-01";

/// A free loopback port (there is a small window before the child binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `switchboard serve` on a free port with `dir` as its data dir and these extra
/// environment variables, and waits until `/health` answers.
pub async fn start_hub(dir: &Path, env: &[(&str, &str)]) -> (Child, Client) {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start switchboard");
    let client = Client::new(format!("http://127.0.0.1:{port}"), Some(ADMIN.into()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client.health().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "switchboard did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, client)
}

/// Waits until every id in `accepted` passes `arrived`, failing after `secs` seconds with
/// how many did not.
pub async fn wait_for_all(accepted: &[String], secs: u64, what: &str, arrived: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let missing = accepted.iter().filter(|id| !arrived(id)).count();
        if missing == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} accepted messages never {what}",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
