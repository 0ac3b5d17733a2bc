//! Revisions on a cluster: each has a Deployment (`{revision}-deployment`) and a Service of its
//! name, made by the Revision controller of `sluice controller`. This runtime scales the
//! Deployment through `spec.replicas` and reads its ready replicas; requests go to the Service's
//! cluster IP and port, which spreads them over the pods.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use tokio::sync::watch;

use crate::{RevisionKey, RevisionState, Runtime, Workload};

/// The label naming the Revision of a Deployment.
const REVISION_LABEL: &str = "serving.knative.dev/revision";

/// Scales Revisions' Deployments through a Kubernetes API. See the module documentation.
pub struct DeploymentRuntime {
    client: Client,
    deployments: Store<Deployment>,
    services: Store<Service>,
    changed: watch::Sender<u64>,
    /// The replicas last asked for, until the Deployment shows them.
    asked: Mutex<HashMap<RevisionKey, u32>>,
}

impl DeploymentRuntime {
    /// Watches Deployments and Services of Revisions through `client`.
    pub fn start(client: Client) -> Arc<Self> {
        let (deployments, deployment_writer) = reflector::store();
        let (services, service_writer) = reflector::store();
        let runtime = Arc::new(Self {
            client: client.clone(),
            deployments,
            services,
            changed: watch::channel(0).0,
            asked: Mutex::new(HashMap::new()),
        });
        let selector = watcher::Config::default().labels(REVISION_LABEL);
        let notify = {
            let runtime = runtime.clone();
            move || runtime.changed.send_modify(|n| *n = n.wrapping_add(1))
        };
        let on_deployments = notify.clone();
        tokio::spawn(
            reflector::reflector(deployment_writer, watcher(Api::<Deployment>::all(client.clone()), selector.clone()))
                .default_backoff()
                .for_each(move |_| {
                    on_deployments();
                    async {}
                }),
        );
        tokio::spawn(
            reflector::reflector(service_writer, watcher(Api::<Service>::all(client), selector))
                .default_backoff()
                .for_each(move |_| {
                    notify();
                    async {}
                }),
        );
        runtime
    }
}

fn deployment_name(revision: &str) -> String {
    format!("{revision}-deployment")
}

impl Runtime for DeploymentRuntime {
    /// The Revision controller made the Deployment from the Revision itself.
    fn set_workload(self: Arc<Self>, _: Workload) {}

    fn scale(self: Arc<Self>, key: &RevisionKey, replicas: u32) {
        self.asked.lock().expect("asked lock").insert(key.clone(), replicas);
        let (key, runtime) = (key.clone(), self.clone());
        tokio::spawn(async move {
            let api: Api<Deployment> = Api::namespaced(runtime.client.clone(), &key.namespace);
            let patch = serde_json::json!({"spec": {"replicas": replicas}});
            match api
                .patch(&deployment_name(&key.name), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => tracing::info!(revision = %key, replicas, "scaled the Deployment"),
                Err(e) => tracing::warn!(revision = %key, replicas, error = %e, "cannot scale the Deployment"),
            }
            runtime.changed.send_modify(|n| *n = n.wrapping_add(1));
        });
    }

    /// The Deployment and Service go with their Revision (owner references).
    fn remove(&self, key: &RevisionKey) {
        self.asked.lock().expect("asked lock").remove(key);
    }

    fn state(&self, key: &RevisionKey) -> RevisionState {
        let deployment = self
            .deployments
            .get(&ObjectRef::new(&deployment_name(&key.name)).within(&key.namespace));
        let asked = self.asked.lock().expect("asked lock").get(key).copied();
        let Some(deployment) = deployment else {
            return RevisionState {
                desired: asked.unwrap_or(0),
                ..Default::default()
            };
        };
        let spec = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let status = deployment.status.clone().unwrap_or_default();
        let ready_count = status.ready_replicas.unwrap_or(0).max(0) as usize;
        // Requests go to the Revision's Service, which spreads them over the ready pods: one
        // address per ready pod, so each pod counts for its containerConcurrency.
        let address = self
            .services
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .and_then(|svc| {
                let spec = svc.spec.as_ref()?;
                let ip: IpAddr = spec.cluster_ip.as_deref()?.parse().ok()?;
                let port = spec.ports.as_ref()?.first()?.port;
                Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
            });
        RevisionState {
            desired: asked.unwrap_or(spec),
            actual: status.replicas.unwrap_or(0).max(0) as u32,
            ready: address.map(|a| vec![a; ready_count]).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn revisions(&self) -> Vec<RevisionKey> {
        self.deployments
            .state()
            .iter()
            .filter_map(|d| {
                Some(RevisionKey {
                    namespace: d.metadata.namespace.clone()?,
                    name: d.metadata.labels.as_ref()?.get(REVISION_LABEL)?.clone(),
                })
            })
            .collect()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
