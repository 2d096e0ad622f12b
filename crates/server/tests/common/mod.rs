//! `TestHub`: the real server on an ephemeral port with a temporary store, and helpers that
//! make each test read like a user story.

#![allow(dead_code)]

pub mod receiver;

use std::future::Future;
use std::time::Duration;

use switchboard_client::Client;
use switchboard_core::api::{AgentRegistered, Capability, RegisterAgent};
use switchboard_server::{Config, Hub};

pub const ADMIN: &str = "sba_test-admin-token-0123456789";

pub struct TestHub {
    pub hub: Option<Hub>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestHub {
    pub async fn start() -> TestHub {
        TestHub::start_with(|_| {}).await
    }

    /// Starts with the test defaults changed by `tweak` (e.g. a short visibility timeout).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestHub {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN.into()),
            reaper_interval_ms: 50,
            allow_private_endpoints: true,
            push_retry_schedule_ms: vec![50, 50],
            ..Config::default()
        };
        tweak(&mut config);
        let hub = Hub::start(config.clone()).await.expect("hub starts");
        TestHub { hub: Some(hub), dir, config }
    }

    pub fn url(&self) -> String {
        self.hub.as_ref().expect("hub running").url()
    }

    pub fn admin(&self) -> Client {
        Client::new(self.url(), Some(ADMIN.into()))
    }

    pub fn anonymous(&self) -> Client {
        Client::new(self.url(), None)
    }

    /// Registers an agent with these capabilities; returns its registration and a client
    /// acting as it.
    pub async fn agent(&self, name: &str, caps: &[&str]) -> (AgentRegistered, Client) {
        self.agent_at(name, caps, None).await
    }

    /// Registers an agent with a push endpoint.
    pub async fn agent_at(&self, name: &str, caps: &[&str], endpoint: Option<&str>) -> (AgentRegistered, Client) {
        let req = RegisterAgent {
            endpoint: endpoint.map(str::to_owned),
            name: name.into(),
            capabilities: caps
                .iter()
                .map(|c| Capability {
                    name: (*c).into(),
                    description: None,
                    tags: vec![],
                    examples: vec![],
                    input_schema: None,
                    output_schema: None,
                })
                .collect(),
            ..Default::default()
        };
        let r = self.admin().register_agent(&req).await.expect("register agent");
        let c = self.admin().with_token(r.api_key.clone());
        (r, c)
    }

    /// Graceful stop, then a new node on the same data directory.
    pub async fn restart(&mut self) {
        self.hub.take().expect("hub running").shutdown().await;
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".into();
        self.hub = Some(Hub::start(config).await.expect("hub restarts"));
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.hub.take() {
            h.shutdown().await;
        }
    }
}

/// Polls `check` until it returns `Some`, failing the test after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `f` with a deadline, failing the test if it takes longer.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}
