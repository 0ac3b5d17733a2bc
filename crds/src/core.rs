//! The Kubernetes built-in kinds Sluice serves: core `v1` ConfigMap and Secret, which Knative
//! objects reference (broker configuration, credentials), and the kinds controllers and kubectl
//! expect of an API server: Namespace (cluster-scoped), Event (core `v1` and
//! `events.k8s.io/v1`), `coordination.k8s.io/v1` Lease, `apps/v1` Deployment, core `v1`
//! Service and Pod (stored and served, so that controllers written for a cluster can be tested
//! here; nothing runs them). The types are
//! k8s-openapi's; this module adds the API server's defaults and its minimal checks.

pub use k8s_openapi::api::apps::v1::Deployment;
pub use k8s_openapi::api::coordination::v1::Lease;
pub use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, Service as CoreService};
pub use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use crate::meta::{validate_object_meta, NameRule};
use crate::{key, Admission, FieldError};

/// Checks a ConfigMap or Secret key: at most 253 characters of `[-._a-zA-Z0-9]`, not `.` or `..`.
pub fn check_config_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.len() > 253 {
        return Err("a valid config key must be 1 to 253 characters".into());
    }
    if k == "." || k == ".." {
        return Err(format!("must not be {k:?}"));
    }
    if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
        return Err("a valid config key must consist of alphanumeric characters, '-', '_' or '.'".into());
    }
    Ok(())
}

fn validate_keys<'a>(keys: impl Iterator<Item = &'a String>, path: &str) -> Vec<FieldError> {
    keys.filter_map(|k| {
        check_config_key(k)
            .err()
            .map(|e| FieldError::new(key(path, k), format!("invalid key: {e}")))
    })
    .collect()
}

impl Admission for ConfigMap {
    fn set_defaults(&mut self) {}

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(validate_keys(self.data.iter().flat_map(|d| d.keys()), "data"));
        errs.extend(validate_keys(self.binary_data.iter().flat_map(|d| d.keys()), "binaryData"));
        if let (Some(d), Some(b)) = (&self.data, &self.binary_data) {
            for k in d.keys().filter(|k| b.contains_key(*k)) {
                errs.push(FieldError::new(key("data", k), "duplicate of key present in binaryData"));
            }
        }
        // Serving's config-defaults is checked as Knative's webhook checks its ConfigMaps.
        if self.metadata.namespace.as_deref() == Some(crate::serving::SETTINGS_NAMESPACE)
            && self.metadata.name.as_deref() == Some(crate::serving::CONFIG_DEFAULTS)
        {
            let data = self.data.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
            if let Err(e) = crate::serving::ServingDefaults::from_data(data) {
                errs.extend(e);
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        if old.immutable == Some(true) && (self.data != old.data || self.binary_data != old.binary_data) {
            vec![FieldError::new("data", "field is immutable when `immutable` is set")]
        } else {
            Vec::new()
        }
    }
}

impl Admission for Secret {
    /// Merges `stringData` into `data` (as the API server does) and defaults `type` to `Opaque`.
    fn set_defaults(&mut self) {
        if let Some(sd) = self.string_data.take() {
            let data = self.data.get_or_insert_with(Default::default);
            for (k, v) in sd {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
        if self.type_.as_deref().unwrap_or("").is_empty() {
            self.type_ = Some("Opaque".into());
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(validate_keys(self.data.iter().flat_map(|d| d.keys()), "data"));
        errs.extend(validate_keys(self.string_data.iter().flat_map(|d| d.keys()), "stringData"));
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if old.immutable == Some(true) && self.data != old.data {
            errs.push(FieldError::new("data", "field is immutable when `immutable` is set"));
        }
        if old.type_ != self.type_ {
            errs.push(FieldError::new("type", "field is immutable"));
        }
        errs
    }
}

impl Admission for Namespace {
    /// The `kubernetes` finalizer, as the API server sets it.
    fn set_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        if spec.finalizers.is_none() {
            spec.finalizers = Some(vec!["kubernetes".into()]);
        }
    }

    /// A DNS-1123 label name.
    fn validate(&self) -> Vec<FieldError> {
        validate_object_meta(&self.metadata, NameRule::Dns1123Label)
    }
}

impl Admission for Event {
    fn set_defaults(&mut self) {}

    /// A DNS-1123 subdomain name, and the involved object in the event's namespace when it
    /// names one (as the API server checks core events).
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let event_ns = self.metadata.namespace.as_deref().unwrap_or("default");
        if let Some(ns) = self.involved_object.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            if ns != event_ns {
                errs.push(FieldError::new(
                    "involvedObject.namespace",
                    format!("invalid value {ns:?}: does not match event.namespace"),
                ));
            }
        }
        errs
    }
}

impl Admission for EventsV1Event {
    fn set_defaults(&mut self) {}

    /// What the API server requires of a new `events.k8s.io/v1` event: besides the checks of
    /// [`Admission::validate_existing`], `eventTime`, `reportingController`,
    /// `reportingInstance`, `action` and `reason`.
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = self.validate_existing();
        if self.event_time.is_none() {
            errs.push(FieldError::new("eventTime", "required value"));
        }
        for (path, value) in reported_fields(self) {
            if value.is_none_or(str::is_empty) {
                errs.push(FieldError::new(path, "required value"));
            }
        }
        errs
    }

    /// A DNS-1123 subdomain name and the fields' lengths. An event written before (through
    /// either Event kind: they are one stored resource) may lack the fields a new one needs,
    /// and stays writable, as in the API server.
    fn validate_existing(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        for ((path, value), max) in reported_fields(self).into_iter().zip([253, 128, 128, 128]) {
            if value.is_some_and(|v| v.len() > max) {
                errs.push(FieldError::new(path, format!("must be no more than {max} characters")));
            }
        }
        if self.note.as_ref().is_some_and(|n| n.len() > 1024) {
            errs.push(FieldError::new("note", "must be no more than 1024 bytes"));
        }
        errs
    }
}

/// The fields by which an `events.k8s.io/v1` event says who made it and why.
fn reported_fields(event: &EventsV1Event) -> [(&'static str, Option<&str>); 4] {
    [
        ("reportingController", event.reporting_controller.as_deref()),
        ("reportingInstance", event.reporting_instance.as_deref()),
        ("action", event.action.as_deref()),
        ("reason", event.reason.as_deref()),
    ]
}

impl Admission for Lease {
    fn set_defaults(&mut self) {}

    /// A DNS-1123 subdomain name.
    fn validate(&self) -> Vec<FieldError> {
        validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain)
    }
}

impl Admission for Deployment {
    /// The API server's defaults a client reads back: one replica, a rolling update of 25 %
    /// surge and 25 % unavailable, ten old revisions kept, a 600 s progress deadline.
    fn set_defaults(&mut self) {
        let Some(spec) = self.spec.as_mut() else { return };
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        let ty = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if ty == "RollingUpdate" {
            let rolling = strategy.rolling_update.get_or_insert_with(Default::default);
            rolling.max_surge.get_or_insert_with(|| IntOrString::String("25%".into()));
            rolling.max_unavailable.get_or_insert_with(|| IntOrString::String("25%".into()));
        }
    }

    /// A DNS-1123 subdomain name, a spec, and a non-empty selector that selects the pod
    /// template's labels.
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let Some(spec) = &self.spec else {
            errs.push(FieldError::new("spec", "required value"));
            return errs;
        };
        let selector = &spec.selector;
        let match_labels = selector.match_labels.clone().unwrap_or_default();
        if match_labels.is_empty() && selector.match_expressions.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::new("spec.selector", "empty selector is invalid for deployment"));
        }
        let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        if match_labels.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            errs.push(FieldError::new(
                "spec.template.metadata.labels",
                "`selector` does not match template `labels`",
            ));
        }
        if spec.replicas.is_some_and(|r| r < 0) {
            errs.push(FieldError::new("spec.replicas", "must be greater than or equal to 0"));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        match (&self.spec, &old.spec) {
            (Some(new), Some(old)) if new.selector != old.selector => {
                vec![FieldError::new("spec.selector", "field is immutable")]
            }
            _ => Vec::new(),
        }
    }
}

impl Admission for Pod {
    /// The API server's defaults a client reads back: `restartPolicy: Always` and a 30 s
    /// termination grace period.
    fn set_defaults(&mut self) {
        let Some(spec) = self.spec.as_mut() else { return };
        spec.restart_policy.get_or_insert_with(|| "Always".into());
        spec.termination_grace_period_seconds.get_or_insert(30);
    }

    /// A DNS-1123 subdomain name and at least one container, each named.
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let Some(spec) = &self.spec else {
            errs.push(FieldError::new("spec", "required value"));
            return errs;
        };
        if spec.containers.is_empty() {
            errs.push(FieldError::new("spec.containers", "required value"));
        }
        for (i, c) in spec.containers.iter().enumerate() {
            if c.name.is_empty() {
                errs.push(FieldError::new(
                    format!("{}.name", crate::index("spec.containers", i)),
                    "required value",
                ));
            }
        }
        errs
    }
}

impl Admission for CoreService {
    /// `type: ClusterIP` and `sessionAffinity: None`, and each port's protocol `TCP`.
    fn set_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.type_.get_or_insert_with(|| "ClusterIP".into());
        spec.session_affinity.get_or_insert_with(|| "None".into());
        for port in spec.ports.iter_mut().flatten() {
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    /// A DNS-1035 label name, a known type, ports in range (and named when there are several).
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1035Label);
        let Some(spec) = &self.spec else { return errs };
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
            errs.push(FieldError::new(
                "spec.type",
                format!("unsupported value {ty:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
            ));
        }
        let ports = spec.ports.as_deref().unwrap_or_default();
        for (i, port) in ports.iter().enumerate() {
            let path = crate::index("spec.ports", i);
            if !(1..=65535).contains(&port.port) {
                errs.push(FieldError::new(
                    format!("{path}.port"),
                    format!("invalid value {}: must be between 1 and 65535, inclusive", port.port),
                ));
            }
            if ports.len() > 1 && port.name.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::new(format!("{path}.name"), "required value"));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_is_merged() {
        let mut s: Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"token": "abc"}
        }))
        .unwrap();
        s.set_defaults();
        assert_eq!(s.data.as_ref().unwrap()["token"].0, b"abc");
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert!(s.validate().is_empty());
    }

    #[test]
    fn config_keys() {
        assert!(check_config_key("default.topic.partitions").is_ok());
        assert!(check_config_key("a b").is_err());
        assert!(check_config_key("..").is_err());
    }

    fn decoded<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn namespace_names_are_labels() {
        let mut ns: Namespace = decoded(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}));
        ns.set_defaults();
        assert!(ns.validate().is_empty());
        assert_eq!(ns.spec.unwrap().finalizers.unwrap(), ["kubernetes"]);
        let bad: Namespace = decoded(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}));
        assert_eq!(bad.validate()[0].path, "metadata.name");
    }

    #[test]
    fn deployment_selector_must_match_the_template() {
        let deployment = |selector: &str| -> Deployment {
            decoded(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": selector}},
                         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}
            }))
        };
        let mut ok = deployment("web");
        ok.set_defaults();
        assert!(ok.validate().is_empty(), "{:?}", ok.validate());
        assert_eq!(ok.spec.as_ref().unwrap().replicas, Some(1));
        let errs = deployment("other").validate();
        assert_eq!(errs[0].path, "spec.template.metadata.labels");
        assert_eq!(deployment("web").validate_update(&deployment("other"))[0].path, "spec.selector");
    }

    #[test]
    fn service_names_are_dns1035_labels_and_ports_are_checked() {
        let mut svc: CoreService = decoded(serde_json::json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}]}
        }));
        svc.set_defaults();
        assert!(svc.validate().is_empty());
        assert_eq!(svc.spec.as_ref().unwrap().type_.as_deref(), Some("ClusterIP"));
        let bad: CoreService = decoded(serde_json::json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"},
            "spec": {"type": "Magic", "ports": [{"port": 0}, {"port": 81, "name": "b"}]}
        }));
        let paths: Vec<String> = bad.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["metadata.name", "spec.type", "spec.ports[0].port", "spec.ports[0].name"]);
    }

    #[test]
    fn events() {
        let core: Event = decoded(serde_json::json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "b.1", "namespace": "default"},
            "involvedObject": {"kind": "Broker", "name": "b", "namespace": "other"}
        }));
        assert_eq!(core.validate()[0].path, "involvedObject.namespace");
        let v1: EventsV1Event = decoded(serde_json::json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "b.1"}, "reason": "Ready"
        }));
        let paths: Vec<String> = v1.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["eventTime", "reportingController", "reportingInstance", "action"]);
        assert!(v1.validate_existing().is_empty(), "an existing event needs none of them");
    }
}
