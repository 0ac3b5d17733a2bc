//! What every Knative-kind controller here shares: a kube-rs [`Controller`] over the kind's
//! typed struct, whose `reconcile` asks the kind's pure decision (`sluice-reconcile`) what the
//! object should be and writes that, and whose `error_policy` retries with backoff. Objects
//! are requeued when something they depend on changes in their namespace.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, Controller};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sluice_brokers::{DataPlane, HubKey};
use sluice_reconcile::Environment;
use tokio::sync::broadcast;

use crate::mirror::{Change, Mirror};
use crate::status::{write_spec_field, write_status};
use crate::Error;

/// How long a reconcile waits for the data plane of its process to serve what it decided.
const SERVING_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry delay of a failed reconcile; it doubles on every further failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest retry delay.
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// What a controller decided for one object.
#[derive(Debug)]
pub struct Decision {
    /// Its status.
    pub status: Value,
    /// The hub (and subscriber id with generation) the data plane runs for it; in `sluice run`
    /// the status is written once the data plane does, so Ready means "receiving events".
    pub serving: Option<(HubKey, Option<(String, i64)>)>,
    /// A server-owned field of its spec, written before the status: (field, value).
    pub spec_field: Option<(&'static str, Value)>,
}

/// A Knative kind with a controller here.
pub trait Decides:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The kinds (group, kind) whose change in a namespace requeues every object of this kind
    /// there: what its decision reads.
    const DEPENDS_ON: &'static [(&'static str, &'static str)];

    /// What `object` (as JSON) should be, from the objects in `mirror`.
    fn decide(object: &Value, env: &Environment, mirror: &Mirror) -> Decision;
}

/// The addressable kinds: a destination or dead-letter sink can name them.
pub const ADDRESSABLE: &[(&str, &str)] = &[
    ("eventing.knative.dev", "Broker"),
    ("messaging.knative.dev", "Channel"),
    ("messaging.knative.dev", "InMemoryChannel"),
    ("flows.knative.dev", "Sequence"),
    ("flows.knative.dev", "Parallel"),
    ("serving.knative.dev", "Service"),
];

/// What the controllers share.
pub struct Context {
    /// Client of the API.
    pub client: Client,
    /// The gateway, for addresses.
    pub env: Environment,
    /// The objects decisions read.
    pub mirror: Arc<Mirror>,
    /// The data plane of this process, if it has one (`sluice run`).
    pub data_plane: Option<Arc<DataPlane>>,
    /// Failures in a row per object, for the retry backoff.
    backoff: Backoff,
}

/// Failures in a row per object (`Kind namespace/name`): a failed reconcile is retried after
/// 100 ms, doubling up to 30 s while it keeps failing; a success forgets them.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts a failure of `object` and returns how long to wait before retrying it.
    pub fn failed(&self, object: &str, error: &dyn std::fmt::Display) -> Duration {
        let mut failures = self.failures.lock().expect("failure counts poisoned");
        let n = failures.entry(object.to_string()).or_insert(0);
        *n += 1;
        let delay = retry_delay(*n);
        tracing::warn!(%object, %error, failures = *n, retry_in = ?delay, "reconcile failed");
        delay
    }

    /// Forgets the failures of `object` after it reconciled.
    pub fn succeeded(&self, object: &str) {
        self.failures.lock().expect("failure counts poisoned").remove(object);
    }
}

impl Context {
    /// A context over `mirror`.
    pub fn new(client: Client, env: Environment, mirror: Arc<Mirror>, data_plane: Option<Arc<DataPlane>>) -> Arc<Self> {
        Arc::new(Self {
            client,
            env,
            mirror,
            data_plane,
            backoff: Backoff::default(),
        })
    }
}

/// `Kind namespace/name` of an object, for logs and the backoff.
pub fn label<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!("{} {}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any())
}

/// Decides one object and writes the decision: the server-owned spec field, then (once the
/// data plane of this process serves it) the status.
async fn reconcile<K: Decides>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    if object.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let value = serde_json::to_value(object.as_ref())?;
    let mut decision = K::decide(&value, &ctx.env, &ctx.mirror);
    // `status.annotations` is free-form state that Sluice writes none of: what others put
    // there stays.
    if let (Some(annotations), Some(status)) = (value["status"].get("annotations"), decision.status.as_object_mut()) {
        status.entry("annotations").or_insert_with(|| annotations.clone());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    if let Some((field, v)) = &decision.spec_field {
        if write_spec_field(&api, &value, field, v).await? {
            // The write comes back as a change of the object, reconciled with its new generation.
            return Ok(Action::await_change());
        }
    }
    if let (Some(plane), Some((hub, subscriber))) = (&ctx.data_plane, &decision.serving) {
        let subscriber = subscriber.as_ref().map(|(id, generation)| (id.as_str(), *generation));
        if !plane.wait_serving(hub, subscriber, SERVING_TIMEOUT).await {
            return Err(Error::NotServed(hub.to_string()));
        }
    }
    if write_status(&api, &value, &decision.status).await? {
        tracing::debug!(object = %label(object.as_ref()), "status written");
    }
    ctx.backoff.succeeded(&label(object.as_ref()));
    Ok(Action::await_change())
}

/// A failed reconcile is retried after 100 ms, doubling up to 30 s while it keeps failing;
/// other objects go on meanwhile.
fn error_policy<K: Decides>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff.failed(&label(object.as_ref()), error))
}

/// The delay before retrying an object that failed `failures` times in a row.
fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(LONGEST_RETRY)
}

/// Requests for the objects of `store` whose dependencies change, from the mirror's changes:
/// a change to a kind of `depends_on` (group, kind) in a namespace requeues every object of
/// `store` there; missed changes requeue them all.
pub(crate) fn requeues<K>(
    store: Store<K>,
    changes: broadcast::Receiver<Change>,
    depends_on: &'static [(&'static str, &'static str)],
) -> impl futures_util::Stream<Item = ObjectRef<K>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    futures_util::stream::unfold((store, changes), move |(store, mut changes)| async move {
        loop {
            let refs: Vec<ObjectRef<K>> = match changes.recv().await {
                Ok(change) if change.status_only => continue,
                Ok(change) if depends_on.iter().any(|(g, k)| *g == change.group && *k == change.kind) => store
                    .state()
                    .iter()
                    .filter(|o| change.namespace.is_none() || o.namespace() == change.namespace)
                    .map(|o| ObjectRef::from_obj(o.as_ref()))
                    .collect(),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => store.state().iter().map(|o| ObjectRef::from_obj(o.as_ref())).collect(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((futures_util::stream::iter(refs), (store, changes)));
        }
    })
    .flatten()
}

/// Runs the controller of kind `K` until its watch ends.
pub async fn run<K: Decides>(ctx: Arc<Context>) {
    let controller = Controller::new(Api::<K>::all(ctx.client.clone()), watcher::Config::default());
    let store = controller.store();
    controller
        .reconcile_on(requeues(store, ctx.mirror.changes(), K::DEPENDS_ON))
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_100_ms_doubling_to_30_s() {
        let delays: Vec<u128> = [1, 2, 3, 4, 9, 10, 50].into_iter().map(|n| retry_delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 25_600, 30_000, 30_000]);
    }
}
