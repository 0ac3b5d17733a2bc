//! The serving core in `sluice run`: Revisions run as child processes
//! ([`sluice_runtime::ProcessRuntime`]), and the gateway routes Route hosts to them
//! ([`sluice_router::ServingPlane`]). What to serve is learnt by watching Routes, Revisions and
//! `knative-serving/config-autoscaler` through the API, like every other part of the data
//! plane; the ConfigMaps and Secrets a Revision's env names are read when it is first served.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::Value;
use sluice_autoscaler::config::Config;
use sluice_crds::serving::{Revision, Route};
use sluice_crds::sources::{ContainerSource, SinkBinding};
use sluice_router::{RevisionInput, ServingPlane};
use sluice_runtime::workload::from_revision;
use sluice_sources::SourceKey;
use tokio::sync::mpsc;

/// Name of Knative's autoscaler settings in `knative-serving`.
const CONFIG_AUTOSCALER: &str = "config-autoscaler";

/// Where instance logs go: `{data_dir}/logs`, or a directory under the system's temporary
/// directory when nothing is persisted.
pub(crate) fn logs_dir(data_dir: Option<&std::path::Path>) -> PathBuf {
    match data_dir {
        Some(dir) => dir.join("logs"),
        None => std::env::temp_dir().join("sluice").join("logs"),
    }
}

/// Watches `api` into a store, sending a note on `changed` after every event.
fn reflect<K>(api: Api<K>, config: watcher::Config, changed: mpsc::Sender<()>) -> (Store<K>, impl Future<Output = ()>)
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    let run = stream.for_each(move |event| {
        if let Err(e) = &event {
            tracing::warn!(error = %e, "serving watch failed; retrying");
        }
        let _ = changed.try_send(());
        async {}
    });
    (reader, run)
}

/// Keeps `plane` in line with the Routes and Revisions of the API behind `client`. With
/// `processes`, each Revision's workload (command, env) is read for the process runtime; on a
/// cluster the Deployment runs the pod spec itself.
pub(crate) async fn feed(client: Client, plane: Arc<ServingPlane>, processes: Option<Processes>) {
    let (tx, mut rx) = mpsc::channel(1);
    let (bindings, watch_bindings) = reflect(Api::<SinkBinding>::all(client.clone()), watcher::Config::default(), tx.clone());
    let (containers, watch_containers) = reflect(Api::<ContainerSource>::all(client.clone()), watcher::Config::default(), tx.clone());
    let mut runtime_changes = processes.as_ref().map(|p| p.runtime.changes());
    let (routes, watch_routes) = reflect(Api::<Route>::all(client.clone()), watcher::Config::default(), tx.clone());
    let (revisions, watch_revisions) = reflect(Api::<Revision>::all(client.clone()), watcher::Config::default(), tx.clone());
    let (settings, watch_settings) = reflect(
        Api::<ConfigMap>::namespaced(client.clone(), sluice_reconcile::serving::SETTINGS_NAMESPACE),
        watcher::Config::default().fields(&format!("metadata.name={CONFIG_AUTOSCALER}")),
        tx,
    );
    let apply = async {
        let _ = tokio::join!(
            routes.wait_until_ready(),
            revisions.wait_until_ready(),
            settings.wait_until_ready(),
            bindings.wait_until_ready(),
            containers.wait_until_ready()
        );
        let mut running_containers: Vec<SourceKey> = Vec::new();
        let mut container_env = EnvCache::new();
        let mut workloads: BTreeMap<(String, String, String), Value> = BTreeMap::new();
        loop {
            let config = settings
                .state()
                .first()
                .and_then(|cm| cm.data.clone())
                .map(|data| {
                    Config::from_data(&data).unwrap_or_else(|errors| {
                        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                        tracing::warn!(errors = %text.join("; "), "config-autoscaler has invalid values; using the defaults");
                        Config::default()
                    })
                })
                .unwrap_or_default();
            let route_values: Vec<Value> = routes
                .state()
                .iter()
                .filter_map(|r| serde_json::to_value(r.as_ref()).ok())
                .collect();
            let mut inputs = Vec::new();
            for revision in revisions.state() {
                let Ok(value) = serde_json::to_value(revision.as_ref()) else {
                    continue;
                };
                if processes.is_none() {
                    inputs.push(RevisionInput {
                        revision: value,
                        workload: Ok(None),
                    });
                    continue;
                }
                let uid = value["metadata"]["uid"].as_str().unwrap_or_default().to_string();
                let ns = value["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
                let name = value["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let key = (ns.clone(), name, uid);
                // A Revision's env is read once, when it is first served: revisions are
                // immutable, and a running instance keeps the env it started with.
                let spec = match workloads.get(&key) {
                    Some(v) => v.clone(),
                    None => {
                        let objects = env_objects(&client, &ns, &value).await;
                        workloads.insert(key.clone(), objects.clone());
                        objects
                    }
                };
                let lookup = |kind: &str, _ns: &str, name: &str| spec[kind][name].as_object().map(|o| Value::Object(o.clone()));
                let workload = from_revision(&value, &lookup).map(|mut w| {
                    w.env.extend(binding_env(&bindings.state(), &value));
                    Some(w)
                });
                if let Err(e) = &workload {
                    // Read again next time: the missing ConfigMap or Secret may come.
                    workloads.remove(&key);
                    tracing::debug!(revision = %key.1, error = %e, "revision cannot run");
                }
                inputs.push(RevisionInput { revision: value, workload });
            }
            workloads.retain(|k, _| revisions.state().iter().any(|r| r.metadata.uid.as_deref() == Some(k.2.as_str())));
            plane.apply(&route_values, inputs, &config);
            if let Some(p) = &processes {
                running_containers = run_containers(&client, p, &containers.state(), running_containers, &mut container_env).await;
            }
            // Changes, batched; and a periodic pass for ConfigMaps and Secrets that appear.
            let runtime_changed = async {
                match runtime_changes.as_mut() {
                    Some(changes) => {
                        let _ = changes.changed().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = tokio::time::timeout(Duration::from_secs(5), rx.recv()) => if let Ok(None) = received { return },
                () = runtime_changed => {}
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            while rx.try_recv().is_ok() {}
        }
    };
    tokio::join!(
        watch_routes,
        watch_revisions,
        watch_settings,
        watch_bindings,
        watch_containers,
        apply
    );
}

/// What runs ContainerSources' processes in `sluice run`: the process runtime of the Revisions,
/// and the source plane their health is reported to.
pub(crate) struct Processes {
    /// The runtime.
    pub runtime: Arc<sluice_runtime::ProcessRuntime>,
    /// Where ContainerSources' health goes.
    pub sources: Arc<sluice_sources::SourcePlane>,
}

/// `K_SINK` and `K_CE_OVERRIDES` of the SinkBindings whose subject is the Service of
/// `revision` (by name, or by a selector of the Revision's labels), once their sink resolved
/// (SB-01).
fn binding_env(bindings: &[Arc<SinkBinding>], revision: &Value) -> Vec<(String, String)> {
    let namespace = revision["metadata"]["namespace"].as_str().unwrap_or_default();
    let labels = &revision["metadata"]["labels"];
    let service = labels["serving.knative.dev/service"].as_str().unwrap_or_default();
    let mut env = Vec::new();
    for b in bindings {
        let subject = &b.spec.subject;
        let same_namespace = subject.namespace.as_deref().or(b.metadata.namespace.as_deref()) == Some(namespace);
        let is_service = subject.kind == "Service" && subject.api_version.starts_with("serving.knative.dev/");
        let matches = match (&subject.name, &subject.selector) {
            (Some(name), _) => name == service,
            (None, Some(selector)) => selector_matches(selector, labels),
            (None, None) => false,
        };
        let Some(sink) = b.status.as_ref().and_then(|s| s.sink_uri.clone()) else {
            continue;
        };
        if same_namespace && is_service && matches {
            env.extend(sluice_reconcile::source::sink_env(&sink, b.spec.ce_overrides.as_ref()));
        }
    }
    env
}

/// Whether `labels` satisfy `selector`.
fn selector_matches(selector: &sluice_crds::duck::LabelSelector, labels: &Value) -> bool {
    let label = |k: &str| labels[k].as_str();
    selector.match_labels.iter().flatten().all(|(k, v)| label(k) == Some(v.as_str()))
        && selector.match_expressions.iter().all(|r| match r.operator.as_str() {
            "In" => label(&r.key).is_some_and(|v| r.values.iter().any(|x| x == v)),
            "NotIn" => !label(&r.key).is_some_and(|v| r.values.iter().any(|x| x == v)),
            "Exists" => label(&r.key).is_some(),
            _ => label(&r.key).is_none(),
        })
}

/// Keeps one process per ContainerSource whose sink resolved, with `K_SINK` and
/// `K_CE_OVERRIDES` (CS-01), and reports its health; stops those of sources gone. Returns the
/// sources now running.
async fn run_containers(
    client: &Client,
    p: &Processes,
    sources: &[Arc<ContainerSource>],
    before: Vec<SourceKey>,
    env_cache: &mut EnvCache,
) -> Vec<SourceKey> {
    let mut now = Vec::new();
    let mut cached = EnvCache::new();
    for source in sources {
        let namespace = source.metadata.namespace.clone().unwrap_or_default();
        let name = source.metadata.name.clone().unwrap_or_default();
        let key = SourceKey {
            kind: "containersource".into(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let Some(sink) = source.status.as_ref().and_then(|s| s.sink_uri.clone()) else {
            continue;
        };
        if source.metadata.deletion_timestamp.is_some() {
            continue;
        }
        // The template as a Revision of its own, named after the source.
        let revision = serde_json::json!({
            "metadata": {"name": format!("{name}-containersource"), "namespace": namespace,
                         "labels": source.spec.template.metadata.as_ref().and_then(|m| m.labels.clone())},
            "spec": source.spec.template.spec,
        });
        // Read once per generation of the template, like a Revision's; again while it fails.
        let cache_key = (namespace.clone(), name.clone(), source.metadata.generation.unwrap_or_default());
        let objects = match env_cache.remove(&cache_key) {
            Some(objects) => objects,
            None => env_objects(client, &namespace, &revision).await,
        };
        let lookup = |kind: &str, _ns: &str, name: &str| objects[kind][name].as_object().map(|o| Value::Object(o.clone()));
        let workload = from_revision(&revision, &lookup);
        if workload.is_ok() {
            cached.insert(cache_key, objects.clone());
        }
        match workload {
            Ok(mut workload) => {
                workload.readiness = sluice_runtime::workload::Readiness::Started;
                workload
                    .env
                    .extend(sluice_reconcile::source::sink_env(&sink, source.spec.ce_overrides.as_ref()));
                let rkey = workload.key.clone();
                p.runtime.set_workload(workload);
                p.runtime.scale(&rkey, 1);
                let state = p.runtime.state(&rkey);
                let health = match (&state.failure, state.ready.is_empty()) {
                    (_, false) => sluice_sources::Health::Running,
                    (Some(f), true) => sluice_sources::Health::failing(&f.reason, f.message.clone()),
                    (None, true) => sluice_sources::Health::Starting,
                };
                p.sources.report(&key, Some(health));
            }
            Err(e) => p.sources.report(
                &key,
                Some(sluice_sources::Health::failing(
                    "InvalidTemplate",
                    e.to_string().replace("spec.", "spec.template.spec."),
                )),
            ),
        }
        now.push(key);
    }
    for gone in before.iter().filter(|k| !now.contains(k)) {
        let rkey = sluice_runtime::workload::RevisionKey {
            namespace: gone.namespace.clone(),
            name: format!("{}-containersource", gone.name),
        };
        p.runtime.scale(&rkey, 0);
        p.runtime.remove(&rkey);
        p.sources.report(gone, None);
    }
    *env_cache = cached;
    now
}

/// The ConfigMaps and Secrets read for each ContainerSource (namespace, name, generation).
type EnvCache = BTreeMap<(String, String, i64), Value>;

/// The ConfigMaps and Secrets that the first container of `revision` names, as
/// `{"ConfigMap": {name: object}, "Secret": {name: object}}`.
async fn env_objects(client: &Client, namespace: &str, revision: &Value) -> Value {
    let container = &revision["spec"]["containers"][0];
    let mut out = serde_json::json!({"ConfigMap": {}, "Secret": {}});
    let mut names: Vec<(&str, String)> = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        if let Some(n) = e["valueFrom"]["configMapKeyRef"]["name"].as_str() {
            names.push(("ConfigMap", n.to_string()));
        }
        if let Some(n) = e["valueFrom"]["secretKeyRef"]["name"].as_str() {
            names.push(("Secret", n.to_string()));
        }
    }
    for e in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(n) = e["configMapRef"]["name"].as_str() {
            names.push(("ConfigMap", n.to_string()));
        }
        if let Some(n) = e["secretRef"]["name"].as_str() {
            names.push(("Secret", n.to_string()));
        }
    }
    for (kind, name) in names {
        let found = match kind {
            "ConfigMap" => Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|o| serde_json::to_value(o).ok()),
            _ => Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .and_then(|o| serde_json::to_value(o).ok()),
        };
        if let Some(object) = found {
            out[kind][name] = object;
        }
    }
    out
}
