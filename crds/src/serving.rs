//! `serving.knative.dev/v1`: Service, Configuration, Revision and Route (reference section 4.1).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, HostAlias, LocalObjectReference, PodDNSConfig, PodSecurityContext, PodSpec, Probe, TCPSocketAction, Toleration,
    TopologySpreadConstraint, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duck::{impl_has_conditions, Addressable};
use crate::meta::{validate_object_meta, NameRule};
use crate::pod::{is_writable, validate_serving_pod, validate_template_metadata};
use crate::{autoscaling, field, index, Admission, FieldError};

/// Revision `timeoutSeconds` when unset (Serving's `config-defaults` `revision-timeout-seconds`).
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 300;
/// Largest allowed `timeoutSeconds` (`max-revision-timeout-seconds`).
pub const MAX_TIMEOUT_SECONDS: i64 = 600;
/// Largest allowed `containerConcurrency` (`container-concurrency-max-limit`).
pub const MAX_CONTAINER_CONCURRENCY: i64 = 1000;
/// Namespace of Knative Serving's settings ConfigMaps.
pub const SETTINGS_NAMESPACE: &str = "knative-serving";
/// The ConfigMap of Revision defaults and limits.
pub const CONFIG_DEFAULTS: &str = "config-defaults";
/// The ConfigMap of the autoscaler's settings, of which admission reads
/// `allow-zero-initial-scale`.
pub const CONFIG_AUTOSCALER: &str = "config-autoscaler";
/// Serving's ConfigMaps that admission reads.
pub const SETTINGS: [&str; 2] = [CONFIG_DEFAULTS, CONFIG_AUTOSCALER];

/// Makes admission apply Serving's ConfigMap `knative-serving/{name}` (one of [`SETTINGS`]):
/// `configmap` as written, or `None` when it is absent or deleted (Knative's defaults). The store
/// calls it on every write of one, and manifest loading for each one it reads, so that the
/// documents after it are checked against it.
pub fn apply_settings(name: &str, configmap: Option<&serde_json::Value>) {
    let data: Vec<(String, String)> = configmap
        .and_then(|c| c["data"].as_object())
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let get = |key: &str| data.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
    match name {
        CONFIG_AUTOSCALER => crate::autoscaling::set_zero_initial_scale_allowed(get("allow-zero-initial-scale") == Some("true")),
        CONFIG_DEFAULTS => set_serving_defaults(
            // Admission refused invalid values before they were stored.
            ServingDefaults::from_data(data.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_or_default(),
        ),
        _ => {}
    }
}

/// `config-defaults` (namespace `knative-serving`) as admission applies it: the defaults and
/// limits of Revisions, Knative's when the ConfigMap is absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServingDefaults {
    /// `revision-timeout-seconds`: `timeoutSeconds` when unset.
    pub revision_timeout_seconds: i64,
    /// `max-revision-timeout-seconds`: the largest `timeoutSeconds`.
    pub max_revision_timeout_seconds: i64,
    /// `container-concurrency`: `containerConcurrency` when unset.
    pub container_concurrency: i64,
    /// `container-concurrency-max-limit`: the largest `containerConcurrency`.
    pub container_concurrency_max_limit: i64,
}

impl Default for ServingDefaults {
    fn default() -> Self {
        Self {
            revision_timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            max_revision_timeout_seconds: MAX_TIMEOUT_SECONDS,
            container_concurrency: 0,
            container_concurrency_max_limit: MAX_CONTAINER_CONCURRENCY,
        }
    }
}

impl ServingDefaults {
    /// Reads `config-defaults`' `data`; unknown keys are ignored, as Knative does, and a value
    /// that is not a whole number in range is an error naming its key (`data.{key}`).
    pub fn from_data<'a>(data: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, Vec<FieldError>> {
        let mut d = Self::default();
        let mut errors = Vec::new();
        for (key, value) in data {
            let slot = match key {
                "revision-timeout-seconds" => &mut d.revision_timeout_seconds,
                "max-revision-timeout-seconds" => &mut d.max_revision_timeout_seconds,
                "container-concurrency" => &mut d.container_concurrency,
                "container-concurrency-max-limit" => &mut d.container_concurrency_max_limit,
                _ => continue,
            };
            match value.trim().parse::<i64>() {
                Ok(n) if n >= 0 => *slot = n,
                _ => errors.push(FieldError::new(
                    format!("data.{key}"),
                    format!("{value:?} is not a whole number of 0 or more"),
                )),
            }
        }
        if d.revision_timeout_seconds > d.max_revision_timeout_seconds {
            errors.push(FieldError::new(
                "data.revision-timeout-seconds",
                format!(
                    "{} is above max-revision-timeout-seconds ({})",
                    d.revision_timeout_seconds, d.max_revision_timeout_seconds
                ),
            ));
        }
        if d.container_concurrency > d.container_concurrency_max_limit {
            errors.push(FieldError::new(
                "data.container-concurrency",
                format!(
                    "{} is above container-concurrency-max-limit ({})",
                    d.container_concurrency, d.container_concurrency_max_limit
                ),
            ));
        }
        if errors.is_empty() {
            Ok(d)
        } else {
            Err(errors)
        }
    }
}

static SERVING_DEFAULTS: std::sync::RwLock<ServingDefaults> = std::sync::RwLock::new(ServingDefaults {
    revision_timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
    max_revision_timeout_seconds: MAX_TIMEOUT_SECONDS,
    container_concurrency: 0,
    container_concurrency_max_limit: MAX_CONTAINER_CONCURRENCY,
});

/// The `config-defaults` admission applies now.
pub fn serving_defaults() -> ServingDefaults {
    *SERVING_DEFAULTS.read().unwrap_or_else(|e| e.into_inner())
}

/// Sets what admission applies, as the store calls it when `knative-serving/config-defaults`
/// is written or deleted (like the webhook's watch of its ConfigMap).
pub fn set_serving_defaults(defaults: ServingDefaults) {
    *SERVING_DEFAULTS.write().unwrap_or_else(|e| e.into_inner()) = defaults;
}

/// Name given to the only (or each, numbered) container without one.
pub const DEFAULT_CONTAINER_NAME: &str = "user-container";
/// Name given to init containers without one.
pub const DEFAULT_INIT_CONTAINER_NAME: &str = "init-container";

const ROLLOUT_DURATION: &str = "serving.knative.dev/rollout-duration";
const PROGRESS_DEADLINE: &str = "serving.knative.dev/progress-deadline";

/// The desired state of a Revision (REV-02): the pod fields Knative allows plus
/// concurrency and timeouts.
//
// Knative's RevisionSpec embeds `corev1.PodSpec`; here its fields are listed one by one with
// their `k8s-openapi` types, so that decoding errors keep their paths. `crate::pod` holds the
// field mask and the checks. Fields of Kubernetes types have a free-form CRD schema.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Revision",
    doc = "Revision: an immutable snapshot of code and configuration.",
    namespaced,
    status = "RevisionStatus",
    derive = "PartialEq",
    shortname = "rev",
    category = "all",
    category = "knative",
    category = "serving",
    printcolumn = r#"{"name":"Config Name","type":"string","jsonPath":".metadata.labels['serving\\.knative\\.dev/configuration']"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevisionSpec {
    /// The containers (Serving: exactly one of them declares the serving port).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub containers: Vec<Container>,
    /// Containers run to completion before the others start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub init_containers: Option<Vec<Container>>,
    /// Volumes the containers may mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub volumes: Option<Vec<Volume>>,
    /// Service account the pods run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Whether to mount the service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Secrets used to pull images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Whether service environment variables are injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<bool>,
    /// Pod-level security settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub security_context: Option<PodSecurityContext>,
    /// Node labels the pod must be scheduled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Scheduling affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub affinity: Option<Affinity>,
    /// Tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Topology spread constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Extra /etc/hosts entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub host_aliases: Option<Vec<HostAlias>>,
    /// Runtime class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// Priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// DNS policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// DNS configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub dns_config: Option<PodDNSConfig>,
    /// Share one process namespace between containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,
    /// Use the host's IPC namespace.
    #[serde(default, rename = "hostIPC", skip_serializing_if = "Option::is_none")]
    pub host_ipc: Option<bool>,
    /// Use the host's PID namespace.
    #[serde(default, rename = "hostPID", skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    /// Use the host's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Restart policy (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Grace period before a pod is killed (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Node to run on (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Host name of the pod (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Most requests one instance handles at once; 0 means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_concurrency: Option<i64>,
    /// Most seconds a request may take (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// Most seconds before the first response byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_start_timeout_seconds: Option<i64>,
    /// Most seconds a request may stay idle (no bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<i64>,
}

impl RevisionSpec {
    /// The pod part of the spec, as a Kubernetes PodSpec.
    pub fn pod_spec(&self) -> PodSpec {
        PodSpec {
            containers: self.containers.clone(),
            init_containers: self.init_containers.clone(),
            volumes: self.volumes.clone(),
            service_account_name: self.service_account_name.clone(),
            automount_service_account_token: self.automount_service_account_token,
            image_pull_secrets: self.image_pull_secrets.clone(),
            enable_service_links: self.enable_service_links,
            security_context: self.security_context.clone(),
            node_selector: self.node_selector.clone(),
            affinity: self.affinity.clone(),
            tolerations: self.tolerations.clone(),
            topology_spread_constraints: self.topology_spread_constraints.clone(),
            host_aliases: self.host_aliases.clone(),
            runtime_class_name: self.runtime_class_name.clone(),
            priority_class_name: self.priority_class_name.clone(),
            scheduler_name: self.scheduler_name.clone(),
            dns_policy: self.dns_policy.clone(),
            dns_config: self.dns_config.clone(),
            share_process_namespace: self.share_process_namespace,
            host_ipc: self.host_ipc,
            host_pid: self.host_pid,
            host_network: self.host_network,
            restart_policy: self.restart_policy.clone(),
            termination_grace_period_seconds: self.termination_grace_period_seconds,
            node_name: self.node_name.clone(),
            hostname: self.hostname.clone(),
            ..Default::default()
        }
    }
}

/// A Revision template: metadata (name, labels, annotations) and the Revision spec.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevisionTemplateSpec {
    /// The Revision's name (must start with `<parent>-`), labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::template_metadata")]
    pub metadata: Option<ObjectMeta>,
    /// The Revision's spec.
    #[serde(default)]
    pub spec: RevisionSpec,
}

/// One traffic target of a Route or Service (RTE-01).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficTarget {
    /// Names this target; reachable at `<tag>-<route>` (a DNS-1035 label, unique).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A pinned Revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// The latest ready Revision of this Configuration (Route only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_name: Option<String>,
    /// Follow the latest ready Revision; must be true exactly when `revisionName` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    /// Share of traffic, 0..100; the targets must sum to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Status only: the tag's URL.
    #[serde(default, rename = "url", skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl TrafficTarget {
    fn set_defaults(&mut self) {
        if self.latest_revision.is_none() {
            self.latest_revision = Some(self.revision_name.as_deref().unwrap_or("").is_empty());
        }
        if self.percent.is_none() {
            self.percent = Some(0);
        }
    }
}

/// The desired state of a Service (SVC-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Service",
    doc = "Knative Service: a Configuration and a Route with the same name.",
    namespaced,
    status = "ServiceStatus",
    derive = "PartialEq",
    shortname = "kservice",
    shortname = "ksvc",
    category = "all",
    category = "knative",
    category = "serving",
    label("duck.knative.dev/addressable", "true"),
    label("duck.knative.dev/podspecable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"LatestCreated","type":"string","jsonPath":".status.latestCreatedRevisionName"}"#,
    printcolumn = r#"{"name":"LatestReady","type":"string","jsonPath":".status.latestReadyRevisionName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// Template of the Revisions to create.
    #[serde(default)]
    pub template: RevisionTemplateSpec,
    /// Traffic split (default: 100% to the latest ready Revision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

/// Status of a Service.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Conditions (`Ready`, `ConfigurationsReady`, `RoutesReady`), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// The public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The in-cluster address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// The traffic split in effect, with Revision names resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
    /// The latest Revision that became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision_name: Option<String>,
    /// The latest Revision created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision_name: Option<String>,
}

/// The desired state of a Configuration (CFG-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Configuration",
    doc = "Configuration: stamps out a Revision for each change of its template.",
    namespaced,
    status = "ConfigurationStatus",
    derive = "PartialEq",
    shortname = "config",
    shortname = "cfg",
    category = "all",
    category = "knative",
    category = "serving",
    label("duck.knative.dev/podspecable", "true"),
    printcolumn = r#"{"name":"LatestCreated","type":"string","jsonPath":".status.latestCreatedRevisionName"}"#,
    printcolumn = r#"{"name":"LatestReady","type":"string","jsonPath":".status.latestReadyRevisionName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigurationSpec {
    /// Template of the Revisions to create.
    #[serde(default)]
    pub template: RevisionTemplateSpec,
}

/// Status of a Configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStatus {
    /// Conditions (`Ready`), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// The latest Revision that became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision_name: Option<String>,
    /// The latest Revision created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision_name: Option<String>,
}

/// The image digest resolved for one container (`status.containerStatuses[]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Container name.
    #[serde(default)]
    pub name: String,
    /// Resolved image digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

/// Status of a Revision.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// Conditions (`Ready`, `ResourcesAvailable`, `ContainerHealthy`, `Active`), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// Where the Revision's logs are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    /// Resolved images of the containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
    /// Resolved images of the init containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    /// Instances running and ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_replicas: Option<i32>,
    /// Instances the autoscaler wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
}

/// The desired state of a Route (RTE-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "serving.knative.dev",
    version = "v1",
    kind = "Route",
    doc = "Route: names a traffic split over Revisions.",
    namespaced,
    status = "RouteStatus",
    derive = "PartialEq",
    shortname = "rt",
    category = "all",
    category = "knative",
    category = "serving",
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    /// The traffic split; percents sum to 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

/// Status of a Route.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// Conditions (`Ready`, `AllTrafficAssigned`, `IngressReady`, `CertificateProvisioned`), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// The public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The in-cluster address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// The traffic split in effect, with Revision names resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

impl_has_conditions!(ServiceStatus, ConfigurationStatus, RevisionStatus, RouteStatus);

fn container_default_names(containers: &mut [Container], taken: &mut Vec<String>, base: &str) {
    let mut next = 0;
    let many = containers.len() > 1;
    for c in containers.iter_mut().filter(|c| c.name.is_empty()) {
        let mut name = base.to_string();
        if many || taken.contains(&name) {
            loop {
                name = format!("{base}-{next}");
                next += 1;
                if !taken.contains(&name) {
                    break;
                }
            }
        }
        taken.push(name.clone());
        c.name = name;
    }
}

impl RevisionSpec {
    /// Knative's Revision defaults: timeout 300 s, container concurrency 0, container names,
    /// a TCP readiness probe on the serving container, read-only mounts of read-only volumes.
    pub fn set_defaults(&mut self) {
        let defaults = serving_defaults();
        if self.timeout_seconds.unwrap_or(0) == 0 {
            self.timeout_seconds = Some(defaults.revision_timeout_seconds);
        }
        if self.container_concurrency.is_none() {
            self.container_concurrency = Some(defaults.container_concurrency);
        }
        let mut taken: Vec<String> = self
            .containers
            .iter()
            .chain(self.init_containers.iter().flatten())
            .map(|c| c.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        container_default_names(&mut self.containers, &mut taken, DEFAULT_CONTAINER_NAME);
        if let Some(init) = &mut self.init_containers {
            container_default_names(init, &mut taken, DEFAULT_INIT_CONTAINER_NAME);
        }
        let single = self.containers.len() == 1;
        let writable: Vec<String> = self
            .volumes
            .iter()
            .flatten()
            .filter(|v| is_writable(v))
            .map(|v| v.name.clone())
            .collect();
        for c in &mut self.containers {
            if single || c.ports.as_ref().is_some_and(|p| !p.is_empty()) {
                let probe = c.readiness_probe.get_or_insert_with(Probe::default);
                if probe.http_get.is_none() && probe.tcp_socket.is_none() && probe.exec.is_none() && probe.grpc.is_none() {
                    probe.tcp_socket = Some(TCPSocketAction {
                        port: IntOrString::Int(0),
                        host: None,
                    });
                }
            }
            if let Some(p) = &mut c.readiness_probe {
                if p.success_threshold.unwrap_or(0) == 0 {
                    p.success_threshold = Some(1);
                }
                if p.period_seconds.unwrap_or(0) != 0 {
                    if p.failure_threshold.unwrap_or(0) == 0 {
                        p.failure_threshold = Some(3);
                    }
                    if p.timeout_seconds.unwrap_or(0) == 0 {
                        p.timeout_seconds = Some(1);
                    }
                }
            }
            for probe in [&mut c.readiness_probe, &mut c.liveness_probe, &mut c.startup_probe]
                .into_iter()
                .flatten()
            {
                if let Some(g) = &mut probe.grpc {
                    g.service.get_or_insert_with(String::new);
                }
            }
            for m in c.volume_mounts.iter_mut().flatten() {
                if !writable.contains(&m.name) {
                    m.read_only = Some(true);
                }
            }
        }
        if self.enable_service_links.is_none() {
            self.enable_service_links = Some(false);
        }
    }

    /// Validates the pod, `timeoutSeconds` (0..600) and `containerConcurrency` (0..1000).
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = validate_serving_pod(&self.pod_spec(), path);
        if let Some(t) = self.timeout_seconds {
            let limits = serving_defaults();
            if t != 0 && !(0..=limits.max_revision_timeout_seconds).contains(&t) {
                errs.push(FieldError::new(
                    field(path, "timeoutSeconds"),
                    format!("expected 0 <= {t} <= {}", limits.max_revision_timeout_seconds),
                ));
            }
        }
        for (v, name) in [
            (self.response_start_timeout_seconds, "responseStartTimeoutSeconds"),
            (self.idle_timeout_seconds, "idleTimeoutSeconds"),
        ] {
            if let Some(v) = v {
                let max = self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS).max(MAX_TIMEOUT_SECONDS);
                if v != 0 && !(0..=max).contains(&v) {
                    errs.push(FieldError::new(field(path, name), format!("expected 0 <= {v} <= {max}")));
                }
            }
        }
        if let Some(cc) = self.container_concurrency {
            let max = serving_defaults().container_concurrency_max_limit;
            if !(0..=max).contains(&cc) {
                errs.push(FieldError::new(
                    field(path, "containerConcurrency"),
                    format!("expected 0 <= {cc} <= {max}"),
                ));
            }
        }
        errs
    }
}

fn validate_duration_annotation(annotations: Option<&BTreeMap<String, String>>, name: &str, path: &str) -> Vec<FieldError> {
    let Some(v) = annotations.and_then(|a| a.get(name)) else {
        return Vec::new();
    };
    let p = crate::key(path, name);
    let short = name.rsplit('/').next().unwrap_or(name);
    match autoscaling::parse_go_duration(v) {
        Err(_) => vec![FieldError::invalid(p, v)],
        Ok((_, true)) => vec![FieldError::new(p, format!("{short}={v} must be positive"))],
        Ok((d, false)) if d.subsec_nanos() != 0 => {
            vec![FieldError::new(p, format!("{short}={v} is not at second precision"))]
        }
        Ok(_) => Vec::new(),
    }
}

impl RevisionTemplateSpec {
    /// The template's name, if set.
    pub fn name(&self) -> Option<&str> {
        self.metadata.as_ref().and_then(|m| m.name.as_deref()).filter(|n| !n.is_empty())
    }

    /// The template's annotations.
    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.as_ref().and_then(|m| m.annotations.as_ref())
    }

    /// Validates the spec, the autoscaling annotations and the Revision name rule: a
    /// user-chosen name must start with `<parent>-` (REV-01).
    pub fn validate(&self, path: &str, parent: &str) -> Vec<FieldError> {
        let mut errs = self.spec.validate(&field(path, "spec"));
        let meta_path = field(path, "metadata");
        if let Some(m) = &self.metadata {
            errs.extend(validate_template_metadata(m, &meta_path));
            if let Some(gen) = m.generate_name.as_deref().filter(|g| !g.is_empty()) {
                if let Err(e) = crate::meta::check_dns1035_label(&format!("{gen}a")) {
                    errs.push(FieldError::new(
                        field(&meta_path, "generateName"),
                        format!("not a DNS 1035 label prefix: {e}"),
                    ));
                }
            }
        }
        let annotations_path = field(&meta_path, "annotations");
        if let Some(a) = self.annotations() {
            errs.extend(autoscaling::validate_annotations(a, &annotations_path));
        }
        errs.extend(validate_duration_annotation(
            self.annotations(),
            PROGRESS_DEADLINE,
            &annotations_path,
        ));
        if let Some(name) = self.name() {
            let name_path = field(&meta_path, "name");
            if let Err(e) = crate::meta::check_dns1035_label(name) {
                errs.push(FieldError::new(name_path, format!("not a DNS 1035 label: {e}")));
            } else if !name.starts_with(&format!("{parent}-")) {
                errs.push(FieldError::new(
                    name_path,
                    format!("invalid value: {name:?} must have prefix \"{parent}-\""),
                ));
            }
        }
        errs
    }

    /// A template that keeps its Revision name must not change otherwise (BYO names).
    fn validate_update(&self, old: &RevisionTemplateSpec, path: &str) -> Vec<FieldError> {
        match self.name() {
            Some(name) if old.name() == Some(name) && self != old => {
                vec![FieldError::new(
                    field(path, "metadata.name"),
                    "Saw the following changes without a name change (-old +new)",
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// Validates a traffic list (RTE-01). `in_service` forbids `configurationName` and allows a
/// target without a Revision (the Service's own Configuration).
pub fn validate_traffic(traffic: &[TrafficTarget], path: &str, in_service: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut tags: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sum = 0i64;
    for (i, t) in traffic.iter().enumerate() {
        let p = index(path, i);
        let revision = t.revision_name.as_deref().unwrap_or("");
        let configuration = t.configuration_name.as_deref().unwrap_or("");
        if let Some(latest) = t.latest_revision {
            if latest != revision.is_empty() {
                errs.push(FieldError::new(
                    field(&p, "latestRevision"),
                    format!("may not set revisionName {revision:?} when latestRevision is {latest}"),
                ));
            }
        }
        if in_service && !configuration.is_empty() {
            errs.push(FieldError::disallowed(field(&p, "configurationName")));
        } else if !revision.is_empty() && !configuration.is_empty() {
            errs.push(FieldError::new(
                p.clone(),
                "expected exactly one, got both: configurationName, revisionName",
            ));
        } else if !revision.is_empty() {
            if let Err(e) = crate::meta::check_qualified_name(revision) {
                errs.push(FieldError::new(
                    field(&p, "revisionName"),
                    format!("invalid key name {revision:?}: {e}"),
                ));
            }
        } else if !configuration.is_empty() {
            if let Err(e) = crate::meta::check_qualified_name(configuration) {
                errs.push(FieldError::new(
                    field(&p, "configurationName"),
                    format!("invalid key name {configuration:?}: {e}"),
                ));
            }
        } else if !in_service {
            errs.push(FieldError::new(
                p.clone(),
                "expected exactly one, got neither: configurationName, revisionName",
            ));
        }
        if let Some(pct) = t.percent {
            if !(0..=100).contains(&pct) {
                errs.push(FieldError::new(field(&p, "percent"), format!("expected 0 <= {pct} <= 100")));
            }
            sum += pct;
        }
        if t.url.is_some() {
            errs.push(FieldError::disallowed(field(&p, "url")));
        }
        if let Some(tag) = t.tag.as_deref().filter(|t| !t.is_empty()) {
            if let Err(e) = crate::meta::check_dns1035_label(tag) {
                errs.push(FieldError::new(
                    field(&p, "tag"),
                    format!("invalid value: not a DNS 1035 label: {e}"),
                ));
            }
            if let Some(first) = tags.insert(tag, i) {
                errs.push(FieldError::new(
                    field(&p, "tag"),
                    format!("multiple definitions for {tag:?} (also {path}[{first}].tag)"),
                ));
                tags.insert(tag, first);
            }
        }
    }
    if sum != 100 {
        errs.push(FieldError::new(path.to_string(), format!("traffic targets sum to {sum}, want 100")));
    }
    errs
}

fn validate_serving_meta(meta: &ObjectMeta, allow_autoscaling: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(meta, NameRule::Dns1035Label);
    if !allow_autoscaling {
        errs.extend(autoscaling::reject_on_parent(meta.annotations.as_ref(), "metadata.annotations"));
    }
    errs.extend(validate_duration_annotation(
        meta.annotations.as_ref(),
        ROLLOUT_DURATION,
        "metadata.annotations",
    ));
    errs
}

fn object_name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().or(meta.generate_name.as_deref()).unwrap_or("")
}

impl Admission for Service {
    fn set_defaults(&mut self) {
        self.spec.template.spec.set_defaults();
        if self.spec.traffic.is_empty() {
            self.spec.traffic = vec![TrafficTarget {
                percent: Some(100),
                latest_revision: Some(true),
                ..Default::default()
            }];
        }
        for t in &mut self.spec.traffic {
            t.set_defaults();
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_serving_meta(&self.metadata, false);
        errs.extend(self.spec.template.validate("spec.template", object_name(&self.metadata)));
        errs.extend(validate_traffic(&self.spec.traffic, "spec.traffic", true));
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        self.spec.template.validate_update(&old.spec.template, "spec.template")
    }
}

impl Admission for Configuration {
    fn set_defaults(&mut self) {
        self.spec.template.spec.set_defaults();
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_serving_meta(&self.metadata, false);
        errs.extend(self.spec.template.validate("spec.template", object_name(&self.metadata)));
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        self.spec.template.validate_update(&old.spec.template, "spec.template")
    }
}

impl Admission for Revision {
    fn set_defaults(&mut self) {
        self.spec.set_defaults();
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_serving_meta(&self.metadata, true);
        if let Some(a) = &self.metadata.annotations {
            errs.extend(autoscaling::validate_annotations(a, "metadata.annotations"));
        }
        errs.extend(self.spec.validate("spec"));
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        if self.spec != old.spec {
            vec![FieldError::immutable("spec")]
        } else {
            Vec::new()
        }
    }
}

impl Admission for Route {
    fn set_defaults(&mut self) {
        for t in &mut self.spec.traffic {
            t.set_defaults();
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_serving_meta(&self.metadata, false);
        errs.extend(validate_traffic(&self.spec.traffic, "spec.traffic", false));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_yaml::from_str(yaml).unwrap()
    }

    const HELLO: &str = r#"
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
"#;

    #[test]
    fn service_defaults() {
        let mut s = service(HELLO);
        s.set_defaults();
        assert_eq!(
            s.spec.traffic,
            vec![TrafficTarget {
                percent: Some(100),
                latest_revision: Some(true),
                ..Default::default()
            }]
        );
        let rev = &s.spec.template.spec;
        assert_eq!(rev.timeout_seconds, Some(300));
        assert_eq!(rev.container_concurrency, Some(0));
        assert_eq!(rev.containers[0].name, "user-container");
        assert!(rev.containers[0].readiness_probe.as_ref().unwrap().tcp_socket.is_some());
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn multi_container_names() {
        let mut spec = RevisionSpec {
            containers: vec![
                Container::default(),
                Container {
                    name: "user-container-0".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        spec.set_defaults();
        assert_eq!(spec.containers[0].name, "user-container-1");
    }

    #[test]
    fn traffic_rules() {
        let t = |rev: Option<&str>, latest: Option<bool>, pct: i64, tag: Option<&str>| TrafficTarget {
            revision_name: rev.map(Into::into),
            latest_revision: latest,
            percent: Some(pct),
            tag: tag.map(Into::into),
            ..Default::default()
        };
        assert!(validate_traffic(
            &[t(None, Some(true), 50, None), t(Some("hello-00001"), Some(false), 50, None)],
            "spec.traffic",
            true
        )
        .is_empty());
        let errs = validate_traffic(&[t(None, Some(true), 60, None)], "spec.traffic", true);
        assert_eq!(errs, vec![FieldError::new("spec.traffic", "traffic targets sum to 60, want 100")]);
        let errs = validate_traffic(&[t(Some("a-1"), Some(true), 100, None)], "spec.traffic", true);
        assert_eq!(errs[0].path, "spec.traffic[0].latestRevision");
        let errs = validate_traffic(
            &[t(None, Some(true), 50, Some("x")), t(None, Some(true), 50, Some("x"))],
            "spec.traffic",
            true,
        );
        assert_eq!(errs[0].path, "spec.traffic[1].tag");
        let errs = validate_traffic(&[t(None, Some(true), 100, Some("Bad_Tag"))], "spec.traffic", true);
        assert_eq!(errs[0].path, "spec.traffic[0].tag");
        let errs = validate_traffic(&[t(None, None, 100, None)], "spec.traffic", false);
        assert_eq!(
            errs[0].message,
            "expected exactly one, got neither: configurationName, revisionName"
        );
    }

    #[test]
    fn revision_name_prefix() {
        let mut s = service(HELLO);
        s.spec.template.metadata = Some(ObjectMeta {
            name: Some("other-rev1".into()),
            ..Default::default()
        });
        s.set_defaults();
        let errs = s.validate();
        assert_eq!(errs[0].path, "spec.template.metadata.name");
        assert!(errs[0].message.contains("must have prefix \"hello-\""));
    }

    #[test]
    fn missing_containers() {
        let mut s = service("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: a}\nspec: {}\n");
        s.set_defaults();
        assert_eq!(s.validate(), vec![FieldError::missing("spec.template.spec.containers")]);
    }

    #[test]
    fn autoscaling_annotations_belong_on_the_template() {
        let mut s = service(HELLO);
        s.metadata.annotations = Some([("autoscaling.knative.dev/min-scale".to_string(), "1".to_string())].into());
        s.set_defaults();
        assert_eq!(s.validate()[0].path, "metadata.annotations[autoscaling.knative.dev/min-scale]");
    }

    #[test]
    fn revisions_are_immutable() {
        let mut a = Revision::new(
            "r",
            RevisionSpec {
                containers: vec![Container {
                    image: Some("a".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        let old = a.clone();
        a.spec.timeout_seconds = Some(10);
        assert_eq!(a.validate_update(&old), vec![FieldError::immutable("spec")]);
    }

    #[test]
    fn config_defaults_is_read_with_knatives_keys() {
        let d = ServingDefaults::from_data([("revision-timeout-seconds", "45"), ("container-concurrency", "3"), ("unknown", "x")]).unwrap();
        assert_eq!((d.revision_timeout_seconds, d.container_concurrency), (45, 3));
        assert_eq!(d.max_revision_timeout_seconds, MAX_TIMEOUT_SECONDS);
        let errs = ServingDefaults::from_data([("container-concurrency", "-1"), ("revision-timeout-seconds", "900")]).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["data.container-concurrency", "data.revision-timeout-seconds"]);
    }
}
