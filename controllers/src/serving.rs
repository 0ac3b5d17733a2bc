//! The Service, Configuration and Route controllers (`sluice_reconcile::serving`): a Service
//! owns a Configuration and a Route of its name, a Configuration owns the Revision of each of
//! its generations, and a Route reports its URL and the revisions its traffic resolves to.
//! Where a serving plane runs in the process (`sluice run`), the Revision controller reports
//! its instances (`sluice_reconcile::serving::revision`), woken by every change of the runtime.
//! On a cluster it gives each Revision a Deployment and a Service
//! (`sluice_reconcile::serving::revision_workloads`), whose `replicas` the autoscaler of
//! `sluice dataplane` sets, and reports the Deployment's ready replicas.

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, Controller};
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;
use sluice_crds::serving::{Configuration, Revision, Route, Service};
use sluice_reconcile::serving;

use crate::children::put;
use crate::core::{label, Backoff};
use crate::status::write_status;
use crate::{Error, Settings};

/// What the serving controllers share.
struct Context {
    client: Client,
    gateway_url: String,
    backoff: Backoff,
    serving: Option<Arc<sluice_router::ServingPlane>>,
}

/// Every object of kind `K` in `namespace`, as JSON.
async fn list_json<K>(client: &Client, namespace: &str) -> Result<Vec<Value>, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut out = Vec::new();
    for o in api.list(&ListParams::default()).await? {
        out.push(serde_json::to_value(&o)?);
    }
    Ok(out)
}

/// The object of kind `K` named `name` in `namespace`, as JSON, if it exists.
async fn get_json<K>(client: &Client, namespace: &str, name: &str) -> Result<Option<Value>, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await? {
        Some(o) => Ok(Some(serde_json::to_value(&o)?)),
        None => Ok(None),
    }
}

/// Writes the status decided for `object` (as JSON, `value`) and forgets its failures.
async fn finish<K>(ctx: &Context, object: &K, value: &Value, status: &Value) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    write_status(&api, value, status).await?;
    ctx.backoff.succeeded(&label(object));
    Ok(Action::await_change())
}

async fn reconcile_service(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    if svc.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = svc.namespace().unwrap_or_default();
    let value = serde_json::to_value(svc.as_ref())?;
    let configuration = get_json::<Configuration>(&ctx.client, &ns, &svc.name_any()).await?;
    let route = get_json::<Route>(&ctx.client, &ns, &svc.name_any()).await?;
    let d = serving::service(&value, configuration.as_ref(), route.as_ref());
    put(&ctx.client, &d.configuration).await?;
    put(&ctx.client, &d.route).await?;
    finish(&ctx, svc.as_ref(), &value, &d.status).await
}

async fn reconcile_configuration(cfg: Arc<Configuration>, ctx: Arc<Context>) -> Result<Action, Error> {
    if cfg.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = cfg.namespace().unwrap_or_default();
    let value = serde_json::to_value(cfg.as_ref())?;
    let uid = cfg.uid().unwrap_or_default();
    let revisions: Vec<Value> = list_json::<Revision>(&ctx.client, &ns)
        .await?
        .into_iter()
        .filter(|r| {
            r["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["uid"] == uid.as_str()))
        })
        .collect();
    let d = serving::configuration(&value, &revisions);
    // Revisions are immutable: the one of this generation is created once.
    let name = serving::revision_name(&value);
    if !revisions.iter().any(|r| r["metadata"]["name"] == name.as_str()) {
        put(&ctx.client, &d.revision).await?;
    }
    finish(&ctx, cfg.as_ref(), &value, &d.status).await
}

async fn reconcile_route(rt: Arc<Route>, ctx: Arc<Context>) -> Result<Action, Error> {
    if rt.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = rt.namespace().unwrap_or_default();
    let value = serde_json::to_value(rt.as_ref())?;
    let configurations = list_json::<Configuration>(&ctx.client, &ns).await?;
    let revisions = list_json::<Revision>(&ctx.client, &ns).await?;
    let config_domain = get_json::<ConfigMap>(&ctx.client, serving::SETTINGS_NAMESPACE, serving::CONFIG_DOMAIN).await?;
    let domain = serving::domain(config_domain.as_ref());
    let decide = |routed| serving::route(&value, &configurations, &revisions, &domain, &ctx.gateway_url, routed);
    // On a cluster `sluice dataplane` routes every Route as its status says, as Ready means
    // resolved for eventing there.
    let Some(plane) = ctx.serving.as_ref() else {
        return finish(&ctx, rt.as_ref(), &value, &decide(Some(true))).await;
    };
    // Ready once the gateway routes it as its status says: the status is written first (the
    // gateway learns the traffic from it), then this checks again.
    let status = decide(Some(true));
    let mut decided = value.clone();
    decided["status"] = status.clone();
    if plane.routes(&decided) {
        return finish(&ctx, rt.as_ref(), &value, &status).await;
    }
    finish(&ctx, rt.as_ref(), &value, &decide(Some(false))).await?;
    Ok(Action::requeue(std::time::Duration::from_millis(50)))
}

/// The scale a Revision starts at on a cluster: its `initial-scale` annotation (at least its
/// `min-scale`), 1 without.
fn initial_replicas(rev: &Value) -> i64 {
    let annotation = |key: &str| rev["metadata"]["annotations"][key].as_str().and_then(|v| v.parse::<i64>().ok());
    let initial = annotation("autoscaling.knative.dev/initial-scale").unwrap_or(1);
    initial.max(annotation("autoscaling.knative.dev/min-scale").unwrap_or(0))
}

/// On a cluster: the Revision's Deployment and Service, made once (a Revision never changes,
/// and `replicas` is the autoscaler's), and its status from the Deployment.
async fn reconcile_revision_on_cluster(rev: &Revision, ctx: &Context) -> Result<Action, Error> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service as CoreService;
    let ns = rev.namespace().unwrap_or_default();
    let value = serde_json::to_value(rev)?;
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let services: Api<CoreService> = Api::namespaced(ctx.client.clone(), &ns);
    let (deployment, service) = serving::revision_workloads(&value, initial_replicas(&value));
    let existing = match deployments.get_opt(&serving::deployment_name(&rev.name_any())).await? {
        Some(d) => serde_json::to_value(&d)?,
        None => {
            let created = deployments
                .create(&kube::api::PostParams::default(), &serde_json::from_value(deployment)?)
                .await?;
            serde_json::to_value(&created)?
        }
    };
    if services.get_opt(&rev.name_any()).await?.is_none() {
        services
            .create(&kube::api::PostParams::default(), &serde_json::from_value(service)?)
            .await?;
    }
    // The pods say why it does not run (crashes, images, scheduling), as the kubelet reports.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let selector = format!("{}={}", serving::REVISION_LABEL, rev.name_any());
    let pods: Vec<Value> = pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?
        .items
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect();
    let status = serving::revision(&value, &serving::facts_from_deployment(&value, Some(&existing), &pods));
    finish(ctx, rev, &value, &status).await
}

async fn reconcile_revision(rev: Arc<Revision>, ctx: Arc<Context>) -> Result<Action, Error> {
    if rev.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(plane) = ctx.serving.as_ref() else {
        return reconcile_revision_on_cluster(&rev, &ctx).await;
    };
    let key = sluice_runtime::RevisionKey {
        namespace: rev.namespace().unwrap_or_default(),
        name: rev.name_any(),
    };
    // The serving plane learns of it from its own watch: until then there is nothing to say.
    let Some(observed) = plane.observe(&key) else {
        return Ok(Action::requeue(std::time::Duration::from_millis(200)));
    };
    let facts = serving::RevisionFacts {
        desired: observed.state.desired,
        ready: observed.state.ready.len() as u32,
        failure: observed.state.failure.map(|f| (f.reason, f.message)),
        not_runnable: observed.error.map(|e| e.to_string()),
        starts_at_zero: observed.starts_at_zero,
        resources_unavailable: None,
    };
    let value = serde_json::to_value(rev.as_ref())?;
    let status = serving::revision(&value, &facts);
    finish(&ctx, rev.as_ref(), &value, &status).await
}

fn error_policy<K: Resource<DynamicType = ()>>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff.failed(&label(object.as_ref()), error))
}

/// Every object of `store` in the namespace of `other` (a change there may concern them).
fn in_namespace_of<K, O>(store: Store<K>) -> impl Fn(O) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
    O: Resource,
{
    move |other: O| {
        let ns = other.meta().namespace.clone();
        store
            .state()
            .iter()
            .filter(|o| o.meta().namespace == ns)
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect()
    }
}

/// Runs the Service, Configuration and Route controllers until their watches end.
pub async fn run(client: Client, settings: Settings) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        gateway_url: settings.gateway_url,
        backoff: Backoff::default(),
        serving: settings.serving.clone(),
    });
    let revisions = Controller::new(Api::<Revision>::all(client.clone()), watcher::Config::default());
    let revisions = match &settings.serving {
        // Every change of the runtime may change any revision's status.
        Some(plane) => {
            let runtime = plane.runtime().clone();
            let changes = futures_util::stream::unfold(runtime.changes(), |mut rx| async move {
                rx.changed().await.ok()?;
                Some(((), rx))
            });
            let touched = changes.flat_map(move |()| {
                let refs: Vec<ObjectRef<Revision>> = runtime
                    .revisions()
                    .into_iter()
                    .map(|k| ObjectRef::new(&k.name).within(&k.namespace))
                    .collect();
                futures_util::stream::iter(refs)
            });
            revisions.reconcile_on(touched)
        }
        // A Deployment's ready replicas are its Revision's, and its pods' states say why not.
        None => revisions
            .owns(
                Api::<k8s_openapi::api::apps::v1::Deployment>::all(client.clone()),
                watcher::Config::default(),
            )
            .watches(
                Api::<k8s_openapi::api::core::v1::Pod>::all(client.clone()),
                watcher::Config::default().labels(serving::REVISION_LABEL),
                |pod| {
                    let revision = pod.labels().get(serving::REVISION_LABEL)?;
                    Some(ObjectRef::new(revision).within(&pod.namespace()?))
                },
            ),
    };
    let revisions = revisions.run(reconcile_revision, error_policy, ctx.clone()).for_each(|_| async {});
    let wc = watcher::Config::default;
    let services = Controller::new(Api::<Service>::all(client.clone()), wc())
        .owns(Api::<Configuration>::all(client.clone()), wc())
        .owns(Api::<Route>::all(client.clone()), wc())
        .run(reconcile_service, error_policy, ctx.clone())
        .for_each(|_| async {});
    let configurations = Controller::new(Api::<Configuration>::all(client.clone()), wc())
        .owns(Api::<Revision>::all(client.clone()), wc())
        .run(reconcile_configuration, error_policy, ctx.clone())
        .for_each(|_| async {});
    let routes = Controller::new(Api::<Route>::all(client.clone()), wc());
    let store = routes.store();
    let every_route = {
        let store = store.clone();
        move |_: ConfigMap| store.state().iter().map(|r| ObjectRef::from_obj(r.as_ref())).collect::<Vec<_>>()
    };
    let config_domain = watcher::Config::default().fields(&format!("metadata.name={}", serving::CONFIG_DOMAIN));
    let routes = routes
        .watches(Api::<Configuration>::all(client.clone()), wc(), in_namespace_of(store.clone()))
        .watches(Api::<Revision>::all(client.clone()), wc(), in_namespace_of(store))
        .watches(
            Api::<ConfigMap>::namespaced(client, serving::SETTINGS_NAMESPACE),
            config_domain,
            every_route,
        )
        .run(reconcile_route, error_policy, ctx)
        .for_each(|_| async {});
    tokio::join!(services, configurations, routes, revisions);
}
