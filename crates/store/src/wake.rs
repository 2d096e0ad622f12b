//! Waking consumers when a commit lands, instead of having them poll.
//!
//! Each (tenant, recipient) with a live consumer has a `watch` channel holding a counter. A
//! consumer marks the current value seen, looks in the store, and if it found nothing waits
//! for the value to change. A commit that happens between the look and the wait still
//! changes the value, so no wake-up is lost.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// (tenant, recipient address).
pub type WakeKey = (String, String);

/// The registry of consumers waiting for new work.
#[derive(Debug, Default)]
pub struct Wakeups {
    senders: Mutex<HashMap<WakeKey, watch::Sender<u64>>>,
}

impl Wakeups {
    /// A receiver that changes whenever something becomes due for `key`.
    pub fn subscribe(&self, key: WakeKey) -> watch::Receiver<u64> {
        let mut map = self.senders.lock().expect("wakeups lock poisoned");
        map.entry(key).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Wakes every consumer of these keys; forgets keys nobody listens to any more.
    pub fn wake<'a>(&self, keys: impl IntoIterator<Item = &'a WakeKey>) {
        let mut map = self.senders.lock().expect("wakeups lock poisoned");
        for key in keys {
            if let Some(tx) = map.get(key) {
                if tx.receiver_count() == 0 {
                    map.remove(key);
                } else {
                    tx.send_modify(|v| *v = v.wrapping_add(1));
                }
            }
        }
    }

    /// Wakes every consumer of every key. For when wake-ups may have been missed (the
    /// PostgreSQL store's cross-node channel was down for a while): each consumer then looks
    /// in the store again, which costs one query and loses nothing.
    pub fn wake_all(&self) {
        let mut map = self.senders.lock().expect("wakeups lock poisoned");
        map.retain(|_, tx| tx.receiver_count() > 0);
        for tx in map.values() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_between_look_and_wait_is_not_lost() {
        let w = Wakeups::default();
        let key = ("t".to_owned(), "agent:a".to_owned());
        let mut rx = w.subscribe(key.clone());
        rx.borrow_and_update();
        w.wake([&key]);
        assert!(rx.has_changed().unwrap());
    }

    #[test]
    fn wake_all_wakes_every_live_consumer() {
        let w = Wakeups::default();
        let mut a = w.subscribe(("t".to_owned(), "agent:a".to_owned()));
        let mut b = w.subscribe(("u".to_owned(), "agent:b".to_owned()));
        a.borrow_and_update();
        b.borrow_and_update();
        w.wake_all();
        assert!(a.has_changed().unwrap() && b.has_changed().unwrap());
    }

    #[test]
    fn forgets_keys_without_listeners() {
        let w = Wakeups::default();
        let key = ("t".to_owned(), "agent:a".to_owned());
        drop(w.subscribe(key.clone()));
        w.wake([&key]);
        assert!(w.senders.lock().unwrap().is_empty());
    }
}
