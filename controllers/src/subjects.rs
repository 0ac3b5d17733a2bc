//! On a cluster: the kinds that SinkBindings name as their subjects, each watched once some
//! binding names it, so that a subject written later (a new Deployment its selector picks, a
//! Job, a Knative Service) is bound as soon as it is written, whatever its kind.
//!
//! A watch per kind, started the first time a binding of that kind is reconciled; it keeps no
//! objects, and every object it sees written requeues the bindings of its namespace that name
//! that kind.

use std::collections::HashSet;
use std::sync::Mutex;

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use sluice_crds::sources::sinkbinding::BindingSubject;
use tokio::sync::broadcast;

use crate::sources::SourceKind;

/// A subject kind's object was written in a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubjectWritten {
    /// `apiVersion` of the kind.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
}

/// The watched subject kinds and the broadcast of their writes.
pub(crate) struct SubjectWatch {
    watched: Mutex<HashSet<(String, String)>>,
    written: broadcast::Sender<SubjectWritten>,
}

impl Default for SubjectWatch {
    fn default() -> Self {
        Self {
            watched: Mutex::default(),
            written: broadcast::channel(1024).0,
        }
    }
}

impl SubjectWatch {
    /// Watches the kind of `resource` from now on, unless it is watched already.
    pub fn ensure(&self, client: &Client, resource: &ApiResource) {
        let kind = (resource.api_version.clone(), resource.kind.clone());
        if !self.watched.lock().expect("subject kinds poisoned").insert(kind) {
            return;
        }
        tracing::info!(api_version = %resource.api_version, kind = %resource.kind, "watching a SinkBinding subject kind");
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        let written = self.written.clone();
        let (api_version, kind) = (resource.api_version.clone(), resource.kind.clone());
        tokio::spawn(async move {
            let mut objects = watcher(api, watcher::Config::default()).default_backoff().touched_objects().boxed();
            while let Some(object) = objects.next().await {
                match object {
                    Ok(object) => {
                        let _ = written.send(SubjectWritten {
                            api_version: api_version.clone(),
                            kind: kind.clone(),
                            namespace: object.namespace().unwrap_or_default(),
                        });
                    }
                    Err(e) => tracing::warn!(%kind, error = %e, "watching SinkBinding subjects failed; retrying"),
                }
            }
        });
    }

    /// The bindings in `bindings` (SinkBindings; the source controllers are generic over their
    /// kind) to reconcile again because a subject was written: those in its namespace (or
    /// naming it) whose subject is of its kind.
    pub fn requeues<K: SourceKind>(&self, bindings: Store<K>) -> impl futures_util::Stream<Item = ObjectRef<K>> + Send {
        let written = self.written.subscribe();
        futures_util::stream::unfold((bindings, written), |(bindings, mut written)| async move {
            let refs: Vec<ObjectRef<K>> = match written.recv().await {
                Ok(change) => bindings
                    .state()
                    .iter()
                    .filter(|b| {
                        b.subject()
                            .is_some_and(|subject| names_kind_in(subject, b.meta().namespace.as_deref(), &change))
                    })
                    .map(|b| ObjectRef::from_obj(b.as_ref()))
                    .collect(),
                // Writes were missed (a watch's first list of many objects, say): every binding
                // is reconciled again rather than one left unbound.
                Err(broadcast::error::RecvError::Lagged(_)) => bindings.state().iter().map(|b| ObjectRef::from_obj(b.as_ref())).collect(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((futures_util::stream::iter(refs), (bindings, written)))
        })
        .flatten()
    }
}

/// Whether a binding in `binding_namespace` with this subject names subjects of the written
/// object's kind in its namespace.
fn names_kind_in(subject: &BindingSubject, binding_namespace: Option<&str>, change: &SubjectWritten) -> bool {
    let namespace = subject
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .or(binding_namespace)
        .unwrap_or("default");
    subject.api_version == change.api_version && subject.kind == change.kind && namespace == change.namespace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(value: serde_json::Value) -> BindingSubject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_write_requeues_the_bindings_of_its_kind_and_namespace() {
        let written = |api_version: &str, kind: &str, namespace: &str| SubjectWritten {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
        };
        let by_selector =
            subject(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "selector": {"matchLabels": {"app": "a"}}}));
        assert!(names_kind_in(&by_selector, Some("team"), &written("apps/v1", "Deployment", "team")));
        assert!(!names_kind_in(
            &by_selector,
            Some("team"),
            &written("apps/v1", "Deployment", "other")
        ));
        assert!(!names_kind_in(&by_selector, Some("team"), &written("batch/v1", "Job", "team")));
        assert!(names_kind_in(&by_selector, None, &written("apps/v1", "Deployment", "default")));
        let elsewhere =
            subject(serde_json::json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "s", "namespace": "web"}));
        assert!(names_kind_in(
            &elsewhere,
            Some("team"),
            &written("serving.knative.dev/v1", "Service", "web")
        ));
        assert!(!names_kind_in(
            &elsewhere,
            Some("team"),
            &written("serving.knative.dev/v1", "Service", "team")
        ));
    }
}
