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
use sluice_router::{RevisionInput, ServingPlane};
use sluice_runtime::workload::from_revision;
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
pub(crate) async fn feed(client: Client, plane: Arc<ServingPlane>, processes: bool) {
    let (tx, mut rx) = mpsc::channel(1);
    let (routes, watch_routes) = reflect(Api::<Route>::all(client.clone()), watcher::Config::default(), tx.clone());
    let (revisions, watch_revisions) = reflect(Api::<Revision>::all(client.clone()), watcher::Config::default(), tx.clone());
    let (settings, watch_settings) = reflect(
        Api::<ConfigMap>::namespaced(client.clone(), sluice_reconcile::serving::SETTINGS_NAMESPACE),
        watcher::Config::default().fields(&format!("metadata.name={CONFIG_AUTOSCALER}")),
        tx,
    );
    let apply = async {
        let _ = tokio::join!(routes.wait_until_ready(), revisions.wait_until_ready(), settings.wait_until_ready());
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
                if !processes {
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
                let workload = from_revision(&value, &lookup).map(Some);
                if let Err(e) = &workload {
                    // Read again next time: the missing ConfigMap or Secret may come.
                    workloads.remove(&key);
                    tracing::debug!(revision = %key.1, error = %e, "revision cannot run");
                }
                inputs.push(RevisionInput { revision: value, workload });
            }
            workloads.retain(|k, _| revisions.state().iter().any(|r| r.metadata.uid.as_deref() == Some(k.2.as_str())));
            plane.apply(&route_values, inputs, &config);
            // Changes, batched; and a periodic pass for ConfigMaps and Secrets that appear.
            if let Ok(None) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            while rx.try_recv().is_ok() {}
        }
    };
    tokio::join!(watch_routes, watch_revisions, watch_settings, apply);
}

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
