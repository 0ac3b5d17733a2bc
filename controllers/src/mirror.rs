//! A mirror of the objects decisions read: every object of the watched kinds, kept current by
//! `kube::runtime::watcher`s into one [`Objects`] map, with a broadcast of what changed. The
//! controllers look objects up in it (a trigger's broker, a destination's target) and requeue
//! on its changes; the data plane builds its snapshot from it. In `sluice run` both share one.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use kube::Client;
use serde_json::Value;
use sluice_reconcile::{Lookup, Objects};
use tokio::sync::{broadcast, watch};

/// The kinds the decisions read and the data plane serves: (group, version, kind, plural).
pub const MIRRORED: [(&str, &str, &str, &str); 14] = [
    ("eventing.knative.dev", "v1", "Broker", "brokers"),
    ("eventing.knative.dev", "v1", "Trigger", "triggers"),
    ("messaging.knative.dev", "v1", "Channel", "channels"),
    ("messaging.knative.dev", "v1", "InMemoryChannel", "inmemorychannels"),
    ("messaging.knative.dev", "v1", "Subscription", "subscriptions"),
    ("flows.knative.dev", "v1", "Sequence", "sequences"),
    ("flows.knative.dev", "v1", "Parallel", "parallels"),
    // Addressable as a sink: its URL is the route's host on the gateway.
    ("serving.knative.dev", "v1", "Service", "services"),
    // The sources whose adapters the data plane runs (`sluice_reconcile::source::RUN`).
    ("sources.knative.dev", "v1", "PingSource", "pingsources"),
    ("sources.knative.dev", "v1alpha1", "RabbitmqSource", "rabbitmqsources"),
    ("sources.knative.dev", "v1", "KafkaSource", "kafkasources"),
    ("sources.knative.dev", "v1alpha1", "GitHubSource", "githubsources"),
    ("sources.knative.dev", "v1alpha1", "AwsSqsSource", "awssqssources"),
    ("sources.knative.dev", "v1", "ApiServerSource", "apiserversources"),
];

/// One change of the mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Group of the changed object.
    pub group: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace; `None` when a relist replaced every object of the kind.
    pub namespace: Option<String>,
    /// Whether only its status changed (nothing the data plane serves).
    pub status_only: bool,
}

/// The mirrored objects and the broadcast of their changes.
pub struct Mirror {
    objects: RwLock<Objects>,
    changes: broadcast::Sender<Change>,
    /// How many kinds have finished their first list.
    listed: watch::Sender<usize>,
}

/// An object as the mirror keeps it: without its status and managed fields, which no decision
/// reads (each controller compares statuses on its own typed copy). About half a Trigger's size.
/// A Service keeps `status.address`: a sink that is a Service resolves to it, as in Knative.
fn kept(o: &DynamicObject) -> Option<Value> {
    let mut v = serde_json::to_value(o).ok()?;
    let object = v.as_object_mut()?;
    let status = object.remove("status");
    let is_service = object.get("kind").and_then(Value::as_str) == Some("Service")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.starts_with("serving.knative.dev/"));
    if let (true, Some(address)) = (is_service, status.as_ref().and_then(|s| s.get("address"))) {
        object.insert("status".into(), serde_json::json!({"address": address}));
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    Some(v)
}

/// What of an object the data plane and the decisions read: a change of only the rest
/// (status, resourceVersion) is `status_only`.
fn desired_part(v: &Value) -> (&Value, &Value, &Value, &Value, &Value, &Value) {
    let m = &v["metadata"];
    (
        &v["spec"],
        &m["generation"],
        &m["labels"],
        &m["annotations"],
        &m["deletionTimestamp"],
        &v["status"]["address"],
    )
}

impl Mirror {
    /// Starts watching every [`MIRRORED`] kind through `client`; the mirror fills as the first
    /// lists arrive ([`Mirror::ready`] waits for them).
    pub fn start(client: Client) -> Arc<Self> {
        let mirror = Arc::new(Self {
            objects: RwLock::new(Objects::default()),
            changes: broadcast::Sender::new(4096),
            listed: watch::Sender::new(0),
        });
        for (group, version, kind, plural) in MIRRORED {
            let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            tokio::spawn(mirror.clone().follow(api, group, kind));
        }
        mirror
    }

    /// Applies one kind's watch events until the stream ends.
    async fn follow(self: Arc<Self>, api: Api<DynamicObject>, group: &'static str, kind: &'static str) {
        let mut events = watcher(api, watcher::Config::default()).boxed();
        let mut init: Option<Vec<Value>> = None;
        let mut listed_once = false;
        while let Some(event) = events.next().await {
            let change = |namespace: Option<String>, status_only| Change {
                group: group.into(),
                kind: kind.into(),
                namespace,
                status_only,
            };
            let change = match event {
                Ok(watcher::Event::Init) => {
                    init = Some(Vec::new());
                    continue;
                }
                Ok(watcher::Event::InitApply(o)) => {
                    if let (Some(init), Some(v)) = (init.as_mut(), kept(&o)) {
                        init.push(v);
                    }
                    continue;
                }
                Ok(watcher::Event::InitDone) => {
                    let mut objects = self.objects.write().expect("mirror poisoned");
                    objects.clear_kind(group, kind);
                    for v in init.take().unwrap_or_default() {
                        objects.insert(v);
                    }
                    drop(objects);
                    if !listed_once {
                        listed_once = true;
                        self.listed.send_modify(|n| *n += 1);
                    }
                    change(None, false)
                }
                Ok(watcher::Event::Apply(o)) => {
                    let Some(v) = kept(&o) else { continue };
                    let namespace = o.metadata.namespace.clone();
                    let mut objects = self.objects.write().expect("mirror poisoned");
                    let status_only = objects
                        .by_id(&Objects::id(&v))
                        .is_some_and(|old| desired_part(old) == desired_part(&v));
                    objects.insert(v);
                    change(namespace, status_only)
                }
                Ok(watcher::Event::Delete(o)) => {
                    let Ok(v) = serde_json::to_value(&o) else { continue };
                    self.objects.write().expect("mirror poisoned").remove(&Objects::id(&v));
                    change(o.metadata.namespace.clone(), false)
                }
                Err(error) => {
                    tracing::warn!(kind, %error, "watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Nobody listening is fine: the map is what counts.
            let _ = self.changes.send(change);
        }
    }

    /// Waits until every kind has been listed once.
    pub async fn ready(&self) {
        let mut listed = self.listed.subscribe();
        let _ = listed.wait_for(|n| *n >= MIRRORED.len()).await;
    }

    /// The changes from now on.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Runs `f` over the mirrored objects (under a read lock: `f` must not wait).
    pub fn with_objects<T>(&self, f: impl FnOnce(&Objects) -> T) -> T {
        f(&self.objects.read().expect("mirror poisoned"))
    }
}

impl Lookup for Mirror {
    fn get(&self, group: &str, kind: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects.read().expect("mirror poisoned").get(group, kind, namespace, name)
    }

    fn list(&self, group: &str, kind: &str, namespace: &str) -> Vec<Arc<Value>> {
        self.objects.read().expect("mirror poisoned").list(group, kind, namespace)
    }
}
