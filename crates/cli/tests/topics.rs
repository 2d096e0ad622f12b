//! `switchboard topic …` against the real binary: an agent key subscribes its own agent,
//! the admin must name one, and the tables and `--json` show who listens.

use std::process::{Child, Command, Output};

mod common;

use common::{ADMIN, start_hub};
use switchboard_core::api::{RegisterAgent, SubscriberList, Subscription};

/// Runs the CLI against the hub at `url` with `token`.
fn switchboard(url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_URL", url)
        .env("SWITCHBOARD_TOKEN", token)
        .output()
        .expect("run switchboard")
}

fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn topic_commands_subscribe_the_keys_own_agent_and_show_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let (child, admin) = start_hub(dir.path(), &[]).await;
    let _hub = Killed(child);
    let ann = admin.register_agent(&RegisterAgent { name: "ann".into(), ..Default::default() }).await.unwrap();
    let url = admin.base_url().to_owned();

    let out = succeeded(&switchboard(&url, &ann.api_key, &["topic", "subscribe", "alerts/eu", "--json"]));
    let s: Subscription = serde_json::from_str(&out).unwrap();
    assert_eq!((s.topic.as_str(), s.agent_id.as_str()), ("alerts/eu", ann.agent.id.as_str()), "the key's own agent");

    let out = switchboard(&url, ADMIN, &["topic", "subscribe", "alerts/eu"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agent"), "the admin is told to name the agent");

    assert_eq!(succeeded(&switchboard(&url, ADMIN, &["topic", "list"])), "TOPIC      SUBSCRIBERS\nalerts/eu  1\n");
    let out = succeeded(&switchboard(&url, ADMIN, &["topic", "subscribers", "alerts/eu", "--json"]));
    let list: SubscriberList = serde_json::from_str(&out).unwrap();
    assert_eq!(list.subscribers, vec![s]);

    succeeded(&switchboard(&url, &ann.api_key, &["topic", "unsubscribe", "alerts/eu"]));
    assert!(admin.topics().await.unwrap().topics.is_empty());
}
