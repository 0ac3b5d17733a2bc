//! ApiServerSource (`sources.knative.dev/v1`, API-01/02): changes of objects in the Kubernetes
//! API the controllers use (the embedded one of `sluice run`, or a cluster's) as CloudEvents.
//!
//! - **Config**: `resources` (apiVersion, kind, label `selector`), `owner`, `mode`
//!   (`Reference` or `Resource`), the namespaces (the source's, or those `namespaceSelector`
//!   picks), `filters` (the Subscriptions API's, as Triggers apply them).
//! - **Conversion**: [`to_event`] — `dev.knative.apiserver.{ref,resource}.{add,update,delete}`,
//!   source = the API's URL, subject `/apis/<apiVersion>/namespaces/<ns>/<resource>/<name>`,
//!   extensions `kind`, `apiversion`, `name`, `namespace`; data = the object (Resource mode) or
//!   a reference to it (Reference mode).
//! - **Loop**: a `kube::runtime::watcher` per resource; objects listed at start are adds, as
//!   an informer reports them.
//! - **Acknowledgement**: none upstream; an event the sink refused is logged and counted.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, ApiResource};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::{json, Value};
use sluice_crds::duck::LabelSelector;
use sluice_crds::sources::ApiServerSource;
use sluice_triggers::CompiledFilter;

use crate::{Adapter, AdapterContext, Backoff, ConfigError, Health};

/// The API the source watches: a client, and its URL (the events' `source`).
#[derive(Clone)]
pub struct ApiAccess {
    /// A client of the API.
    pub client: kube::Client,
    /// Its URL.
    pub url: String,
    /// On a cluster, the config `client` came from: each source then watches as its
    /// `serviceAccountName`, impersonated, so it sees what RBAC grants that account (as
    /// Knative's adapter runs under it) and the data plane needs only `impersonate`. `None`
    /// (the embedded API, which has no RBAC) watches with `client`.
    pub impersonation: Option<kube::Config>,
}

impl ApiAccess {
    /// This access as the source's service account, when impersonating.
    fn as_service_account(&self, namespace: &str, account: &str) -> Result<ApiAccess, kube::Error> {
        let Some(base) = &self.impersonation else {
            return Ok(self.clone());
        };
        Ok(ApiAccess {
            client: kube::Client::try_from(impersonating(base, namespace, account))?,
            url: self.url.clone(),
            impersonation: None,
        })
    }
}

/// `base` acting as service account `namespace/account` (`Impersonate-User:
/// system:serviceaccount:<namespace>:<account>`; the API server adds its groups).
pub fn impersonating(base: &kube::Config, namespace: &str, account: &str) -> kube::Config {
    let mut config = base.clone();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{account}"));
    config.auth_info.impersonate_groups = None;
    config
}

/// One resource to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// `apiVersion` of the objects.
    pub api_version: String,
    /// Their kind.
    pub kind: String,
    /// A label selector in the API's text form (`a=b,c in (d)`), empty for all.
    pub selector: String,
}

/// What an ApiServerSource's adapter runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The resources watched.
    pub resources: Vec<Resource>,
    /// Only objects owned (an `ownerReference`) by this apiVersion and kind.
    pub owner: Option<(String, String)>,
    /// Resource mode: the whole object as data; else a reference.
    pub resource_mode: bool,
    /// The source's namespace.
    pub namespace: String,
    /// A selector of the namespaces to watch, instead of the source's own.
    pub namespace_selector: Option<String>,
    /// The service account the watches run as on a cluster (`serviceAccountName`).
    pub service_account: String,
    /// The `filters` of the spec, as Triggers write them.
    pub filters: Vec<sluice_crds::eventing::SubscriptionsApiFilter>,
}

/// A label selector in the API's text form.
pub fn selector_text(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for req in &selector.match_expressions {
        parts.push(match req.operator.as_str() {
            "In" => format!("{} in ({})", req.key, req.values.join(",")),
            "NotIn" => format!("{} notin ({})", req.key, req.values.join(",")),
            "Exists" => req.key.clone(),
            _ => format!("!{}", req.key),
        });
    }
    parts.join(",")
}

impl Config {
    /// The config of `source`.
    pub fn from_source(source: &ApiServerSource) -> Result<Self, ConfigError> {
        let spec = &source.spec;
        // Admission compiled them already; a failure here would be a bug, reported as such.
        sluice_triggers::compile(None, Some(&spec.filters))
            .map_err(|e| ConfigError::new("spec.filters", "InvalidFilters", e.to_string()))?;
        Ok(Self {
            resources: spec
                .resources
                .iter()
                .map(|r| Resource {
                    api_version: r.api_version.clone(),
                    kind: r.kind.clone(),
                    selector: r.selector.as_ref().map(selector_text).unwrap_or_default(),
                })
                .collect(),
            owner: spec.owner.as_ref().map(|o| (o.api_version.clone(), o.kind.clone())),
            resource_mode: spec.mode == sluice_crds::sources::apiserver::RESOURCE_MODE,
            namespace: source.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            namespace_selector: spec.namespace_selector.as_ref().map(selector_text),
            service_account: if spec.service_account_name.is_empty() {
                "default".into()
            } else {
                spec.service_account_name.clone()
            },
            filters: spec.filters.clone(),
        })
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// It appeared (or was there at start).
    Add,
    /// It changed.
    Update,
    /// It went.
    Delete,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Add => "add",
            Change::Update => "update",
            Change::Delete => "delete",
        }
    }
}

/// The CloudEvent of one change (API-02); `plural` is the resource's name in paths.
pub fn to_event(object: &Value, plural: &str, change: Change, resource_mode: bool, api_url: &str, id: String) -> Result<Event, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let mode = if resource_mode { "resource" } else { "ref" };
    let subject = if namespace.is_empty() {
        format!("/apis/{api_version}/{plural}/{name}")
    } else {
        format!("/apis/{api_version}/namespaces/{namespace}/{plural}/{name}")
    };
    let mut event = EventBuilderV10::new()
        .id(id)
        .ty(format!("dev.knative.apiserver.{mode}.{}", change.verb()))
        .source(api_url)
        .subject(subject)
        .extension("kind", kind)
        .extension("apiversion", api_version)
        .extension("name", name)
        .extension("namespace", namespace)
        .build()
        .map_err(|e| e.to_string())?;
    let data = if resource_mode {
        object.clone()
    } else {
        json!({"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace})
    };
    event.set_data("application/json", data);
    Ok(event)
}

/// Whether `object` has an owner of `owner`'s apiVersion and kind.
fn owned_by(object: &DynamicObject, owner: &Option<(String, String)>) -> bool {
    match owner {
        None => true,
        Some((api_version, kind)) => object
            .owner_references()
            .iter()
            .any(|o| o.kind == *kind && (api_version.is_empty() || o.api_version == *api_version)),
    }
}

/// Watches an ApiServerSource's resources.
pub struct ApiServerAdapter {
    config: Config,
    api: Option<ApiAccess>,
}

impl ApiServerAdapter {
    /// An adapter for `config`, watching the API behind `api`.
    pub fn new(config: Config, api: Option<ApiAccess>) -> Self {
        Self { config, api }
    }
}

/// Emits one change unless the filters drop it.
async fn emit(ctx: &AdapterContext, filter: &CompiledFilter, event: Event) {
    ctx.emitter.metrics().received.inc();
    if !filter.matches(&event) {
        return;
    }
    let subject = cloudevents::AttributesReader::subject(&event).unwrap_or_default().to_string();
    match ctx.emitter.emit(event, None).await {
        Ok(()) => {
            ctx.emitter.metrics().acknowledged.inc();
        }
        Err(e) => tracing::warn!(source = ctx.emitter.label(), %subject, error = %e, "API change not delivered"),
    }
}

/// Watches one resource until stopped, emitting its changes.
async fn watch_resource(
    ctx: Arc<AdapterContext>,
    access: ApiAccess,
    config: Arc<Config>,
    resource: ApiResource,
    selector: String,
    namespaces: Option<HashSet<String>>,
) {
    let filter = sluice_triggers::compile(None, Some(&config.filters)).expect("filters compiled at config");
    let api: Api<DynamicObject> = match &namespaces {
        Some(_) => Api::all_with(access.client.clone(), &resource),
        None => Api::namespaced_with(access.client.clone(), &config.namespace, &resource),
    };
    let mut watch_config = watcher::Config::default();
    if !selector.is_empty() {
        watch_config = watch_config.labels(&selector);
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let stream = watcher(api, watch_config);
    futures_util::pin_mut!(stream);
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = ctx.stop.cancelled() => return,
        };
        let (object, change) = match next {
            None => return,
            Some(Err(e)) => {
                ctx.report(Health::failing("WatchFailed", format!("watching {}: {e}", resource.plural)));
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {
                ctx.report(Health::Running);
                continue;
            }
            Some(Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o))) => {
                let uid = o.uid().unwrap_or_default();
                let change = if seen.insert(uid) { Change::Add } else { Change::Update };
                (o, change)
            }
            Some(Ok(watcher::Event::Delete(o))) => {
                seen.remove(&o.uid().unwrap_or_default());
                (o, Change::Delete)
            }
        };
        if namespaces
            .as_ref()
            .is_some_and(|n| !n.contains(&object.namespace().unwrap_or_default()))
            || !owned_by(&object, &config.owner)
        {
            continue;
        }
        let mut value = match serde_json::to_value(&object) {
            Ok(v) => v,
            Err(_) => continue,
        };
        value["apiVersion"] = json!(resource.api_version);
        value["kind"] = json!(resource.kind);
        match to_event(
            &value,
            &resource.plural,
            change,
            config.resource_mode,
            &access.url,
            uuid::Uuid::new_v4().to_string(),
        ) {
            Ok(event) => emit(&ctx, &filter, event).await,
            Err(e) => tracing::warn!(source = ctx.emitter.label(), error = %e, "API change not convertible"),
        }
    }
}

#[async_trait::async_trait]
impl Adapter for ApiServerAdapter {
    async fn run(self: Box<Self>, ctx: AdapterContext) {
        let ctx = Arc::new(ctx);
        let Some(access) = self.api.clone() else {
            ctx.report(Health::failing("NoApi", "this data plane has no client of the API"));
            ctx.stop.cancelled().await;
            return;
        };
        let config = Arc::new(self.config.clone());
        let access = match access.as_service_account(&config.namespace, &config.service_account) {
            Ok(a) => a,
            Err(e) => {
                let account = format!("{}/{}", config.namespace, config.service_account);
                ctx.report(Health::failing(
                    "InvalidConfig",
                    format!("a client as service account {account}: {e}"),
                ));
                ctx.stop.cancelled().await;
                return;
            }
        };
        let mut backoff = Backoff::default();
        // Resolve every resource's plural (discovery) and the namespaces first.
        let (resources, namespaces) = loop {
            let mut resolved = Vec::new();
            let mut failure = None;
            for r in &config.resources {
                let (group, version) = r.api_version.split_once('/').unwrap_or(("", r.api_version.as_str()));
                match pinned_kind(&access.client, &GroupVersionKind::gvk(group, version, &r.kind)).await {
                    Ok((resource, _)) => resolved.push((resource, r.selector.clone())),
                    Err(e) => failure = Some(("ResourceNotFound", format!("{} {}: {e}", r.api_version, r.kind))),
                }
            }
            let namespaces = match &config.namespace_selector {
                None => Ok(None),
                Some(selector) => {
                    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(access.client.clone());
                    api.list(&ListParams::default().labels(selector))
                        .await
                        .map(|l| Some(l.items.iter().map(|n| n.name_any()).collect::<HashSet<String>>()))
                }
            };
            match (failure, namespaces) {
                (None, Ok(n)) => break (resolved, n),
                (Some((reason, message)), _) => ctx.report(Health::failing(reason, message)),
                (None, Err(e)) => ctx.report(Health::failing("NamespacesNotListed", e.to_string())),
            }
            if !backoff.wait(&ctx.stop).await {
                return;
            }
        };
        let watches = resources.into_iter().map(|(resource, selector)| {
            watch_resource(ctx.clone(), access.clone(), config.clone(), resource, selector, namespaces.clone())
        });
        futures_util::future::join_all(watches).await;
    }
}

#[cfg(test)]
mod tests {
    use cloudevents::AttributesReader;

    use super::*;

    #[test]
    fn changes_become_apiserver_events() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "team", "uid": "u"}, "data": {"a": "b"}});
        let cases = [
            (Change::Add, false, "dev.knative.apiserver.ref.add"),
            (Change::Update, true, "dev.knative.apiserver.resource.update"),
            (Change::Delete, false, "dev.knative.apiserver.ref.delete"),
        ];
        for (change, resource_mode, ty) in cases {
            let e = to_event(&cm, "configmaps", change, resource_mode, "http://127.0.0.1:8090", "id".into()).unwrap();
            assert_eq!(e.ty(), ty);
            assert_eq!(e.source().to_string(), "http://127.0.0.1:8090");
            assert_eq!(e.subject(), Some("/apis/v1/namespaces/team/configmaps/settings"));
            assert_eq!(e.extension("kind").unwrap().to_string(), "ConfigMap");
            assert_eq!(e.extension("apiversion").unwrap().to_string(), "v1");
            assert_eq!(e.extension("name").unwrap().to_string(), "settings");
            assert_eq!(e.extension("namespace").unwrap().to_string(), "team");
            let data = match e.data() {
                Some(cloudevents::Data::Json(j)) => j.clone(),
                other => panic!("{other:?}"),
            };
            if resource_mode {
                assert_eq!(data, cm);
            } else {
                assert_eq!(
                    data,
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "settings", "namespace": "team"})
                );
            }
        }
    }

    #[test]
    fn on_a_cluster_watches_run_as_the_sources_service_account() {
        let mut base = kube::Config::new("https://10.0.0.1:443".parse().unwrap());
        base.auth_info.impersonate_groups = Some(vec!["stale".into()]);
        let config = impersonating(&base, "team", "watcher");
        assert_eq!(config.auth_info.impersonate.as_deref(), Some("system:serviceaccount:team:watcher"));
        assert_eq!(config.auth_info.impersonate_groups, None);
        assert_eq!(config.cluster_url, base.cluster_url);
    }

    #[test]
    fn selectors_in_text_form() {
        let s: LabelSelector = serde_json::from_value(json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "x", "operator": "Exists"},
                                 {"key": "y", "operator": "DoesNotExist"}, {"key": "z", "operator": "NotIn", "values": ["c"]}]}))
        .unwrap();
        assert_eq!(selector_text(&s), "app=web,tier in (a,b),x,!y,z notin (c)");
    }
}
