//! The source controllers, one kube-rs `Controller` per source kind that runs here
//! (`sluice_reconcile::source::RUN`): each resolves the source's sink and writes its status
//! (`SinkProvided`, `Deployed`, `sinkUri`, `ceAttributes`, `Ready`). Where the adapters run in
//! the process (`sluice run`), `Deployed` is the adapter's health, and every change of it
//! requeues the source; on a cluster the adapters run in `sluice dataplane`, which reports
//! their health in a ConfigMap (`sluice_sources::report`) that these controllers watch.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use sluice_crds::sources::sinkbinding::BindingSubject;
use sluice_crds::sources::{ApiServerSource, AwsSqsSource, ContainerSource, KafkaSource, PingSource, RabbitmqSource, SinkBinding};
use sluice_reconcile::source::{self, Adapter};
use sluice_reconcile::Environment;
use sluice_sources::report::{self, health_in, HEALTH_CONFIGMAP};
use sluice_sources::{SourceKey, SourcePlane};
use tokio::sync::broadcast;

use crate::core::{label, requeues, Backoff, ADDRESSABLE};
use crate::mirror::Mirror;
use crate::status::write_status;
use crate::subjects::SubjectWatch;
use crate::Error;

/// Where the adapters' health comes from.
enum Adapters {
    /// They run in this process (`sluice run`).
    InProcess(Arc<SourcePlane>),
    /// `sluice dataplane` runs them and reports their health in this ConfigMap (a
    /// reflector of it); the sources whose entry changed are broadcast.
    Reported {
        store: Store<ConfigMap>,
        namespace: String,
        changes: broadcast::Sender<SourceKey>,
    },
}

/// What the source controllers share.
struct Context {
    client: Client,
    env: Environment,
    mirror: Arc<Mirror>,
    adapters: Adapters,
    backoff: Backoff,
    /// On a cluster: the kinds SinkBindings bind, watched for subjects written later.
    subjects: SubjectWatch,
}

/// A source kind with a controller here.
pub(crate) trait SourceKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// A SinkBinding's subject; no other kind has one.
    fn subject(&self) -> Option<&BindingSubject> {
        None
    }
}

impl SourceKind for PingSource {}
impl SourceKind for RabbitmqSource {}
impl SourceKind for KafkaSource {}
impl SourceKind for AwsSqsSource {}
impl SourceKind for ApiServerSource {}
impl SourceKind for ContainerSource {}
impl SourceKind for SinkBinding {
    fn subject(&self) -> Option<&BindingSubject> {
        Some(&self.spec.subject)
    }
}
impl SourceKind for sluice_crds::sources::GitHubSource {}

/// Holds a SinkBinding on a cluster until its env is taken out of its subjects again.
const BINDING_FINALIZER: &str = "sinkbindings.sources.knative.dev";

/// The env a SinkBinding sets.
const BINDING_ENV: [&str; 2] = ["K_SINK", "K_CE_OVERRIDES"];

/// Sets `finalizers` on `object`, guarded by its resourceVersion.
async fn set_finalizers<K: SourceKind>(api: &Api<K>, object: &K, finalizers: Vec<String>) -> Result<(), Error> {
    use kube::api::{Patch, PatchParams};
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": object.resource_version()}});
    api.patch(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn reconcile<K: SourceKind>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let binds_on_cluster = K::kind(&()) == "SinkBinding" && matches!(ctx.adapters, Adapters::Reported { .. });
    if object.meta().deletion_timestamp.is_some() {
        if binds_on_cluster && object.finalizers().iter().any(|f| f == BINDING_FINALIZER) {
            let value = serde_json::to_value(object.as_ref())?;
            if let Err(e) = edit_subjects(&ctx, &value, EnvEdit::Remove).await {
                tracing::warn!(binding = %label_of(&value), error = %e, "the sink stays in a subject's pod template");
            }
            let rest = object.finalizers().iter().filter(|f| *f != BINDING_FINALIZER).cloned().collect();
            set_finalizers(&api, object.as_ref(), rest).await?;
        }
        return Ok(Action::await_change());
    }
    if binds_on_cluster && !object.finalizers().iter().any(|f| f == BINDING_FINALIZER) {
        // The finalizer first, so that a subject is never bound by a binding that can go
        // without unbinding it; the write comes back as a change.
        let mut finalizers = object.finalizers().to_vec();
        finalizers.push(BINDING_FINALIZER.to_string());
        set_finalizers(&api, object.as_ref(), finalizers).await?;
        return Ok(Action::await_change());
    }
    let value = serde_json::to_value(object.as_ref())?;
    let sink = ctx.mirror.with_objects(|objects| source::sink(&value, &ctx.env, objects));
    let adapter = match &ctx.adapters {
        Adapters::InProcess(plane) => Adapter::InProcess(plane.health(&source::key(&value))),
        // On a cluster a ContainerSource is a Deployment of its template.
        Adapters::Reported { .. } if K::kind(&()) == "ContainerSource" => match &sink {
            Ok(plan) => Adapter::InProcess(Some(run_container_source(&ctx.client, &value, &plan.uri).await?)),
            Err(_) => Adapter::InProcess(None),
        },
        // On a cluster a SinkBinding writes its env into its subjects' pod templates.
        Adapters::Reported { .. } if K::kind(&()) == "SinkBinding" => match &sink {
            Ok(plan) => match edit_subjects(&ctx, &value, EnvEdit::Set(source::binding_env(&value, &plan.uri))).await {
                Ok(()) => Adapter::DataPlane,
                Err(message) => Adapter::InProcess(Some(sluice_sources::Health::failing("SubjectNotBound", message))),
            },
            Err(_) => Adapter::DataPlane,
        },
        Adapters::Reported { store, namespace, .. } => {
            let report = store.get(&ObjectRef::new(HEALTH_CONFIGMAP).within(namespace));
            let data = report.as_ref().and_then(|cm| cm.data.as_ref());
            Adapter::InProcess(data.and_then(|d| health_in(d, &source::key(&value))))
        }
    };
    let status = source::status(&value, &sink, &adapter);
    write_status(&api, &value, &status).await?;
    ctx.backoff.succeeded(&label(object.as_ref()));
    let unbound = binds_on_cluster && matches!(&adapter, Adapter::InProcess(Some(sluice_sources::Health::Failing { .. })));
    if unbound {
        // A subject kind the API does not serve (yet), or a subject that refused the write:
        // tried again, as a subject written later of a served kind is bound when it is written.
        return Ok(Action::requeue(std::time::Duration::from_secs(10)));
    }
    Ok(Action::await_change())
}

/// On a cluster: makes a ContainerSource's Deployment say its template with the sink (created,
/// or replaced when it differs), and reads its health from the Deployment and its pods.
async fn run_container_source(client: &Client, source: &serde_json::Value, sink_uri: &str) -> Result<sluice_sources::Health, Error> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, PostParams};
    let namespace = source["metadata"]["namespace"].as_str().unwrap_or("default");
    let wanted = source::container_source_deployment(source, sink_uri);
    let name = wanted["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let current = match deployments.get_opt(&name).await? {
        None => deployments.create(&PostParams::default(), &serde_json::from_value(wanted)?).await?,
        Some(current) => {
            let mut value = serde_json::to_value(&current)?;
            if value["spec"]["template"] != wanted["spec"]["template"] {
                value["spec"]["template"] = wanted["spec"]["template"].clone();
                deployments
                    .replace(&name, &PostParams::default(), &serde_json::from_value(value)?)
                    .await?
            } else {
                current
            }
        }
    };
    let selector = format!(
        "{}={}",
        source::CONTAINER_SOURCE_LABEL,
        source["metadata"]["name"].as_str().unwrap_or_default()
    );
    let pods: Vec<serde_json::Value> = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect();
    Ok(source::container_source_health(
        source,
        Some(&serde_json::to_value(&current)?),
        &pods,
    ))
}

/// What a SinkBinding does to its subjects' env.
enum EnvEdit {
    /// Sets these variables (binding).
    Set(Vec<(String, String)>),
    /// Takes `K_SINK` and `K_CE_OVERRIDES` out (the binding is deleted).
    Remove,
}

/// On a cluster: sets a SinkBinding's `K_SINK` and `K_CE_OVERRIDES` in the pod template
/// (`spec.template.spec.containers` and `initContainers`) of each subject (by name, or every object its selector
/// picks), or takes them out again, as Knative's SinkBinding does, so that the subject's
/// workload rolls out with them; `Err` says which subject could not be changed.
async fn edit_subjects(ctx: &Context, binding: &serde_json::Value, edit: EnvEdit) -> Result<(), String> {
    use kube::api::{DynamicObject, ListParams, PostParams};
    use kube::core::GroupVersionKind;
    let client = &ctx.client;
    let subject = &binding["spec"]["subject"];
    let api_version = subject["apiVersion"].as_str().unwrap_or_default();
    let kind = subject["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (resource, _) = kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
        .await
        .map_err(|e| format!("subject {api_version} {kind}: {e}"))?;
    // From now on a subject of this kind written later is bound as soon as it is written.
    ctx.subjects.ensure(client, &resource);
    let namespace = subject["namespace"]
        .as_str()
        .filter(|ns| !ns.is_empty())
        .or(binding["metadata"]["namespace"].as_str())
        .unwrap_or("default");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let subjects: Vec<DynamicObject> = match subject["name"].as_str() {
        Some(name) => api
            .get_opt(name)
            .await
            .map_err(|e| format!("subject {kind} {namespace}/{name}: {e}"))?
            .into_iter()
            .collect(),
        None => {
            let selector: sluice_crds::duck::LabelSelector = serde_json::from_value(subject["selector"].clone()).unwrap_or_default();
            let params = ListParams::default().labels(&sluice_sources::apiserver::selector_text(&selector));
            api.list(&params)
                .await
                .map_err(|e| format!("subjects {kind} in {namespace}: {e}"))?
                .items
        }
    };
    for object in subjects {
        let name = object.name_any();
        let mut value = serde_json::to_value(&object).map_err(|e| e.to_string())?;
        let pod = &mut value["spec"]["template"]["spec"];
        let changed = match &edit {
            EnvEdit::Set(env) => source::edit_pod_containers(pod, |c| source::with_env(c, env)),
            EnvEdit::Remove => source::edit_pod_containers(pod, |c| source::without_env(c, &BINDING_ENV)),
        };
        if !changed {
            continue;
        }
        let updated: DynamicObject = serde_json::from_value(value).map_err(|e| e.to_string())?;
        api.replace(&name, &PostParams::default(), &updated)
            .await
            .map_err(|e| format!("subject {kind} {namespace}/{name}: {e}"))?;
        let what = match edit {
            EnvEdit::Set(_) => "bound the sink into the subject's pod template",
            EnvEdit::Remove => "took the sink out of the subject's pod template",
        };
        tracing::info!(binding = %label_of(binding), subject = %format!("{kind} {namespace}/{name}"), "{what}");
    }
    Ok(())
}

/// `namespace/name` of an object as JSON.
fn label_of(object: &serde_json::Value) -> String {
    format!(
        "{}/{}",
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn error_policy<K: SourceKind>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff.failed(&label(object.as_ref()), error))
}

/// The sources of kind `K` whose adapter changed health.
fn health_changes<K: SourceKind>(changes: broadcast::Receiver<SourceKey>) -> impl futures_util::Stream<Item = ObjectRef<K>> + Send {
    let kind = K::kind(&()).to_ascii_lowercase();
    futures_util::stream::unfold((kind, changes), |(kind, mut changes)| async move {
        loop {
            match changes.recv().await {
                Ok(key) if key.kind == kind => {
                    let r = ObjectRef::new(&key.name).within(&key.namespace);
                    return Some((r, (kind, changes)));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

async fn run_kind<K: SourceKind>(ctx: Arc<Context>) {
    let controller = Controller::new(Api::<K>::all(ctx.client.clone()), watcher::Config::default());
    let store = controller.store();
    let controller = controller.reconcile_on(requeues(store.clone(), ctx.mirror.changes(), ADDRESSABLE));
    let controller = match &ctx.adapters {
        Adapters::InProcess(plane) => controller.reconcile_on(health_changes::<K>(plane.changes())),
        // On a cluster: the data plane's reports, and (ContainerSources) the Deployments they
        // own and the pods of those.
        Adapters::Reported { changes, .. } => {
            let controller = controller.reconcile_on(health_changes::<K>(changes.subscribe()));
            if K::kind(&()) == "SinkBinding" {
                // An object written of a kind some binding names may be a subject to bind.
                controller.reconcile_on(ctx.subjects.requeues(store.clone()))
            } else if K::kind(&()) == "ContainerSource" {
                let client = ctx.client.clone();
                controller
                    .owns(
                        Api::<k8s_openapi::api::apps::v1::Deployment>::all(client.clone()),
                        watcher::Config::default(),
                    )
                    .watches(
                        Api::<k8s_openapi::api::core::v1::Pod>::all(client),
                        watcher::Config::default().labels(source::CONTAINER_SOURCE_LABEL),
                        |pod| {
                            let name = pod.labels().get(source::CONTAINER_SOURCE_LABEL)?;
                            Some(ObjectRef::new(name).within(&pod.namespace()?))
                        },
                    )
            } else {
                controller
            }
        }
    };
    controller.run(reconcile::<K>, error_policy::<K>, ctx).for_each(|_| async {}).await;
}

/// Runs the controller of every source kind that runs here. `plane` holds the adapters when
/// they run in this process; else `sluice dataplane` reports their health in
/// `dataplane_namespace`.
pub async fn run(client: Client, env: Environment, mirror: Arc<Mirror>, plane: Option<Arc<SourcePlane>>, dataplane_namespace: String) {
    let adapters = match plane {
        Some(plane) => Adapters::InProcess(plane),
        None => {
            let (store, writer) = reflector::store::<ConfigMap>();
            let changes = broadcast::channel(1024).0;
            let (on_change, reader) = (changes.clone(), store.clone());
            let key = ObjectRef::new(HEALTH_CONFIGMAP).within(&dataplane_namespace);
            let data = move || reader.get(&key).and_then(|cm| cm.data.clone()).unwrap_or_default();
            let mut before = BTreeMap::new();
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &dataplane_namespace);
            let config = watcher::Config::default().fields(&format!("metadata.name={HEALTH_CONFIGMAP}"));
            tokio::spawn(
                reflector::reflector(writer, watcher(api, config))
                    .default_backoff()
                    .for_each(move |event| {
                        if let Err(e) = &event {
                            tracing::warn!(error = %e, "watching the data plane's health report failed; retrying");
                        }
                        let after = data();
                        for source in report::changed(&before, &after) {
                            let _ = on_change.send(source);
                        }
                        before = after;
                        async {}
                    }),
            );
            Adapters::Reported {
                store,
                namespace: dataplane_namespace,
                changes,
            }
        }
    };
    let ctx = Arc::new(Context {
        client,
        env,
        mirror,
        adapters,
        backoff: Backoff::default(),
        subjects: SubjectWatch::default(),
    });
    tokio::join!(
        run_kind::<PingSource>(ctx.clone()),
        run_kind::<RabbitmqSource>(ctx.clone()),
        run_kind::<KafkaSource>(ctx.clone()),
        run_kind::<AwsSqsSource>(ctx.clone()),
        run_kind::<ApiServerSource>(ctx.clone()),
        run_kind::<ContainerSource>(ctx.clone()),
        run_kind::<SinkBinding>(ctx)
    );
}
