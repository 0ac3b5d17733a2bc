//! The embedded Kubernetes API of `sluice run`: the resource store (durable, with watch
//! history, finalizers and garbage collection) and the API that serves it to kubectl, any
//! Kubernetes client and Sluice's own kube-rs controllers (`sluice-controllers`), which
//! reconcile what is stored here exactly as they would on a cluster.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod discovery;
pub mod jsonpath;
pub mod k8s_proto;
pub mod openapi;
pub mod openapi_proto;
pub mod patch;
pub mod selector;
pub mod store;
pub mod table;
pub mod watch;

use std::sync::Arc;

use serde_json::Value;
use sluice_crds::registry::{find_by_type, KindInfo};
use sluice_delivery::metrics::Metrics;

use store::{Applied, ObjectKey, Store, StoreError};

/// The namespace that always exists (created at start), as on a cluster.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The store and what the API writes through: admission-checked applies and deletions with
/// Kubernetes' propagation.
pub struct ControlPlane {
    /// The objects.
    pub store: Arc<Store>,
    /// Process metrics (served at `/metrics`).
    pub metrics: Arc<Metrics>,
}

impl ControlPlane {
    /// Serves `store`, creating the `default` Namespace unless it exists.
    pub fn start(store: Arc<Store>, metrics: Arc<Metrics>) -> Arc<Self> {
        let cp = Arc::new(Self { store, metrics });
        cp.ensure_default_namespace();
        cp
    }

    /// Creates the `default` Namespace unless it exists, as a cluster has it.
    fn ensure_default_namespace(&self) {
        let info = find_by_type("v1", "Namespace").expect("Namespace is in the registry");
        if self.store.get(&ObjectKey::new(info, "", DEFAULT_NAMESPACE)).is_some() {
            return;
        }
        let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEFAULT_NAMESPACE}});
        match self.store.apply(vec![namespace], true) {
            Ok(_) => tracing::info!("created namespace default"),
            Err(e) => tracing::warn!(error = %e, "cannot create namespace default"),
        }
    }

    /// Applies objects all-or-nothing.
    pub async fn apply(&self, objects: Vec<Value>, create_only: bool) -> Result<Vec<Applied>, StoreError> {
        let applied = self.store.apply(objects, create_only)?;
        for a in &applied {
            tracing::info!(kind = %a.kind, namespace = %a.namespace, name = %a.name, action = a.action, "applied");
        }
        Ok(applied)
    }

    /// Waits (at most `timeout`) until each of `keys` that has a Knative status carries the
    /// status of its current spec (`status.observedGeneration` = `metadata.generation`), as
    /// its controller writes it. Returns those that do not by then.
    pub async fn wait_reconciled(&self, keys: &[ObjectKey], timeout: std::time::Duration) -> Vec<ObjectKey> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending: Vec<ObjectKey> = self.store.with_all(|objects| {
                keys.iter()
                    .filter(|key| key.group.ends_with("knative.dev"))
                    .filter(|key| {
                        objects.get(key).is_some_and(|o| {
                            o["metadata"].get("deletionTimestamp").is_none()
                                && o["status"]["observedGeneration"] != o["metadata"]["generation"]
                        })
                    })
                    .cloned()
                    .collect()
            });
            if pending.is_empty() || tokio::time::Instant::now() >= deadline {
                return pending;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Deletes an object. The `default` Namespace cannot be deleted, as in Kubernetes.
    pub async fn delete(&self, info: &'static KindInfo, namespace: &str, name: &str) -> Result<Value, StoreError> {
        self.delete_with(info, namespace, name, store::Propagation::Background).await
    }

    /// Deletes an object with the given propagation to the objects it owns.
    pub async fn delete_with(
        &self,
        info: &'static KindInfo,
        namespace: &str,
        name: &str,
        propagation: store::Propagation,
    ) -> Result<Value, StoreError> {
        if info.group.is_empty() && info.kind == "Namespace" && name == DEFAULT_NAMESPACE {
            let message = format!("namespaces {DEFAULT_NAMESPACE:?} is forbidden: this namespace may not be deleted");
            return Err(StoreError::Invalid {
                messages: vec![message.clone()],
                causes: vec![sluice_crds::FieldError::new("metadata.name", message)],
            });
        }
        if info.group.is_empty() && info.kind == "Namespace" {
            // As the namespace controller does: what lives in the namespace goes with it (an
            // object held by its own finalizers stays, terminating, until they are removed).
            let contents: Vec<store::ObjectKey> = self
                .store
                .with_all(|objects| objects.keys().filter(|k| k.namespace == name).cloned().collect());
            for key in contents {
                match self.store.delete_with(&key, store::Propagation::Background) {
                    Ok(_) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let obj = self.store.delete_with(&store::ObjectKey::new(info, namespace, name), propagation)?;
        tracing::info!(kind = info.kind, namespace, name, "deleted");
        Ok(obj)
    }
}
