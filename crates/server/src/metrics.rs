//! Prometheus metrics: what an operator needs to see that messages flow.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// Why the listener refused or closed a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// E.g. `ip_limit`, `header_timeout`.
    pub reason: &'static str,
}

/// Which limit refused a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `send_rate`, `api_rate`, `agents`, `messages_stored`, `recipients`, `streams`.
    pub kind: &'static str,
}

/// The node's metrics, registered once.
pub struct Metrics {
    pub registry: Registry,
    pub accepted: Counter,
    pub deliveries: Family<OutcomeLabels, Counter>,
    pub delivery_latency: Histogram,
    pub inbox_depth: Family<StateLabels, Gauge>,
    pub http: Family<HttpLabels, Histogram>,
    pub push_events: Family<EventLabels, Counter>,
    /// Open HTTP connections (WebSockets included).
    pub connections: Gauge,
    /// Connections refused at accept: `node_limit`, `ip_limit`.
    pub connections_refused: Family<ReasonLabels, Counter>,
    /// Connections the node closed early: `header_timeout` (408, or a TLS handshake not done
    /// in that time), `idle_timeout`, `evicted` (idle, closed to make room for a new one at a
    /// limit), `tls_handshake_failed`.
    pub connections_closed: Family<ReasonLabels, Counter>,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: Counter,
    /// Requests refused by a rate limit or a quota, by kind.
    pub limit_refusals: Family<KindLabels, Counter>,
    /// Sends and subscriptions refused by a tenant's policy.
    pub policy_denials: Counter,
    /// What retention deleted.
    pub purged: crate::domain::retention::PurgeMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchboard");
        let accepted = Counter::default();
        registry.register("messages_accepted", "Messages committed to the store", accepted.clone());
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery events by outcome (delivered, redelivered, acked, nacked)",
            deliveries.clone(),
        );
        let delivery_latency = Histogram::new(exponential_buckets(0.0002, 2.0, 20));
        registry.register("delivery_latency_seconds", "Time from accept to acknowledgement", delivery_latency.clone());
        let inbox_depth = Family::<StateLabels, Gauge>::default();
        registry.register(
            "inbox_depth",
            "Open deliveries: pending, or handed out and not yet acknowledged",
            inbox_depth.clone(),
        );
        let http = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 20))
        });
        registry.register("http_request_duration_seconds", "HTTP request durations by route", http.clone());
        let push_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "push_events",
            "Push health events: delivery.failing, delivery.exhausted, delivery.recovered, circuit.opened, endpoint.disabled",
            push_events.clone(),
        );
        let connections = Gauge::default();
        registry.register("http_connections", "Open HTTP connections, WebSockets included", connections.clone());
        let connections_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_connections_refused",
            "Connections refused at accept because a limit was reached (node_limit, ip_limit)",
            connections_refused.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_connections_closed",
            "Connections the node closed early (header_timeout, idle_timeout, evicted to make room at a limit, tls_handshake_failed)",
            connections_closed.clone(),
        );
        let accept_errors = Counter::default();
        registry.register("http_accept_errors", "Failed accepts (e.g. out of file descriptors)", accept_errors.clone());
        let limit_refusals = Family::<KindLabels, Counter>::default();
        registry.register(
            "limit_refusals",
            "Requests refused by a limit (send_rate, api_rate, agents, messages_stored, recipients, streams)",
            limit_refusals.clone(),
        );
        let policy_denials = Counter::default();
        registry.register(
            "policy_denials",
            "Sends and subscriptions refused by a tenant's policy",
            policy_denials.clone(),
        );
        let purged = crate::domain::retention::PurgeMetrics::default();
        registry.register(
            "retention_purged_messages",
            "Messages deleted by the tenants' retention",
            purged.messages.clone(),
        );
        registry.register(
            "retention_purged_deliveries",
            "Deliveries deleted by the tenants' retention (with their messages, and dead letters)",
            purged.deliveries.clone(),
        );
        Metrics {
            registry,
            purged,
            limit_refusals,
            policy_denials,
            accepted,
            deliveries,
            delivery_latency,
            inbox_depth,
            http,
            push_events,
            connections,
            connections_refused,
            connections_closed,
            accept_errors,
        }
    }

    /// Counts a connection refused at accept.
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a connection the node closed early.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a request refused by a limit.
    pub fn limit_refusal(&self, kind: &'static str) {
        self.limit_refusals.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a request refused by a policy.
    pub fn policy_denial(&self) {
        self.policy_denials.inc();
    }

    /// Counts a push health event.
    pub fn push_event(&self, event: &'static str) {
        self.push_events.get_or_create(&EventLabels { event }).inc();
    }

    /// Counts a delivery event.
    pub fn delivery(&self, outcome: &'static str, n: u64) {
        self.deliveries.get_or_create(&OutcomeLabels { outcome }).inc_by(n);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
