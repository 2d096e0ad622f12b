//! The shared store: PostgreSQL, for several `switchboard serve` nodes on one database.
//!
//! The nodes are stateless; the database is the source of truth and the arbiter between them.
//! Three mechanisms make that safe and fast:
//!
//! - **Leases under row locks.** [`DeliveryStore::lease`](crate::DeliveryStore::lease) is one
//!   statement that picks the recipient's due deliveries in `seq` order with `FOR UPDATE SKIP
//!   LOCKED` and updates them, so two nodes leasing at once never take the same delivery (a
//!   row another node holds is skipped; one it has just leased is no longer due when
//!   re-checked). `leased_by` records which node holds it; a dead node's leases simply expire
//!   and come due again. Push dispatchers claim the same way (`PushStore::claim_push`, in
//!   `push.rs`).
//! - **Group commit.** [`MessageStore::accept`](crate::MessageStore::accept) hands its messages
//!   to one writer task, which drains whatever is queued (up to `writer::MAX_GROUP` messages)
//!   and commits it as one transaction of a few multi-row statements (see
//!   `writer::writer_loop` for why this shape).
//! - **Cross-node wake-ups.** A commit that makes deliveries due also runs
//!   `NOTIFY switchboard_wake, '<tenant>\t<recipient>'` inside the transaction, so it fires
//!   exactly when (and only if) the commit lands. Every node keeps one dedicated connection
//!   that `LISTEN`s and wakes its own consumers (`listener::listen_loop`). The committing node
//!   wakes its consumers directly as well, without the round trip.
//!
//! Other writes (lease, ack, agents, …) run on pooled connections in their own short
//! transactions: unlike SQLite, PostgreSQL takes concurrent writers, so they need no queue.
//! A lost or unreachable database answers [`StoreError::Unavailable`] (503 on the API), and
//! the pool reconnects by itself once it is back.
//!
//! This file connects; `error.rs` classifies failures, `writer.rs` is the group commit,
//! `listener.rs` the wake-ups across nodes, `migrations.rs` the schema, `rows.rs` the column
//! lists and row readers, and `agents.rs`, `messages.rs`, `deliveries.rs`, `topics.rs`,
//! `push.rs` and `audit.rs` implement one area of the store each.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use switchboard_core::ids::TenantId;
use switchboard_core::principal::{Principal, PrincipalKind};
use switchboard_core::time::Millis;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::health::WriteHealth;
use crate::{Result, Store, StoreError, TokenRecord, Wakeups, WriteStatus};
use error::{Fail, retrying};
use listener::{LISTEN_READY, listen_loop};
use migrations::migrate;
use writer::{AcceptJob, QUEUE, writer_loop};

mod a2a;
mod access;
mod agents;
mod approvals;
mod audit;
mod conversations;
mod deliveries;
mod error;
mod groups;
mod inbox;
mod keys;
mod listener;
mod messages;
mod migrations;
mod notify;
mod oauth;
mod push;
mod retention;
mod rows;
mod tenants;
mod topics;
mod users;
mod writer;

/// Pooled connections per node. Leases, acks and reads run on them concurrently; the writer
/// holds one while it commits a group.
const POOL_SIZE: usize = 16;
/// How long `ping` may take before the store is reported unavailable (`/ready` must answer
/// well within 2 s even when packets to the database vanish).
const PING_TIMEOUT: Duration = Duration::from_millis(1500);
/// Connecting to an unreachable database gives up after this (unless the URL says otherwise).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Waiting for a free pooled connection gives up after this: the store is then overloaded
/// or down, and the caller hears `Unavailable` rather than hanging.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// An open delivery: one that is neither acked nor final.
pub(super) const OPEN: &str = "('pending', 'leased', 'delivered')";

/// The PostgreSQL implementation of [`Store`], one per node; many nodes share a database.
pub struct PostgresStore {
    pool: Pool,
    /// Recorded in `deliveries.leased_by`, so operators can see which node holds a lease.
    node_id: String,
    jobs: Mutex<Option<mpsc::Sender<AcceptJob>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    listener: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    /// `true` while the wake-up listener is connected and listening.
    listening: watch::Receiver<bool>,
    wake: Arc<Wakeups>,
    /// How the group commits and probes went, for `/ready`.
    health: Arc<WriteHealth>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values (a sender, join handles) stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`), applies pending
    /// migrations and starts the writer and wake-up listener. `node_id` names this node in
    /// `deliveries.leased_by`; give each node its own.
    pub async fn connect(url: &str, node_id: String) -> Result<PostgresStore> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::unavailable(format!("the database URL is not a PostgreSQL URL: {e}")))?;
        // Fail fast on an unreachable host and notice a silently dead peer, unless the URL
        // chose for itself: a hung connection would hang every caller behind it.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(10));
        }
        if config.get_keepalives_interval().is_none() {
            config
                .keepalives_idle(Duration::from_secs(10))
                .keepalives_interval(Duration::from_secs(2))
                .keepalives_retries(3);
        }
        if config.get_application_name().is_none() {
            config.application_name(format!("switchboard {node_id}"));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // Fast: a connection is reused unless the driver already saw it close. A
                // server restart closes every connection, so the pool reconnects without a
                // test query on each checkout.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))?;

        migrate(&pool).await.map_err(Fail::into_store)?;

        let wake = Arc::new(Wakeups::default());
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, mut ready) = watch::channel(false);
        let listener = tokio::spawn(listen_loop(config, wake.clone(), stop_rx, ready_tx));
        let (tx, rx) = mpsc::channel(QUEUE);
        let health = Arc::new(WriteHealth::default());
        let writer = tokio::spawn(writer_loop(pool.clone(), rx, wake.clone(), health.clone()));
        let store = PostgresStore {
            pool,
            node_id,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            listener: Mutex::new(Some(listener)),
            stop,
            listening: ready.clone(),
            wake,
            health,
        };
        if tokio::time::timeout(LISTEN_READY, ready.wait_for(|r| *r)).await.is_err() {
            tracing::warn!(
                "the wake-up listener is not connected yet; other nodes' messages reach this node's consumers when it is, or at the next reaper tick"
            );
        }
        Ok(store)
    }

    /// The id this node records on the deliveries it leases.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether the cross-node wake-up listener is connected. While it is not, this node's
    /// consumers learn of other nodes' messages only at the reaper's next tick.
    pub fn listening(&self) -> bool {
        *self.listening.borrow()
    }

    async fn conn(&self) -> Result<Object, Fail> {
        Ok(self.pool.get().await?)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<()> {
        let check = async {
            let c = self.conn().await?;
            c.simple_query("SELECT 1").await?;
            Ok::<_, Fail>(())
        };
        match tokio::time::timeout(PING_TIMEOUT, check).await {
            Ok(r) => r.map_err(Fail::into_store),
            Err(_) => Err(StoreError::unavailable(format!(
                "PostgreSQL did not answer within {} ms",
                PING_TIMEOUT.as_millis()
            ))),
        }
    }

    fn write_status(&self) -> WriteStatus {
        self.health.status()
    }

    async fn probe_write(&self) {
        // A real write of one row, committed and flushed like any other: it fails when the
        // database is read-only (a standby after failover, `default_transaction_read_only`),
        // out of disk, or this node's role lost its privileges. PostgreSQL writes a new row
        // version even though no value changes.
        let probe = async {
            let write = async {
                let c = self.conn().await?;
                let st = c.prepare_cached("UPDATE tenants SET name = name WHERE id = $1").await?;
                c.execute(&st, &[&switchboard_core::DEFAULT_TENANT]).await?;
                Ok::<_, Fail>(())
            };
            match tokio::time::timeout(PING_TIMEOUT, write).await {
                Ok(r) => r.map_err(Fail::into_store),
                Err(_) => Err(StoreError::unavailable(format!(
                    "PostgreSQL did not commit a probe write within {} ms",
                    PING_TIMEOUT.as_millis()
                ))),
            }
        };
        self.health.probe(probe).await;
    }

    async fn bootstrap(&self, admin_token_hash: String, always: bool, now: Millis) -> Result<bool> {
        let hash = &admin_token_hash;
        retrying(move || async move {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // Two nodes starting on an empty database: the insert lets exactly one create it.
            let created = tx
                .execute(
                    "INSERT INTO tenants (id, name, created_at) VALUES ($1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                    &[&switchboard_core::DEFAULT_TENANT, &now],
                )
                .await?
                == 1;
            if always || created {
                tx.execute(
                    "INSERT INTO tokens (hash, tenant_id, principal, created_at) \
                     VALUES ($1, $2, 'operator', $3) ON CONFLICT (hash) DO NOTHING",
                    &[hash, &switchboard_core::DEFAULT_TENANT, &now],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(created)
        })
        .await
    }

    async fn token_for_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let run = async {
            let c = self.conn().await?;
            // The one look-up not filtered by tenant: it is how the tenant is found.
            let st = c.prepare_cached(crate::sql::TOKEN_LOOKUP).await?;
            let Some(row) = c.query_opt(&st, &[&token_hash]).await? else {
                return Ok(None);
            };
            let tenant: String = row.try_get(0)?;
            let p: String = row.try_get(1)?;
            // A person's role is read from the user's row, so a changed role holds at once.
            let role = row.try_get::<_, Option<String>>(4)?.and_then(|r| r.parse().ok());
            let Some(kind) = PrincipalKind::from_stored(&p, role) else {
                return Ok(None);
            };
            let principal = Principal { tenant: TenantId::from(tenant), kind };
            Ok::<_, Fail>(Some(TokenRecord { principal, key_id: row.try_get(2)?, expires_at: row.try_get(3)? }))
        };
        run.await.map_err(Fail::into_store)
    }

    fn wakeups(&self) -> &Wakeups {
        &self.wake
    }

    async fn close(&self) {
        // Dropping the sender lets the writer commit what is queued and stop.
        lock(&self.jobs).take();
        let writer = lock(&self.writer).take();
        if let Some(w) = writer {
            let _ = w.await;
        }
        self.stop.send_replace(true);
        let listener = lock(&self.listener).take();
        if let Some(l) = listener {
            let _ = l.await;
        }
        self.pool.close();
    }
}
