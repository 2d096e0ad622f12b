//! Wildcard subscriptions (`orders.*`, `orders.>`): each tenant's patterns in a token trie
//! ([`PatternTrie`]), so that a publish finds the patterns matching its topic without
//! testing every subscription. Subscriptions to plain names are not here: routing reads them
//! with one indexed store read.
//!
//! A tenant's trie is built from the store the first time this node routes a publish of it.
//! A subscribe or unsubscribe on this node changes it at once; [`refresher`] rebuilds every
//! loaded trie from the store each [`REFRESH`], so a change made on another node is heard
//! here within that bound (plus the read), as with policies (`access.rs`). No version column:
//! the read is the tenant's pattern rows only, in one statement.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use switchboard_core::subject::{PatternTrie, is_pattern};
use switchboard_store::Store;
use tokio::sync::watch;

pub use super::access::REFRESH;
use crate::error::ApiError;

/// One tenant's trie, and a count of the changes made to it on this node (a rebuild that
/// raced one is dropped: the next one picks it up).
#[derive(Default)]
struct TenantPatterns {
    trie: RwLock<PatternTrie>,
    changes: AtomicU64,
}

/// The node's pattern subscriptions, by tenant.
pub struct Patterns {
    store: Arc<dyn Store>,
    tenants: RwLock<HashMap<String, Arc<TenantPatterns>>>,
}

impl Patterns {
    pub fn new(store: Arc<dyn Store>) -> Patterns {
        Patterns { store, tenants: RwLock::new(HashMap::new()) }
    }

    fn loaded(&self, tenant: &str) -> Option<Arc<TenantPatterns>> {
        self.tenants.read().expect("pattern index poisoned").get(tenant).cloned()
    }

    async fn build(&self, tenant: &str) -> Result<PatternTrie, ApiError> {
        let mut trie = PatternTrie::default();
        for (pattern, agent) in self.store.pattern_subscriptions(tenant).await? {
            trie.insert(&pattern, &agent);
        }
        Ok(trie)
    }

    async fn tenant(&self, tenant: &str) -> Result<Arc<TenantPatterns>, ApiError> {
        if let Some(t) = self.loaded(tenant) {
            return Ok(t);
        }
        let built =
            Arc::new(TenantPatterns { trie: RwLock::new(self.build(tenant).await?), changes: AtomicU64::new(0) });
        // Another publish may have loaded it meanwhile: keep the first.
        Ok(self.tenants.write().expect("pattern index poisoned").entry(tenant.to_owned()).or_insert(built).clone())
    }

    /// The agents subscribed to a pattern that matches topic `name`, each once.
    pub async fn matching(&self, tenant: &str, name: &str) -> Result<BTreeSet<String>, ApiError> {
        let t = self.tenant(tenant).await?;
        let mut out = BTreeSet::new();
        t.trie.read().expect("pattern trie poisoned").matching(name, &mut out);
        Ok(out)
    }

    /// Records a subscription made on this node (nothing for a plain name, or for a tenant
    /// not loaded yet: its first load reads it).
    pub fn subscribed(&self, tenant: &str, topic: &str, agent: &str) {
        if let Some(t) = self.loaded(tenant).filter(|_| is_pattern(topic)) {
            let mut trie = t.trie.write().expect("pattern trie poisoned");
            t.changes.fetch_add(1, Ordering::SeqCst);
            trie.insert(topic, agent);
        }
    }

    /// Records an unsubscribe made on this node.
    pub fn unsubscribed(&self, tenant: &str, topic: &str, agent: &str) {
        if let Some(t) = self.loaded(tenant).filter(|_| is_pattern(topic)) {
            let mut trie = t.trie.write().expect("pattern trie poisoned");
            t.changes.fetch_add(1, Ordering::SeqCst);
            trie.remove(topic, agent);
        }
    }

    /// Rebuilds every loaded tenant's trie from the store. Run by [`refresher`].
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let loaded: Vec<(String, Arc<TenantPatterns>)> =
            self.tenants.read().expect("pattern index poisoned").iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        for (tenant, t) in loaded {
            let before = t.changes.load(Ordering::SeqCst);
            let fresh = self.build(&tenant).await?;
            let mut trie = t.trie.write().expect("pattern trie poisoned");
            // A change on this node since the read may be missing from it: keep ours.
            if t.changes.load(Ordering::SeqCst) == before {
                *trie = fresh;
            }
        }
        Ok(())
    }
}

/// Every [`REFRESH`], rebuilds the loaded tenants' pattern tries from the store (picking up
/// subscriptions made on other nodes), until the node shuts down.
pub async fn refresher(patterns: Arc<Patterns>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = patterns.refresh().await {
            tracing::warn!(error = %e, "could not refresh the wildcard subscriptions; trying again");
        }
    }
}
