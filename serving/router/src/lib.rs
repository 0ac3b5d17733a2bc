//! The serving data path on the gateway ([`ServingPlane`]):
//!
//! - a request whose `Host` is a Route's (or a tag's) host goes to one of its revisions, picked
//!   by weight per request (RTE-02, [`table`]);
//! - the revision's [`pool`] gives it an instance: at once when one is ready and free, else it
//!   is held (the activator) and the autoscaler is told at once, so a revision at zero starts
//!   an instance without waiting for the next tick; `containerConcurrency` is a hard limit per
//!   instance with a bounded queue;
//! - [`proxy`] forwards it with the forwarding headers and the revision's timeout;
//! - [`ServingPlane::run_autoscaler`] samples each revision's concurrency, feeds Knative's KPA
//!   (`sluice_autoscaler`) and scales the [`Runtime`] to its decision.
//!
//! What to serve comes from [`ServingPlane::apply`]: the Routes with their status, and each
//! Revision with what it runs, from watching the API.

pub mod pool;
pub mod proxy;
pub mod table;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Request, StatusCode};
use serde_json::Value;
use sluice_autoscaler::config::{Config, Metric, RevisionSpec};
use sluice_autoscaler::kpa::{Autoscaler, Scaler};
use sluice_delivery::metrics::{Metrics, RevisionMetrics};
use sluice_runtime::workload::WorkloadError;
use sluice_runtime::{RevisionKey, RevisionState, Runtime, Workload};

use crate::pool::RevisionPool;
use crate::table::RoutingTable;

/// How the serving plane holds and scales.
#[derive(Clone, Debug)]
pub struct PlaneSettings {
    /// The longest a request is held for an instance (the activator's timeout); a revision's
    /// `timeoutSeconds` shortens it.
    pub hold_timeout: Duration,
    /// How often the KPA decides (Knative's `tick-interval`, 2 s).
    pub tick: Duration,
}

impl Default for PlaneSettings {
    fn default() -> Self {
        Self {
            hold_timeout: Duration::from_secs(60),
            tick: Duration::from_secs(2),
        }
    }
}

/// A Revision as [`ServingPlane::apply`] takes it.
pub struct RevisionInput {
    /// The Revision object.
    pub revision: Value,
    /// What it runs (`None` where the runtime runs the Revision's own pod spec), or why it
    /// cannot run.
    pub workload: Result<Option<Workload>, WorkloadError>,
}

/// What the plane knows of a revision, for its status.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The runtime's view.
    pub state: RevisionState,
    /// Why it cannot run, if it cannot.
    pub error: Option<WorkloadError>,
    /// Its initial scale is 0.
    pub starts_at_zero: bool,
}

/// One served revision.
struct Served {
    pool: Arc<RevisionPool>,
    metrics: RevisionMetrics,
    timeout: Duration,
    error: Option<WorkloadError>,
    scaling: Mutex<Scaling>,
}

/// The KPA state of a revision.
struct Scaling {
    spec: RevisionSpec,
    autoscaler: Autoscaler,
    scaler: Scaler,
    /// Concurrency samples since the last recorded second, and when that second began.
    samples: Vec<usize>,
    arrived_at_second: u64,
    second_began: Instant,
    /// When the first request held at zero arrived (for the cold-start time).
    cold_since: Option<Instant>,
}

/// The serving data path. See the crate documentation.
pub struct ServingPlane {
    runtime: Arc<dyn Runtime>,
    settings: PlaneSettings,
    table: RwLock<Arc<RoutingTable>>,
    served: RwLock<HashMap<RevisionKey, Arc<Served>>>,
    client: proxy::InstanceClient,
    metrics: Arc<Metrics>,
}

impl ServingPlane {
    /// A plane that runs revisions on `runtime`, counting into `metrics`.
    pub fn new(runtime: Arc<dyn Runtime>, settings: PlaneSettings, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            settings,
            table: RwLock::new(Arc::new(RoutingTable::default())),
            served: RwLock::new(HashMap::new()),
            client: proxy::client(),
            metrics,
        })
    }

    /// The runtime it scales.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// Serves `routes` and `revisions` from now on, with `config` (`config-autoscaler`):
    /// new revisions start at their initial scale, gone ones are stopped.
    pub fn apply(&self, routes: &[Value], revisions: Vec<RevisionInput>, config: &Config) {
        let table = Arc::new(RoutingTable::new(routes));
        *self.table.write().expect("table lock") = table;
        let mut served = self.served.write().expect("served lock");
        let mut seen = Vec::new();
        for input in revisions {
            let meta = &input.revision["metadata"];
            let key = RevisionKey {
                namespace: meta["namespace"].as_str().unwrap_or("default").to_string(),
                name: meta["name"].as_str().unwrap_or_default().to_string(),
            };
            seen.push(key.clone());
            let spec = &input.revision["spec"];
            let concurrency = spec["containerConcurrency"].as_u64().unwrap_or(0) as u32;
            let timeout = Duration::from_secs(
                spec["timeoutSeconds"]
                    .as_u64()
                    .unwrap_or(sluice_runtime::workload::DEFAULT_TIMEOUT_SECONDS),
            );
            let annotations: BTreeMap<String, String> = meta["annotations"]
                .as_object()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            // Admission validated the annotations; one that still cannot be read leaves the
            // revision on config-autoscaler's settings, and says so.
            let scaling_spec = RevisionSpec::new(config, &annotations, concurrency).unwrap_or_else(|errors| {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                tracing::warn!(revision = %key, errors = %text.join("; "), "autoscaling annotations not used");
                RevisionSpec::new(config, &BTreeMap::new(), concurrency).expect("defaults are valid")
            });
            let error = input.workload.as_ref().err().cloned();
            if let Ok(Some(workload)) = input.workload {
                self.runtime.clone().set_workload(workload);
            }
            match served.get(&key) {
                Some(existing) if existing.pool.concurrency() == concurrency && existing.timeout == timeout && existing.error == error => {
                    let mut scaling = existing.scaling.lock().expect("scaling lock");
                    if scaling.spec != scaling_spec {
                        scaling.autoscaler = Autoscaler::new(scaling_spec.clone());
                        scaling.scaler = Scaler::new(scaling_spec.clone());
                        scaling.spec = scaling_spec;
                    }
                }
                _ => {
                    let initial = if error.is_none() {
                        scaling_spec.initial_scale.max(scaling_spec.min_scale)
                    } else {
                        0
                    };
                    tracing::info!(revision = %key, initial, concurrency, "serving revision");
                    served.insert(
                        key.clone(),
                        Arc::new(Served {
                            pool: RevisionPool::new(key.clone(), concurrency),
                            metrics: self.metrics.revision(&key.namespace, &key.name),
                            timeout,
                            error,
                            scaling: Mutex::new(Scaling {
                                autoscaler: Autoscaler::new(scaling_spec.clone()),
                                scaler: Scaler::new(scaling_spec.clone()),
                                spec: scaling_spec,
                                samples: Vec::new(),
                                arrived_at_second: 0,
                                second_began: Instant::now(),
                                cold_since: None,
                            }),
                        }),
                    );
                    if self.runtime.state(&key).desired == 0 && initial > 0 {
                        self.runtime.clone().scale(&key, initial);
                    }
                }
            }
        }
        served.retain(|key, _| {
            let keep = seen.contains(key);
            if !keep {
                tracing::info!(revision = %key, "revision gone; stopping its instances");
                self.runtime.remove(key);
            }
            keep
        });
    }

    /// Whether the gateway routes `route` (a Route with the status decided for it) as its
    /// status says: each of its hosts to the same revisions and shares.
    pub fn routes(&self, route: &Value) -> bool {
        let wanted = RoutingTable::new(std::slice::from_ref(route));
        self.table.read().expect("table lock").covers(&wanted)
    }

    /// Whether a request with this `Host` is for a Route.
    pub fn serves_host(&self, host: &str) -> bool {
        self.table.read().expect("table lock").lookup(host).is_some()
    }

    /// What the plane knows of `key`, if it serves it.
    pub fn observe(&self, key: &RevisionKey) -> Option<Observed> {
        let served = self.served.read().expect("served lock").get(key).cloned()?;
        let starts_at_zero = served.scaling.lock().expect("scaling lock").spec.initial_scale == 0;
        Some(Observed {
            state: self.runtime.state(key),
            error: served.error.clone(),
            starts_at_zero,
        })
    }

    /// Tells the autoscaler that a request waits for `served` at zero: scale to the
    /// activation scale now.
    fn poke(&self, key: &RevisionKey, served: &Served) {
        let mut scaling = served.scaling.lock().expect("scaling lock");
        let now = Instant::now();
        scaling.cold_since.get_or_insert(now);
        // The held request counts as demand in the metric window, so the next tick keeps it.
        scaling.autoscaler.record(now, 1.0);
        let activation = scaling.spec.activation_scale.max(1);
        drop(scaling);
        if served.error.is_none() && self.runtime.state(key).desired == 0 {
            tracing::info!(revision = %key, activation, "request held at zero: scaling up");
            self.runtime.clone().scale(key, activation);
        }
    }

    /// Serves one request for a Route host: picks a revision, holds it until an instance is
    /// free, forwards it. `None` when `Host` is not a Route's.
    pub async fn handle(&self, req: Request<Body>, peer: SocketAddr) -> Option<Response> {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))?
            .to_string();
        let (key, pending) = {
            let table = self.table.read().expect("table lock").clone();
            let destination = table.lookup(&host)?;
            (destination.pick(fastrand::u32(0..100)).cloned(), destination.pending.clone())
        };
        let Some(key) = key else {
            let why = pending.unwrap_or_else(|| "the route has no ready revision yet".into());
            return Some((StatusCode::SERVICE_UNAVAILABLE, format!("{host}: {why}\n")).into_response());
        };
        let served = self.served.read().expect("served lock").get(&key).cloned();
        let Some(served) = served else {
            return Some((StatusCode::SERVICE_UNAVAILABLE, format!("revision {key} is not served yet\n")).into_response());
        };
        if let Some(error) = &served.error {
            return Some((StatusCode::SERVICE_UNAVAILABLE, format!("revision {key} cannot run: {error}\n")).into_response());
        }
        served.metrics.requests.inc();
        let in_flight = served.pool.enter();
        let deadline = Instant::now() + self.settings.hold_timeout.min(served.timeout);
        let slot = match served
            .pool
            .acquire(self.runtime.as_ref(), deadline, || self.poke(&key, &served))
            .await
        {
            Ok(slot) => slot,
            Err(unavailable) => {
                served.metrics.refused(match unavailable {
                    pool::Unavailable::QueueFull { .. } => "queue_full",
                    pool::Unavailable::Timeout { .. } => "timeout",
                    pool::Unavailable::Failing { .. } => "failing",
                });
                tracing::warn!(revision = %key, reason = %unavailable, "request refused");
                return Some((StatusCode::SERVICE_UNAVAILABLE, format!("{unavailable}\n")).into_response());
            }
        };
        self.note_cold_start(&key, &served);
        let response = proxy::forward(&self.client, slot.addr, req, peer, served.timeout).await;
        // The slot and the in-flight count last until the body has been sent.
        Some(response.map(|body| {
            Body::new(Guarded {
                body,
                _hold: (slot, in_flight),
            })
        }))
    }

    /// Records a scale from zero that ends with this request: from the first held request to
    /// a ready instance, and the app's own start time, in the metrics and the log.
    fn note_cold_start(&self, key: &RevisionKey, served: &Served) {
        let since = served.scaling.lock().expect("scaling lock").cold_since.take();
        if let Some(since) = since {
            let total = since.elapsed();
            let app_start = self.runtime.state(key).last_start_time;
            served.metrics.cold_start_seconds.observe(total.as_secs_f64());
            if let Some(app) = app_start {
                served.metrics.app_start_seconds.observe(app.as_secs_f64());
            }
            tracing::info!(revision = %key, cold_start_ms = total.as_millis() as u64,
                app_start_ms = app_start.map(|d| d.as_millis() as u64), "scaled from zero");
        }
    }

    /// Samples concurrency ten times a second, records it per second and decides every tick,
    /// scaling the runtime. Runs until the task is dropped.
    pub async fn run_autoscaler(self: Arc<Self>) {
        let mut sample = tokio::time::interval(Duration::from_millis(100));
        let mut last_tick = Instant::now();
        loop {
            sample.tick().await;
            let now = Instant::now();
            let reachable: Vec<RevisionKey> = self.table.read().expect("table lock").reachable().cloned().collect();
            let served: Vec<(RevisionKey, Arc<Served>)> = self
                .served
                .read()
                .expect("served lock")
                .iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect();
            let decide = now.duration_since(last_tick) >= self.settings.tick;
            if decide {
                last_tick = now;
            }
            for (key, s) in served {
                let state = self.runtime.state(&key);
                s.metrics.in_flight.set(s.pool.in_flight() as i64);
                s.metrics.desired.set(i64::from(state.desired));
                s.metrics.ready.set(state.ready.len() as i64);
                let mut scaling = s.scaling.lock().expect("scaling lock");
                scaling.samples.push(s.pool.in_flight());
                if now.duration_since(scaling.second_began) >= Duration::from_secs(1) {
                    let arrived = s.pool.arrived();
                    let value = match scaling.spec.metric {
                        Metric::Concurrency => scaling.samples.iter().sum::<usize>() as f64 / scaling.samples.len().max(1) as f64,
                        Metric::Rps => (arrived - scaling.arrived_at_second) as f64,
                    };
                    scaling.autoscaler.record(now, value);
                    scaling.samples.clear();
                    scaling.arrived_at_second = arrived;
                    scaling.second_began = now;
                }
                if !decide || s.error.is_some() {
                    continue;
                }
                let ready = state.ready.len() as u32;
                let is_reachable = reachable.contains(&key);
                let result = scaling.autoscaler.scale(now, ready, is_reachable);
                let mut wanted = scaling.scaler.decide(now, &result, state.actual);
                // Requests waiting at zero keep at least one instance wanted.
                if wanted == 0 && s.pool.in_flight() > 0 {
                    wanted = 1;
                }
                drop(scaling);
                if wanted != state.desired {
                    tracing::info!(revision = %key, from = state.desired, to = wanted, ready, "autoscaler scales");
                    self.runtime.clone().scale(&key, wanted);
                }
            }
        }
    }
}

/// A response body that keeps its instance slot and in-flight count until it is dropped.
struct Guarded<H> {
    body: Body,
    _hold: H,
}

impl<H: Unpin + Send + 'static> http_body::Body for Guarded<H> {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
