//! A hub is one broker or channel at run time: it accepts events into its backend and runs one
//! dispatch loop per trigger or subscription, each reading its own cursor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use cloudevents::{AttributesReader, Event};
use sluice_delivery::binding::integer_value;
use sluice_delivery::metrics::{DeliveryMetrics, IngressMetrics};
use sluice_delivery::{Delivery, Dispatcher, EventSink, HttpSink, Outcome, ReplyMode, RetryPolicy, SinkError, Target, TraceContext};
use sluice_triggers::CompiledFilter;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinHandle;

use crate::backend::{Backend, Cursor, Envelope, FanOut, StoredEvent};

/// The loop-guard extension (BRK-09).
pub const TTL_EXTENSION: &str = "knativebrokerttl";
/// The arrival-time extension stamped by broker ingress (BRK-09).
pub const ARRIVAL_EXTENSION: &str = "knativearrivaltime";
/// TTL given to events that arrive without one.
pub const MAX_TTL: i64 = 255;
/// Default number of deliveries one trigger or subscription may have in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 100;

/// Whether a hub is a broker or a channel.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum HubKind {
    /// A Broker: TTL loop guard, arrival time, filters, replies back to itself.
    Broker,
    /// A Channel or InMemoryChannel: fan-out to subscriptions, replies to `spec.reply`.
    Channel,
}

impl HubKind {
    /// Lower-case name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            HubKind::Broker => "broker",
            HubKind::Channel => "channel",
        }
    }
}

/// Identifies a hub.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct HubKey {
    /// Broker or channel.
    pub kind: HubKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for HubKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// Where a subscriber's replies go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyTo {
    /// Replies are discarded.
    Discard,
    /// Replies go back into the same broker (triggers).
    SameBroker,
    /// Replies are POSTed to a URL (a Subscription's `spec.reply`).
    Url(Target),
}

/// Run-time configuration of one trigger or subscription; swapped live on change.
#[derive(Clone, Debug)]
pub struct SubscriberConfig {
    /// Stable identity (`namespace/name/uid`), also the backend cursor id.
    pub id: String,
    /// `trigger` or `subscription`.
    pub kind: &'static str,
    /// Namespace of the trigger or subscription (`Kn-Namespace`).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Filter (triggers); `None` passes everything.
    pub filter: Option<CompiledFilter>,
    /// Resolved subscriber URL.
    pub subscriber: Target,
    /// Where replies go.
    pub reply: ReplyTo,
    /// Retries, backoff, timeout (already merged with the broker's or channel's defaults).
    pub policy: RetryPolicy,
    /// Resolved dead-letter sink.
    pub dead_letter: Option<Target>,
    /// Deliveries in flight at most.
    pub max_in_flight: usize,
    /// `metadata.generation` of the Trigger or Subscription this configuration was made from
    /// (so a controller can tell when the data plane serves its latest spec).
    pub generation: i64,
}

impl SubscriberConfig {
    /// Who delivers, for logs: `broker default/default, trigger default/orders`.
    pub fn label(&self, hub: &HubKey) -> String {
        format!("{hub}, {} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// When a hub's ingress answers the sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Acknowledge {
    /// Once the events are stored for every subscriber (brokers; channels with
    /// `messaging.knative.dev/async-handler: "true"`).
    #[default]
    WhenStored,
    /// Once every subscriber has taken the events, with an error if one could not: Knative's
    /// default for channels (CH-04).
    AfterFanOut,
}

/// Why ingress refused events.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The event's `knativebrokerttl` is exhausted or malformed (400).
    #[error("{0}")]
    Ttl(String),
    /// The backend could not store the events (503).
    #[error("{0}")]
    Unavailable(String),
    /// A synchronous channel could not deliver to every subscriber (500).
    #[error("{0}")]
    FanOut(String),
}

struct RunningSubscriber {
    config: Arc<ArcSwap<SubscriberConfig>>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    task: JoinHandle<()>,
}

/// One broker or channel at run time.
pub struct Hub {
    key: HubKey,
    /// The URL of its ingress on the gateway (`knativeerrordest` of refused replies).
    ingress_url: String,
    backend: Arc<dyn Backend>,
    dispatcher: Dispatcher,
    ingress_metrics: IngressMetrics,
    metrics: Arc<sluice_delivery::metrics::Metrics>,
    subscribers: Mutex<HashMap<String, RunningSubscriber>>,
    after_fan_out: AtomicBool,
    /// Events taken from a cursor whose delivery has not finished (a shutdown waits for them).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Hub {
    /// A hub over `backend`.
    pub fn new(
        key: HubKey,
        ingress_url: String,
        backend: Arc<dyn Backend>,
        dispatcher: Dispatcher,
        metrics: Arc<sluice_delivery::metrics::Metrics>,
    ) -> Arc<Self> {
        let ingress_metrics = metrics.ingress(key.kind.as_str(), &key.namespace, &key.name);
        Arc::new(Self {
            key,
            ingress_url,
            backend,
            dispatcher,
            ingress_metrics,
            metrics,
            subscribers: Mutex::new(HashMap::new()),
            after_fan_out: AtomicBool::new(false),
            in_flight: Default::default(),
        })
    }

    /// Sets when ingress answers; applies to the next request.
    pub fn set_acknowledge(&self, mode: Acknowledge) {
        self.after_fan_out.store(mode == Acknowledge::AfterFanOut, Ordering::Relaxed);
    }

    /// This hub's identity.
    pub fn key(&self) -> &HubKey {
        &self.key
    }

    /// Ingress counters.
    pub fn ingress_metrics(&self) -> &IngressMetrics {
        &self.ingress_metrics
    }

    /// Accepts events: brokers apply the TTL loop guard and stamp `knativearrivaltime`.
    /// `Ok` means every event is stored and will be delivered or, for a hub that acknowledges
    /// after fan-out, that every subscriber has taken it.
    pub async fn ingest(&self, mut events: Vec<Event>, headers: http::HeaderMap, trace: TraceContext) -> Result<(), IngestError> {
        let arrival = Instant::now();
        let mut ttls = vec![None; events.len()];
        if self.key.kind == HubKind::Broker {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            for (e, slot) in events.iter_mut().zip(ttls.iter_mut()) {
                // BRK-09: absent, the TTL starts at MAX_TTL; present, every pass through ingress
                // (a reply's included) takes one off, and an event left with none is refused.
                // Subscribers never see it; it travels beside the event.
                // A value that is not an integer counts as absent, as Knative's ingress resets it.
                let ttl = match e.remove_extension(TTL_EXTENSION).map(|v| integer_value(TTL_EXTENSION, &v)) {
                    None | Some(Err(_)) => MAX_TTL,
                    Some(Ok(ttl)) if ttl > 1 => ttl - 1,
                    Some(Ok(ttl)) => {
                        return Err(IngestError::Ttl(format!(
                            "event {} arrived with {TTL_EXTENSION} {ttl}: time to live exhausted (loop guard)",
                            e.id()
                        )))
                    }
                };
                e.set_extension(ARRIVAL_EXTENSION, now.clone());
                *slot = Some(ttl);
            }
        }
        let n = events.len() as u64;
        let (fan_out, fanned_out) = match self.after_fan_out.load(Ordering::Relaxed) {
            true => {
                let (tracker, done) = FanOut::new();
                (Some(tracker), Some(done))
            }
            false => (None, None),
        };
        let stored = events
            .into_iter()
            .zip(ttls)
            .map(|(event, ttl)| {
                Arc::new(StoredEvent {
                    event,
                    ttl,
                    headers: headers.clone(),
                    trace: trace.clone(),
                    arrival,
                    fan_out: fan_out.clone(),
                })
            })
            .collect();
        // From here on only the stored copies hold the tracker: it completes when they are done.
        drop(fan_out);
        self.backend
            .append(stored)
            .await
            .map_err(|e| IngestError::Unavailable(e.to_string()))?;
        self.ingress_metrics.accepted(n);
        if let Some(done) = fanned_out {
            // A dropped sender cannot happen (the tracker always answers); treat it as done.
            if done.await.unwrap_or(false) {
                return Err(IngestError::FanOut(format!("{}: delivery to a subscriber failed", self.key)));
            }
        }
        Ok(())
    }

    /// Starts, updates or stops subscribers so that exactly `configs` run.
    /// A configuration that is the one running (the same `Arc`) changes nothing.
    pub async fn reconcile_subscribers(self: &Arc<Self>, configs: Vec<Arc<SubscriberConfig>>) {
        let mut running = self.subscribers.lock().await;
        let wanted: HashMap<String, Arc<SubscriberConfig>> = configs.into_iter().map(|c| (c.id.clone(), c)).collect();
        let gone: Vec<String> = running.keys().filter(|id| !wanted.contains_key(*id)).cloned().collect();
        for id in gone {
            if let Some(sub) = running.remove(&id) {
                sub.task.abort();
                // Ends any wait for permits (see below).
                sub.permits.close();
                self.backend.remove_cursor(&id).await;
                tracing::info!(hub = %self.key, subscriber = %id, "subscriber stopped");
            }
        }
        for (id, config) in wanted {
            if let Some(sub) = running.get_mut(&id) {
                if Arc::ptr_eq(&sub.config.load(), &config) {
                    continue;
                }
                if config.max_in_flight > sub.max_in_flight {
                    sub.permits.add_permits(config.max_in_flight - sub.max_in_flight);
                } else if config.max_in_flight < sub.max_in_flight {
                    // Permits held by deliveries in flight are taken out of circulation as they
                    // come back; until then the dispatch loop queues behind this (the semaphore
                    // is fair), so no delivery starts above the new limit.
                    let excess = u32::try_from(sub.max_in_flight - config.max_in_flight).unwrap_or(u32::MAX);
                    let permits = sub.permits.clone();
                    tokio::spawn(async move {
                        if let Ok(taken) = permits.acquire_many_owned(excess).await {
                            taken.forget();
                        }
                    });
                }
                sub.max_in_flight = config.max_in_flight;
                sub.config.store(config);
                continue;
            }
            let cursor = match self.backend.open_cursor(&id).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(hub = %self.key, subscriber = %id, error = %e, "cannot open cursor");
                    continue;
                }
            };
            let max = config.max_in_flight.max(1);
            // One Arc per subscriber: deliveries share it instead of cloning every handle per event.
            let metrics = Arc::new(self.metrics.delivery(config.kind, &config.namespace, &config.name));
            // The id (namespace, name, uid) does not change while the subscriber runs, so
            // neither does its label.
            let label: Arc<str> = config.label(&self.key).into();
            let shared = Arc::new(ArcSwap::new(config));
            let permits = Arc::new(Semaphore::new(max));
            let task = tokio::spawn(dispatch_loop(self.clone(), cursor, shared.clone(), label, permits.clone(), metrics));
            tracing::info!(hub = %self.key, subscriber = %id, "subscriber started");
            running.insert(
                id,
                RunningSubscriber {
                    config: shared,
                    permits,
                    max_in_flight: max,
                    task,
                },
            );
        }
    }

    /// Whether subscriber `id` runs here with a configuration made from generation
    /// `generation` or a later one.
    pub async fn serves(&self, id: &str, generation: i64) -> bool {
        let running = self.subscribers.lock().await;
        running.get(id).is_some_and(|s| s.config.load().generation >= generation)
    }

    /// Events accepted and not yet done: queued in the backend, or taken and being delivered.
    pub fn pending(&self) -> usize {
        self.backend.queued() + self.in_flight.load(Ordering::Relaxed)
    }

    /// Stops every subscriber.
    pub async fn shutdown(&self) {
        for (_, sub) in self.subscribers.lock().await.drain() {
            sub.task.abort();
        }
    }
}

/// One event of [`Hub::pending`] between its cursor and the end of its delivery.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn start(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads one subscriber's cursor, filters, and delivers with at most `max_in_flight` at once.
async fn dispatch_loop(
    hub: Arc<Hub>,
    mut cursor: Box<dyn Cursor>,
    config: Arc<ArcSwap<SubscriberConfig>>,
    label: Arc<str>,
    permits: Arc<Semaphore>,
    metrics: Arc<DeliveryMetrics>,
) {
    let acker = cursor.acker();
    while let Some(env) = cursor.next().await {
        // Counted from the moment it leaves the cursor until its delivery is done, so a
        // draining shutdown always sees it in one place or the other.
        let in_flight = InFlight::start(&hub.in_flight);
        let cfg = config.load_full();
        if let Some(filter) = &cfg.filter {
            if !filter.matches(&env.stored.event) {
                metrics.filtered_out.inc();
                acker.ack(env.offset);
                continue;
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (hub, label, metrics, acker) = (hub.clone(), label.clone(), metrics.clone(), acker.clone());
        // Boxed: a delivery's future is several kilobytes (retries, reply handling, the HTTP
        // exchange), and a task moves its future on spawn and on completion; moving a pointer
        // instead measurably cuts the per-event cost (see docs/architecture.md, Performance).
        tokio::spawn(Box::pin(async move {
            deliver_one(&hub, &cfg, &label, &env, &metrics).await;
            drop(permit);
            acker.ack(env.offset);
            drop(in_flight);
        }));
    }
}

async fn deliver_one(hub: &Arc<Hub>, cfg: &SubscriberConfig, label: &str, env: &Envelope, metrics: &DeliveryMetrics) {
    let stored = &env.stored;
    let event = &stored.event;
    let ttl = stored.ttl.unwrap_or(MAX_TTL);
    let broker_reply;
    let http_reply;
    let reply = match &cfg.reply {
        ReplyTo::Discard => ReplyMode::Discard,
        ReplyTo::SameBroker => {
            broker_reply = BrokerReply { hub: hub.clone(), ttl };
            ReplyMode::To {
                sink: &broker_reply,
                strict: true,
            }
        }
        ReplyTo::Url(target) => {
            http_reply = HttpSink {
                dispatcher: hub.dispatcher.clone(),
                target: target.clone(),
                namespace: cfg.namespace.clone(),
            };
            ReplyMode::To {
                sink: &http_reply,
                strict: false,
            }
        }
    };
    let outcome = hub
        .dispatcher
        .deliver(Delivery {
            label,
            event,
            headers: &stored.headers,
            subscriber: &cfg.subscriber,
            policy: &cfg.policy,
            dead_letter: cfg.dead_letter.as_ref(),
            reply,
            namespace: &cfg.namespace,
            trace: &stored.trace,
            metrics,
            arrival: Some(stored.arrival),
        })
        .await;
    if let (Outcome::Failed { .. }, Some(fan_out)) = (&outcome, &stored.fan_out) {
        fan_out.fail();
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        let outcome = match &outcome {
            Outcome::Delivered => "delivered",
            Outcome::DeadLettered { .. } => "dead-lettered",
            Outcome::Failed { .. } => "failed",
        };
        tracing::debug!(delivery = label, event_id = %event.id(), outcome, "delivery finished");
    }
}

/// Re-ingests replies into the broker (BRK-10) carrying the TTL of the event they answer, as
/// Knative's filter re-attaches it; ingress takes one off and refuses the reply once none is
/// left, which fails the delivery (a reply loop ends at its dead-letter sink, if any).
struct BrokerReply {
    hub: Arc<Hub>,
    ttl: i64,
}

#[async_trait]
impl EventSink for BrokerReply {
    async fn send(&self, mut event: Event, headers: http::HeaderMap, trace: &TraceContext) -> Result<(), SinkError> {
        event.set_extension(TTL_EXTENSION, self.ttl);
        self.hub.ingest(vec![event], headers, trace.child()).await.map_err(|e| match e {
            IngestError::Ttl(m) => SinkError::Rejected { status: 400, message: m },
            IngestError::Unavailable(m) => SinkError::Unavailable { status: 503, message: m },
            IngestError::FanOut(m) => SinkError::Unavailable { status: 500, message: m },
        })
    }

    fn url(&self) -> Option<&str> {
        Some(&self.hub.ingress_url)
    }
}
