//! The part of the Kubernetes PodSpec that Knative objects embed: containers, volumes and the
//! pod-level fields a Revision template or a ContainerSource may carry.
//!
//! The types decode strictly (an unknown field is an error). Which fields Knative Serving
//! accepts in a Revision is checked by [`validate_serving_pod`], mirroring Serving's field
//! masks (`pkg/apis/serving/fieldmask.go`) and `ValidatePodSpec`; fields behind Serving feature
//! flags that default to off (init containers, persistent volume claims, ...) are accepted,
//! since Sluice runs them itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{field, index, FieldError};

/// An integer or a string, e.g. a probe port (`8080` or `"http"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrString {
    /// A number.
    Int(i32),
    /// A name.
    String(String),
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => s.serialize_i32(*i),
            IntOrString::String(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IntOrString, E> {
                i32::try_from(v).map(IntOrString::Int).map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i32::try_from(v).map(IntOrString::Int).map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for IntOrString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IntOrString".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::schema::int_or_string(g)
    }
}

/// A resource quantity such as `500m`, `1Gi` or `2`; YAML numbers are accepted and kept as text.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(pub String);

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity (a string or a number)")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::schema::int_or_string(g)
    }
}

impl Quantity {
    /// Checks the Kubernetes quantity syntax: a signed decimal number followed by an optional
    /// binary (`Ki`…`Ei`) or decimal (`n`, `u`, `m`, `k`, `M`…`E`) suffix or an exponent.
    pub fn check(&self) -> Result<(), String> {
        let s = self.0.trim();
        let body = s.strip_prefix(['+', '-']).unwrap_or(s);
        let split = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
        let (number, suffix) = body.split_at(split);
        let digits = number.chars().filter(char::is_ascii_digit).count();
        if digits == 0 || number.matches('.').count() > 1 {
            return Err(format!("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got {s:?})"));
        }
        let known = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        if known.contains(&suffix) {
            return Ok(());
        }
        if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit()) {
                return Ok(());
            }
        }
        Err(format!("unable to parse quantity's suffix {suffix:?}"))
    }
}

/// A pod template: metadata and a [`PodSpec`] (ContainerSource `spec.template`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTemplateSpec {
    /// Labels and annotations of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// The pod specification.
    #[serde(default)]
    pub spec: PodSpec,
}

/// The metadata a template may carry (a subset of ObjectMeta).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateMetadata {
    /// Name (for Revision templates: the Revision's name, which must start with `<parent>-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prefix of a generated name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// Namespace (ignored; templates live in their parent's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations (for Revision templates: autoscaling and other per-revision settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl TemplateMetadata {
    /// The annotation `name`, if set.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.as_ref().and_then(|a| a.get(name)).map(String::as_str)
    }

    /// Checks label and annotation syntax.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = crate::meta::validate_labels(self.labels.as_ref(), &field(path, "labels"));
        errs.extend(crate::meta::validate_annotations(self.annotations.as_ref(), &field(path, "annotations")));
        errs
    }
}

/// Invokes `$callback!` with the field list of [`PodSpec`] (attributes, name and type of each
/// field), so that [`crate::serving::RevisionSpec`] can embed the same fields inline next to its
/// own, as Knative's `RevisionSpec` embeds `corev1.PodSpec`.
macro_rules! pod_spec_fields {
    ($callback:ident) => {
        $callback! {
            /// The containers (Serving: exactly one of them declares the serving port).
            #[serde(default)]
            containers: Vec<$crate::pod::Container>,
            /// Containers run to completion before the others start.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            init_containers: Vec<$crate::pod::Container>,
            /// Volumes the containers may mount.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            volumes: Vec<$crate::pod::Volume>,
            /// Service account the pods run as.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            service_account_name: Option<String>,
            /// Whether to mount the service account token.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            automount_service_account_token: Option<bool>,
            /// Secrets used to pull images.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            image_pull_secrets: Vec<$crate::pod::LocalObjectReference>,
            /// Whether service environment variables are injected.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            enable_service_links: Option<bool>,
            /// Pod-level security settings.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            security_context: Option<$crate::pod::PodSecurityContext>,
            /// Node labels the pod must be scheduled on.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            node_selector: Option<::std::collections::BTreeMap<String, String>>,
            /// Scheduling affinity (kept as given).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
            affinity: Option<::serde_json::Value>,
            /// Tolerations (kept as given).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
            tolerations: Option<::serde_json::Value>,
            /// Topology spread constraints (kept as given).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
            topology_spread_constraints: Option<::serde_json::Value>,
            /// Extra /etc/hosts entries (kept as given).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
            host_aliases: Option<::serde_json::Value>,
            /// Runtime class.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            runtime_class_name: Option<String>,
            /// Priority class.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            priority_class_name: Option<String>,
            /// Scheduler.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            scheduler_name: Option<String>,
            /// DNS policy.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            dns_policy: Option<String>,
            /// DNS configuration (kept as given).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
            dns_config: Option<::serde_json::Value>,
            /// Share one process namespace between containers.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            share_process_namespace: Option<bool>,
            /// Use the host's IPC namespace.
            #[serde(default, rename = "hostIPC", skip_serializing_if = "Option::is_none")]
            host_ipc: Option<bool>,
            /// Use the host's PID namespace.
            #[serde(default, rename = "hostPID", skip_serializing_if = "Option::is_none")]
            host_pid: Option<bool>,
            /// Use the host's network namespace.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            host_network: Option<bool>,
            /// Restart policy (not allowed in Revisions).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            restart_policy: Option<String>,
            /// Grace period before a pod is killed (not allowed in Revisions).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            termination_grace_period_seconds: Option<i64>,
            /// Node to run on (not allowed in Revisions).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            node_name: Option<String>,
            /// Host name of the pod (not allowed in Revisions).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            hostname: Option<String>,
        }
    };
}
pub(crate) use pod_spec_fields;

macro_rules! define_pod_spec {
    ($($(#[$m:meta])* $f:ident : $t:ty,)*) => {
        /// The pod-level fields of a Kubernetes PodSpec that Knative objects use.
        #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct PodSpec {
            $($(#[$m])* pub $f: $t,)*
        }
    };
}
pod_spec_fields!(define_pod_spec);

/// A reference to an object in the same namespace by name.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    /// Name of the referent.
    #[serde(default)]
    pub name: String,
}

/// One container.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// Container name (Serving defaults it to `user-container`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Image reference (kept as metadata in embedded mode).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Entrypoint; the image's when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Environment variables taken from ConfigMaps or Secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    /// Ports (Serving: at most one across all containers, the serving port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Resource requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Volume mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Liveness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Readiness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Startup probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Container security settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// Where the termination message is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message_path: Option<String>,
    /// `File` or `FallbackToLogsOnError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message_policy: Option<String>,
    /// Lifecycle hooks (kept as given; not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub lifecycle: Option<serde_json::Value>,
    /// Allocate a stdin buffer (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<bool>,
    /// Close stdin after the first attach (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_once: Option<bool>,
    /// Allocate a TTY (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
}

/// The port `PORT` is set to when no container declares one (RT-01).
pub const DEFAULT_SERVING_PORT: i32 = 8080;

impl Container {
    /// The port the container serves on: its first declared port, else
    /// [`DEFAULT_SERVING_PORT`] (RT-01).
    pub fn serving_port(&self) -> i32 {
        self.ports.first().map(|p| p.container_port).filter(|p| *p != 0).unwrap_or(DEFAULT_SERVING_PORT)
    }
}

/// An environment variable.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    #[serde(default)]
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value read from elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// Where an environment variable's value comes from.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVarSource {
    /// A key of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeySelector>,
    /// A key of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeySelector>,
    /// A field of the pod (Serving: behind `kubernetes.podspec-fieldref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<ObjectFieldSelector>,
    /// A resource of a container (Serving: behind `kubernetes.podspec-fieldref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldSelector>,
}

/// A key of a ConfigMap or Secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySelector {
    /// Name of the ConfigMap or Secret.
    #[serde(default)]
    pub name: String,
    /// The key.
    #[serde(default)]
    pub key: String,
    /// Whether a missing object or key is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A field of the pod, e.g. `metadata.name`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectFieldSelector {
    /// Version of the schema the path is written in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Path of the field.
    #[serde(default)]
    pub field_path: String,
}

/// A resource of a container, e.g. `limits.cpu`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceFieldSelector {
    /// Container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The resource.
    #[serde(default)]
    pub resource: String,
    /// Output unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisor: Option<Quantity>,
}

/// A ConfigMap or Secret whose keys all become environment variables.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFromSource {
    /// Prefix added to each key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<EnvSource>,
    /// The Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<EnvSource>,
}

/// A ConfigMap or Secret by name.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvSource {
    /// Name of the object.
    #[serde(default)]
    pub name: String,
    /// Whether a missing object is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A port a container listens on.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    /// The port number.
    #[serde(default)]
    pub container_port: i32,
    /// Port name; in Serving `http1` or `h2c` pins the protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Host port (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    /// Host IP (not allowed in Revisions).
    #[serde(default, rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// Resource requests and limits.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirements {
    /// Maximum amounts, e.g. `cpu: "1"`, `memory: 512Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::quantity_map")]
    pub limits: Option<BTreeMap<String, Quantity>>,
    /// Guaranteed amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::quantity_map")]
    pub requests: Option<BTreeMap<String, Quantity>>,
}

/// A volume mount.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    /// Name of the volume.
    #[serde(default)]
    pub name: String,
    /// Where to mount it.
    #[serde(default)]
    pub mount_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Path within the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// Mount propagation mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_propagation: Option<String>,
}

/// A probe: one handler plus timing.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    /// HTTP GET handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// TCP connect handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// Command handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// gRPC health check handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcAction>,
    /// Seconds before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds before a probe times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Seconds between probes (Serving: 0 means aggressive probing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Consecutive successes to be considered healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    /// Consecutive failures to be considered unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    /// Grace period when the probe fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

impl Probe {
    fn handlers(&self) -> Vec<&'static str> {
        let mut h = Vec::new();
        if self.http_get.is_some() {
            h.push("httpGet");
        }
        if self.tcp_socket.is_some() {
            h.push("tcpSocket");
        }
        if self.exec.is_some() {
            h.push("exec");
        }
        if self.grpc.is_some() {
            h.push("grpc");
        }
        h
    }
}

/// An HTTP GET probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    /// Request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port; in Serving empty or the serving port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP` or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// A request header of an HTTP probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// Header name.
    #[serde(default)]
    pub name: String,
    /// Header value.
    #[serde(default)]
    pub value: String,
}

/// A TCP connect probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    /// Port; in Serving empty or the serving port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// Host to connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A command probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    /// Command line; exit status 0 is healthy.
    #[serde(default)]
    pub command: Vec<String>,
}

/// A gRPC health-check probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcAction {
    /// Port.
    #[serde(default)]
    pub port: i32,
    /// Service name for the health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// Container security settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    /// Capabilities to add and drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Mount the root filesystem read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// User id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Refuse to run as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Allow gaining privileges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
    /// Seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
    /// Privileged mode (Serving: only `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// /proc mount type (not allowed in Revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_mount: Option<String>,
    /// SELinux options (kept as given; not allowed in Revisions).
    #[serde(default, rename = "seLinuxOptions", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub se_linux_options: Option<serde_json::Value>,
}

/// Linux capabilities.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    /// Capabilities to add (Serving: only `NET_BIND_SERVICE` by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Capabilities to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// A seccomp profile.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompProfile {
    /// `RuntimeDefault`, `Unconfined` or `Localhost`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// Profile file for `Localhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

/// Pod-level security settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurityContext {
    /// User id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Refuse to run as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Group owning mounted volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,
    /// Extra groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supplemental_groups: Vec<i64>,
    /// Seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
}

/// A volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// Volume name (a DNS-1123 label), referenced by volume mounts.
    #[serde(default)]
    pub name: String,
    /// The contents of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    /// The contents of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    /// Several sources in one directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<ProjectedVolumeSource>,
    /// A scratch directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    /// A PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    /// A directory of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    /// A CSI volume (kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub csi: Option<serde_json::Value>,
    /// A generic ephemeral volume (kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub ephemeral: Option<serde_json::Value>,
    /// An OCI image mounted as a volume (kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub image: Option<serde_json::Value>,
}

impl Volume {
    fn sources(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        for (set, name) in [
            (self.secret.is_some(), "secret"),
            (self.config_map.is_some(), "configMap"),
            (self.projected.is_some(), "projected"),
            (self.empty_dir.is_some(), "emptyDir"),
            (self.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
            (self.host_path.is_some(), "hostPath"),
            (self.csi.is_some(), "csi"),
            (self.ephemeral.is_some(), "ephemeral"),
            (self.image.is_some(), "image"),
        ] {
            if set {
                s.push(name);
            }
        }
        s
    }

    /// True when containers may write to the volume (emptyDir, PVC, ephemeral).
    pub fn is_writable(&self) -> bool {
        self.empty_dir.is_some() || self.persistent_volume_claim.is_some() || self.ephemeral.is_some()
    }
}

/// The contents of a Secret as files.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretVolumeSource {
    /// Name of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Which keys to project, and where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// File mode bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    /// Whether a missing Secret is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// The contents of a ConfigMap as files.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapVolumeSource {
    /// Name of the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which keys to project, and where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// File mode bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    /// Whether a missing ConfigMap is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// One key projected to a file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyToPath {
    /// The key.
    #[serde(default)]
    pub key: String,
    /// Relative file path.
    #[serde(default)]
    pub path: String,
    /// File mode bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
}

/// Several sources projected into one directory.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectedVolumeSource {
    /// The sources.
    #[serde(default)]
    pub sources: Vec<VolumeProjection>,
    /// File mode bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
}

/// One source of a projected volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeProjection {
    /// Keys of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectProjection>,
    /// Keys of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ObjectProjection>,
    /// A service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_token: Option<ServiceAccountTokenProjection>,
    /// Pod fields (kept as given).
    #[serde(default, rename = "downwardAPI", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub downward_api: Option<serde_json::Value>,
}

/// The keys of a Secret or ConfigMap in a projected volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectProjection {
    /// Name of the object.
    #[serde(default)]
    pub name: String,
    /// Which keys, and where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// Whether a missing object is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A service account token in a projected volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountTokenProjection {
    /// Intended audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Requested lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
    /// File path.
    #[serde(default)]
    pub path: String,
}

/// A scratch directory.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDirVolumeSource {
    /// `""` (disk) or `Memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// Size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Quantity>,
}

/// A PersistentVolumeClaim.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentVolumeClaimVolumeSource {
    /// Claim name.
    #[serde(default)]
    pub claim_name: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A host directory.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathVolumeSource {
    /// Host path.
    #[serde(default)]
    pub path: String,
    /// Path type check.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// Environment variables Serving reserves for itself (RT-01).
pub const RESERVED_ENV_VARS: &[&str] = &["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"];

/// Ports the queue-proxy and the activator use (QP-01); user containers may not listen on them.
pub const RESERVED_PORTS: &[i32] = &[8012, 8013, 8022, 9090, 9091, 8008];

/// Validates a Revision's pod as Knative Serving does: at least one container, exactly one
/// serving port across containers when there are several, allowed fields only, images,
/// probes on the serving port, env names, volumes that are mounted and mounts that exist.
pub fn validate_serving_pod(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (set, name) in [
        (spec.restart_policy.is_some(), "restartPolicy"),
        (spec.termination_grace_period_seconds.is_some(), "terminationGracePeriodSeconds"),
        (spec.node_name.is_some(), "nodeName"),
        (spec.hostname.is_some(), "hostname"),
        (spec.automount_service_account_token == Some(true), "automountServiceAccountToken"),
    ] {
        if set {
            errs.push(FieldError::disallowed(field(path, name)));
        }
    }
    if let Some(sc) = &spec.security_context {
        let p = field(path, "securityContext");
        errs.extend(check_ids(sc.run_as_user, sc.run_as_group, &p));
    }
    let mounted: BTreeSet<&str> =
        spec.containers.iter().chain(&spec.init_containers).flat_map(|c| c.volume_mounts.iter().map(|m| m.name.as_str())).collect();
    let mut volumes = BTreeMap::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let p = index(&field(path, "volumes"), i);
        if volumes.insert(v.name.as_str(), v).is_some() {
            errs.push(FieldError::new(field(&p, "name"), format!("duplicate volume name {:?}", v.name)));
        }
        if !mounted.contains(v.name.as_str()) {
            errs.push(FieldError::new(field(&p, "name"), format!("volume with name {:?} not mounted", v.name)));
        }
        errs.extend(validate_volume(v, &p));
    }
    let ports: usize = spec.containers.iter().map(|c| c.ports.len()).sum();
    if ports > 1 {
        errs.push(FieldError::new(
            field(path, "containers[*].ports"),
            "more than one container port is set: only a single port is allowed across all containers",
        ));
    }
    let containers = field(path, "containers");
    match spec.containers.len() {
        0 => errs.push(FieldError::missing(containers.clone())),
        1 => errs.extend(validate_container(&spec.containers[0], &index(&containers, 0), ContainerRole::User, &volumes)),
        _ => {
            if ports == 0 {
                errs.push(FieldError::missing(field(path, "containers[*].ports")));
            }
            let mut names = BTreeSet::new();
            for (i, c) in spec.containers.iter().enumerate() {
                let p = index(&containers, i);
                if !names.insert(c.name.as_str()) {
                    errs.push(FieldError::new(field(&p, "name"), format!("duplicate container name {:?}", c.name)));
                }
                let role = if c.ports.is_empty() { ContainerRole::Sidecar } else { ContainerRole::User };
                errs.extend(validate_container(c, &p, role, &volumes));
            }
        }
    }
    let all: BTreeSet<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in spec.init_containers.iter().enumerate() {
        let p = index(&field(path, "initContainers"), i);
        if all.contains(c.name.as_str()) && !c.name.is_empty() {
            errs.push(FieldError::new(field(&p, "name"), format!("duplicate container name {:?}", c.name)));
        }
        errs.extend(validate_container(c, &p, ContainerRole::Init, &volumes));
    }
    if let Some(sa) = &spec.service_account_name {
        if let Err(e) = crate::meta::check_dns1123_subdomain(sa) {
            errs.push(FieldError::new(field(path, "serviceAccountName"), format!("invalid value {sa:?}: {e}")));
        }
    }
    errs
}

/// Validates a ContainerSource's pod: at least one container, each with a name and an image.
pub fn validate_source_pod(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let containers = field(path, "containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::missing(containers.clone()));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let p = index(&containers, i);
        if c.name.is_empty() {
            errs.push(FieldError::missing(field(&p, "name")));
        }
        if c.image.is_empty() {
            errs.push(FieldError::missing(field(&p, "image")));
        }
        errs.extend(validate_env(&c.env, &field(&p, "env"), &[]));
    }
    errs
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ContainerRole {
    User,
    Sidecar,
    Init,
}

fn check_ids(user: Option<i64>, group: Option<i64>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (v, name) in [(user, "runAsUser"), (group, "runAsGroup")] {
        if let Some(v) = v {
            if !(0..=i64::from(i32::MAX)).contains(&v) {
                errs.push(FieldError::new(field(path, name), format!("expected 0 <= {v} <= {}", i32::MAX)));
            }
        }
    }
    errs
}

fn validate_volume(v: &Volume, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if v.name.is_empty() {
        errs.push(FieldError::missing(field(path, "name")));
    } else if crate::meta::check_dns1123_label(&v.name).is_err() {
        errs.push(FieldError::invalid(field(path, "name"), &v.name));
    }
    match v.sources().as_slice() {
        [] => errs.push(FieldError::new(
            path.to_string(),
            "expected exactly one, got neither: configMap, emptyDir, persistentVolumeClaim, projected, secret",
        )),
        [_] => {}
        many => errs.push(FieldError::new(path.to_string(), format!("expected exactly one, got both: {}", many.join(", ")))),
    }
    let items = |items: &[KeyToPath], p: &str| -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = index(&field(p, "items"), i);
            if item.key.is_empty() {
                errs.push(FieldError::missing(field(&ip, "key")));
            }
            if item.path.is_empty() {
                errs.push(FieldError::missing(field(&ip, "path")));
            }
        }
        errs
    };
    if let Some(s) = &v.secret {
        errs.extend(items(&s.items, &field(path, "secret")));
    }
    if let Some(c) = &v.config_map {
        errs.extend(items(&c.items, &field(path, "configMap")));
    }
    if let Some(p) = &v.projected {
        for (i, src) in p.sources.iter().enumerate() {
            let sp = index(&field(path, "projected.sources"), i);
            let mut set = Vec::new();
            if let Some(s) = &src.secret {
                set.push("secret");
                if s.name.is_empty() {
                    errs.push(FieldError::missing(field(&sp, "secret.name")));
                }
                errs.extend(items(&s.items, &field(&sp, "secret")));
            }
            if let Some(c) = &src.config_map {
                set.push("configMap");
                if c.name.is_empty() {
                    errs.push(FieldError::missing(field(&sp, "configMap.name")));
                }
                errs.extend(items(&c.items, &field(&sp, "configMap")));
            }
            if let Some(t) = &src.service_account_token {
                set.push("serviceAccountToken");
                if t.path.is_empty() {
                    errs.push(FieldError::missing(field(&sp, "serviceAccountToken.path")));
                }
            }
            if src.downward_api.is_some() {
                set.push("downwardAPI");
            }
            match set.len() {
                0 => {
                    errs.push(FieldError::new(sp, "expected exactly one, got neither: configMap, downwardAPI, secret, serviceAccountToken"))
                }
                1 => {}
                _ => errs.push(FieldError::new(sp, format!("expected exactly one, got both: {}", set.join(", ")))),
            }
        }
    }
    if let Some(e) = &v.empty_dir {
        if let Some(m) = &e.medium {
            if !m.is_empty() && m != "Memory" {
                errs.push(FieldError::invalid(field(path, "emptyDir.medium"), m));
            }
        }
        if let Some(q) = &e.size_limit {
            if let Err(msg) = q.check() {
                errs.push(FieldError::new(field(path, "emptyDir.sizeLimit"), msg));
            }
        }
    }
    if let Some(pvc) = &v.persistent_volume_claim {
        if pvc.claim_name.is_empty() {
            errs.push(FieldError::missing(field(path, "persistentVolumeClaim.claimName")));
        }
    }
    errs
}

fn validate_env(env: &[EnvVar], path: &str, reserved: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in env.iter().enumerate() {
        let p = index(path, i);
        if e.name.is_empty() {
            errs.push(FieldError::missing(field(&p, "name")));
        } else if reserved.contains(&e.name.as_str()) {
            errs.push(FieldError::new(field(&p, "name"), format!("{:?} is a reserved environment variable", e.name)));
        }
        if let Some(from) = &e.value_from {
            let fp = field(&p, "valueFrom");
            let set = [
                from.config_map_key_ref.is_some(),
                from.secret_key_ref.is_some(),
                from.field_ref.is_some(),
                from.resource_field_ref.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if set != 1 {
                errs.push(FieldError::new(
                    fp.clone(),
                    "expected exactly one of: configMapKeyRef, fieldRef, resourceFieldRef, secretKeyRef",
                ));
            }
            if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::new(fp.clone(), "may not be specified when `value` is not empty"));
            }
            for (sel, name) in [(&from.config_map_key_ref, "configMapKeyRef"), (&from.secret_key_ref, "secretKeyRef")] {
                if let Some(sel) = sel {
                    if sel.key.is_empty() {
                        errs.push(FieldError::missing(field(&field(&fp, name), "key")));
                    }
                }
            }
        }
    }
    errs
}

fn validate_probe(probe: &Probe, path: &str, role: ContainerRole, port_name: &str, readiness: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match probe.handlers().as_slice() {
        [] => errs.push(FieldError::new(path.to_string(), "expected exactly one, got neither: exec, grpc, httpGet, tcpSocket")),
        [_] => {}
        many => errs.push(FieldError::new(path.to_string(), format!("expected exactly one, got both: {}", many.join(", ")))),
    }
    let check_port = |port: &Option<IntOrString>, name: &str, errs: &mut Vec<FieldError>| {
        let p = field(path, name);
        match (role, port) {
            (ContainerRole::User, Some(IntOrString::String(s))) if !s.is_empty() && s != port_name => {
                errs.push(FieldError::new(p, format!("invalid value {s:?}: probe port must match container port")))
            }
            (ContainerRole::Sidecar, None | Some(IntOrString::Int(0))) => errs.push(FieldError::new(p, "probe port must be specified")),
            (ContainerRole::Sidecar, Some(IntOrString::String(s))) if s.is_empty() => {
                errs.push(FieldError::new(p, "probe port must be specified"))
            }
            _ => {}
        }
    };
    if let Some(h) = &probe.http_get {
        check_port(&h.port, "httpGet.port", &mut errs);
    }
    if let Some(t) = &probe.tcp_socket {
        check_port(&t.port, "tcpSocket.port", &mut errs);
    }
    let bound = |v: Option<i32>, name: &str, min: i32, errs: &mut Vec<FieldError>| {
        let v = v.unwrap_or(0);
        if v < min {
            errs.push(FieldError::new(field(path, name), format!("expected {min} <= {v} <= {}", i32::MAX)));
        }
    };
    if readiness {
        bound(probe.period_seconds, "periodSeconds", 0, &mut errs);
        bound(probe.initial_delay_seconds, "initialDelaySeconds", 0, &mut errs);
        bound(probe.success_threshold.or(Some(1)), "successThreshold", 1, &mut errs);
        if probe.period_seconds.unwrap_or(0) == 0 {
            if probe.failure_threshold.unwrap_or(0) != 0 {
                errs.push(FieldError::new(field(path, "failureThreshold"), "failureThreshold is disallowed when periodSeconds is zero"));
            }
            if probe.timeout_seconds.unwrap_or(0) != 0 {
                errs.push(FieldError::new(field(path, "timeoutSeconds"), "timeoutSeconds is disallowed when periodSeconds is zero"));
            }
        } else {
            bound(probe.timeout_seconds.or(Some(1)), "timeoutSeconds", 1, &mut errs);
            bound(probe.failure_threshold.or(Some(3)), "failureThreshold", 1, &mut errs);
        }
    }
    errs
}

fn validate_container(c: &Container, path: &str, role: ContainerRole, volumes: &BTreeMap<&str, &Volume>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if c == &Container::default() {
        errs.push(FieldError::missing(path.to_string()));
        return errs;
    }
    for (set, name) in [
        (c.lifecycle.is_some(), "lifecycle"),
        (c.stdin.is_some(), "stdin"),
        (c.stdin_once.is_some(), "stdinOnce"),
        (c.tty.is_some(), "tty"),
    ] {
        if set {
            let msg = if role == ContainerRole::Init && name == "lifecycle" {
                "field not allowed in an init container"
            } else {
                "must not set the field(s)"
            };
            errs.push(FieldError::new(field(path, name), msg));
        }
    }
    if c.name == "queue-proxy" {
        errs.push(FieldError::new(field(path, "name"), "\"queue-proxy\" is a reserved container name"));
    }
    // Only presence is checked at admission: Knative resolves (and may fail to parse) the
    // image when it reconciles the revision, not in the webhook; see `check_image`.
    if c.image.is_empty() {
        errs.push(FieldError::missing(field(path, "image")));
    }
    let reserved: &[&str] = match role {
        ContainerRole::User => RESERVED_ENV_VARS,
        ContainerRole::Sidecar | ContainerRole::Init => &RESERVED_ENV_VARS[1..],
    };
    errs.extend(validate_env(&c.env, &field(path, "env"), reserved));
    for (i, ef) in c.env_from.iter().enumerate() {
        let p = index(&field(path, "envFrom"), i);
        match (&ef.config_map_ref, &ef.secret_ref) {
            (Some(_), Some(_)) => errs.push(FieldError::new(p, "expected exactly one, got both: configMapRef, secretRef")),
            (None, None) => errs.push(FieldError::new(p, "expected exactly one, got neither: configMapRef, secretRef")),
            _ => {}
        }
    }
    for (i, port) in c.ports.iter().enumerate() {
        let p = index(&field(path, "ports"), i);
        if role == ContainerRole::Init {
            continue;
        }
        if port.host_port.is_some() {
            errs.push(FieldError::disallowed(field(&p, "hostPort")));
        }
        if port.host_ip.is_some() {
            errs.push(FieldError::disallowed(field(&p, "hostIP")));
        }
        if RESERVED_PORTS.contains(&port.container_port) {
            errs.push(FieldError::new(field(&p, "containerPort"), format!("{} is a reserved port", port.container_port)));
        }
        if !(0..=65535).contains(&port.container_port) {
            errs.push(FieldError::new(field(&p, "containerPort"), format!("expected 0 <= {} <= 65535", port.container_port)));
        }
        if let Some(name) = &port.name {
            if !["", "h2c", "http1"].contains(&name.as_str()) {
                errs.push(FieldError::new(field(&p, "name"), format!("port name {name:?} must be empty, \"h2c\" or \"http1\"")));
            }
        }
        if let Some(proto) = &port.protocol {
            if !proto.is_empty() && proto != "TCP" {
                errs.push(FieldError::new(field(&p, "protocol"), format!("invalid value {proto:?}: only TCP is supported")));
            }
        }
    }
    if let Some(r) = &c.resources {
        for (map, name) in [(&r.limits, "limits"), (&r.requests, "requests")] {
            for (k, q) in map.iter().flatten() {
                if let Err(e) = q.check() {
                    errs.push(FieldError::new(crate::key(&field(&field(path, "resources"), name), k), e));
                }
            }
        }
    }
    if let Some(sc) = &c.security_context {
        let p = field(path, "securityContext");
        errs.extend(check_ids(sc.run_as_user, sc.run_as_group, &p));
        if sc.privileged == Some(true) {
            errs.push(FieldError::disallowed(field(&p, "privileged")));
        }
        if sc.proc_mount.is_some() {
            errs.push(FieldError::disallowed(field(&p, "procMount")));
        }
        if sc.se_linux_options.is_some() {
            errs.push(FieldError::disallowed(field(&p, "seLinuxOptions")));
        }
    }
    if let Some(policy) = &c.termination_message_policy {
        if !["", "File", "FallbackToLogsOnError"].contains(&policy.as_str()) {
            errs.push(FieldError::invalid(field(path, "terminationMessagePolicy"), policy));
        }
    }
    let mut seen_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let p = index(&field(path, "volumeMounts"), i);
        if !volumes.contains_key(m.name.as_str()) {
            errs.push(FieldError::new(field(&p, "name"), "volumeMount has no matching volume"));
        }
        let clean = clean_path(&m.mount_path);
        if m.mount_path.is_empty() {
            errs.push(FieldError::missing(field(&p, "mountPath")));
        } else if ["/", "/dev", "/dev/log"].contains(&clean.as_str()) {
            errs.push(FieldError::new(field(&p, "mountPath"), format!("mountPath {clean:?} is a reserved path")));
        } else if !m.mount_path.starts_with('/') {
            errs.push(FieldError::invalid(field(&p, "mountPath"), &m.mount_path));
        } else if seen_paths.contains(&clean) {
            errs.push(FieldError::new(field(&p, "mountPath"), format!("invalid value: {:?} must be unique", m.mount_path)));
        }
        seen_paths.insert(clean);
        if let Some(v) = volumes.get(m.name.as_str()) {
            if !v.is_writable() && m.read_only != Some(true) {
                errs.push(FieldError::new(field(&p, "readOnly"), "volume mount should be readOnly for this type of volume"));
            }
            if v.persistent_volume_claim.as_ref().is_some_and(|c| c.read_only == Some(true)) && m.read_only != Some(true) {
                errs.push(FieldError::new(field(&p, "readOnly"), "volume is readOnly but volume mount is not"));
            }
        }
        if let Some(mp) = &m.mount_propagation {
            if mp != "None" && mp != "HostToContainer" {
                errs.push(FieldError::new(field(&p, "mountPropagation"), "mount propagation should be set to None or HostToContainer"));
            }
        }
    }
    match role {
        ContainerRole::Init => {
            for (set, name) in [
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if set {
                    errs.push(FieldError::new(field(path, name), "field not allowed in an init container"));
                }
            }
        }
        ContainerRole::Sidecar | ContainerRole::User => {
            let port_name = c.ports.first().and_then(|p| p.name.as_deref()).filter(|n| !n.is_empty()).unwrap_or("http");
            for (probe, name, readiness) in [
                (&c.liveness_probe, "livenessProbe", false),
                (&c.readiness_probe, "readinessProbe", true),
                (&c.startup_probe, "startupProbe", false),
            ] {
                if let Some(probe) = probe {
                    errs.extend(validate_probe(probe, &field(path, name), role, port_name, readiness));
                }
            }
        }
    }
    errs
}

/// `path.Clean` for absolute paths: collapses `//`, `.` and `..`, drops a trailing `/`.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if p.starts_with('/') {
        format!("/{}", parts.join("/"))
    } else {
        parts.join("/")
    }
}

fn check_element(what: &str, element: &str, allowed: impl Fn(char) -> bool, min: usize, max: usize) -> Result<(), String> {
    if element.len() < min || element.len() > max {
        return Err(format!("{what} must be between {min} and {max} characters in length: {element}"));
    }
    if !element.chars().all(allowed) {
        return Err(format!("{what} contains invalid characters: {element}"));
    }
    Ok(())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let ok = !registry.contains(['/', '?', '#', '@', ' ']) && url::Url::parse(&format!("scheme://{registry}")).is_ok_and(|u| u.has_host());
    if ok || registry.ends_with(':') && !registry[..registry.len() - 1].contains(':') {
        Ok(())
    } else {
        Err(format!("registries must be valid RFC 3986 URI authorities: {registry}"))
    }
}

fn check_tagged(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split(':').collect();
    let mut base = name.to_string();
    if parts.len() > 1 && !parts[parts.len() - 1].contains('/') {
        let tag = parts[parts.len() - 1];
        base = parts[..parts.len() - 1].join(":");
        check_element("tag", tag, |c| c.is_ascii_alphanumeric() || "_-.".contains(c), 1, 127)?;
    }
    if base.is_empty() {
        return Err("a repository name must be specified".into());
    }
    let (registry, repo) = match base.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) => (Some(first), rest),
        _ => (None, base.as_str()),
    };
    check_element("repository", repo, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-./".contains(c), 2, 255)?;
    if let Some(r) = registry {
        check_registry(r)?;
    }
    Ok(())
}

/// Checks an image reference as Knative Serving's revision reconciler does when it resolves
/// the image (go-containerregistry's `name.ParseReference` with weak validation): `[registry/]repository[:tag]` or
/// `...@sha256:<hex>`; the repository is lower-case `[a-z0-9_./-]`.
pub fn check_image(image: &str) -> Result<(), String> {
    match check_tagged(image) {
        Ok(()) => Ok(()),
        Err(tag_err) => {
            let parts: Vec<&str> = image.split('@').collect();
            if parts.len() != 2 {
                return Err(tag_err);
            }
            check_element("digest", parts[1], |c| "sh:0123456789abcdef".contains(c), 71, 71)?;
            check_tagged(parts[0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str) -> Container {
        Container { image: image.into(), ..Default::default() }
    }

    #[test]
    fn images() {
        for ok in [
            "ghcr.io/knative/helloworld-go:latest",
            "nginx",
            "localhost:5000/a/b:v1",
            "ko://knative.dev/eventing/cmd/heartbeats",
            "github.com/knative/docs/code-samples/serving/knative-routing-go",
            "gcr.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_image(ok).is_ok(), "{ok}: {:?}", check_image(ok));
        }
        for bad in ["<your-image>", "docker.io/{username}/helloworld-go", "a b", "x:", "UPPER/case"] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        for ok in ["1", "500m", "1Gi", "0.5", "1e3", "+2", "128974848"] {
            assert!(Quantity(ok.into()).check().is_ok(), "{ok}");
        }
        for bad in ["", "1 Gi", "abc", "1GB"] {
            assert!(Quantity(bad.into()).check().is_err(), "{bad}");
        }
        let q: Quantity = serde_json::from_value(serde_json::json!(2)).unwrap();
        assert_eq!(q.0, "2");
    }

    #[test]
    fn serving_pod_rules() {
        let errs = validate_serving_pod(&PodSpec::default(), "spec");
        assert_eq!(errs, vec![FieldError::missing("spec.containers")]);

        let mut two = PodSpec { containers: vec![container("img"), container("img2")], ..Default::default() };
        two.containers[0].name = "a".into();
        two.containers[1].name = "b".into();
        let errs = validate_serving_pod(&two, "spec");
        assert!(errs.iter().any(|e| e.path == "spec.containers[*].ports"), "{errs:?}");

        let mut ports = PodSpec { containers: vec![container("img")], ..Default::default() };
        ports.containers[0].ports = vec![
            ContainerPort { container_port: 8080, ..Default::default() },
            ContainerPort { container_port: 9000, ..Default::default() },
        ];
        let errs = validate_serving_pod(&ports, "spec");
        assert!(errs.iter().any(|e| e.message.contains("more than one container port")), "{errs:?}");

        let mut env = PodSpec { containers: vec![container("img")], ..Default::default() };
        env.containers[0].env = vec![EnvVar { name: "PORT".into(), value: Some("1".into()), value_from: None }];
        let errs = validate_serving_pod(&env, "spec");
        assert_eq!(errs[0].path, "spec.containers[0].env[0].name");
    }

    #[test]
    fn probes_target_the_serving_port() {
        let mut pod = PodSpec { containers: vec![container("img")], ..Default::default() };
        pod.containers[0].ports = vec![ContainerPort { container_port: 5000, ..Default::default() }];
        pod.containers[0].readiness_probe = Some(Probe {
            tcp_socket: Some(TcpSocketAction { port: Some(IntOrString::String("metrics".into())), host: None }),
            ..Default::default()
        });
        let errs = validate_serving_pod(&pod, "spec");
        assert_eq!(errs[0].path, "spec.containers[0].readinessProbe.tcpSocket.port");
        pod.containers[0].readiness_probe = Some(Probe {
            tcp_socket: Some(TcpSocketAction { port: Some(IntOrString::String("http".into())), host: None }),
            ..Default::default()
        });
        assert!(validate_serving_pod(&pod, "spec").is_empty());
        pod.containers[0].readiness_probe =
            Some(Probe { http_get: Some(HttpGetAction { path: Some("/".into()), ..Default::default() }), ..Default::default() });
        assert!(validate_serving_pod(&pod, "spec").is_empty());
    }

    #[test]
    fn volumes_must_be_mounted_and_exist() {
        let mut pod = PodSpec { containers: vec![container("img")], ..Default::default() };
        pod.volumes = vec![Volume { name: "v".into(), empty_dir: Some(Default::default()), ..Default::default() }];
        let errs = validate_serving_pod(&pod, "spec");
        assert!(errs[0].message.contains("not mounted"));
        pod.containers[0].volume_mounts = vec![VolumeMount { name: "w".into(), mount_path: "/data".into(), ..Default::default() }];
        let errs = validate_serving_pod(&pod, "spec");
        assert!(errs.iter().any(|e| e.message == "volumeMount has no matching volume"), "{errs:?}");
    }
}
