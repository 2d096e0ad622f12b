//! Cross-node wake-ups: a commit that makes work due sends `NOTIFY` in its transaction, and
//! every node's listener task turns the notifications into local wake-ups.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use super::error::{Fail, describe};
use crate::{WakeKey, Wakeups};

/// Reconnect back-off of the wake-up listener.
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long `connect` waits for the listener's first `LISTEN`, so that a node is reachable by
/// other nodes' wake-ups once it has started.
pub(super) const LISTEN_READY: Duration = Duration::from_secs(5);

/// The channel nodes wake each other on; the payload is `<tenant>\t<recipient>`.
const WAKE_CHANNEL: &str = "switchboard_wake";

/// Sends the wake-up notifications for `keys` inside the caller's transaction: PostgreSQL
/// delivers them to every listening node when, and only if, the transaction commits.
pub(super) async fn notify(c: &impl deadpool_postgres::GenericClient, keys: &[WakeKey]) -> Result<(), Fail> {
    if keys.is_empty() {
        return Ok(());
    }
    let payloads: Vec<String> = keys.iter().map(|(t, r)| format!("{t}\t{r}")).collect();
    let st = c.prepare_cached("SELECT pg_notify($1, k) FROM unnest($2::text[]) AS k").await?;
    c.execute(&st, &[&WAKE_CHANNEL, &payloads]).await?;
    Ok(())
}

pub(super) fn dedup(keys: &mut Vec<WakeKey>) {
    keys.sort_unstable();
    keys.dedup();
}

/// Owns the node's `LISTEN` connection for as long as the store is open: wakes local
/// consumers for each notification, and reconnects with back-off when the connection drops.
/// After every (re)connect it wakes all local consumers once, since notifications sent while
/// it was away are lost and consumers must look in the store themselves.
pub(super) async fn listen_loop(
    config: tokio_postgres::Config,
    wake: Arc<Wakeups>,
    mut stop: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    let mut backoff = LISTEN_BACKOFF_MIN;
    loop {
        let ended = listen_once(&config, &wake, &mut stop, &ready, &mut backoff).await;
        ready.send_replace(false);
        match ended {
            Ok(()) => return, // the store is closing
            Err(e) => tracing::warn!(
                error = %e,
                retry_in_ms = backoff.as_millis() as u64,
                "the PostgreSQL wake-up listener lost its connection; reconnecting"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
    }
}

/// One connection's life. `Ok` means the store is closing; `Err` says why the connection
/// failed.
async fn listen_once(
    config: &tokio_postgres::Config,
    wake: &Wakeups,
    stop: &mut watch::Receiver<bool>,
    ready: &watch::Sender<bool>,
    backoff: &mut Duration,
) -> std::result::Result<(), String> {
    if *stop.borrow() {
        return Ok(());
    }
    // A server that accepts the TCP connection but never answers would otherwise hold the
    // listener forever; it gives up at this deadline and tries again.
    let deadline = tokio::time::Instant::now() + LISTEN_READY;
    let (client, mut conn) = tokio::select! {
        r = config.connect(NoTls) => r.map_err(|e| describe(&e))?,
        _ = tokio::time::sleep_until(deadline) => return Err("connecting timed out".into()),
        _ = stop.changed() => return Ok(()),
    };
    // The connection object does the I/O, so it is polled here, next to the LISTEN request
    // that needs it, and its notifications come out of `poll_message`.
    let sql = format!("LISTEN {WAKE_CHANNEL}");
    let listen = client.batch_execute(&sql);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            r = &mut listen, if !listening => {
                r.map_err(|e| describe(&e))?;
                listening = true;
                *backoff = LISTEN_BACKOFF_MIN;
                wake.wake_all();
                ready.send_replace(true);
            }
            msg = std::future::poll_fn(|cx| conn.poll_message(cx)) => match msg {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some((tenant, recipient)) = n.payload().split_once('\t') {
                        wake.wake([&(tenant.to_owned(), recipient.to_owned())]);
                    }
                }
                Some(Ok(_)) => {} // notices
                Some(Err(e)) => return Err(describe(&e)),
                None => return Err("the server closed the connection".into()),
            },
            _ = tokio::time::sleep_until(deadline), if !listening => {
                return Err("LISTEN was not answered in time".into());
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}
