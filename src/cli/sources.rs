//! The source adapters of a data plane (`sluice run`, `sluice dataplane`): what to run is
//! learnt from the mirror (the source objects and what their sinks name) and a reflector of
//! the Secrets their configs read; after each batch of changes the inputs are decided again
//! (`sluice_reconcile::source::inputs`) and applied to the [`SourcePlane`], which restarts
//! only the adapters whose config or sink changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use sluice_controllers::core::ADDRESSABLE;
use sluice_controllers::mirror::{Change, Mirror};
use sluice_reconcile::Environment;
use sluice_sources::{SecretLookup, SourcePlane};
use tokio::sync::{broadcast, mpsc};

/// The Secrets of the API, as the adapters' configs read them.
struct Secrets(Store<Secret>);

impl SecretLookup for Secrets {
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.0.get(&ObjectRef::new(name).within(namespace))?;
        // The API server has merged `stringData` into `data`.
        Some(
            secret
                .data
                .as_ref()
                .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default(),
        )
    }
}

/// Whether a change of the mirror can change the inputs: a source, or something a sink names.
fn decides_inputs(change: &Change) -> bool {
    change.group == sluice_reconcile::source::GROUP || ADDRESSABLE.iter().any(|(g, k)| *g == change.group && *k == change.kind)
}

/// Keeps `plane` running an adapter for every source of the API behind `client`.
pub(crate) async fn feed(client: Client, mirror: Arc<Mirror>, plane: Arc<SourcePlane>, env: Environment) {
    let (changed_tx, mut secret_changes) = mpsc::channel::<()>(1);
    let (store, writer) = reflector::store();
    let secrets_watch = reflector::reflector(writer, watcher(Api::<Secret>::all(client), watcher::Config::default()))
        .default_backoff()
        .for_each(move |event| {
            if let Err(e) = &event {
                tracing::warn!(error = %e, "watching Secrets for the sources failed; retrying");
            }
            let _ = changed_tx.try_send(());
            async {}
        });
    tokio::spawn(secrets_watch);
    let secrets = Secrets(store.clone());
    let mut changes = mirror.changes();
    mirror.ready().await;
    let _ = store.wait_until_ready().await;
    loop {
        let inputs = mirror.with_objects(|objects| sluice_reconcile::source::inputs(objects, &env, &secrets));
        plane.apply(inputs);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(c) if c.status_only || !decides_inputs(&c) => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                note = secret_changes.recv() => match note {
                    Some(()) => break,
                    None => return,
                },
            }
        }
        // Whatever else queued meanwhile is in the next decision.
        while !matches!(
            changes.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
    }
}
