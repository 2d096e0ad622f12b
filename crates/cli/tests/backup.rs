//! `switchboard backup` of a live hub under load, and `switchboard restore` into a new data
//! directory: a hub started on the restored store holds every message acknowledged before
//! the backup began, acknowledged; sends went on during the backup and none failed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::cli::{Backend, Hub, switchboard};
use common::{agent_addr, start_hub};
use switchboard_client::InboxOptions;
use switchboard_core::api::{BatchItem, DeliveryState, RegisterAgent, SendMessage};

#[tokio::test]
async fn a_backup_under_load_restores_everything_acked_before_it() {
    let hub = Hub::start(Backend::Sqlite, "backup", &[]).await;
    let r = hub.admin.register_agent(&RegisterAgent { name: "b".into(), ..Default::default() }).await.unwrap();
    let agent = hub.admin.with_token(r.api_key.clone());
    let to = agent_addr(&r.agent.id);

    // Before the backup: 300 messages sent and acknowledged.
    let mut acked = Vec::new();
    for chunk in 0..3 {
        let batch = (0..100).map(|i| SendMessage::text(&to, format!("before {chunk}-{i}"))).collect();
        let sent = hub.admin.send_batch(batch).await.unwrap();
        acked.extend(sent.results.iter().filter_map(|r| match r {
            BatchItem::Accepted(a) => Some(a.id.clone()),
            BatchItem::Refused { .. } => None,
        }));
    }
    assert_eq!(acked.len(), 300);
    let mut left = acked.len();
    while left > 0 {
        let got = agent.inbox(&InboxOptions { limit: Some(100), ..Default::default() }).await.unwrap();
        let ids: Vec<String> = got.messages.iter().map(|m| m.message.id.clone()).collect();
        left -= agent.ack(ids).await.unwrap().ids.len();
    }

    // The load: a sender that keeps sending during the backup, and counts failures.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (admin, to, stop) = (hub.admin.clone(), to.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut sent, mut failed) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                let batch = (0..20).map(|i| SendMessage::text(&to, format!("during {sent}-{i}"))).collect();
                match admin.send_batch(batch).await {
                    Ok(b) if b.results.iter().all(|r| matches!(r, BatchItem::Accepted(_))) => sent += 20,
                    _ => failed += 1,
                }
            }
            (sent, failed)
        })
    };
    // Let the load get going before the backup starts (a few batches committed).
    common::eventually(30, "the load to be sending", || {
        let admin = hub.admin.clone();
        async move {
            let q = switchboard_client::DeliveryQuery { state: Some(DeliveryState::Pending), ..Default::default() };
            admin.deliveries(&q).await.is_ok_and(|d| d.deliveries.len() >= 40)
        }
    })
    .await;

    let file = hub.dir().join("backup.db");
    let mut backup = switchboard();
    backup.args(["backup", file.to_str().unwrap(), "--data-dir", hub.dir().to_str().unwrap(), "--json"]);
    let out = tokio::task::spawn_blocking(move || backup.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "backup failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    stop.store(true, Ordering::Relaxed);
    let (sent_during, failed) = load.await.unwrap();
    assert_eq!(failed, 0, "no send failed during the backup");
    assert!(sent_during > 0, "sends went on during the backup");
    assert!(report["messages"].as_i64().unwrap() >= 300, "{report}");

    // A second backup to the same file is refused: a backup never overwrites.
    let again = switchboard()
        .args(["backup", file.to_str().unwrap(), "--data-dir", hub.dir().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));

    // Restore into a new data dir and start a hub on it.
    let restored = tempfile::tempdir().unwrap();
    let out = switchboard()
        .args(["restore", file.to_str().unwrap(), "--data-dir", restored.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "restore failed: {}", String::from_utf8_lossy(&out.stderr));
    let refused = switchboard()
        .args(["restore", file.to_str().unwrap(), "--data-dir", restored.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a restore does not replace a database without --force");
    let (mut child, admin) = start_hub(restored.path(), &[]).await;
    for id in &acked {
        let m = admin.get_message(id).await.unwrap_or_else(|e| panic!("{id} is in the restored store: {e}"));
        assert_eq!(m.deliveries[0].state, DeliveryState::Acked, "{id}");
    }
    let me = admin.with_token(r.api_key.clone()).whoami().await.expect("the agent's key of the backup works");
    assert_eq!(me.agent_id.as_deref(), Some(r.agent.id.as_str()));
    let _ = child.kill();
    let _ = child.wait();
}
