//! The bench tool cannot rot: every Switchboard workload runs against the real binary with
//! tiny counts (seconds, no thresholds), and `bench report` writes its table and chart with
//! unreachable peers skipped, not failed.

mod common;

use std::process::{Child, Command};

use switchboard_bench::{BenchConfig, Workload};
use switchboard_client::Client;

use common::ADMIN;

/// The hub as a child process on a free port with a temporary store; killed on drop.
struct Hub {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let (child, client) = common::start_hub(dir.path(), &[("SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS", "true")]).await;
    Hub { child, url: client.base_url().to_owned(), _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_delivers_every_message_once() {
    let hub = start_hub().await;
    let admin = Client::new(hub.url.clone(), Some(ADMIN.into()));
    for workload in [Workload::Burst, Workload::Throughput, Workload::Latency, Workload::Push, Workload::Http] {
        let mut cfg = BenchConfig::for_workload(workload);
        cfg.messages = 100;
        let r = switchboard_bench::run(&admin, &cfg, |_, _| {}).await.unwrap();
        assert_eq!((r.messages, r.send_errors, r.duplicates), (100, 0, 0), "{workload:?}: {r:?}");
        // Counted message by message for every workload (http reads its sink back after the run).
        assert_eq!(r.lost, Some(0), "{workload:?}: accepted but never received");
        assert!(r.messages_per_s > 0.0 && r.p50_ms > 0.0 && r.p50_ms <= r.max_ms, "{workload:?}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_message_to_every_subscriber_once() {
    let hub = start_hub().await;
    let admin = Client::new(hub.url.clone(), Some(ADMIN.into()));
    let mut cfg = BenchConfig::for_workload(Workload::Fanout);
    (cfg.messages, cfg.consumers) = (20, 5);
    let r = switchboard_bench::run(&admin, &cfg, |_, _| {}).await.unwrap();
    assert_eq!((r.messages, r.deliveries, r.lost), (20, Some(100), Some(0)), "{r:?}");
    assert_eq!((r.send_errors, r.duplicates, r.consumers), (0, 0, 5), "{r:?}");
    assert!(r.deliveries_per_s.is_some_and(|d| d > 0.0) && r.p50_ms <= r.max_ms, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_with_wildcard_subscriptions_sets_them_up_and_none_matches() {
    let hub = start_hub().await;
    let admin = Client::new(hub.url.clone(), Some(ADMIN.into()));
    let mut cfg = BenchConfig::for_workload(Workload::Fanout);
    (cfg.messages, cfg.consumers, cfg.wildcard_subscriptions) = (10, 2, 30);
    let r = switchboard_bench::run(&admin, &cfg, |_, _| {}).await.unwrap();
    // Every (message, subscriber) pair once: the patterns add no delivery. (`messages` is the
    // sent count when the last receipt came, which may not have counted the last send yet.)
    assert_eq!((r.deliveries, r.lost, r.duplicates, r.send_errors), (Some(20), Some(0), 0, 0), "{r:?}");
    let patterns = admin.topics().await.unwrap().topics.into_iter().filter(|t| t.name.contains(['*', '>'])).count();
    assert_eq!(patterns, 30, "one per pattern, each with one subscriber");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_delivers_every_message_to_both_receivers_once() {
    let hub = start_hub().await;
    let admin = Client::new(hub.url.clone(), Some(ADMIN.into()));
    let mut cfg = BenchConfig::for_workload(Workload::Conversation);
    cfg.messages = 30;
    let r = switchboard_bench::run(&admin, &cfg, |_, _| {}).await.unwrap();
    assert_eq!((r.deliveries, r.lost, r.duplicates, r.send_errors), (Some(60), Some(0), 0, 0), "{r:?}");
    let conversations = admin.list_conversations(None, None).await.unwrap().conversations;
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    assert_eq!((conversations[0].participants.len(), conversations[0].last_seq), (3, 30), "every send took a seq");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_renders_every_page_for_a_person_with_a_full_inbox() {
    let hub = start_hub().await;
    let admin = Client::new(hub.url.clone(), Some(ADMIN.into()));
    let mut cfg = BenchConfig::for_workload(Workload::Pages);
    cfg.messages = 60;
    let r = switchboard_bench::run(&admin, &cfg, |_, _| {}).await.unwrap();
    let pages = r.pages.expect("page timings");
    let names: Vec<&str> = pages.iter().map(|p| p.page.as_str()).collect();
    for want in ["inbox", "inbox, search", "conversation", "triage", "agents", "message"] {
        assert!(names.contains(&want), "{want} was measured: {names:?}");
    }
    assert!(pages.iter().all(|p| p.bytes > 0 && p.p50_ms > 0.0 && p.p50_ms <= p.max_ms), "{pages:?}");
    let inbox = pages.iter().find(|p| p.page == "inbox").expect("inbox");
    let search = pages.iter().find(|p| p.page == "inbox, search").expect("search");
    assert!(inbox.bytes > search.bytes, "the search shows fewer messages than the inbox: {pages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reports_the_hubs_memory() {
    let hub = start_hub().await;
    let admin = Client::new(hub.url.clone(), Some(ADMIN.into()));
    let mut cfg = BenchConfig::for_workload(Workload::Connections);
    cfg.consumers = 20;
    let r = switchboard_bench::run(&admin, &cfg, |_, _| {}).await.unwrap();
    let m = r.memory.expect("memory figures");
    assert_eq!(m.connections, 20);
    assert!(m.rss_before_kib > 0 && m.rss_after_kib > 0, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_writes_table_and_chart_and_skips_unreachable_peers() {
    let hub = start_hub().await;
    let out = tempfile::tempdir().unwrap();
    let run = tokio::task::spawn_blocking({
        let (url, out) = (hub.url.clone(), out.path().to_owned());
        move || {
            Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .args(["bench", "report", "--messages", "50", "--subscribers", "3", "--connections", "5", "--json"])
                .arg("--also-hub")
                .arg(format!("switchboard (second)={url}"))
                .arg("--out-dir")
                .arg(&out)
                .args(["--nats-url", "nats://127.0.0.1:1", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2f"])
                .args(["--nats-server", "/nonexistent/nats-server"])
                .env("SWITCHBOARD_URL", url)
                .env("SWITCHBOARD_TOKEN", ADMIN)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["rows"][0]["throughput"]["messages"], 50);
    assert_eq!(json["rows"][0]["latency"]["messages"], 50);
    assert_eq!(json["rows"][0]["fanout"][0]["measured"]["deliveries"], 150);
    let hub_only = &json["rows"][0]["hub_only"];
    assert_eq!(hub_only[0]["workload"], "burst");
    assert_eq!(hub_only[0]["messages"], 50);
    assert_eq!(hub_only[1]["workload"], "http");
    assert_eq!(hub_only[2]["memory"]["connections"], 5);
    assert_eq!(json["rows"][1]["system"], "switchboard (second)");
    assert_eq!(json["rows"][1]["throughput"]["messages"], 50);
    let md = std::fs::read_to_string(out.path().join("RESULTS.md")).unwrap();
    assert_eq!(md.matches("skipped").count(), 4, "{md}");
    assert!(md.contains("| switchboard (SQLite) | D2 | 3 |"), "{md}");
    let svg = std::fs::read_to_string(out.path().join("results.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
}

/// The peer targets, with peers that are not there (a closed port, a missing binary).
fn bench_against_absent_peer(target: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["bench", "throughput", "--messages", "10", "--target", target])
        .args(["--nats-url", "nats://127.0.0.1:1", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2f"])
        .args(["--nats-server", "/nonexistent/nats-server"])
        // Never contacted: a peer run does not touch the hub.
        .env("SWITCHBOARD_URL", "http://127.0.0.1:1")
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .unwrap()
}

const PEER_TARGETS: [&str; 4] = ["jetstream-d1", "jetstream-d2", "jetstream-d0", "rabbitmq"];

/// The default binary leaves the brokers' clients out: asked for a peer, it fails and says
/// how to build one that has them (the hub workloads above run without them).
#[cfg(not(feature = "peers"))]
#[test]
fn a_peer_target_without_the_peers_feature_says_how_to_build_it() {
    for target in PEER_TARGETS {
        let out = bench_against_absent_peer(target);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{target}: {err}");
        assert!(out.stdout.is_empty(), "{target}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(err.starts_with(&format!("error: {target}: this build")), "{target}: {err}");
        assert!(err.contains("`cargo build --release -p switchboard-cli --features peers`"), "{target}: {err}");
    }
}

/// Built with the drivers, each peer target runs its driver: one that finds no broker
/// skips the run and says why, as `bench report` does.
#[cfg(feature = "peers")]
#[test]
fn a_peer_target_with_the_peers_feature_skips_an_absent_broker() {
    for target in PEER_TARGETS {
        let out = bench_against_absent_peer(target);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{target}: {err}");
        assert!(err.contains(&format!("skipping {target}: ")), "{target}: {err}");
        assert!(!err.contains("--features peers"), "{target}: {err}");
    }
}
