//! Prometheus metrics of the event path (broker ingress and deliveries) and of the serving
//! path (requests to revisions, the activator, cold starts, scale).
//!
//! One [`Metrics`] per process holds every family; components take cheap per-object handles
//! ([`BrokerMetrics`], [`DeliveryMetrics`]) once, so the hot path never builds label sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// Labels of serving metrics: one revision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    /// Namespace of the revision.
    pub namespace: String,
    /// Its name.
    pub revision: String,
}

/// Labels of requests a revision could not take.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// Namespace of the revision.
    pub namespace: String,
    /// Its name.
    pub revision: String,
    /// `queue_full`, `timeout` or `failing`.
    pub reason: String,
}

/// Cold starts last from milliseconds to tens of seconds.
fn start_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
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
    revision_requests: Family<RevisionLabels, Counter>,
    revision_refused: Family<RefusedLabels, Counter>,
    revision_in_flight: Family<RevisionLabels, Gauge>,
    revision_desired: Family<RevisionLabels, Gauge>,
    revision_ready: Family<RevisionLabels, Gauge>,
    cold_start_seconds: Family<RevisionLabels, Histogram, fn() -> Histogram>,
    app_start_seconds: Family<RevisionLabels, Histogram, fn() -> Histogram>,
    source_received: Family<DeliveryLabels, Counter>,
    source_acknowledged: Family<DeliveryLabels, Counter>,
    source_rejected: Family<DeliveryLabels, Counter>,
    source_lag: Family<DeliveryLabels, Gauge>,
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
            revision_requests: Family::default(),
            revision_refused: Family::default(),
            revision_in_flight: Family::default(),
            revision_desired: Family::default(),
            revision_ready: Family::default(),
            cold_start_seconds: Family::new_with_constructor(start_histogram as fn() -> Histogram),
            app_start_seconds: Family::new_with_constructor(start_histogram as fn() -> Histogram),
            source_received: Family::default(),
            source_acknowledged: Family::default(),
            source_rejected: Family::default(),
            source_lag: Family::default(),
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
        registry.register("revision_requests", "Requests routed to a revision", m.revision_requests.clone());
        registry.register(
            "revision_requests_refused",
            "Requests a revision could not take (503): its queue was full, or no instance was free in time",
            m.revision_refused.clone(),
        );
        registry.register(
            "revision_requests_in_flight",
            "Requests held by the activator or proxied to a revision now",
            m.revision_in_flight.clone(),
        );
        registry.register(
            "revision_desired_instances",
            "Instances the autoscaler wants",
            m.revision_desired.clone(),
        );
        registry.register("revision_ready_instances", "Instances passing readiness", m.revision_ready.clone());
        registry.register(
            "revision_cold_start_seconds",
            "From the first request held at zero to a ready instance",
            m.cold_start_seconds.clone(),
        );
        registry.register(
            "revision_app_start_seconds",
            "From an instance's process start to its first passed readiness probe",
            m.app_start_seconds.clone(),
        );
        registry.register(
            "source_messages_received",
            "Messages a source took from upstream (webhook, record, queue message, tick)",
            m.source_received.clone(),
        );
        registry.register(
            "source_messages_acknowledged",
            "Messages a source acknowledged upstream after its sink accepted them or they were dead-lettered",
            m.source_acknowledged.clone(),
        );
        registry.register(
            "source_messages_rejected",
            "Messages a source could not turn into a CloudEvent (rejected or dead-lettered upstream)",
            m.source_rejected.clone(),
        );
        registry.register(
            "source_lag",
            "Messages waiting upstream for a source, where the protocol tells (Kafka consumer lag, SQS visible messages)",
            m.source_lag.clone(),
        );
        Self { registry, ..m }
    }

    /// Handles for one source (`kind` in lower case, e.g. `kafkasource`): its own counters and
    /// the delivery metrics of its sink.
    pub fn source(&self, kind: &str, namespace: &str, name: &str) -> SourceMetrics {
        let l = DeliveryLabels {
            namespace: namespace.into(),
            kind: kind.into(),
            name: name.into(),
        };
        SourceMetrics {
            received: self.source_received.get_or_create(&l).clone(),
            acknowledged: self.source_acknowledged.get_or_create(&l).clone(),
            rejected: self.source_rejected.get_or_create(&l).clone(),
            lag: self.source_lag.get_or_create(&l).clone(),
            delivery: self.delivery(kind, namespace, name),
        }
    }

    /// Handles for one revision of the serving path.
    pub fn revision(&self, namespace: &str, revision: &str) -> RevisionMetrics {
        let labels = RevisionLabels {
            namespace: namespace.into(),
            revision: revision.into(),
        };
        RevisionMetrics {
            requests: self.revision_requests.get_or_create(&labels).clone(),
            in_flight: self.revision_in_flight.get_or_create(&labels).clone(),
            desired: self.revision_desired.get_or_create(&labels).clone(),
            ready: self.revision_ready.get_or_create(&labels).clone(),
            cold_start_seconds: self.cold_start_seconds.get_or_create(&labels).clone(),
            app_start_seconds: self.app_start_seconds.get_or_create(&labels).clone(),
            refused: self.revision_refused.clone(),
            labels,
        }
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

/// Metrics of one source: what it took from upstream and acknowledged there, and the delivery
/// metrics (delivered, failed, retried, dead-lettered) of its sink.
#[derive(Clone)]
pub struct SourceMetrics {
    /// Messages taken from upstream.
    pub received: Counter,
    /// Messages acknowledged upstream (Kafka commit, SQS delete, AMQP ack, webhook 2xx).
    pub acknowledged: Counter,
    /// Messages that could not be turned into a CloudEvent.
    pub rejected: Counter,
    /// Messages waiting upstream, where the protocol tells.
    pub lag: Gauge,
    /// Deliveries to the sink.
    pub delivery: DeliveryMetrics,
}

impl SourceMetrics {
    /// Handles registered nowhere, for tests.
    pub fn detached() -> Self {
        Metrics::new().source("detached", "", "")
    }
}

/// Serving metrics of one revision.
#[derive(Clone, Debug)]
pub struct RevisionMetrics {
    labels: RevisionLabels,
    /// Requests routed to it.
    pub requests: Counter,
    /// Requests held or proxied now.
    pub in_flight: Gauge,
    /// Instances wanted.
    pub desired: Gauge,
    /// Instances ready.
    pub ready: Gauge,
    /// Cold starts (first held request to ready instance).
    pub cold_start_seconds: Histogram,
    /// Instance start to ready.
    pub app_start_seconds: Histogram,
    refused: Family<RefusedLabels, Counter>,
}

impl RevisionMetrics {
    /// Counts a refused request (`queue_full` or `timeout`).
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&RefusedLabels {
                namespace: self.labels.namespace.clone(),
                revision: self.labels.revision.clone(),
                reason: reason.into(),
            })
            .inc();
    }
}
