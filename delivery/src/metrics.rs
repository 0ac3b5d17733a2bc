//! Prometheus metrics of the event path: broker ingress and deliveries.
//!
//! One [`Metrics`] per process holds every family; components take cheap per-object handles
//! ([`BrokerMetrics`], [`DeliveryMetrics`]) once, so the hot path never builds label sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of broker (and channel) ingress metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngressLabels {
    /// Namespace of the broker or channel.
    pub namespace: String,
    /// `broker` or `channel`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// Labels of rejected-event metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// Namespace of the broker or channel.
    pub namespace: String,
    /// `broker` or `channel`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Why: `invalid`, `ttl`, `too_large`, `method`, `unavailable`.
    pub reason: String,
}

/// Labels of delivery metrics: which trigger, subscription or source delivered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// Namespace of the delivering object.
    pub namespace: String,
    /// `trigger`, `subscription`, `source`…
    pub kind: String,
    /// Its name.
    pub name: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// Every metric family of the event path, registered in one registry.
pub struct Metrics {
    registry: Registry,
    accepted: Family<IngressLabels, Counter>,
    rejected: Family<RejectLabels, Counter>,
    delivered: Family<DeliveryLabels, Counter>,
    failed: Family<DeliveryLabels, Counter>,
    retried: Family<DeliveryLabels, Counter>,
    dead_lettered: Family<DeliveryLabels, Counter>,
    filtered_out: Family<DeliveryLabels, Counter>,
    attempt_seconds: Family<DeliveryLabels, Histogram, fn() -> Histogram>,
    latency_seconds: Family<DeliveryLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let m = Self {
            accepted: Family::default(),
            rejected: Family::default(),
            delivered: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            dead_lettered: Family::default(),
            filtered_out: Family::default(),
            attempt_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            latency_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            registry: Registry::default(),
        };
        registry.register(
            "events_accepted",
            "Events accepted by broker or channel ingress",
            m.accepted.clone(),
        );
        registry.register(
            "events_rejected",
            "Events rejected by broker or channel ingress",
            m.rejected.clone(),
        );
        registry.register("events_delivered", "Events delivered to a subscriber (2xx)", m.delivered.clone());
        registry.register("events_failed", "Events whose delivery failed after every retry", m.failed.clone());
        registry.register("delivery_retries", "Delivery attempts that were retries", m.retried.clone());
        registry.register("events_dead_lettered", "Events sent to a dead-letter sink", m.dead_lettered.clone());
        registry.register(
            "events_filtered_out",
            "Events a trigger's filter did not pass",
            m.filtered_out.clone(),
        );
        registry.register(
            "delivery_attempt_duration_seconds",
            "Duration of one delivery attempt (HTTP request to response)",
            m.attempt_seconds.clone(),
        );
        registry.register(
            "event_latency_seconds",
            "Time from ingress arrival to successful delivery",
            m.latency_seconds.clone(),
        );
        Self { registry, ..m }
    }

    /// Handles for one broker's or channel's ingress.
    pub fn ingress(&self, kind: &str, namespace: &str, name: &str) -> IngressMetrics {
        let labels = IngressLabels {
            namespace: namespace.into(),
            kind: kind.into(),
            name: name.into(),
        };
        IngressMetrics {
            accepted: self.accepted.get_or_create(&labels).clone(),
            rejected: self.rejected.clone(),
            labels,
        }
    }

    /// Handles for one delivering object (trigger, subscription, source).
    pub fn delivery(&self, kind: &str, namespace: &str, name: &str) -> DeliveryMetrics {
        let l = DeliveryLabels {
            namespace: namespace.into(),
            kind: kind.into(),
            name: name.into(),
        };
        DeliveryMetrics {
            delivered: self.delivered.get_or_create(&l).clone(),
            failed: self.failed.get_or_create(&l).clone(),
            retried: self.retried.get_or_create(&l).clone(),
            dead_lettered: self.dead_lettered.get_or_create(&l).clone(),
            filtered_out: self.filtered_out.get_or_create(&l).clone(),
            attempt_seconds: self.attempt_seconds.get_or_create(&l).clone(),
            latency_seconds: self.latency_seconds.get_or_create(&l).clone(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Ingress counters of one broker or channel.
#[derive(Clone)]
pub struct IngressMetrics {
    accepted: Counter,
    rejected: Family<RejectLabels, Counter>,
    labels: IngressLabels,
}

impl IngressMetrics {
    /// Counts `n` accepted events.
    pub fn accepted(&self, n: u64) {
        self.accepted.inc_by(n);
    }

    /// Counts a rejected request with its reason.
    pub fn rejected(&self, reason: &str) {
        let l = RejectLabels {
            namespace: self.labels.namespace.clone(),
            kind: self.labels.kind.clone(),
            name: self.labels.name.clone(),
            reason: reason.into(),
        };
        self.rejected.get_or_create(&l).inc();
    }
}

/// Delivery counters and histograms of one trigger, subscription or source.
#[derive(Clone)]
pub struct DeliveryMetrics {
    /// Successful deliveries.
    pub delivered: Counter,
    /// Deliveries that failed after every retry.
    pub failed: Counter,
    /// Retry attempts.
    pub retried: Counter,
    /// Events sent to the dead-letter sink.
    pub dead_lettered: Counter,
    /// Events the filter did not pass.
    pub filtered_out: Counter,
    /// Seconds per attempt.
    pub attempt_seconds: Histogram,
    /// Seconds from arrival to delivery.
    pub latency_seconds: Histogram,
}

impl DeliveryMetrics {
    /// Handles registered nowhere, for tests and one-off senders (created once per process).
    pub fn detached() -> &'static Self {
        static DETACHED: std::sync::OnceLock<DeliveryMetrics> = std::sync::OnceLock::new();
        DETACHED.get_or_init(|| Metrics::new().delivery("detached", "", ""))
    }
}
