//! The figures a run reports: [`Report`], and [`Memory`] for the `connections` workload.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{BenchConfig, PageTiming, ms};

/// The hub's resident memory around a `connections` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub per_connection_kib: f64,
}

/// The figures of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub workload: String,
    pub messages: usize,
    pub size: usize,
    pub producers: usize,
    pub consumers: usize,
    pub elapsed_ms: f64,
    /// Messages sent, delivered and acknowledged per second, end to end.
    pub messages_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Send request latency (until the 202, i.e. committed), p50 and p99.
    pub send_p50_ms: f64,
    pub send_p99_ms: f64,
    /// Sends that failed (the run still reports; a healthy hub has none).
    pub send_errors: u64,
    /// Messages received more than once (redeliveries).
    pub duplicates: u64,
    /// Push only: requests that the receiver failed on purpose, hence retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Messages lost: sent and accepted (a 2xx, or the broker's acknowledgement) but never
    /// received by the end of the run, counted message by message (fanout: per subscriber).
    /// Failed sends are `send_errors`, not losses. None where nothing is sent (`connections`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// Connections only: the hub's memory before and after opening them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Fanout only: (message, subscriber) pairs received, each counted once, and per second.
    /// `messages` and `messages_per_s` then count messages published; `consumers` is the
    /// number of subscribers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries_per_s: Option<f64>,
    /// Fanout only: time to set the subscribers up (agents and subscriptions; durable
    /// consumers; queues and bindings) before the first message, not part of `elapsed_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_ms: Option<f64>,
    /// Pages only: each page's render times. `messages` is then the inbox's size and
    /// `messages_per_s` pages rendered per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<PageTiming>>,
}

impl Report {
    /// The figures every workload reports: `messages` received in `elapsed`, with receipt
    /// latency `lat` and send latency `sent`. Callers fill in their own counters.
    pub(crate) fn measured(
        workload: &str,
        cfg: &BenchConfig,
        messages: usize,
        elapsed: Duration,
        lat: &Histogram<u64>,
        sent: &Histogram<u64>,
    ) -> Report {
        Report {
            workload: workload.into(),
            messages,
            size: cfg.size,
            producers: cfg.producers,
            consumers: cfg.consumers,
            elapsed_ms: elapsed.as_secs_f64() * 1000.0,
            messages_per_s: messages as f64 / elapsed.as_secs_f64(),
            p50_ms: ms(lat, 0.5),
            p90_ms: ms(lat, 0.9),
            p99_ms: ms(lat, 0.99),
            p999_ms: ms(lat, 0.999),
            max_ms: lat.max() as f64 / 1000.0,
            send_p50_ms: ms(sent, 0.5),
            send_p99_ms: ms(sent, 0.99),
            ..Default::default()
        }
    }

    /// The fanout figures over the same elapsed time: `deliveries` (message, subscriber)
    /// pairs received.
    pub(crate) fn with_deliveries(self, deliveries: usize) -> Report {
        Report {
            deliveries: Some(deliveries),
            deliveries_per_s: Some(deliveries as f64 / (self.elapsed_ms / 1000.0).max(1e-9)),
            ..self
        }
    }
}
