//! NATS JetStream: a stream with file (or memory) storage, publish with ack (each publish
//! awaits its PubAck), one durable pull consumer per receiver with explicit acks. A fanout
//! publishes on one subject that every consumer takes; otherwise each receiver has its own.
//!
//! D1 is the machine's running nats-server (its default: fsync every 2 minutes). D2 and D0
//! run on a [`DedicatedServer`] this tool starts, with `sync_interval: always` for D2.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull, stream::StorageType};
use futures_util::StreamExt;

use super::{DEADLINE, PeerError, PeerRun, Tally, drive, pid_listening_on, run_id, with_cpu};
use crate::{BenchConfig, Report, Workload};

async fn connect(url: &str) -> Result<async_nats::Client, PeerError> {
    let connecting = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2)).connect(url);
    match tokio::time::timeout(Duration::from_secs(3), connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(PeerError::Unreachable(format!("NATS at {url} is not reachable: {e}"))),
        Err(_) => Err(PeerError::Unreachable(format!("NATS at {url} did not answer within 3 s"))),
    }
}

/// Runs `cfg` against the JetStream at `url`; `server_pid` is measured for CPU (found from
/// the port when None). The stream, and with it its consumers, is deleted afterwards, whether
/// the run completed or not.
pub(crate) async fn run_on(
    url: &str,
    server_pid: Option<u32>,
    storage: StorageType,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PeerRun, PeerError> {
    let admin = connect(url).await?;
    let version = admin.server_info().version;
    let server_pid =
        server_pid.or_else(|| url.rsplit(':').next().and_then(|p| p.parse().ok()).and_then(pid_listening_on));
    let js = jetstream::new(admin.clone());
    let run = run_id();
    let name = format!("SBBENCH_{run}");
    let prefix = format!("sbbench.{run}");
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            storage,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            PeerError::Unreachable(format!("NATS at {url}: cannot create stream {name} (is JetStream on?): {e}"))
        })?;
    let measured = measure(url, &stream, &prefix, server_pid, cfg, progress).await;
    let _ = js.delete_stream(&name).await;
    let (report, server_cpu_s) = measured?;
    Ok(PeerRun { report, server_pid, server_cpu_s, version })
}

/// The subject receiver `i` consumes: the stream's one subject for a fanout (every durable
/// consumer sees every message), else one subject per receiver (each message goes to one).
fn subject(prefix: &str, fanout: bool, i: usize) -> String {
    if fanout { format!("{prefix}.all") } else { format!("{prefix}.{i}") }
}

/// Creates one durable pull consumer per receiver on `stream`, each on its own connection,
/// and drives the publishers.
async fn measure(
    url: &str,
    stream: &jetstream::stream::Stream,
    prefix: &str,
    server_pid: Option<u32>,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Report, Option<f64>), PeerError> {
    let fanout = cfg.workload == Workload::Fanout;
    let receivers = cfg.consumers.max(1);
    let tally = Tally::new(cfg.messages, cfg.receipts_per_message());
    let setup = Instant::now();
    let mut consumers = tokio::task::JoinSet::new();
    for i in 0..receivers {
        let durable = format!("c{i}");
        stream
            .create_consumer::<pull::Config>(pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: subject(prefix, fanout, i),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .map_err(|e| PeerError::Failed(format!("cannot create consumer {durable}: {e}")))?;
        // Each receiver on its own connection, as each Switchboard consumer has its own socket.
        let client = connect(url).await?;
        let consumer: jetstream::consumer::PullConsumer = jetstream::new(client)
            .get_consumer_from_stream(durable.clone(), stream.cached_info().config.name.clone())
            .await
            .map_err(|e| PeerError::Failed(format!("cannot bind consumer {durable}: {e}")))?;
        let mut messages =
            consumer.messages().await.map_err(|e| PeerError::Failed(format!("cannot pull from {durable}: {e}")))?;
        let tally = tally.clone();
        let slot = if fanout { i } else { 0 };
        consumers.spawn(async move {
            while !tally.done() {
                match tokio::time::timeout(Duration::from_millis(200), messages.next()).await {
                    Err(_) => continue,
                    Ok(Some(Ok(m))) => {
                        tally.receipt(slot, &m.payload);
                        if m.ack().await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => break,
                }
            }
        });
    }
    let setup_ms = setup.elapsed().as_secs_f64() * 1000.0;

    let mut producers = Vec::new();
    for _ in 0..cfg.producers.max(1) {
        producers.push(jetstream::new(connect(url).await?));
    }
    let prefix = prefix.to_owned();
    let publish = move |p: usize, seq: usize, payload: Vec<u8>| {
        let js = producers[p % producers.len()].clone();
        let subject = subject(&prefix, fanout, seq % receivers);
        async move {
            let ack = js.publish(subject, payload.into()).await.map_err(|e| e.to_string())?;
            ack.await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    let (report, cpu) = with_cpu(server_pid, drive(cfg, &tally, publish, DEADLINE, progress)).await;
    while consumers.join_next().await.is_some() {}
    Ok((Report { setup_ms: fanout.then_some(setup_ms), ..report }, cpu))
}

/// A nats-server this tool starts for one run, on a free loopback port with a temporary store;
/// dropping it kills the process and removes the store.
pub(crate) struct DedicatedServer {
    child: Child,
    dir: PathBuf,
    pub(crate) url: String,
}

impl DedicatedServer {
    /// Starts `bin` with JetStream; `sync_always` fsyncs every write (D2). `cores` pins it.
    pub(crate) fn start(bin: &str, sync_always: bool, cores: Option<&str>) -> Result<DedicatedServer, PeerError> {
        let unavailable = |what: String| PeerError::Unreachable(format!("cannot start {bin}: {what}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| unavailable(e.to_string()))?
            .port();
        let dir = std::env::temp_dir().join(format!("sb-bench-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("store")).map_err(|e| unavailable(e.to_string()))?;
        let sync = if sync_always { ", sync_interval: always" } else { "" };
        let conf =
            format!("listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\"{sync} }}\n", dir.join("store").display());
        std::fs::write(dir.join("nats.conf"), conf).map_err(|e| unavailable(e.to_string()))?;
        let log = std::fs::File::create(dir.join("nats.log")).map_err(|e| unavailable(e.to_string()))?;
        let mut cmd = match cores {
            Some(c) => {
                let mut t = Command::new("taskset");
                t.args(["-c", c, bin]);
                t
            }
            None => Command::new(bin),
        };
        let child =
            cmd.arg("-c").arg(dir.join("nats.conf")).stdout(Stdio::null()).stderr(log).spawn().map_err(|e| {
                let _ = std::fs::remove_dir_all(&dir);
                unavailable(e.to_string())
            })?;
        let mut server = DedicatedServer { child, dir, url: format!("nats://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server.dir.join("nats.log")).unwrap_or_default();
                return Err(unavailable(format!("exited with {status}: {}", log.trim())));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(unavailable("not listening after 5 s".into()))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DedicatedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
