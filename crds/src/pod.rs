//! Knative's rules for the Kubernetes pod parts that Knative objects embed (a Revision's
//! template, a ContainerSource's `spec.template`), over the `k8s-openapi` types
//! ([`PodSpec`], [`Container`], [`Probe`], [`Volume`], ...).
//!
//! Two layers:
//! - a **field mask** ([`check_embedded_fields`]), applied to the JSON before it is decoded:
//!   the fields Knative Serving accepts, mirroring its field masks
//!   (`pkg/apis/serving/fieldmask.go`). Any other field, a typo or a Kubernetes field Knative
//!   leaves out, is an `unknown field` error with its path, as from a strictly decoded type
//!   (the `k8s-openapi` types themselves skip unknown fields). Fields behind Serving feature
//!   flags that default to off (init containers, persistent volume claims, affinity, ...) are
//!   in the mask, since Sluice runs them itself. Sub-objects Sluice takes as Kubernetes
//!   defines them (affinity, tolerations, lifecycle, ...) are decoded into their `k8s-openapi`
//!   type, and a field that type does not know is refused rather than silently dropped;
//! - **validation** ([`validate_serving_pod`], [`validate_source_pod`]) over the decoded
//!   types: one serving port, reserved names and ports, fields Knative refuses in a Revision,
//!   probes, environment, volumes and mounts, each problem with its field path.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Affinity, CSIVolumeSource, Container, DownwardAPIProjection, EnvVar, EphemeralVolumeSource, HostAlias, ImageVolumeSource, KeyToPath,
    Lifecycle, PodDNSConfig, PodSpec, Probe, SELinuxOptions, Toleration, TopologySpreadConstraint, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::{field, index, FieldError};

// ---------------------------------------------------------------------------------------------
// Field mask
// ---------------------------------------------------------------------------------------------

/// The fields one (Kubernetes or Knative) object type may carry in a Knative object.
struct Mask {
    /// Fields of an embedded mask, accepted too and listed first (a RevisionSpec embeds the
    /// PodSpec fields).
    base: Option<&'static Mask>,
    /// Field names (as written in JSON) and what their values are checked against.
    fields: &'static [(&'static str, Child)],
}

/// How the value of a masked field is checked.
enum Child {
    /// A scalar, a list of scalars or a map of scalars: only the decoder's type check.
    Leaf,
    /// An object of the given mask.
    Object(&'static Mask),
    /// A list of objects of the given mask.
    List(&'static Mask),
    /// A Kubernetes type taken as a whole: the value is decoded into its `k8s-openapi` type
    /// and encoded again by the function, and fields lost on the way are unknown.
    Kept(fn(&Value) -> Option<Value>),
}

use Child::{Kept, Leaf, List, Object};

/// `value` decoded as `T` and encoded again, or `None` when it does not decode (the typed
/// decoding of the whole object reports that, with its path).
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(value.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

static REVISION_TEMPLATE: Mask = Mask {
    base: None,
    fields: &[("metadata", Object(&TEMPLATE_METADATA)), ("spec", Object(&REVISION_SPEC))],
};

static POD_TEMPLATE: Mask = Mask {
    base: None,
    fields: &[("metadata", Object(&TEMPLATE_METADATA)), ("spec", Object(&POD_SPEC))],
};

static TEMPLATE_METADATA: Mask = Mask {
    base: None,
    fields: &[
        ("name", Leaf),
        ("generateName", Leaf),
        ("namespace", Leaf),
        ("labels", Leaf),
        ("annotations", Leaf),
    ],
};

static REVISION_SPEC: Mask = Mask {
    base: Some(&POD_SPEC),
    fields: &[
        ("containerConcurrency", Leaf),
        ("timeoutSeconds", Leaf),
        ("responseStartTimeoutSeconds", Leaf),
        ("idleTimeoutSeconds", Leaf),
    ],
};

static POD_SPEC: Mask = Mask {
    base: None,
    fields: &[
        ("containers", List(&CONTAINER)),
        ("initContainers", List(&CONTAINER)),
        ("volumes", List(&VOLUME)),
        ("serviceAccountName", Leaf),
        ("automountServiceAccountToken", Leaf),
        ("imagePullSecrets", List(&LOCAL_OBJECT_REFERENCE)),
        ("enableServiceLinks", Leaf),
        ("securityContext", Object(&POD_SECURITY_CONTEXT)),
        ("nodeSelector", Leaf),
        ("affinity", Kept(round_trip::<Affinity>)),
        ("tolerations", Kept(round_trip::<Vec<Toleration>>)),
        ("topologySpreadConstraints", Kept(round_trip::<Vec<TopologySpreadConstraint>>)),
        ("hostAliases", Kept(round_trip::<Vec<HostAlias>>)),
        ("runtimeClassName", Leaf),
        ("priorityClassName", Leaf),
        ("schedulerName", Leaf),
        ("dnsPolicy", Leaf),
        ("dnsConfig", Kept(round_trip::<PodDNSConfig>)),
        ("shareProcessNamespace", Leaf),
        ("hostIPC", Leaf),
        ("hostPID", Leaf),
        ("hostNetwork", Leaf),
        // Decoded so that validation can refuse them in a Revision with a precise message.
        ("restartPolicy", Leaf),
        ("terminationGracePeriodSeconds", Leaf),
        ("nodeName", Leaf),
        ("hostname", Leaf),
    ],
};

static LOCAL_OBJECT_REFERENCE: Mask = Mask {
    base: None,
    fields: &[("name", Leaf)],
};

static CONTAINER: Mask = Mask {
    base: None,
    fields: &[
        ("name", Leaf),
        ("image", Leaf),
        ("command", Leaf),
        ("args", Leaf),
        ("workingDir", Leaf),
        ("env", List(&ENV_VAR)),
        ("envFrom", List(&ENV_FROM_SOURCE)),
        ("ports", List(&CONTAINER_PORT)),
        ("resources", Object(&RESOURCE_REQUIREMENTS)),
        ("volumeMounts", List(&VOLUME_MOUNT)),
        ("livenessProbe", Object(&PROBE)),
        ("readinessProbe", Object(&PROBE)),
        ("startupProbe", Object(&PROBE)),
        ("imagePullPolicy", Leaf),
        ("securityContext", Object(&SECURITY_CONTEXT)),
        ("terminationMessagePath", Leaf),
        ("terminationMessagePolicy", Leaf),
        // Decoded so that validation can refuse them in a Revision; ContainerSource keeps them.
        ("lifecycle", Kept(round_trip::<Lifecycle>)),
        ("stdin", Leaf),
        ("stdinOnce", Leaf),
        ("tty", Leaf),
    ],
};

static ENV_VAR: Mask = Mask {
    base: None,
    fields: &[("name", Leaf), ("value", Leaf), ("valueFrom", Object(&ENV_VAR_SOURCE))],
};

static ENV_VAR_SOURCE: Mask = Mask {
    base: None,
    fields: &[
        ("configMapKeyRef", Object(&KEY_SELECTOR)),
        ("secretKeyRef", Object(&KEY_SELECTOR)),
        ("fieldRef", Object(&OBJECT_FIELD_SELECTOR)),
        ("resourceFieldRef", Object(&RESOURCE_FIELD_SELECTOR)),
    ],
};

static KEY_SELECTOR: Mask = Mask {
    base: None,
    fields: &[("name", Leaf), ("key", Leaf), ("optional", Leaf)],
};

static OBJECT_FIELD_SELECTOR: Mask = Mask {
    base: None,
    fields: &[("apiVersion", Leaf), ("fieldPath", Leaf)],
};

static RESOURCE_FIELD_SELECTOR: Mask = Mask {
    base: None,
    fields: &[("containerName", Leaf), ("resource", Leaf), ("divisor", Leaf)],
};

static ENV_FROM_SOURCE: Mask = Mask {
    base: None,
    fields: &[
        ("prefix", Leaf),
        ("configMapRef", Object(&ENV_SOURCE)),
        ("secretRef", Object(&ENV_SOURCE)),
    ],
};

static ENV_SOURCE: Mask = Mask {
    base: None,
    fields: &[("name", Leaf), ("optional", Leaf)],
};

static CONTAINER_PORT: Mask = Mask {
    base: None,
    fields: &[
        ("containerPort", Leaf),
        ("name", Leaf),
        ("protocol", Leaf),
        ("hostPort", Leaf),
        ("hostIP", Leaf),
    ],
};

static RESOURCE_REQUIREMENTS: Mask = Mask {
    base: None,
    fields: &[("limits", Leaf), ("requests", Leaf)],
};

static VOLUME_MOUNT: Mask = Mask {
    base: None,
    fields: &[
        ("name", Leaf),
        ("mountPath", Leaf),
        ("readOnly", Leaf),
        ("subPath", Leaf),
        ("mountPropagation", Leaf),
    ],
};

static PROBE: Mask = Mask {
    base: None,
    fields: &[
        ("httpGet", Object(&HTTP_GET_ACTION)),
        ("tcpSocket", Object(&TCP_SOCKET_ACTION)),
        ("exec", Object(&EXEC_ACTION)),
        ("grpc", Object(&GRPC_ACTION)),
        ("initialDelaySeconds", Leaf),
        ("timeoutSeconds", Leaf),
        ("periodSeconds", Leaf),
        ("successThreshold", Leaf),
        ("failureThreshold", Leaf),
        ("terminationGracePeriodSeconds", Leaf),
    ],
};

static HTTP_GET_ACTION: Mask = Mask {
    base: None,
    fields: &[
        ("path", Leaf),
        ("port", Leaf),
        ("host", Leaf),
        ("scheme", Leaf),
        ("httpHeaders", List(&HTTP_HEADER)),
    ],
};

static HTTP_HEADER: Mask = Mask {
    base: None,
    fields: &[("name", Leaf), ("value", Leaf)],
};

static TCP_SOCKET_ACTION: Mask = Mask {
    base: None,
    fields: &[("port", Leaf), ("host", Leaf)],
};

static EXEC_ACTION: Mask = Mask {
    base: None,
    fields: &[("command", Leaf)],
};

static GRPC_ACTION: Mask = Mask {
    base: None,
    fields: &[("port", Leaf), ("service", Leaf)],
};

static SECURITY_CONTEXT: Mask = Mask {
    base: None,
    fields: &[
        ("capabilities", Object(&CAPABILITIES)),
        ("readOnlyRootFilesystem", Leaf),
        ("runAsUser", Leaf),
        ("runAsGroup", Leaf),
        ("runAsNonRoot", Leaf),
        ("allowPrivilegeEscalation", Leaf),
        ("seccompProfile", Object(&SECCOMP_PROFILE)),
        ("privileged", Leaf),
        // Decoded so that validation can refuse them in a Revision.
        ("procMount", Leaf),
        ("seLinuxOptions", Kept(round_trip::<SELinuxOptions>)),
    ],
};

static CAPABILITIES: Mask = Mask {
    base: None,
    fields: &[("add", Leaf), ("drop", Leaf)],
};

static SECCOMP_PROFILE: Mask = Mask {
    base: None,
    fields: &[("type", Leaf), ("localhostProfile", Leaf)],
};

static POD_SECURITY_CONTEXT: Mask = Mask {
    base: None,
    fields: &[
        ("runAsUser", Leaf),
        ("runAsGroup", Leaf),
        ("runAsNonRoot", Leaf),
        ("fsGroup", Leaf),
        ("supplementalGroups", Leaf),
        ("seccompProfile", Object(&SECCOMP_PROFILE)),
    ],
};

static VOLUME: Mask = Mask {
    base: None,
    fields: &[
        ("name", Leaf),
        ("secret", Object(&SECRET_VOLUME_SOURCE)),
        ("configMap", Object(&CONFIG_MAP_VOLUME_SOURCE)),
        ("projected", Object(&PROJECTED_VOLUME_SOURCE)),
        ("emptyDir", Object(&EMPTY_DIR_VOLUME_SOURCE)),
        ("persistentVolumeClaim", Object(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE)),
        ("hostPath", Object(&HOST_PATH_VOLUME_SOURCE)),
        ("csi", Kept(round_trip::<CSIVolumeSource>)),
        ("ephemeral", Kept(round_trip::<EphemeralVolumeSource>)),
        ("image", Kept(round_trip::<ImageVolumeSource>)),
    ],
};

static SECRET_VOLUME_SOURCE: Mask = Mask {
    base: None,
    fields: &[
        ("secretName", Leaf),
        ("items", List(&KEY_TO_PATH)),
        ("defaultMode", Leaf),
        ("optional", Leaf),
    ],
};

static CONFIG_MAP_VOLUME_SOURCE: Mask = Mask {
    base: None,
    fields: &[
        ("name", Leaf),
        ("items", List(&KEY_TO_PATH)),
        ("defaultMode", Leaf),
        ("optional", Leaf),
    ],
};

static KEY_TO_PATH: Mask = Mask {
    base: None,
    fields: &[("key", Leaf), ("path", Leaf), ("mode", Leaf)],
};

static PROJECTED_VOLUME_SOURCE: Mask = Mask {
    base: None,
    fields: &[("sources", List(&VOLUME_PROJECTION)), ("defaultMode", Leaf)],
};

static VOLUME_PROJECTION: Mask = Mask {
    base: None,
    fields: &[
        ("secret", Object(&OBJECT_PROJECTION)),
        ("configMap", Object(&OBJECT_PROJECTION)),
        ("serviceAccountToken", Object(&SERVICE_ACCOUNT_TOKEN_PROJECTION)),
        ("downwardAPI", Kept(round_trip::<DownwardAPIProjection>)),
    ],
};

static OBJECT_PROJECTION: Mask = Mask {
    base: None,
    fields: &[("name", Leaf), ("items", List(&KEY_TO_PATH)), ("optional", Leaf)],
};

static SERVICE_ACCOUNT_TOKEN_PROJECTION: Mask = Mask {
    base: None,
    fields: &[("audience", Leaf), ("expirationSeconds", Leaf), ("path", Leaf)],
};

static EMPTY_DIR_VOLUME_SOURCE: Mask = Mask {
    base: None,
    fields: &[("medium", Leaf), ("sizeLimit", Leaf)],
};

static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Mask = Mask {
    base: None,
    fields: &[("claimName", Leaf), ("readOnly", Leaf)],
};

static HOST_PATH_VOLUME_SOURCE: Mask = Mask {
    base: None,
    fields: &[("path", Leaf), ("type", Leaf)],
};

/// Where Kubernetes pod parts sit in the kinds that embed them: `(apiVersion, kind, JSON
/// pointer, mask)`.
static EMBEDDED: &[(&str, &str, &str, &Mask)] = &[
    ("serving.knative.dev/v1", "Service", "/spec/template", &REVISION_TEMPLATE),
    ("serving.knative.dev/v1", "Configuration", "/spec/template", &REVISION_TEMPLATE),
    ("serving.knative.dev/v1", "Revision", "/spec", &REVISION_SPEC),
    ("sources.knative.dev/v1", "ContainerSource", "/spec/template", &POD_TEMPLATE),
    (
        "sources.knative.dev/v1alpha1",
        "RabbitmqSource",
        "/spec/rabbitmqClusterReference/connectionSecret",
        &LOCAL_OBJECT_REFERENCE,
    ),
];

/// Checks the Kubernetes parts embedded in an object of kind `kind` against Knative's field
/// mask, before the object is decoded: every field outside the mask is an `unknown field`
/// error with its path (e.g. `spec.template.spec.containers[0].resizePolicy`) and is removed
/// from `object`, so that decoding can go on and report the other problems.
pub(crate) fn check_embedded_fields(api_version: &str, kind: &str, object: &mut Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (api, k, pointer, mask) in EMBEDDED {
        if *api == api_version && *k == kind {
            if let Some(value) = object.pointer_mut(pointer) {
                check_object(value, mask, &pointer[1..].replace('/', "."), &mut errs);
            }
        }
    }
    errs
}

/// The field names of `mask` (its base's first), in order.
fn mask_fields(mask: &Mask) -> impl Iterator<Item = &'static (&'static str, Child)> {
    mask.base.into_iter().flat_map(|b| b.fields.iter()).chain(mask.fields.iter())
}

/// serde's wording for an unknown field: ``unknown field `x`, expected one of `a`, `b` ``.
fn unknown_field_message(name: &str, mask: &Mask) -> String {
    let expected: Vec<String> = mask_fields(mask).map(|(f, _)| format!("`{f}`")).collect();
    match expected.as_slice() {
        [] => format!("unknown field `{name}`, there are no fields"),
        [one] => format!("unknown field `{name}`, expected {one}"),
        [a, b] => format!("unknown field `{name}`, expected {a} or {b}"),
        many => format!("unknown field `{name}`, expected one of {}", many.join(", ")),
    }
}

/// Applies `mask` to `value` at `path` (anything but an object is left to the decoder). Fields
/// are visited in the object's order, so errors come in the order a decoder would find them.
fn check_object(value: &mut Value, mask: &Mask, path: &str, errs: &mut Vec<FieldError>) {
    let Some(map) = value.as_object_mut() else { return };
    let names: Vec<String> = map.keys().cloned().collect();
    for name in names {
        let p = field(path, &name);
        let Some((_, child)) = mask_fields(mask).find(|(f, _)| *f == name) else {
            errs.push(FieldError::new(p, unknown_field_message(&name, mask)));
            map.remove(&name);
            continue;
        };
        let v = map.get_mut(&name).expect("a key of this map");
        match child {
            Leaf => {}
            Object(m) => check_object(v, m, &p, errs),
            List(m) => {
                for (i, item) in v.as_array_mut().into_iter().flatten().enumerate() {
                    check_object(item, m, &index(&p, i), errs);
                }
            }
            Kept(decode) => {
                if let Some(decoded) = decode(v) {
                    remove_lost_fields(v, &decoded, &p, errs);
                }
            }
        }
    }
}

/// Reports (and removes) every field of `given` that is missing from `decoded`, the same
/// value after a trip through its `k8s-openapi` type.
pub(crate) fn remove_lost_fields(given: &mut Value, decoded: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match (given, decoded) {
        (Value::Object(g), Value::Object(d)) => {
            let lost: Vec<String> = g.keys().filter(|k| !d.contains_key(*k)).cloned().collect();
            for name in lost {
                errs.push(FieldError::new(field(path, &name), format!("unknown field `{name}`")));
                g.remove(&name);
            }
            for (name, v) in g.iter_mut() {
                remove_lost_fields(v, &d[name], &field(path, name), errs);
            }
        }
        (Value::Array(g), Value::Array(d)) => {
            for (i, (gv, dv)) in g.iter_mut().zip(d).enumerate() {
                remove_lost_fields(gv, dv, &index(path, i), errs);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Environment variables Serving reserves for itself (RT-01).
pub const RESERVED_ENV_VARS: &[&str] = &["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"];

/// Ports the queue-proxy and the activator use (QP-01); user containers may not listen on them.
pub const RESERVED_PORTS: &[i32] = &[8012, 8013, 8022, 9090, 9091, 8008];

/// The items of an optional list (`k8s-openapi` keeps absent lists as `None`).
fn list<T>(items: &Option<Vec<T>>) -> &[T] {
    items.as_deref().unwrap_or(&[])
}

/// True when containers may write to the volume (emptyDir, PVC, ephemeral).
pub fn is_writable(v: &Volume) -> bool {
    v.empty_dir.is_some() || v.persistent_volume_claim.is_some() || v.ephemeral.is_some()
}

/// The volume sources set on `v`, among those the field mask allows.
fn volume_sources(v: &Volume) -> Vec<&'static str> {
    [
        (v.secret.is_some(), "secret"),
        (v.config_map.is_some(), "configMap"),
        (v.projected.is_some(), "projected"),
        (v.empty_dir.is_some(), "emptyDir"),
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.host_path.is_some(), "hostPath"),
        (v.csi.is_some(), "csi"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.image.is_some(), "image"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// The handlers set on a probe.
fn probe_handlers(p: &Probe) -> Vec<&'static str> {
    [
        (p.http_get.is_some(), "httpGet"),
        (p.tcp_socket.is_some(), "tcpSocket"),
        (p.exec.is_some(), "exec"),
        (p.grpc.is_some(), "grpc"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// True for a container that sets nothing (`{}`, or only empty lists and names).
fn is_blank(c: &Container) -> bool {
    match serde_json::to_value(c) {
        Ok(Value::Object(map)) => map.iter().all(|(k, v)| match v {
            Value::Array(a) => a.is_empty(),
            Value::String(s) => s.is_empty() && (k == "name" || k == "image"),
            _ => false,
        }),
        _ => false,
    }
}

/// Checks the Kubernetes quantity syntax: a signed decimal number followed by an optional
/// binary (`Ki`…`Ei`) or decimal (`n`, `u`, `m`, `k`, `M`…`E`) suffix or an exponent.
pub fn check_quantity(q: &Quantity) -> Result<(), String> {
    let s = q.0.trim();
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let split = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
    let (number, suffix) = body.split_at(split);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return Err(format!(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got {s:?})"
        ));
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

/// Checks the labels and annotations of a template's metadata.
pub fn validate_template_metadata(meta: &ObjectMeta, path: &str) -> Vec<FieldError> {
    let mut errs = crate::meta::validate_labels(meta.labels.as_ref(), &field(path, "labels"));
    errs.extend(crate::meta::validate_annotations(
        meta.annotations.as_ref(),
        &field(path, "annotations"),
    ));
    errs
}

/// Validates a Revision's pod as Knative Serving does: at least one container, exactly one
/// serving port across containers when there are several, no pod or container fields that
/// Knative refuses in a Revision, images, probes on the serving port, env names, volumes that
/// are mounted and mounts that exist.
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
        errs.extend(check_ids(sc.run_as_user, sc.run_as_group, &field(path, "securityContext")));
    }
    let init_containers = list(&spec.init_containers);
    let mounted: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(init_containers)
        .flat_map(|c| list(&c.volume_mounts).iter().map(|m| m.name.as_str()))
        .collect();
    let mut volumes = BTreeMap::new();
    for (i, v) in list(&spec.volumes).iter().enumerate() {
        let p = index(&field(path, "volumes"), i);
        if volumes.insert(v.name.as_str(), v).is_some() {
            errs.push(FieldError::new(field(&p, "name"), format!("duplicate volume name {:?}", v.name)));
        }
        if !mounted.contains(v.name.as_str()) {
            errs.push(FieldError::new(
                field(&p, "name"),
                format!("volume with name {:?} not mounted", v.name),
            ));
        }
        errs.extend(validate_volume(v, &p));
    }
    let ports: usize = spec.containers.iter().map(|c| list(&c.ports).len()).sum();
    if ports > 1 {
        errs.push(FieldError::new(
            field(path, "containers[*].ports"),
            "more than one container port is set: only a single port is allowed across all containers",
        ));
    }
    let containers = field(path, "containers");
    match spec.containers.len() {
        0 => errs.push(FieldError::missing(containers.clone())),
        1 => errs.extend(validate_container(
            &spec.containers[0],
            &index(&containers, 0),
            ContainerRole::User,
            &volumes,
        )),
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
                let role = if list(&c.ports).is_empty() {
                    ContainerRole::Sidecar
                } else {
                    ContainerRole::User
                };
                errs.extend(validate_container(c, &p, role, &volumes));
            }
        }
    }
    let all: BTreeSet<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in init_containers.iter().enumerate() {
        let p = index(&field(path, "initContainers"), i);
        if all.contains(c.name.as_str()) && !c.name.is_empty() {
            errs.push(FieldError::new(field(&p, "name"), format!("duplicate container name {:?}", c.name)));
        }
        errs.extend(validate_container(c, &p, ContainerRole::Init, &volumes));
    }
    if let Some(sa) = &spec.service_account_name {
        if let Err(e) = crate::meta::check_dns1123_subdomain(sa) {
            errs.push(FieldError::new(
                field(path, "serviceAccountName"),
                format!("invalid value {sa:?}: {e}"),
            ));
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
        if c.image.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::missing(field(&p, "image")));
        }
        errs.extend(validate_env(list(&c.env), &field(&p, "env"), &[]));
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

fn validate_items(items: &Option<Vec<KeyToPath>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, item) in list(items).iter().enumerate() {
        let ip = index(&field(path, "items"), i);
        if item.key.is_empty() {
            errs.push(FieldError::missing(field(&ip, "key")));
        }
        if item.path.is_empty() {
            errs.push(FieldError::missing(field(&ip, "path")));
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
    match volume_sources(v).as_slice() {
        [] => errs.push(FieldError::new(
            path.to_string(),
            "expected exactly one, got neither: configMap, emptyDir, persistentVolumeClaim, projected, secret",
        )),
        [_] => {}
        many => errs.push(FieldError::new(
            path.to_string(),
            format!("expected exactly one, got both: {}", many.join(", ")),
        )),
    }
    if let Some(s) = &v.secret {
        errs.extend(validate_items(&s.items, &field(path, "secret")));
    }
    if let Some(c) = &v.config_map {
        errs.extend(validate_items(&c.items, &field(path, "configMap")));
    }
    if let Some(p) = &v.projected {
        for (i, src) in list(&p.sources).iter().enumerate() {
            let sp = index(&field(path, "projected.sources"), i);
            let mut set = Vec::new();
            if let Some(s) = &src.secret {
                set.push("secret");
                if s.name.is_empty() {
                    errs.push(FieldError::missing(field(&sp, "secret.name")));
                }
                errs.extend(validate_items(&s.items, &field(&sp, "secret")));
            }
            if let Some(c) = &src.config_map {
                set.push("configMap");
                if c.name.is_empty() {
                    errs.push(FieldError::missing(field(&sp, "configMap.name")));
                }
                errs.extend(validate_items(&c.items, &field(&sp, "configMap")));
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
                0 => errs.push(FieldError::new(
                    sp,
                    "expected exactly one, got neither: configMap, downwardAPI, secret, serviceAccountToken",
                )),
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
            if let Err(msg) = check_quantity(q) {
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
            errs.push(FieldError::new(
                field(&p, "name"),
                format!("{:?} is a reserved environment variable", e.name),
            ));
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
            for (key, name) in [
                (from.config_map_key_ref.as_ref().map(|s| &s.key), "configMapKeyRef"),
                (from.secret_key_ref.as_ref().map(|s| &s.key), "secretKeyRef"),
            ] {
                if key.is_some_and(String::is_empty) {
                    errs.push(FieldError::missing(field(&field(&fp, name), "key")));
                }
            }
        }
    }
    errs
}

fn validate_probe(probe: &Probe, path: &str, role: ContainerRole, port_name: &str, readiness: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match probe_handlers(probe).as_slice() {
        [] => errs.push(FieldError::new(
            path.to_string(),
            "expected exactly one, got neither: exec, grpc, httpGet, tcpSocket",
        )),
        [_] => {}
        many => errs.push(FieldError::new(
            path.to_string(),
            format!("expected exactly one, got both: {}", many.join(", ")),
        )),
    }
    // A port of 0 (or "") is unset: the serving port for the user container.
    let check_port = |port: &IntOrString, name: &str, errs: &mut Vec<FieldError>| {
        let p = field(path, name);
        match (role, port) {
            (ContainerRole::User, IntOrString::String(s)) if !s.is_empty() && s != port_name => errs.push(FieldError::new(
                p,
                format!("invalid value {s:?}: probe port must match container port"),
            )),
            (ContainerRole::Sidecar, IntOrString::Int(0)) => errs.push(FieldError::new(p, "probe port must be specified")),
            (ContainerRole::Sidecar, IntOrString::String(s)) if s.is_empty() => {
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
                errs.push(FieldError::new(
                    field(path, "failureThreshold"),
                    "failureThreshold is disallowed when periodSeconds is zero",
                ));
            }
            if probe.timeout_seconds.unwrap_or(0) != 0 {
                errs.push(FieldError::new(
                    field(path, "timeoutSeconds"),
                    "timeoutSeconds is disallowed when periodSeconds is zero",
                ));
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
    if is_blank(c) {
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
    if c.image.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::missing(field(path, "image")));
    }
    let reserved: &[&str] = match role {
        ContainerRole::User => RESERVED_ENV_VARS,
        ContainerRole::Sidecar | ContainerRole::Init => &RESERVED_ENV_VARS[1..],
    };
    errs.extend(validate_env(list(&c.env), &field(path, "env"), reserved));
    for (i, ef) in list(&c.env_from).iter().enumerate() {
        let p = index(&field(path, "envFrom"), i);
        match (&ef.config_map_ref, &ef.secret_ref) {
            (Some(_), Some(_)) => errs.push(FieldError::new(p, "expected exactly one, got both: configMapRef, secretRef")),
            (None, None) => errs.push(FieldError::new(p, "expected exactly one, got neither: configMapRef, secretRef")),
            _ => {}
        }
    }
    if role != ContainerRole::Init {
        for (i, port) in list(&c.ports).iter().enumerate() {
            let p = index(&field(path, "ports"), i);
            if port.host_port.is_some() {
                errs.push(FieldError::disallowed(field(&p, "hostPort")));
            }
            if port.host_ip.is_some() {
                errs.push(FieldError::disallowed(field(&p, "hostIP")));
            }
            if RESERVED_PORTS.contains(&port.container_port) {
                errs.push(FieldError::new(
                    field(&p, "containerPort"),
                    format!("{} is a reserved port", port.container_port),
                ));
            }
            if !(0..=65535).contains(&port.container_port) {
                errs.push(FieldError::new(
                    field(&p, "containerPort"),
                    format!("expected 0 <= {} <= 65535", port.container_port),
                ));
            }
            if let Some(name) = &port.name {
                if !["", "h2c", "http1"].contains(&name.as_str()) {
                    errs.push(FieldError::new(
                        field(&p, "name"),
                        format!("port name {name:?} must be empty, \"h2c\" or \"http1\""),
                    ));
                }
            }
            if let Some(proto) = &port.protocol {
                if !proto.is_empty() && proto != "TCP" {
                    errs.push(FieldError::new(
                        field(&p, "protocol"),
                        format!("invalid value {proto:?}: only TCP is supported"),
                    ));
                }
            }
        }
    }
    if let Some(r) = &c.resources {
        for (map, name) in [(&r.limits, "limits"), (&r.requests, "requests")] {
            for (k, q) in map.iter().flatten() {
                if let Err(e) = check_quantity(q) {
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
    for (i, m) in list(&c.volume_mounts).iter().enumerate() {
        let p = index(&field(path, "volumeMounts"), i);
        if !volumes.contains_key(m.name.as_str()) {
            errs.push(FieldError::new(field(&p, "name"), "volumeMount has no matching volume"));
        }
        let clean = clean_path(&m.mount_path);
        if m.mount_path.is_empty() {
            errs.push(FieldError::missing(field(&p, "mountPath")));
        } else if ["/", "/dev", "/dev/log"].contains(&clean.as_str()) {
            errs.push(FieldError::new(
                field(&p, "mountPath"),
                format!("mountPath {clean:?} is a reserved path"),
            ));
        } else if !m.mount_path.starts_with('/') {
            errs.push(FieldError::invalid(field(&p, "mountPath"), &m.mount_path));
        } else if seen_paths.contains(&clean) {
            errs.push(FieldError::new(
                field(&p, "mountPath"),
                format!("invalid value: {:?} must be unique", m.mount_path),
            ));
        }
        seen_paths.insert(clean);
        if let Some(v) = volumes.get(m.name.as_str()) {
            if !is_writable(v) && m.read_only != Some(true) {
                errs.push(FieldError::new(
                    field(&p, "readOnly"),
                    "volume mount should be readOnly for this type of volume",
                ));
            }
            if v.persistent_volume_claim.as_ref().is_some_and(|c| c.read_only == Some(true)) && m.read_only != Some(true) {
                errs.push(FieldError::new(field(&p, "readOnly"), "volume is readOnly but volume mount is not"));
            }
        }
        if let Some(mp) = &m.mount_propagation {
            if mp != "None" && mp != "HostToContainer" {
                errs.push(FieldError::new(
                    field(&p, "mountPropagation"),
                    "mount propagation should be set to None or HostToContainer",
                ));
            }
        }
    }
    let probes = [
        (&c.liveness_probe, "livenessProbe", false),
        (&c.readiness_probe, "readinessProbe", true),
        (&c.startup_probe, "startupProbe", false),
    ];
    if role == ContainerRole::Init {
        for (probe, name, _) in probes {
            if probe.is_some() {
                errs.push(FieldError::new(field(path, name), "field not allowed in an init container"));
            }
        }
    } else {
        let port_name = list(&c.ports)
            .first()
            .and_then(|p| p.name.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or("http");
        for (probe, name, readiness) in probes {
            if let Some(probe) = probe {
                errs.extend(validate_probe(probe, &field(path, name), role, port_name, readiness));
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
    check_element(
        "repository",
        repo,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-./".contains(c),
        2,
        255,
    )?;
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
    use k8s_openapi::api::core::v1::{ContainerPort, EmptyDirVolumeSource, HTTPGetAction, TCPSocketAction, VolumeMount};
    use serde_json::json;

    fn container(image: &str) -> Container {
        Container {
            image: Some(image.into()),
            ..Default::default()
        }
    }

    fn port(n: i32) -> ContainerPort {
        ContainerPort {
            container_port: n,
            ..Default::default()
        }
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
            assert!(check_quantity(&Quantity(ok.into())).is_ok(), "{ok}");
        }
        for bad in ["", "1 Gi", "abc", "1GB"] {
            assert!(check_quantity(&Quantity(bad.into())).is_err(), "{bad}");
        }
        let q: Quantity = serde_json::from_value(json!(2)).unwrap();
        assert_eq!(q.0, "2");
    }

    #[test]
    fn serving_pod_rules() {
        let errs = validate_serving_pod(&PodSpec::default(), "spec");
        assert_eq!(errs, vec![FieldError::missing("spec.containers")]);

        let mut two = PodSpec {
            containers: vec![container("img"), container("img2")],
            ..Default::default()
        };
        two.containers[0].name = "a".into();
        two.containers[1].name = "b".into();
        let errs = validate_serving_pod(&two, "spec");
        assert!(errs.iter().any(|e| e.path == "spec.containers[*].ports"), "{errs:?}");

        let mut ports = PodSpec {
            containers: vec![container("img")],
            ..Default::default()
        };
        ports.containers[0].ports = Some(vec![port(8080), port(9000)]);
        let errs = validate_serving_pod(&ports, "spec");
        assert!(errs.iter().any(|e| e.message.contains("more than one container port")), "{errs:?}");

        let mut env = PodSpec {
            containers: vec![container("img")],
            ..Default::default()
        };
        env.containers[0].env = Some(vec![EnvVar {
            name: "PORT".into(),
            value: Some("1".into()),
            value_from: None,
        }]);
        let errs = validate_serving_pod(&env, "spec");
        assert_eq!(errs[0].path, "spec.containers[0].env[0].name");

        let blank = PodSpec {
            containers: vec![Container {
                ports: Some(vec![]),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            validate_serving_pod(&blank, "spec"),
            vec![FieldError::missing("spec.containers[0]")]
        );
    }

    #[test]
    fn probes_target_the_serving_port() {
        let mut pod = PodSpec {
            containers: vec![container("img")],
            ..Default::default()
        };
        pod.containers[0].ports = Some(vec![port(5000)]);
        let tcp = |p: IntOrString| {
            Some(Probe {
                tcp_socket: Some(TCPSocketAction { port: p, host: None }),
                ..Default::default()
            })
        };
        pod.containers[0].readiness_probe = tcp(IntOrString::String("metrics".into()));
        let errs = validate_serving_pod(&pod, "spec");
        assert_eq!(errs[0].path, "spec.containers[0].readinessProbe.tcpSocket.port");
        pod.containers[0].readiness_probe = tcp(IntOrString::String("http".into()));
        assert!(validate_serving_pod(&pod, "spec").is_empty());
        pod.containers[0].readiness_probe = Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(validate_serving_pod(&pod, "spec").is_empty());
    }

    #[test]
    fn volumes_must_be_mounted_and_exist() {
        let mut pod = PodSpec {
            containers: vec![container("img")],
            ..Default::default()
        };
        pod.volumes = Some(vec![Volume {
            name: "v".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }]);
        let errs = validate_serving_pod(&pod, "spec");
        assert!(errs[0].message.contains("not mounted"));
        pod.containers[0].volume_mounts = Some(vec![VolumeMount {
            name: "w".into(),
            mount_path: "/data".into(),
            ..Default::default()
        }]);
        let errs = validate_serving_pod(&pod, "spec");
        assert!(errs.iter().any(|e| e.message == "volumeMount has no matching volume"), "{errs:?}");
    }

    /// A Knative Service using most of what the mask allows: probes of every kind, env with
    /// every `valueFrom`, resources, security contexts, every volume source Knative takes.
    fn full_service() -> Value {
        json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "full"},
            "spec": {"template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}, "labels": {"app": "full"}},
                "spec": {
                    "serviceAccountName": "sa", "imagePullSecrets": [{"name": "pull"}],
                    "securityContext": {"runAsUser": 1000, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
                    "nodeSelector": {"disk": "ssd"},
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}]}}},
                    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                    "containerConcurrency": 10, "timeoutSeconds": 100,
                    "containers": [{
                        "image": "ghcr.io/knative/helloworld-go:latest",
                        "args": ["--x"],
                        "ports": [{"containerPort": 8080, "name": "h2c", "protocol": "TCP"}],
                        "env": [
                            {"name": "A", "value": "b"},
                            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": true}}},
                            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                            {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}
                        ],
                        "envFrom": [{"prefix": "P_", "configMapRef": {"name": "cm"}}, {"secretRef": {"name": "sec"}}],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "httpHeaders": [{"name": "X", "value": "y"}]},
                                           "periodSeconds": 5, "timeoutSeconds": 2, "successThreshold": 1, "failureThreshold": 3},
                        "livenessProbe": {"tcpSocket": {"port": "h2c"}, "periodSeconds": 10},
                        "startupProbe": {"exec": {"command": ["cat", "/tmp/ok"]}, "failureThreshold": 30},
                        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                                            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
                        "volumeMounts": [
                            {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true},
                            {"name": "data", "mountPath": "/data"},
                            {"name": "proj", "mountPath": "/proj", "readOnly": true}
                        ]
                    }],
                    "volumes": [
                        {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a.txt"}]}},
                        {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                        {"name": "proj", "projected": {"sources": [
                            {"secret": {"name": "s"}},
                            {"serviceAccountToken": {"audience": "x", "expirationSeconds": 3600, "path": "token"}},
                            {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
                        ]}}
                    ]
                }
            }}
        })
    }

    #[test]
    fn full_service_is_accepted_and_round_trips() {
        let given = full_service();
        let mut obj = crate::KnativeObject::from_value(given.clone()).unwrap_or_else(|e| panic!("{e}"));
        obj.apply_defaults();
        assert_eq!(obj.validate(), vec![]);
        // Stored as given, plus Knative's defaults; quantities given as numbers become strings.
        let mut expected = given;
        let spec = &mut expected["spec"]["template"]["spec"];
        spec["enableServiceLinks"] = json!(false);
        spec["containers"][0]["name"] = json!("user-container");
        spec["containers"][0]["resources"]["limits"]["cpu"] = json!("1");
        spec["containers"][0]["volumeMounts"][0]["readOnly"] = json!(true);
        spec["containers"][0]["volumeMounts"][2]["readOnly"] = json!(true);
        expected["spec"]["traffic"] = json!([{"latestRevision": true, "percent": 100}]);
        let stored = obj.to_value();
        assert_eq!(stored, expected);
        assert_eq!(
            crate::KnativeObject::from_value(stored).map(|mut o| {
                o.apply_defaults();
                o
            }),
            Ok(obj)
        );
    }

    #[test]
    fn disallowed_and_unknown_fields_are_refused_with_their_paths() {
        let mut v = full_service();
        let c = &mut v["spec"]["template"]["spec"]["containers"][0];
        c["ports"][0]["hostPort"] = json!(80);
        c["resizePolicy"] = json!([{"resourceName": "cpu", "restartPolicy": "NotRequired"}]);
        c["env"][1]["valueFrom"]["fileKeyRef"] = json!({"path": "a", "key": "b", "volumeName": "v"});
        let (obj, errs) = crate::KnativeObject::from_value_lenient(v).unwrap();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.template.spec.containers[0].env[1].valueFrom.fileKeyRef",
                "spec.template.spec.containers[0].resizePolicy"
            ]
        );
        assert!(errs.iter().all(|e| e.message.starts_with("unknown field `")), "{errs:?}");
        let mut obj = obj.expect("decodes once the unknown fields are removed");
        obj.apply_defaults();
        assert_eq!(
            obj.validate(),
            vec![FieldError::disallowed("spec.template.spec.containers[0].ports[0].hostPort")]
        );
    }

    fn check(kind: &str, mut object: Value) -> (Vec<FieldError>, Value) {
        let api = if kind == "ContainerSource" {
            "sources.knative.dev/v1"
        } else {
            "serving.knative.dev/v1"
        };
        let errs = check_embedded_fields(api, kind, &mut object);
        (errs, object)
    }

    #[test]
    fn mask_refuses_fields_outside_it_with_their_path() {
        let (errs, left) = check(
            "Service",
            json!({"spec": {"template": {"spec": {
                "containerConcurrency": 1,
                "hostUsers": false,
                "containers": [{"image": "x", "resizePolicy": [], "ports": [{"containerPort": 1, "hostIPs": []}],
                                "readinessProbe": {"httpGet": {"path": "/", "pathh": "/"}}}]
            }}}}),
        );
        // Sorted by path: the order of the walk follows the object's keys.
        let mut errs = errs;
        errs.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.template.spec.containers[0].ports[0].hostIPs",
                "spec.template.spec.containers[0].readinessProbe.httpGet.pathh",
                "spec.template.spec.containers[0].resizePolicy",
                "spec.template.spec.hostUsers",
            ]
        );
        assert!(
            errs[3]
                .message
                .starts_with("unknown field `hostUsers`, expected one of `containers`, "),
            "{}",
            errs[0].message
        );
        assert!(errs[3]
            .message
            .ends_with("`hostname`, `containerConcurrency`, `timeoutSeconds`, `responseStartTimeoutSeconds`, `idleTimeoutSeconds`"));
        assert_eq!(
            errs[1].message,
            "unknown field `pathh`, expected one of `path`, `port`, `host`, `scheme`, `httpHeaders`"
        );
        assert_eq!(
            left,
            json!({"spec": {"template": {"spec": {"containerConcurrency": 1,
                "containers": [{"image": "x", "ports": [{"containerPort": 1}], "readinessProbe": {"httpGet": {"path": "/"}}}]}}}})
        );
    }

    #[test]
    fn kubernetes_types_taken_whole_lose_no_field() {
        let (errs, left) = check(
            "ContainerSource",
            json!({"spec": {"template": {"metadata": {"uid": "u"}, "spec": {
                "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}, "bogus": 1}]}},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "containers": [{"image": "x", "lifecycle": {"preStop": {"exec": {"command": ["x"]}}}}]
            }}}}),
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.template.metadata.uid",
                "spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].bogus"
            ]
        );
        assert_eq!(errs[1].message, "unknown field `bogus`");
        assert_eq!(
            left["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "k", "operator": "Exists"}])
        );
    }

    #[test]
    fn rabbitmq_connection_secret_is_a_strict_reference() {
        let mut v = json!({"spec": {"rabbitmqClusterReference": {"connectionSecret": {"name": "s", "nmae": "t"}}}});
        let errs = check_embedded_fields("sources.knative.dev/v1alpha1", "RabbitmqSource", &mut v);
        assert_eq!(
            errs,
            vec![FieldError::new(
                "spec.rabbitmqClusterReference.connectionSecret.nmae",
                "unknown field `nmae`, expected `name`"
            )]
        );
    }
}
