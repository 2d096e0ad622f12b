//! RabbitMQ, D2: one durable quorum queue per receiver (`x-queue-type: quorum`, which fsyncs
//! its Raft log before confirming), persistent messages, publisher confirms (each publish
//! awaits its confirm; producers × concurrency are in flight), manual consumer acks with a
//! prefetch of [`PREFETCH`].

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::{PeerError, PeerRun, Tally, drive, pid_listening_on, run_id, with_cpu};
use crate::BenchConfig;

/// Unacknowledged deliveries a consumer may hold: enough to keep the pipe full at 1 KiB.
const PREFETCH: u16 = 256;

async fn connect(url: &str) -> Result<Connection, PeerError> {
    match tokio::time::timeout(Duration::from_secs(3), Connection::connect(url, ConnectionProperties::default())).await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(PeerError::Unreachable(format!("RabbitMQ at {url} is not reachable: {e}"))),
        Err(_) => Err(PeerError::Unreachable(format!("RabbitMQ at {url} did not answer within 3 s"))),
    }
}

async fn channel(conn: &Connection) -> Result<Channel, PeerError> {
    conn.create_channel().await.map_err(|e| PeerError::Failed(format!("cannot open a channel: {e}")))
}

/// The broker's version, from `rabbitmqctl version` (lapin does not expose the server
/// properties of the AMQP handshake).
fn version() -> String {
    std::process::Command::new("rabbitmqctl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `cfg` against the RabbitMQ at `url`.
pub(crate) async fn run(
    url: &str,
    cfg: &BenchConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PeerRun, PeerError> {
    let admin = connect(url).await?;
    let setup = channel(&admin).await?;
    let run = run_id();
    let n_queues = cfg.consumers.max(1);
    let queues: Vec<String> = (0..n_queues).map(|i| format!("sb-bench-{run}-{i}")).collect();
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    for q in &queues {
        setup
            .queue_declare(q.as_str().into(), QueueDeclareOptions { durable: true, ..Default::default() }, args.clone())
            .await
            .map_err(|e| PeerError::Failed(format!("cannot declare quorum queue {q}: {e}")))?;
    }
    let port = url.rsplit_once('@').map_or(url, |(_, h)| h).split(['/', ':']).nth(1).and_then(|p| p.parse().ok());
    let server_pid = port.and_then(pid_listening_on);

    let tally = Tally::new(cfg.messages);
    let mut connections = vec![admin];
    let mut consumers = tokio::task::JoinSet::new();
    for (i, q) in queues.iter().enumerate() {
        let conn = connect(url).await?;
        let ch = channel(&conn).await?;
        connections.push(conn);
        ch.basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(|e| PeerError::Failed(format!("cannot set prefetch: {e}")))?;
        let mut deliveries = ch
            .basic_consume(
                q.as_str().into(),
                format!("c{i}").into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| PeerError::Failed(format!("cannot consume {q}: {e}")))?;
        let tally = tally.clone();
        consumers.spawn(async move {
            while !tally.done() {
                match tokio::time::timeout(Duration::from_millis(200), deliveries.next()).await {
                    Err(_) => continue,
                    Ok(Some(Ok(d))) => {
                        tally.receipt(&d.data);
                        if d.ack(BasicAckOptions::default()).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => break,
                }
            }
        });
    }

    let mut producers = Vec::new();
    for _ in 0..cfg.producers.max(1) {
        let conn = connect(url).await?;
        let ch = channel(&conn).await?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| PeerError::Failed(format!("cannot enable publisher confirms: {e}")))?;
        producers.push(ch);
        connections.push(conn);
    }
    let queues_for_publish = queues.clone();
    let publish = move |p: usize, seq: usize, payload: Vec<u8>| {
        let ch = producers[p % producers.len()].clone();
        let q = queues_for_publish[seq % queues_for_publish.len()].clone();
        async move {
            let confirm = ch
                .basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            if confirm.is_ack() { Ok(()) } else { Err("publish nacked".into()) }
        }
    };
    let (report, cpu) = with_cpu(server_pid, drive(cfg, &tally, publish, progress)).await;
    while consumers.join_next().await.is_some() {}
    for q in &queues {
        let _ = setup.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    }
    for c in connections {
        let _ = c.close(200, "bench done".into()).await;
    }
    Ok(PeerRun { report, server_pid, server_cpu_s: cpu, version: version() })
}
