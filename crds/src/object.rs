//! [`KnativeObject`]: any object Sluice manages, decoded strictly from JSON, with Knative's
//! defaulting and validation.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

use crate::core::{ConfigMap, CoreService, Deployment, Event, EventsV1Event, Lease, Namespace, Pod, Secret};
use crate::eventing::{Broker, Trigger};
use crate::flows::{Parallel, Sequence};
use crate::kafka::{KafkaChannel, KafkaSink};
use crate::messaging::{Channel, InMemoryChannel, Subscription};
use crate::meta::OBJECT_META_FIELDS;
use crate::registry::{find_by_type, find_similar, split_api_version, KindInfo};
use crate::serving::{Configuration, Revision, Route, Service};
use crate::sources::{ApiServerSource, AwsSqsSource, ContainerSource, GitHubSource, KafkaSource, PingSource, RabbitmqSource, SinkBinding};
use crate::{field, Admission, FieldError};

/// Why a JSON value is not a [`KnativeObject`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// A kind Sluice does not manage (ServiceAccount, ReplicaSet, RBAC, ...): callers list these as
    /// skipped rather than failing.
    #[error("{kind} ({api_version}) is not a kind sluice manages")]
    UnknownKind {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// The object cannot be decoded: every problem found, with its field path.
    #[error("{}", join_errors(.0))]
    Invalid(Vec<FieldError>),
}

fn join_errors(errs: &[FieldError]) -> String {
    errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Any object Sluice manages.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "variants hold the kinds' own types, as callers match on them"
)]
pub enum KnativeObject {
    /// `serving.knative.dev/v1` Service.
    Service(Service),
    /// `serving.knative.dev/v1` Configuration.
    Configuration(Configuration),
    /// `serving.knative.dev/v1` Revision.
    Revision(Revision),
    /// `serving.knative.dev/v1` Route.
    Route(Route),
    /// `eventing.knative.dev/v1` Broker.
    Broker(Broker),
    /// `eventing.knative.dev/v1` Trigger.
    Trigger(Trigger),
    /// `messaging.knative.dev/v1` Channel.
    Channel(Channel),
    /// `messaging.knative.dev/v1` InMemoryChannel.
    InMemoryChannel(InMemoryChannel),
    /// `messaging.knative.dev/v1` Subscription.
    Subscription(Subscription),
    /// `flows.knative.dev/v1` Sequence.
    Sequence(Sequence),
    /// `flows.knative.dev/v1` Parallel.
    Parallel(Parallel),
    /// `sources.knative.dev/v1` PingSource.
    PingSource(PingSource),
    /// `sources.knative.dev/v1` SinkBinding.
    SinkBinding(SinkBinding),
    /// `sources.knative.dev/v1` ContainerSource.
    ContainerSource(ContainerSource),
    /// `sources.knative.dev/v1` ApiServerSource.
    ApiServerSource(ApiServerSource),
    /// `sources.knative.dev/v1` KafkaSource.
    KafkaSource(KafkaSource),
    /// `sources.knative.dev/v1alpha1` GitHubSource.
    GitHubSource(GitHubSource),
    /// `sources.knative.dev/v1alpha1` AwsSqsSource.
    AwsSqsSource(AwsSqsSource),
    /// `sources.knative.dev/v1alpha1` RabbitmqSource.
    RabbitmqSource(RabbitmqSource),
    /// `eventing.knative.dev/v1alpha1` KafkaSink.
    KafkaSink(KafkaSink),
    /// `messaging.knative.dev/v1beta1` KafkaChannel.
    KafkaChannel(KafkaChannel),
    /// Core `v1` ConfigMap.
    ConfigMap(ConfigMap),
    /// Core `v1` Secret.
    Secret(Secret),
    /// Core `v1` Namespace (cluster-scoped).
    Namespace(Namespace),
    /// Core `v1` Event.
    Event(Event),
    /// Core `v1` Service (stored and served; nothing runs it).
    CoreService(CoreService),
    /// `events.k8s.io/v1` Event.
    EventsV1Event(EventsV1Event),
    /// `coordination.k8s.io/v1` Lease.
    Lease(Lease),
    /// `apps/v1` Deployment (stored and served; nothing runs it).
    Deployment(Deployment),
    /// Core `v1` Pod (stored and served; nothing runs it).
    Pod(Pod),
}

/// Invokes `$m!` with every variant of [`KnativeObject`], its type, `apiVersion` and `kind`.
macro_rules! for_each_kind {
    ($m:ident) => {
        $m! {
            Service(Service): "serving.knative.dev/v1" "Service",
            Configuration(Configuration): "serving.knative.dev/v1" "Configuration",
            Revision(Revision): "serving.knative.dev/v1" "Revision",
            Route(Route): "serving.knative.dev/v1" "Route",
            Broker(Broker): "eventing.knative.dev/v1" "Broker",
            Trigger(Trigger): "eventing.knative.dev/v1" "Trigger",
            Channel(Channel): "messaging.knative.dev/v1" "Channel",
            InMemoryChannel(InMemoryChannel): "messaging.knative.dev/v1" "InMemoryChannel",
            Subscription(Subscription): "messaging.knative.dev/v1" "Subscription",
            Sequence(Sequence): "flows.knative.dev/v1" "Sequence",
            Parallel(Parallel): "flows.knative.dev/v1" "Parallel",
            PingSource(PingSource): "sources.knative.dev/v1" "PingSource",
            SinkBinding(SinkBinding): "sources.knative.dev/v1" "SinkBinding",
            ContainerSource(ContainerSource): "sources.knative.dev/v1" "ContainerSource",
            ApiServerSource(ApiServerSource): "sources.knative.dev/v1" "ApiServerSource",
            KafkaSource(KafkaSource): "sources.knative.dev/v1" "KafkaSource",
            GitHubSource(GitHubSource): "sources.knative.dev/v1alpha1" "GitHubSource",
            AwsSqsSource(AwsSqsSource): "sources.knative.dev/v1alpha1" "AwsSqsSource",
            RabbitmqSource(RabbitmqSource): "sources.knative.dev/v1alpha1" "RabbitmqSource",
            KafkaSink(KafkaSink): "eventing.knative.dev/v1alpha1" "KafkaSink",
            KafkaChannel(KafkaChannel): "messaging.knative.dev/v1beta1" "KafkaChannel",
            ConfigMap(ConfigMap): "v1" "ConfigMap",
            Secret(Secret): "v1" "Secret",
            Namespace(Namespace): "v1" "Namespace",
            Event(Event): "v1" "Event",
            CoreService(CoreService): "v1" "Service",
            EventsV1Event(EventsV1Event): "events.k8s.io/v1" "Event",
            Lease(Lease): "coordination.k8s.io/v1" "Lease",
            Deployment(Deployment): "apps/v1" "Deployment",
            Pod(Pod): "v1" "Pod",
        }
    };
}

macro_rules! impl_dispatch {
    ($($variant:ident($ty:ty): $api:literal $kind:literal,)*) => {
        macro_rules! dispatch {
            ($value:expr, $o:ident => $body:expr) => {
                match $value {
                    $(KnativeObject::$variant($o) => $body,)*
                }
            };
        }

        $(
            impl From<$ty> for KnativeObject {
                fn from(o: $ty) -> Self {
                    KnativeObject::$variant(o)
                }
            }
        )*

        impl KnativeObject {
            /// The registry entry of the object's kind.
            pub fn kind_info(&self) -> &'static KindInfo {
                let (api, kind) = match self {
                    $(KnativeObject::$variant(_) => ($api, $kind),)*
                };
                find_by_type(api, kind).expect("every KnativeObject variant is in the registry")
            }

            fn decode(api: &str, kind: &str, value: Value) -> Option<(Option<KnativeObject>, Vec<FieldError>)> {
                $(
                    if api == $api && kind == $kind {
                        let (obj, errs) = decode_all::<$ty>(value, !$api.contains("knative.dev"));
                        return Some((obj.map(KnativeObject::$variant), errs));
                    }
                )*
                None
            }

            fn same_kind(&self, other: &KnativeObject) -> bool {
                std::mem::discriminant(self) == std::mem::discriminant(other)
            }

            fn validate_update_same_kind(&self, old: &KnativeObject) -> Vec<FieldError> {
                match (self, old) {
                    $((KnativeObject::$variant(new), KnativeObject::$variant(old)) => new.validate_update(old),)*
                    _ => vec![FieldError::new("kind", "cannot change the kind of an object")],
                }
            }
        }
    };
}
for_each_kind!(impl_dispatch);

/// One decode failure: the error, and where in the JSON the offending value is (so it can be
/// pruned and decoding retried), if that is known.
struct DecodeFailure {
    error: FieldError,
    prune: Option<Vec<PathStep>>,
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn decode_once<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, DecodeFailure> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut steps = Vec::new();
        let mut exact = true;
        for seg in e.path() {
            match seg {
                serde_path_to_error::Segment::Map { key } => steps.push(PathStep::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => steps.push(PathStep::Index(*index)),
                _ => exact = false,
            }
        }
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let mut message = e.inner().to_string();
        if ["Invalid symbol", "Invalid last symbol", "Invalid padding", "Invalid input length"]
            .iter()
            .any(|p| message.starts_with(p))
        {
            message = format!("invalid base64: {}", message.trim_end_matches('.').to_ascii_lowercase());
        }
        if let Some(name) = message.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            return DecodeFailure {
                error: FieldError::missing(field(&path, name)),
                prune: None,
            };
        }
        if let Some(name) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            if !(path == name || path.ends_with(&format!(".{name}"))) {
                path = field(&path, name);
                steps.push(PathStep::Key(name.to_string()));
            }
        }
        // A bad list element is pruned with its whole list, so later paths keep their indices.
        while matches!(steps.last(), Some(PathStep::Index(_))) {
            steps.pop();
        }
        let prune = (exact && !steps.is_empty()).then_some(steps);
        DecodeFailure {
            error: FieldError::new(path, message),
            prune,
        }
    })
}

fn remove_at(value: &mut Value, steps: &[PathStep]) -> bool {
    let Some((last, parents)) = steps.split_last() else { return false };
    let mut cur = value;
    for step in parents {
        cur = match (step, cur) {
            (PathStep::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (PathStep::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, cur) {
        (PathStep::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        _ => false,
    }
}

/// Decodes `value` as `T`, reporting every decode error: after each error the offending
/// field is removed and decoding retried. Returns the object decoded from what was left (if
/// anything decoded) and the errors. With `lossless`, for types that skip unknown fields
/// (k8s-openapi's), every field the decoded object does not give back when encoded again is an
/// `unknown field` error with its path.
fn decode_all<T: serde::de::DeserializeOwned + serde::Serialize>(mut value: Value, lossless: bool) -> (Option<T>, Vec<FieldError>) {
    let mut errs = Vec::new();
    for _ in 0..64 {
        match decode_once::<T>(&value) {
            Ok(obj) => {
                if lossless {
                    let encoded = serde_json::to_value(&obj).unwrap_or(Value::Null);
                    crate::pod::remove_lost_fields(&mut value, &encoded, "", &mut errs);
                }
                return (Some(obj), errs);
            }
            Err(f) => {
                errs.push(f.error);
                match f.prune {
                    Some(steps) if remove_at(&mut value, &steps) => {
                        if let ([PathStep::Key(k)], Some(map)) = (steps.as_slice(), value.as_object_mut()) {
                            if k == "spec" {
                                map.insert("spec".into(), Value::Object(Map::new()));
                            }
                        }
                    }
                    _ => return (None, errs),
                }
            }
        }
    }
    (None, errs)
}

/// Removes `null` members of objects, recursively: the API server treats a null field as
/// unset (nulls inside lists are kept, and fail to decode).
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

const CUSTOM_RESOURCE_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
const CONFIG_MAP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "data", "binaryData", "immutable"];
const SECRET_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"];

fn check_keys(map: &mut Map<String, Value>, allowed: &[&str], path: &str, errs: &mut Vec<FieldError>) {
    let unknown: Vec<String> = map.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
    for k in unknown {
        errs.push(FieldError::new(field(path, &k), format!("unknown field `{k}`")));
        map.remove(&k);
    }
}

/// `<kind> <namespace>/<name>` for a raw object, e.g. `trigger default/orders`, as far as the
/// value tells (used to prefix errors of objects that do not decode).
pub fn label_of(value: &Value) -> String {
    let get = |ptr: &str| value.pointer(ptr).and_then(Value::as_str).filter(|s| !s.is_empty());
    let kind = get("/kind").unwrap_or("object");
    let info = get("/apiVersion").and_then(|api| find_by_type(api, kind).or_else(|| find_similar(split_api_version(api).0, kind)));
    let name = get("/metadata/name")
        .or_else(|| get("/metadata/generateName"))
        .unwrap_or("<unnamed>");
    match info {
        Some(k) if !k.namespaced => format!("{} {name}", k.singular),
        Some(k) => format!("{} {}/{name}", k.singular, get("/metadata/namespace").unwrap_or("default")),
        None => format!(
            "{} {}/{name}",
            kind.to_ascii_lowercase(),
            get("/metadata/namespace").unwrap_or("default")
        ),
    }
}

impl KnativeObject {
    /// Decodes an object. Unknown fields anywhere (top level, `metadata`, spec) are errors
    /// naming the field's path; `null` fields count as unset; a missing `spec` is empty.
    ///
    /// Returns [`ObjectError::UnknownKind`] for kinds Sluice does not manage, and
    /// [`ObjectError::Invalid`] for everything else that is wrong, including a missing
    /// `apiVersion`, `kind` or `metadata.name`, a kind spelt with the wrong case, or a
    /// managed kind at a version that is not served.
    pub fn from_value(value: Value) -> Result<KnativeObject, ObjectError> {
        match Self::from_value_lenient(value) {
            Err(e) => Err(e),
            Ok((Some(obj), errs)) if errs.is_empty() => Ok(obj),
            Ok((_, errs)) => Err(ObjectError::Invalid(errs)),
        }
    }

    /// Like [`KnativeObject::from_value`], but also returns what could be decoded once every
    /// offending field was removed, with all the problems found on the way. Lets callers
    /// report validation errors of an object that also has decode errors.
    pub fn from_value_lenient(mut value: Value) -> Result<(Option<KnativeObject>, Vec<FieldError>), ObjectError> {
        let Some(map) = value.as_object_mut() else {
            return Err(ObjectError::Invalid(vec![FieldError::new("", "expected an object")]));
        };
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        let mut errs = Vec::new();
        if api_version.is_empty() {
            errs.push(FieldError::missing("apiVersion"));
        }
        if kind.is_empty() {
            errs.push(FieldError::missing("kind"));
        }
        if !errs.is_empty() {
            return Err(ObjectError::Invalid(errs));
        }
        if find_by_type(&api_version, &kind).is_none() {
            let (group, version) = split_api_version(&api_version);
            return Err(match find_similar(group, &kind) {
                Some(k) if k.kind.eq_ignore_ascii_case(&kind) && k.kind != kind => ObjectError::Invalid(vec![FieldError::new(
                    "kind",
                    format!(
                        "no kind {kind:?} in {api_version} (kinds are case-sensitive: did you mean {:?}?)",
                        k.kind
                    ),
                )]),
                Some(k) if k.kind != kind => ObjectError::Invalid(vec![FieldError::new(
                    "kind",
                    format!("no kind {kind:?} in {api_version} (did you mean {:?}?)", k.kind),
                )]),
                Some(k) => ObjectError::Invalid(vec![FieldError::new(
                    "apiVersion",
                    format!("{kind} is not served at {group}/{version}: use apiVersion {}", k.api_version()),
                )]),
                None => ObjectError::UnknownKind { api_version, kind },
            });
        }
        strip_nulls(&mut value);
        let map = value.as_object_mut().expect("checked above");
        let knative = find_by_type(&api_version, &kind).is_some_and(KindInfo::is_knative);
        // Other built-in kinds have their unknown fields found by a round trip through their
        // type (`decode_all`).
        let allowed: &[&str] = match kind.as_str() {
            "ConfigMap" if api_version == "v1" => CONFIG_MAP_FIELDS,
            "Secret" if api_version == "v1" => SECRET_FIELDS,
            _ if knative => CUSTOM_RESOURCE_FIELDS,
            _ => &[],
        };
        if !allowed.is_empty() {
            check_keys(map, allowed, "", &mut errs);
        }
        let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        match meta.as_object_mut() {
            None => {
                errs.push(FieldError::new("metadata", "expected an object"));
                *meta = Value::Object(Map::new());
            }
            Some(m) => check_keys(m, OBJECT_META_FIELDS, "metadata", &mut errs),
        }
        let named = |k: &str| meta.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
        if !named("name") && !named("generateName") {
            errs.push(FieldError::missing("metadata.name"));
        }
        if knative {
            map.entry("spec").or_insert_with(|| Value::Object(Map::new()));
        }
        errs.extend(crate::pod::check_embedded_fields(&api_version, &kind, &mut value));
        match Self::decode(&api_version, &kind, value) {
            Some((obj, decode_errs)) => {
                errs.extend(decode_errs);
                Ok((obj, errs))
            }
            None => Err(ObjectError::UnknownKind { api_version, kind }),
        }
    }

    /// The object as JSON (with `apiVersion` and `kind`).
    pub fn to_value(&self) -> Value {
        dispatch!(self, o => serde_json::to_value(o)).expect("knative objects always serialize to JSON")
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        dispatch!(self, o => &o.metadata)
    }

    /// The object's metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        dispatch!(self, o => &mut o.metadata)
    }

    /// The object's name (`""` when it only has a `generateName`).
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The object's namespace, `default` when unset; empty for cluster-scoped kinds
    /// (Namespace), whatever `metadata.namespace` says.
    pub fn namespace(&self) -> &str {
        if !self.kind_info().namespaced {
            return "";
        }
        self.metadata().namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("default")
    }

    /// Fills in Knative's defaults (see each kind's [`Admission::set_defaults`]).
    pub fn apply_defaults(&mut self) {
        dispatch!(self, o => o.set_defaults())
    }

    /// Everything Knative would reject on create, with field paths.
    pub fn validate(&self) -> Vec<FieldError> {
        dispatch!(self, o => o.validate())
    }

    /// Every problem of the object as the replacement of an existing one (see
    /// [`Admission::validate_existing`]).
    pub fn validate_existing(&self) -> Vec<FieldError> {
        dispatch!(self, o => o.validate_existing())
    }

    /// The additional problems of replacing `old` with `self` (immutable fields; a different
    /// kind). Does not repeat [`KnativeObject::validate`].
    pub fn validate_update(&self, old: &KnativeObject) -> Vec<FieldError> {
        if !self.same_kind(old) {
            return vec![FieldError::new("kind", "cannot change the kind of an object")];
        }
        self.validate_update_same_kind(old)
    }

    /// `<kind> <namespace>/<name>`, e.g. `trigger default/orders`.
    pub fn label(&self) -> String {
        let meta = self.metadata();
        let name = [&meta.name, &meta.generate_name]
            .into_iter()
            .find_map(|n| n.as_deref().filter(|n| !n.is_empty()))
            .unwrap_or("<unnamed>");
        match self.namespace() {
            "" => format!("{} {name}", self.kind_info().singular),
            ns => format!("{} {ns}/{name}", self.kind_info().singular),
        }
    }

    /// Each error prefixed with the object: `trigger default/orders: spec.filters[1]: ...`.
    pub fn describe_errors(&self, errs: &[FieldError]) -> Vec<String> {
        let label = self.label();
        errs.iter().map(|e| format!("{label}: {e}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_and_round_trips() {
        let v = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "orders", "labels": null},
            "spec": {"broker": "default", "subscriber": {"uri": "http://example.com/"}}
        });
        let obj = KnativeObject::from_value(v).unwrap();
        assert_eq!(obj.kind_info().kind, "Trigger");
        assert_eq!((obj.namespace(), obj.name()), ("default", "orders"));
        let back = obj.to_value();
        assert_eq!(back["apiVersion"], "eventing.knative.dev/v1");
        assert_eq!(back["spec"]["broker"], "default");
        assert_eq!(KnativeObject::from_value(back).unwrap(), obj);
    }

    #[test]
    fn unknown_fields_have_paths() {
        let v = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "t"},
            "spec": {"broker": "b", "filters": [{"exactt": {"type": "x"}}], "subscriber": {"uri": "http://x/"}}
        });
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(v) else {
            panic!()
        };
        assert_eq!(errs[0].path, "spec.filters[0].exactt");
        assert!(errs[0].message.starts_with("unknown field `exactt`"), "{}", errs[0].message);

        let v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "spec": {}}, "extra": 1});
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(v) else {
            panic!()
        };
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["extra", "metadata.spec"]);
    }

    #[test]
    fn unknown_and_misspelt_kinds() {
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}});
        assert_eq!(
            KnativeObject::from_value(sa),
            Err(ObjectError::UnknownKind {
                api_version: "v1".into(),
                kind: "ServiceAccount".into()
            })
        );
        let lower = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "broker", "metadata": {"name": "x"}});
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(lower) else {
            panic!()
        };
        assert_eq!(errs[0].path, "kind");
        let old = json!({"apiVersion": "messaging.knative.dev/v1beta1", "kind": "InMemoryChannel", "metadata": {"name": "x"}});
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(old) else {
            panic!()
        };
        assert_eq!(errs[0].path, "apiVersion");
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(json!({"metadata": {}})) else {
            panic!()
        };
        assert_eq!(errs, vec![FieldError::missing("apiVersion"), FieldError::missing("kind")]);
    }

    #[test]
    fn missing_name_and_spec() {
        let v = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "metadata": {"annotations": {"a": "b"}}});
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(v) else {
            panic!()
        };
        assert_eq!(errs, vec![FieldError::missing("metadata.name")]);
        let v = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "b"}, "spec": null});
        let mut b = KnativeObject::from_value(v).unwrap();
        b.apply_defaults();
        assert!(b.validate().is_empty());
    }

    #[test]
    fn describes_errors() {
        let v = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "orders"},
            "spec": {"broker": "default", "subscriber": {"uri": "http://x/"},
                     "filters": [{"exact": {"type": "a"}}, {"exact": {"type": "a"}, "prefix": {"source": "b"}}]}
        });
        let mut obj = KnativeObject::from_value(v).unwrap();
        obj.apply_defaults();
        let errs = obj.validate();
        assert_eq!(
            obj.describe_errors(&errs),
            vec!["trigger default/orders: spec.filters[1]: multiple dialects found (exact, prefix)".to_string()]
        );
    }

    #[test]
    fn update_checks_kind() {
        let a: KnativeObject = crate::eventing::Broker::new("a", Default::default()).into();
        let b: KnativeObject = crate::messaging::Channel::new("a", Default::default()).into();
        assert_eq!(a.validate_update(&b)[0].path, "kind");
    }

    #[test]
    fn every_kind_is_registered() {
        for info in crate::registry::kinds() {
            let mut v = json!({"apiVersion": info.api_version(), "kind": info.kind, "metadata": {"name": "x"}});
            if info.group.is_empty() && info.kind == "Event" {
                v["involvedObject"] = json!({"kind": "Broker", "name": "b"});
            }
            let obj = KnativeObject::from_value(v).unwrap_or_else(|e| panic!("{}: {e}", info.kind));
            assert_eq!(obj.kind_info(), info);
        }
    }

    #[test]
    fn builtin_kinds_refuse_unknown_fields_with_paths() {
        let v = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "extra": 1,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "x", "imagee": "y"}]}}}
        });
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(v) else {
            panic!()
        };
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["extra", "spec.template.spec.containers[0].imagee"]);
        assert!(errs[1].message.starts_with("unknown field `imagee`"), "{}", errs[1]);

        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}});
        let obj = KnativeObject::from_value(svc.clone()).unwrap();
        assert!(matches!(obj, KnativeObject::CoreService(_)));
        assert_eq!(obj.to_value()["spec"], svc["spec"]);
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "x"},
            "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": "2024-01-01T00:00:00.000000Z"}});
        let obj = KnativeObject::from_value(lease).unwrap();
        assert_eq!((obj.namespace(), obj.label().as_str()), ("x", "lease x/l"));
        let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Broker", "name": "b", "uidd": "x"}});
        let Err(ObjectError::Invalid(errs)) = KnativeObject::from_value(event) else {
            panic!()
        };
        assert_eq!(errs[0].path, "involvedObject.uidd");
    }

    #[test]
    fn namespaces_are_cluster_scoped() {
        let v = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "namespace": "ignored"}});
        assert_eq!(label_of(&v), "namespace team");
        let obj = KnativeObject::from_value(v).unwrap();
        assert!(!obj.kind_info().namespaced);
        assert_eq!((obj.namespace(), obj.name()), ("", "team"));
        assert_eq!(obj.label(), "namespace team");
    }
}
