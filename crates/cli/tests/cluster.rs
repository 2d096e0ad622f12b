//! Several `switchboard serve` nodes on one PostgreSQL: a node dies mid-stream, or loses its
//! database, and nothing accepted is lost. Each test makes a database of its own on the server
//! `SWITCHBOARD_TEST_DATABASE_URL` names. They are `#[ignore]`d, so that a run without
//! PostgreSQL reports them as ignored rather than passed; `.ci/run` runs them with `--ignored`.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{Ids, agent_addr, eventually, free_port, start_hub};
use switchboard_client::Client;
use switchboard_core::api::{RegisterAgent, SendMessage};

/// A fresh database on the test server, dropped when the guard goes.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    /// Asked for (with `--ignored`) without a server, the test fails and says why.
    fn create(prefix: &str) -> Database {
        let Some(base) = std::env::var("SWITCHBOARD_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            panic!(
                "the cluster tests need PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL \
                 (e.g. postgres://postgres@127.0.0.1:5432/test); see the README's \"Run the tests\""
            );
        };
        let (server, _) = base.rsplit_once('/').expect("database URL ends in /<db>");
        let name = format!("{prefix}_{}", switchboard_core::new_id().simple());
        let admin_url = format!("{server}/postgres");
        let ok = Command::new("psql").args([&admin_url, "-qc", &format!("CREATE DATABASE {name}")]).status().unwrap();
        assert!(ok.success(), "cannot create the test database");
        Database { url: format!("{server}/{name}"), admin_url, name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin_url, "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .stderr(Stdio::null())
            .status();
    }
}

struct Node {
    child: Child,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn node(database_url: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let env = [("SWITCHBOARD_DATABASE_URL", database_url), ("SWITCHBOARD_VISIBILITY_TIMEOUT_MS", "2000")];
    let (child, client) = start_hub(dir.path(), &env).await;
    Node { child, client, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn three_nodes_lose_nothing_when_the_consumers_node_dies() {
    let db = Database::create("sb_cluster");
    let mut nodes = vec![node(&db.url).await, node(&db.url).await, node(&db.url).await];
    let bob =
        nodes[0].client.register_agent(&RegisterAgent { name: "bob".into(), ..Default::default() }).await.unwrap();
    let to = agent_addr(&bob.agent.id);

    // The consumer reads on node 1 (the one that will die), then on node 2.
    let received = Ids::new(); // every receipt, duplicates included
    let consumer_urls = vec![nodes[1].client.base_url().to_owned(), nodes[2].client.base_url().to_owned()];
    let stop = Arc::new(AtomicBool::new(false));
    let (r, s, key) = (received.clone(), stop.clone(), bob.api_key.clone());
    let consumer = tokio::spawn(async move {
        for url in consumer_urls {
            let c = Client::new(url, Some(key.clone()));
            let Ok(mut stream) = c.stream().await else { continue };
            while !s.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), stream.next_message()).await {
                    Err(_) => continue,
                    Ok(Ok(Some(m))) => {
                        r.push(m.message.id.clone());
                        if stream.ack(&m.message.id).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => break, // the node went away: go to the next one
                }
            }
        }
    });

    // Senders through all three nodes; node 1 dies after 300 accepted sends.
    let mut accepted = Vec::new();
    let mut killed = false;
    let mut i = 0;
    while accepted.len() < 900 {
        let mut batch = tokio::task::JoinSet::new();
        for n in &nodes {
            for _ in 0..4 {
                i += 1;
                let (c, to) = (n.client.clone(), to.clone());
                batch.spawn(async move { c.send(&SendMessage::text(&to, format!("m{i}"))).await });
            }
        }
        while let Some(r) = batch.join_next().await {
            if let Ok(Ok(a)) = r {
                accepted.push(a.id);
            }
        }
        if !killed && accepted.len() >= 300 {
            nodes[1].child.kill().unwrap(); // SIGKILL, mid-stream
            nodes[1].child.wait().unwrap();
            nodes.remove(1);
            killed = true;
        }
    }
    received.wait_for_all(&accepted, 60, "every accepted message to arrive").await;
    // Acks sent to the dead node may not have been committed: those messages come back after
    // their lease and are acked again. Wait until every accepted message is acked in the store.
    let admin = nodes[0].client.clone();
    let pending = std::sync::Mutex::new(accepted.clone());
    eventually(60, "every accepted message acked in the store", || async {
        let ids = pending.lock().unwrap().clone();
        let mut still = Vec::new();
        for id in ids {
            if admin.get_message(&id).await.unwrap().deliveries[0].state != switchboard_core::api::DeliveryState::Acked
            {
                still.push(id);
            }
        }
        let done = still.is_empty();
        *pending.lock().unwrap() = still;
        done
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = consumer.await;
    let got = received.snapshot();
    let unique: HashSet<&String> = got.iter().collect();
    let redelivered = got.len() - unique.len();
    // Sends in flight to the dead node may have committed without a 202, so `unique` can
    // hold a few more than `accepted`; every accepted one is in it (checked above).
    println!(
        "cluster: 3 nodes, 1 SIGKILLed mid-stream; {} accepted, {} delivered and acked after de-duplication by id, {} redeliveries",
        accepted.len(),
        unique.len(),
        redelivered
    );
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore, to take the
/// database away from one node without disturbing other tests on the same server.
struct Cut {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cut {
    async fn start(upstream: &str) -> Cut {
        let port = free_port();
        let mut c = Cut { port, upstream: upstream.to_owned(), task: None };
        c.restore().await;
        c
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut down, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        }));
    }

    /// Drops every connection and refuses new ones (aborting the task drops the listener
    /// and the connection tasks with it).
    fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set SWITCHBOARD_TEST_DATABASE_URL=postgres://… and run with --ignored (see README)"]
async fn losing_the_database_answers_503_and_the_node_recovers() {
    let db = Database::create("sb_outage");
    let (host_port, name) = {
        let rest = db.url.split_once("@").map(|(_, r)| r).unwrap_or(&db.url);
        let (hp, n) = rest.split_once('/').unwrap();
        (hp.to_owned(), n.to_owned())
    };
    let mut proxy = Cut::start(&host_port).await;
    let user =
        db.url.split("://").nth(1).and_then(|r| r.split_once('@')).map(|(u, _)| u.to_owned()).unwrap_or_default();
    let via_proxy = format!("postgres://{user}@127.0.0.1:{}/{name}", proxy.port);
    let n = node(&via_proxy).await;
    let bob = n.client.register_agent(&RegisterAgent { name: "bob".into(), ..Default::default() }).await.unwrap();
    let to = agent_addr(&bob.agent.id);
    let http = reqwest::Client::new();
    let ready = |url: String| {
        let http = http.clone();
        async move { http.get(format!("{url}/ready")).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    assert_eq!(ready(n.client.base_url().to_owned()).await, 200);

    // Load, then cut the database away in the middle of it.
    let accepted = Ids::new();
    let refused = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..4 {
        let (c, to, accepted, refused, stop) =
            (n.client.clone(), to.clone(), accepted.clone(), refused.clone(), stop.clone());
        senders.spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                match c.send(&SendMessage::text(&to, format!("s{s} {i}"))).await {
                    Ok(a) => accepted.push(a.id),
                    Err(e) => {
                        // No back-off: while the database is away each refusal takes the
                        // node's connect timeout anyway.
                        let code = e.code().unwrap_or("transport").to_owned();
                        *refused.lock().unwrap().entry(code).or_default() += 1;
                        tokio::task::yield_now().await;
                    }
                }
            }
        });
    }
    accepted.wait(30, "200 accepted sends before the cut", |ids| ids.len() >= 200).await;
    proxy.cut();
    let url = n.client.base_url().to_owned();
    eventually(30, "/ready to turn 503 without the database", || async { ready(url.clone()).await == 503 }).await;
    // Sends while it is gone are refused with 503 store_unavailable, never a 2xx.
    let during_before = accepted.len();
    let e = n.client.send(&SendMessage::text(&to, "while down")).await.unwrap_err();
    assert_eq!(e.code(), Some("store_unavailable"), "{e}");

    proxy.restore().await;
    eventually(60, "the node to recover (/ready 200) when the database came back", || async {
        ready(url.clone()).await == 200
    })
    .await;
    accepted.wait(60, "sends to resume after recovery", |ids| ids.len() >= during_before + 100).await;
    stop.store(true, Ordering::Relaxed);
    while senders.join_next().await.is_some() {}

    // Every 2xx is committed: each accepted id is in the database.
    let accepted = accepted.snapshot();
    for id in &accepted {
        n.client.get_message(id).await.unwrap_or_else(|e| panic!("accepted {id} is not in the store: {e}"));
    }
    println!(
        "outage: {} sends accepted (all found in the store), refused while the database was away: {:?}",
        accepted.len(),
        refused.lock().unwrap()
    );
}
