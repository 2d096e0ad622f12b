//! `/ready` follows whether the node can commit, not only whether its store answers (issue 9:
//! with a full disk every send failed while `/ready` said 200). Writes fail for real: on
//! SQLite the kernel refuses to grow the files (the process's file-size limit, the same
//! refusal a full disk gives), on PostgreSQL the database turns read-only. A test binary of
//! its own, because the file-size limit is the whole process's.

mod common;

use common::{TestHub, agent_addr, eventually};
use serde_json::Value;
use switchboard_core::api::{Part, SendMessage};

/// `GET /ready`: the status and the body.
async fn ready(hub: &TestHub) -> (u16, Value) {
    let res = reqwest::get(format!("{}/ready", hub.url())).await.expect("/ready answers");
    let status = res.status().as_u16();
    let problem = res.headers().get("content-type").is_some_and(|v| v == "application/problem+json");
    let body: Value = res.json().await.expect("a JSON body");
    assert!(status == 200 || problem, "a 503 is a problem document: {body}");
    (status, body)
}

/// What `kind` of failure to cause, and how to lift it, on each backend.
enum Breakage {
    /// SQLite: no file may grow past the write-ahead log's current size (`RLIMIT_FSIZE`;
    /// writes past it fail with EFBIG, which SQLite reports as a disk I/O error).
    FileSize { before: libc::rlimit },
    /// PostgreSQL: new sessions are read-only, and the node's sessions were cut.
    ReadOnly { client: tokio_postgres::Client, database: String },
}

impl Breakage {
    async fn start(hub: &TestHub) -> Breakage {
        match &hub.database {
            None => {
                // The default action of SIGXFSZ is to kill the process; ignored, the write fails.
                // SAFETY: installs SIG_IGN for one signal; no handler code runs.
                unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
                let mut before = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: getrlimit writes only into the struct on this frame.
                assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut before) }, 0);
                // Commits append to the write-ahead log: it may not grow any more.
                let wal = std::fs::metadata(hub.dir.path().join("switchboard.db-wal")).expect("the WAL exists");
                set_file_size_limit(wal.len() as libc::rlim_t, before.rlim_max);
                Breakage::FileSize { before }
            }
            Some(db) => {
                let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let database: String = client.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
                client
                    .batch_execute(&format!("ALTER DATABASE {database} SET default_transaction_read_only = on"))
                    .await
                    .unwrap();
                cut_other_sessions(&client).await;
                Breakage::ReadOnly { client, database }
            }
        }
    }

    async fn lift(self) {
        match self {
            Breakage::FileSize { before } => set_file_size_limit(before.rlim_cur, before.rlim_max),
            Breakage::ReadOnly { client, database } => {
                client
                    .batch_execute(&format!("ALTER DATABASE {database} SET default_transaction_read_only = off"))
                    .await
                    .unwrap();
                cut_other_sessions(&client).await;
            }
        }
    }
}

fn set_file_size_limit(cur: libc::rlim_t, max: libc::rlim_t) {
    let limit = libc::rlimit { rlim_cur: cur, rlim_max: max };
    // SAFETY: setrlimit reads the struct it is given; the soft limit stays within the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
}

/// Ends the node's sessions so that its new ones take the database's new defaults.
async fn cut_other_sessions(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn ready_is_503_with_the_reason_while_writes_fail_and_200_once_they_succeed() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.agent("alice", &[]).await;
    let (bob_reg, _bob) = hub.agent("bob", &[]).await;
    let to_bob = agent_addr(&bob_reg.agent.id);
    alice.send(&SendMessage::text(&to_bob, "before")).await.unwrap();
    assert_eq!(ready(&hub).await.0, 200);

    let breakage = Breakage::start(&hub).await;
    let reason = if hub.database.is_some() { "read-only" } else { "disk I/O error" };
    let big = SendMessage { parts: vec![Part::text("x".repeat(200_000))], ..SendMessage::text(&to_bob, "") };
    // Sends are refused; the store still answers reads, but the node is not ready, and says
    // why. (On PostgreSQL the first failures may be the cut sessions, not yet read-only ones.)
    let problem = eventually(20, "/ready to report the failed writes", || async {
        let refused = alice.send(&big).await.err()?;
        assert_eq!(refused.code(), Some("store_unavailable"), "{refused}");
        let (status, problem) = ready(&hub).await;
        (status == 503 && problem["detail"].as_str()?.contains(reason)).then_some(problem)
    })
    .await;
    assert_eq!(problem["code"], "store_unavailable");
    assert!(problem["detail"].as_str().unwrap().contains("cannot commit writes"), "{problem}");
    // Nothing is sent to a node that is not ready; its own probe writes keep it at 503.
    let probed = eventually(10, "a probe write to fail too", || async {
        let (status, problem) = ready(&hub).await;
        let failing_for =
            problem["detail"].as_str()?.split("failing for ").nth(1)?.split(' ').next()?.parse::<u64>().ok()?;
        (failing_for >= 1_500).then_some(status)
    })
    .await;
    assert_eq!(probed, 503);

    breakage.lift().await;
    eventually(20, "/ready to be 200 again once a write succeeds", || async {
        (ready(&hub).await.0 == 200).then_some(())
    })
    .await;
    eventually(20, "sends to be accepted again", || async { alice.send(&big).await.ok() }).await;
    hub.stop().await;
}
