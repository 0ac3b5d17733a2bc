//! The embedded control plane of `sluice run`: the resource store, the reconciler that turns
//! stored Knative objects into statuses and a data-plane snapshot, and the resource API.
//!
//! Every change (apply, delete) is reconciled before the API answers, so a new Trigger receives
//! the next event, a deleted one stops, and a changed filter applies to the next event.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod discovery;
pub mod jsonpath;
pub mod openapi;
pub mod openapi_proto;
pub mod patch;
pub mod reconcile;
pub mod selector;
pub mod store;
pub mod table;
pub mod watch;

use std::sync::Arc;

use serde_json::Value;
use sluice_brokers::DataPlane;
use sluice_crds::registry::{find_by_type, KindInfo};
use sluice_delivery::metrics::Metrics;
use tokio::sync::Mutex;

use reconcile::Environment;
use store::{Applied, ObjectKey, Store, StoreError};

/// The namespace that always exists (created at start), as on a cluster.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Store + reconciler + data plane.
pub struct ControlPlane {
    /// The objects.
    pub store: Arc<Store>,
    /// The running hubs.
    pub plane: Arc<DataPlane>,
    /// Process metrics (served at `/metrics`).
    pub metrics: Arc<Metrics>,
    env: Environment,
    reconcile_lock: Mutex<()>,
    /// The store revision the last finished reconcile started from.
    reconciled: std::sync::atomic::AtomicU64,
}

impl ControlPlane {
    /// Ties a store and a data plane together and reconciles what the store already holds.
    pub async fn start(store: Arc<Store>, plane: Arc<DataPlane>, metrics: Arc<Metrics>, env: Environment) -> Arc<Self> {
        let cp = Arc::new(Self {
            store,
            plane,
            metrics,
            env,
            reconcile_lock: Mutex::new(()),
            reconciled: Default::default(),
        });
        cp.ensure_default_namespace();
        cp.reconcile().await;
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

    /// Applies objects all-or-nothing, then reconciles.
    pub async fn apply(&self, objects: Vec<Value>, create_only: bool) -> Result<Vec<Applied>, StoreError> {
        let applied = self.store.apply(objects, create_only)?;
        for a in &applied {
            tracing::info!(kind = %a.kind, namespace = %a.namespace, name = %a.name, action = a.action, "applied");
        }
        self.reconcile().await;
        Ok(applied)
    }

    /// Deletes an object, then reconciles. The `default` Namespace cannot be deleted, as in
    /// Kubernetes.
    pub async fn delete(&self, info: &KindInfo, namespace: &str, name: &str) -> Result<Value, StoreError> {
        self.delete_with(info, namespace, name, store::Propagation::Background).await
    }

    /// Deletes an object with the given propagation to the objects it owns, then reconciles.
    pub async fn delete_with(
        &self,
        info: &KindInfo,
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
        self.reconcile().await;
        Ok(obj)
    }

    /// Recomputes every status and brings the data plane in line with the store.
    ///
    /// Writers that arrive while a reconcile runs share the next one: each waits until a
    /// reconcile that started after its write has finished, so the answer to a write still
    /// means "reconciled", but concurrent writes cost one pass instead of one each.
    pub async fn reconcile(&self) {
        let written = self.store.revision();
        let _guard = self.reconcile_lock.lock().await;
        if self.reconciled.load(std::sync::atomic::Ordering::Acquire) >= written {
            return; // a pass that started after this write has already run
        }
        let start = self.store.revision();
        let mut out = self.store.with_all(|objects| reconcile::reconcile(objects, &self.env));
        if self.store.set_channel_subscribers(std::mem::take(&mut out.channel_subscribers)) {
            // Channels whose spec.subscribers changed have a new generation: compute their
            // statuses again so observedGeneration follows. The second pass changes no spec.
            out = self.store.with_all(|objects| reconcile::reconcile(objects, &self.env));
        }
        self.plane.apply(out.snapshot).await;
        self.store.set_statuses(out.statuses);
        self.reconciled.store(start, std::sync::atomic::Ordering::Release);
    }
}
