//! The data plane: every hub (broker or channel) and its subscribers, reconciled from a
//! snapshot of desired state. It does not know where the snapshot came from (embedded store or
//! Kubernetes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sluice_delivery::metrics::Metrics;
use sluice_delivery::{Dispatcher, Timeouts};

use crate::hub::{Acknowledge, Hub, HubKey, HubKind, SubscriberConfig};
use crate::memory::{MemoryBackend, DEFAULT_QUEUE_CAPACITY};

/// Default largest accepted request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Which backend stores a hub's events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// Bounded in-memory queues; nothing survives a restart.
    #[default]
    Memory,
}

/// Desired state of one hub.
#[derive(Clone, Debug)]
pub struct HubSpec {
    /// Which hub.
    pub key: HubKey,
    /// Its storage.
    pub backend: BackendKind,
    /// When its ingress answers.
    pub acknowledge: Acknowledge,
    /// Its triggers or subscriptions.
    pub subscribers: Vec<Arc<SubscriberConfig>>,
}

/// Desired state of the whole data plane.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every hub that should exist.
    pub hubs: Vec<HubSpec>,
}

/// Settings of the data plane.
#[derive(Clone, Debug)]
pub struct PlaneConfig {
    /// Base URL of the gateway that serves the hubs' ingress, e.g. `http://127.0.0.1:8080`.
    pub gateway_url: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Time limits of deliveries.
    pub timeouts: Timeouts,
}

/// Every running hub.
pub struct DataPlane {
    /// Set by [`DataPlane::drain`]: ingress refuses new events (503).
    draining: std::sync::atomic::AtomicBool,
    hubs: RwLock<HashMap<HubKey, Arc<Hub>>>,
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    config: PlaneConfig,
    /// Counts applied snapshots; [`DataPlane::wait_serving`] waits on it.
    applied: tokio::sync::watch::Sender<u64>,
}

impl DataPlane {
    /// An empty data plane.
    pub fn new(metrics: Arc<Metrics>, config: PlaneConfig) -> Arc<Self> {
        Arc::new(Self {
            draining: Default::default(),
            hubs: RwLock::new(HashMap::new()),
            dispatcher: Dispatcher::new(config.timeouts),
            metrics,
            config,
            applied: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The hub with this key, if it exists.
    pub fn hub(&self, key: &HubKey) -> Option<Arc<Hub>> {
        self.hubs.read().expect("hub map poisoned").get(key).cloned()
    }

    /// Whether a shutdown is draining the data plane (ingress then answers 503).
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Events accepted and not yet done, over every hub.
    pub fn pending(&self) -> usize {
        self.hubs.read().expect("hub map poisoned").values().map(|h| h.pending()).sum()
    }

    /// Stops taking events and waits until every accepted event is delivered (or
    /// dead-lettered), at most `grace`. Returns how many were still pending at the end: with
    /// the memory backend those are lost.
    pub async fn drain(&self, grace: std::time::Duration) -> usize {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let pending = self.pending();
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return pending;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Largest accepted request body.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Makes the running hubs and subscribers match `snapshot`: creates new hubs, removes
    /// deleted ones, and starts, updates or stops subscribers. Configuration changes apply to
    /// the next event.
    pub async fn apply(&self, snapshot: Snapshot) {
        let wanted: HashMap<HubKey, HubSpec> = snapshot.hubs.into_iter().map(|h| (h.key.clone(), h)).collect();
        let removed: Vec<Arc<Hub>> = {
            let mut hubs = self.hubs.write().expect("hub map poisoned");
            let gone: Vec<HubKey> = hubs.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
            gone.iter().filter_map(|k| hubs.remove(k)).collect()
        };
        for hub in removed {
            tracing::info!(hub = %hub.key(), "hub removed");
            hub.shutdown().await;
        }
        for (key, spec) in wanted {
            let hub = {
                let mut hubs = self.hubs.write().expect("hub map poisoned");
                hubs.entry(key.clone())
                    .or_insert_with(|| {
                        tracing::info!(hub = %key, "hub created");
                        let backend = match spec.backend {
                            BackendKind::Memory => Arc::new(MemoryBackend::new(DEFAULT_QUEUE_CAPACITY)),
                        };
                        let gateway = self.config.gateway_url.trim_end_matches('/');
                        let ingress_url = match key.kind {
                            HubKind::Broker => format!("{gateway}/{}/{}", key.namespace, key.name),
                            HubKind::Channel => format!("{gateway}/channels/{}/{}", key.namespace, key.name),
                        };
                        Hub::new(key.clone(), ingress_url, backend, self.dispatcher.clone(), self.metrics.clone())
                    })
                    .clone()
            };
            hub.set_acknowledge(spec.acknowledge);
            hub.reconcile_subscribers(spec.subscribers).await;
        }
        self.applied.send_modify(|n| *n += 1);
    }

    /// Whether hub `key` runs and, when `subscriber` names one (its id and generation), runs
    /// it with a configuration from that generation or a later one.
    pub async fn serves(&self, key: &HubKey, subscriber: Option<(&str, i64)>) -> bool {
        let Some(hub) = self.hub(key) else { return false };
        match subscriber {
            None => true,
            Some((id, generation)) => hub.serves(id, generation).await,
        }
    }

    /// Waits at most `timeout` until [`DataPlane::serves`] holds; returns whether it does. A
    /// controller in the same process waits so before it reports an object Ready, so that
    /// Ready means "receiving events".
    pub async fn wait_serving(&self, key: &HubKey, subscriber: Option<(&str, i64)>, timeout: std::time::Duration) -> bool {
        let mut applied = self.applied.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            applied.borrow_and_update();
            if self.serves(key, subscriber).await {
                return true;
            }
            if tokio::time::timeout_at(deadline, applied.changed()).await.is_err() {
                return false;
            }
        }
    }
}
