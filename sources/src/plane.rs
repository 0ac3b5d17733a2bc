//! The sources of one data plane: one adapter task per source object, started when its sink
//! resolves, restarted when its config or sink changes, stopped when it goes. Each adapter's
//! [`Health`] is kept here for the controllers, with a broadcast of the sources whose health
//! changed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_delivery::metrics::Metrics;
use sluice_delivery::Dispatcher;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{apiserver, github, kafka, ping, rabbitmq, sqs, Adapter, AdapterContext, ConfigError, Emitter, Health, SinkPlan};

/// One source object: its kind (lower case, e.g. `pingsource`), namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    /// Kind in lower case.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What an adapter runs on, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum AdapterConfig {
    /// A PingSource (boxed: its parsed schedule is large).
    Ping(Box<ping::Config>),
    /// A RabbitmqSource.
    Rabbitmq(rabbitmq::Config),
    /// A KafkaSource.
    Kafka(kafka::Config),
    /// A GitHubSource's webhook receiver.
    GitHub(github::Config),
    /// An AwsSqsSource.
    Sqs(sqs::Config),
    /// An ApiServerSource.
    ApiServer(apiserver::Config),
}

impl AdapterConfig {
    fn into_adapter(self, receivers: &Arc<github::Receivers>, api: &Option<apiserver::ApiAccess>) -> Box<dyn Adapter> {
        match self {
            AdapterConfig::Ping(c) => Box::new(ping::PingAdapter::new(*c)),
            AdapterConfig::Rabbitmq(c) => Box::new(rabbitmq::RabbitmqAdapter::new(c)),
            AdapterConfig::Kafka(c) => Box::new(kafka::KafkaAdapter::new(c)),
            AdapterConfig::GitHub(c) => Box::new(github::GitHubAdapter::new(c, receivers.clone())),
            AdapterConfig::Sqs(c) => Box::new(sqs::SqsAdapter::new(c)),
            AdapterConfig::ApiServer(c) => Box::new(apiserver::ApiServerAdapter::new(c, api.clone())),
        }
    }
}

/// What should run for one source object.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInput {
    /// Which source.
    pub key: SourceKey,
    /// Where its events go; `None` while its sink does not resolve (then nothing runs).
    pub sink: Option<SinkPlan>,
    /// Its `ceOverrides.extensions`.
    pub overrides: BTreeMap<String, String>,
    /// Its adapter's config, or why its spec and Secrets do not make one.
    pub config: Result<AdapterConfig, ConfigError>,
}

struct Running {
    input: SourceInput,
    health: watch::Receiver<Health>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// An entry for a source that could not start, failing with `health`.
    fn not_started(input: SourceInput, health: Health) -> Self {
        let (_, health) = watch::channel(health);
        Running {
            input,
            health,
            stop: CancellationToken::new(),
            task: None,
        }
    }
}

/// The running adapters of a data plane.
pub struct SourcePlane {
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    running: Mutex<HashMap<SourceKey, Running>>,
    changes: broadcast::Sender<SourceKey>,
    receivers: Arc<github::Receivers>,
    api: Option<apiserver::ApiAccess>,
    /// The health of sources run elsewhere (a ContainerSource's process, run by the serving
    /// runtime), as their runner reports it.
    reported: Mutex<HashMap<SourceKey, Health>>,
}

impl SourcePlane {
    /// A plane delivering through `dispatcher`, counting in `metrics`; ApiServerSources watch
    /// the API behind `api`.
    pub fn new(dispatcher: Dispatcher, metrics: Arc<Metrics>, api: Option<apiserver::ApiAccess>) -> Arc<Self> {
        Arc::new(Self {
            dispatcher,
            metrics,
            running: Mutex::new(HashMap::new()),
            changes: broadcast::channel(1024).0,
            receivers: Arc::default(),
            api,
            reported: Mutex::default(),
        })
    }

    /// Makes the running adapters those of `inputs`: new ones start, changed ones restart
    /// (after the old task stopped), missing ones stop.
    pub fn apply(&self, inputs: Vec<SourceInput>) {
        let mut running = self.running.lock().expect("sources poisoned");
        let wanted: std::collections::HashSet<SourceKey> = inputs.iter().map(|i| i.key.clone()).collect();
        let gone: Vec<SourceKey> = running.keys().filter(|k| !wanted.contains(*k)).cloned().collect();
        for key in gone {
            if let Some(r) = running.remove(&key) {
                tracing::info!(source = %key, "source removed; stopping its adapter");
                r.stop.cancel();
            }
            let _ = self.changes.send(key);
        }
        for input in inputs {
            if running.get(&input.key).is_some_and(|r| r.input == input) {
                continue;
            }
            let previous = running.remove(&input.key);
            let after = previous.and_then(|p| {
                p.stop.cancel();
                p.task
            });
            let key = input.key.clone();
            if let Some(r) = self.start(input, after) {
                running.insert(key.clone(), r);
            }
            let _ = self.changes.send(key);
        }
    }

    /// Starts the adapter of `input` once `after` (its previous adapter) ended.
    fn start(&self, input: SourceInput, after: Option<JoinHandle<()>>) -> Option<Running> {
        let key = input.key.clone();
        let sink = input.sink.as_ref()?;
        let config = match &input.config {
            Ok(c) => c.clone(),
            Err(e) => {
                tracing::warn!(source = %key, error = %e, "source not started: its config is invalid");
                let health = Health::failing(e.reason, e.to_string());
                return Some(Running::not_started(input, health));
            }
        };
        let metrics = self.metrics.source(&key.kind, &key.namespace, &key.name);
        let emitter = match Emitter::new(
            self.dispatcher.clone(),
            sink,
            input.overrides.clone(),
            key.to_string(),
            key.namespace.clone(),
            metrics,
        ) {
            Ok(e) => e,
            Err(e) => {
                let health = Health::failing("SinkInvalid", format!("sink {}: {e}", sink.uri));
                return Some(Running::not_started(input, health));
            }
        };
        let (health_tx, health) = watch::channel(Health::Starting);
        let stop = CancellationToken::new();
        let ctx = AdapterContext {
            emitter,
            health: health_tx,
            stop: stop.clone(),
        };
        let changes = self.changes.clone();
        let mut watching = health.clone();
        let watched_key = key.clone();
        tokio::spawn(async move {
            while watching.changed().await.is_ok() {
                let _ = changes.send(watched_key.clone());
            }
        });
        let adapter = config.into_adapter(&self.receivers, &self.api);
        let task = tokio::spawn(async move {
            if let Some(previous) = after {
                let _ = previous.await;
            }
            tracing::info!(source = %key, "source adapter starting");
            adapter.run(ctx).await;
            tracing::info!(source = %key, "source adapter stopped");
        });
        Some(Running {
            input,
            health,
            stop,
            task: Some(task),
        })
    }

    /// The webhook receivers of the GitHubSources that run, for the gateway.
    pub fn github_receivers(&self) -> &github::Receivers {
        &self.receivers
    }

    /// The health of a source's adapter; `None` when none runs (its sink does not resolve).
    pub fn health(&self, key: &SourceKey) -> Option<Health> {
        let running = self.running.lock().expect("sources poisoned");
        if let Some(r) = running.get(key) {
            return Some(r.health.borrow().clone());
        }
        drop(running);
        self.reported.lock().expect("reports poisoned").get(key).cloned()
    }

    /// The health of every source this plane runs or was told of.
    pub fn healths(&self) -> Vec<(SourceKey, Health)> {
        // What runs here wins over what was reported of the same source.
        let mut all = self.reported.lock().expect("reports poisoned").clone();
        let running = self.running.lock().expect("sources poisoned");
        all.extend(running.iter().map(|(k, r)| (k.clone(), r.health.borrow().clone())));
        all.into_iter().collect()
    }

    /// Records the health of a source run elsewhere (`None`: it no longer runs), telling the
    /// controllers when it changed.
    pub fn report(&self, key: &SourceKey, health: Option<Health>) {
        let mut reported = self.reported.lock().expect("reports poisoned");
        let changed = match health {
            Some(h) => reported.insert(key.clone(), h.clone()).as_ref() != Some(&h),
            None => reported.remove(key).is_some(),
        };
        drop(reported);
        if changed {
            let _ = self.changes.send(key.clone());
        }
    }

    /// The sources whose adapter started, stopped or changed health.
    pub fn changes(&self) -> broadcast::Receiver<SourceKey> {
        self.changes.subscribe()
    }

    /// Stops every adapter: no new messages are taken, and events in flight get up to `grace`
    /// to be delivered and acknowledged.
    pub async fn stop_all(&self, grace: Duration) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = self.running.lock().expect("sources poisoned");
            running
                .drain()
                .filter_map(|(_, r)| {
                    r.stop.cancel();
                    r.task
                })
                .collect()
        };
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(?grace, "source adapters did not stop within the grace period");
        }
    }
}
