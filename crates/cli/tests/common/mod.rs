//! Shared by the process-level tests: start the real `switchboard` binary and wait on
//! conditions with deadlines.

#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use switchboard_client::Client;
use tokio::sync::watch;

pub mod cli;

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
    eventually(30, "switchboard to answer /health", || async { client.health().await.is_ok() }).await;
    (child, client)
}

/// For state only the hub can tell (over HTTP): asks `check` until it holds, failing after
/// `secs` seconds. The one place these tests poll; everything the test itself records is
/// waited on through [`Ids`] instead.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Message ids recorded by the test's own tasks (accepted sends, receipts), in a `watch`
/// channel so the test waits for a condition on them to become true, without polling.
#[derive(Debug)]
pub struct Ids {
    tx: watch::Sender<Vec<String>>,
}

impl Ids {
    pub fn new() -> Arc<Ids> {
        Arc::new(Ids { tx: watch::channel(Vec::new()).0 })
    }

    pub fn push(&self, id: String) {
        self.tx.send_modify(|v| v.push(id));
    }

    pub fn len(&self) -> usize {
        self.tx.borrow().len()
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.tx.borrow().clone()
    }

    /// Waits until `holds` is true of the ids, failing after `secs` seconds.
    pub async fn wait(&self, secs: u64, what: &str, mut holds: impl FnMut(&[String]) -> bool) {
        let mut rx = self.tx.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(secs), rx.wait_for(|v| holds(v))).await;
        assert!(waited.is_ok(), "timed out after {secs} s waiting for {what} ({} ids so far)", self.len());
    }

    /// Waits until every id of `expected` is among these.
    pub async fn wait_for_all(&self, expected: &[String], secs: u64, what: &str) {
        self.wait(secs, what, |got| {
            let got: HashSet<&String> = got.iter().collect();
            expected.iter().all(|id| got.contains(id))
        })
        .await;
    }
}

/// The address (and recipient text) of agent `id`, spelled by the one address type.
pub fn agent_addr(id: &str) -> String {
    switchboard_core::Recipient::agent_text(&switchboard_core::AgentId::from(id))
}
