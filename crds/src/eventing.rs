//! `eventing.knative.dev/v1`: Broker and Trigger (reference sections 1.2 and 1.3).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duck::{impl_has_conditions, Addressable, AppliedEventPolicy, AuthStatus, BackoffPolicy, DeliverySpec, Destination, KReference};
use crate::meta::{annotation, annotation_path, default_annotation, validate_max_in_flight, validate_object_meta, NameRule};
use crate::{field, index, Admission, FieldError};

/// The annotation selecting a Broker's implementation (BRK-03).
pub const BROKER_CLASS_ANNOTATION: &str = "eventing.knative.dev/broker.class";
/// The class given to Brokers without one (BRK-04).
pub const DEFAULT_BROKER_CLASS: &str = "MTChannelBasedBroker";
/// The label Knative puts on a Trigger naming its Broker.
pub const BROKER_LABEL: &str = "eventing.knative.dev/broker";
/// A Trigger annotation naming a source the Trigger depends on (TRG-04).
pub const DEPENDENCY_ANNOTATION: &str = "knative.dev/dependency";
/// A Trigger annotation asking for the default Broker to be created (TRG-04).
pub const INJECTION_ANNOTATION: &str = "eventing.knative.dev/injection";

/// The desired state of a Broker (BRK-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "eventing.knative.dev",
    version = "v1",
    kind = "Broker",
    doc = "Broker: receives events and delivers each to every matching Trigger.",
    namespaced,
    status = "BrokerStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "eventing",
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Class","type":"string","jsonPath":".metadata.annotations.eventing\\.knative\\.dev/broker\\.class"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrokerSpec {
    /// Implementation-specific configuration, e.g. a ConfigMap (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<KReference>,
    /// Default delivery options for the Broker's Triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// Status of a Broker (BRK-02).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// Conditions (`Ready` and the class's own conditions), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// Where to send events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// All addresses (e.g. http and https).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Addressable>,
    /// Resolved dead-letter sink of `spec.delivery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
    /// CA certificates of the dead-letter sink.
    #[serde(default, rename = "deadLetterSinkCACerts", skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_ca_certs: Option<String>,
    /// OIDC audience of the dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_audience: Option<String>,
    /// EventPolicies applied to the Broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppliedEventPolicy>,
}

/// The desired state of a Trigger (TRG-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "eventing.knative.dev",
    version = "v1",
    kind = "Trigger",
    doc = "Trigger: a filter on a Broker's events and where matching events go.",
    namespaced,
    status = "TriggerStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "eventing",
    printcolumn = r#"{"name":"Broker","type":"string","jsonPath":".spec.broker"}"#,
    printcolumn = r#"{"name":"Subscriber_URI","type":"string","jsonPath":".status.subscriberUri"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerSpec {
    /// Name of the Broker in the Trigger's namespace (required unless `brokerRef`; immutable).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub broker: String,
    /// Reference to the Broker, possibly in another namespace (instead of `broker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_ref: Option<KReference>,
    /// Legacy attribute filter (TRG-05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<TriggerFilter>,
    /// Subscriptions API filters; all must pass; overrides `filter` when non-empty (TRG-06).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<SubscriptionsApiFilter>,
    /// Where matching events go (required).
    #[serde(default)]
    pub subscriber: Destination,
    /// Delivery options; when any is set they replace the Broker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// Status of a Trigger (TRG-02).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    /// Conditions (`Ready`, `BrokerReady`, `SubscriptionReady`, `DependencyReady`, `SubscriberResolved`, ), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// Resolved subscriber URI (empty when unresolvable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_uri: Option<String>,
    /// CA certificates of the subscriber.
    #[serde(default, rename = "subscriberCACerts", skip_serializing_if = "Option::is_none")]
    pub subscriber_ca_certs: Option<String>,
    /// OIDC audience of the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_audience: Option<String>,
    /// Resolved dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
    /// CA certificates of the dead-letter sink.
    #[serde(default, rename = "deadLetterSinkCACerts", skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_ca_certs: Option<String>,
    /// OIDC audience of the dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_audience: Option<String>,
    /// The identity deliveries are made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

impl_has_conditions!(BrokerStatus, TriggerStatus);

/// Legacy attribute filter of a Trigger (TRG-05).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerFilter {
    /// Attribute name to required value; `""` means "any non-empty value".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// One element of a Trigger's `filters` (CloudEvents Subscriptions API dialects, TRG-06).
/// Exactly one dialect may be set per element.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionsApiFilter {
    /// Every listed attribute equals the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<BTreeMap<String, String>>,
    /// Every listed attribute starts with the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<BTreeMap<String, String>>,
    /// Every listed attribute ends with the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<BTreeMap<String, String>>,
    /// All nested filters pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub all: Option<Vec<SubscriptionsApiFilter>>,
    /// At least one nested filter passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_list")]
    pub any: Option<Vec<SubscriptionsApiFilter>>,
    /// The nested filter fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub not: Option<Box<SubscriptionsApiFilter>>,
    /// A CESQL expression that must evaluate to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cesql: Option<String>,
}

/// True when `name` is a valid CloudEvents attribute name for filters: `^[a-z][a-z0-9]*$`.
pub fn is_valid_attribute_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Checks every key of an attribute map (TRG-05), reporting errors at `path`.
pub fn validate_attribute_names(attributes: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    attributes
        .into_iter()
        .flatten()
        .filter(|(k, _)| !is_valid_attribute_name(k))
        .map(|(k, _)| {
            FieldError::new(
                path.to_string(),
                format!("invalid key name {k:?}: attribute name must start with a letter and can only contain lowercase alphanumeric"),
            )
        })
        .collect()
}

/// Checks an `exact`, `prefix` or `suffix` map: valid attribute names and non-empty values
/// (Knative cannot build such a filter; Sluice refuses it at admission).
fn validate_attribute_conditions(attributes: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = validate_attribute_names(attributes, path);
    for (name, value) in attributes.into_iter().flatten() {
        if value.is_empty() && is_valid_attribute_name(name) {
            errs.push(FieldError::new(format!("{path}.{name}"), "the value must not be empty"));
        }
    }
    errs
}

impl TriggerFilter {
    /// Checks the attribute names.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        validate_attribute_names(self.attributes.as_ref(), &field(path, "attributes"))
    }
}

impl SubscriptionsApiFilter {
    /// The dialects set in this element, in the order exact, prefix, suffix, all, any, not,
    /// cesql (empty maps, lists and expressions count as unset, as in Knative).
    pub fn dialects(&self) -> Vec<&'static str> {
        let mut d = Vec::new();
        if self.exact.as_ref().is_some_and(|m| !m.is_empty()) {
            d.push("exact");
        }
        if self.prefix.as_ref().is_some_and(|m| !m.is_empty()) {
            d.push("prefix");
        }
        if self.suffix.as_ref().is_some_and(|m| !m.is_empty()) {
            d.push("suffix");
        }
        if self.all.as_ref().is_some_and(|l| !l.is_empty()) {
            d.push("all");
        }
        if self.any.as_ref().is_some_and(|l| !l.is_empty()) {
            d.push("any");
        }
        if self.not.is_some() {
            d.push("not");
        }
        if self.cesql.as_ref().is_some_and(|e| !e.is_empty()) {
            d.push("cesql");
        }
        d
    }

    /// Validates this element and its nested filters: exactly one dialect, attribute names,
    /// a CESQL expression that parses.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match self.dialects().as_slice() {
            [] => errs.push(FieldError::new(path.to_string(), "expected exactly one, got neither")),
            [_] => {}
            many => errs.push(FieldError::new(
                path.to_string(),
                format!("multiple dialects found ({})", many.join(", ")),
            )),
        }
        errs.extend(validate_attribute_conditions(self.exact.as_ref(), &field(path, "exact")));
        errs.extend(validate_attribute_conditions(self.prefix.as_ref(), &field(path, "prefix")));
        errs.extend(validate_attribute_conditions(self.suffix.as_ref(), &field(path, "suffix")));
        if let Some(all) = &self.all {
            errs.extend(validate_filters(all, &field(path, "all")));
        }
        if let Some(any) = &self.any {
            errs.extend(validate_filters(any, &field(path, "any")));
        }
        if let Some(not) = &self.not {
            errs.extend(not.validate(&field(path, "not")));
        }
        if let Some(expr) = self.cesql.as_deref().filter(|e| !e.is_empty()) {
            if let Err(e) = sluice_cesql::parse(expr) {
                errs.push(FieldError::new(field(path, "cesql"), format!("invalid value {expr:?}: {e}")));
            }
        }
        errs
    }
}

/// Validates a list of Subscriptions API filters under `path` (e.g. `spec.filters`).
pub fn validate_filters(filters: &[SubscriptionsApiFilter], path: &str) -> Vec<FieldError> {
    filters.iter().enumerate().flat_map(|(i, f)| f.validate(&index(path, i))).collect()
}

impl Broker {
    /// The Broker's class (`eventing.knative.dev/broker.class`), if set.
    pub fn class(&self) -> Option<&str> {
        annotation(&self.metadata, BROKER_CLASS_ANNOTATION).filter(|c| !c.is_empty())
    }
}

/// The delivery Knative gives Brokers without one (`config-br-defaults`, BRK-04).
pub fn default_broker_delivery() -> DeliverySpec {
    DeliverySpec {
        retry: Some(10),
        backoff_policy: Some(BackoffPolicy::Exponential),
        backoff_delay: Some("PT0.2S".into()),
        ..Default::default()
    }
}

/// The channel configuration of `MTChannelBasedBroker`s without `spec.config` (BRK-04).
pub fn default_broker_config() -> KReference {
    KReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "config-br-default-channel".into(),
        namespace: Some("knative-eventing".into()),
        ..Default::default()
    }
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into())
}

impl Admission for Broker {
    /// Defaults the class to `MTChannelBasedBroker`, `spec.config` (MT class only) to
    /// `knative-eventing/config-br-default-channel`, `spec.delivery` to 10 exponential retries
    /// from `PT0.2S`, and reference namespaces to the Broker's.
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        if self.class().is_none() {
            self.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .remove(BROKER_CLASS_ANNOTATION);
            default_annotation(&mut self.metadata, BROKER_CLASS_ANNOTATION, DEFAULT_BROKER_CLASS);
        }
        if self.spec.config.is_none() && self.class() == Some(DEFAULT_BROKER_CLASS) {
            self.spec.config = Some(default_broker_config());
        }
        if self.spec.delivery.is_none() {
            self.spec.delivery = Some(default_broker_delivery());
        }
        if let Some(c) = &mut self.spec.config {
            c.set_default_namespace(&ns);
        }
        if let Some(d) = &mut self.spec.delivery {
            d.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        if self.class().is_none() {
            errs.push(FieldError::missing(annotation_path(BROKER_CLASS_ANNOTATION)));
        }
        if let Some(c) = &self.spec.config {
            errs.extend(c.validate("spec.config"));
        }
        if let Some(d) = &self.spec.delivery {
            errs.extend(d.validate("spec.delivery"));
        }
        errs
    }

    /// The class annotation and `spec.config` are immutable (BRK-03).
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.class() != old.class() {
            errs.push(FieldError::immutable(annotation_path(BROKER_CLASS_ANNOTATION)));
        }
        if self.spec.config != old.spec.config {
            errs.push(FieldError::immutable("spec.config"));
        }
        errs
    }
}

impl Trigger {
    /// The name of the Trigger's Broker (`spec.broker`, else `spec.brokerRef.name`).
    pub fn broker_name(&self) -> &str {
        if !self.spec.broker.is_empty() {
            &self.spec.broker
        } else {
            self.spec.broker_ref.as_ref().map_or("", |r| r.name.as_str())
        }
    }

    fn validate_annotations(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(dep) = annotation(&self.metadata, DEPENDENCY_ANNOTATION) {
            let path = annotation_path(DEPENDENCY_ANNOTATION);
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(dep) {
                Err(e) => errs.push(FieldError::new(
                    path,
                    format!("the provided annotation was not a corev1.ObjectReference: {dep:?}: {e}"),
                )),
                Ok(obj) => {
                    let get = |k: &str| obj.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    let ns = get("namespace");
                    if !ns.is_empty() && ns != namespace_of(&self.metadata) {
                        errs.push(FieldError::new(
                            field(&path, "namespace"),
                            format!(
                                "namespace must be empty or equal to the trigger namespace {:?}",
                                namespace_of(&self.metadata)
                            ),
                        ));
                    }
                    for k in ["kind", "name", "apiVersion"] {
                        if get(k).is_empty() {
                            errs.push(FieldError::missing(field(&path, k)));
                        }
                    }
                }
            }
        }
        if let Some(inj) = annotation(&self.metadata, INJECTION_ANNOTATION) {
            let path = annotation_path(INJECTION_ANNOTATION);
            if inj != "enabled" && inj != "disabled" {
                errs.push(FieldError::new(
                    path,
                    format!("the provided injection annotation value can only be \"enabled\" or \"disabled\", not {inj:?}"),
                ));
            } else if self.spec.broker != "default" {
                errs.push(FieldError::new(
                    path,
                    format!(
                        "the provided injection annotation is only used for default broker, but non-default broker specified here: {:?}",
                        self.spec.broker
                    ),
                ));
            }
        }
        errs
    }
}

impl Admission for Trigger {
    /// Defaults reference namespaces to the Trigger's and labels the Trigger with its Broker.
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        self.spec.subscriber.set_default_namespace(&ns);
        if let Some(d) = &mut self.spec.delivery {
            d.set_default_namespace(&ns);
        }
        let broker = self.broker_name().to_string();
        if !broker.is_empty() {
            self.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(BROKER_LABEL.into(), broker);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(self.validate_annotations());
        errs.extend(validate_max_in_flight(&self.metadata));
        match (&self.spec.broker_ref, self.spec.broker.is_empty()) {
            (None, true) => errs.push(FieldError::missing("spec.broker")),
            (Some(_), false) => errs.push(FieldError::new("spec", "expected exactly one, got both: broker, brokerRef")),
            _ => {}
        }
        if let Some(r) = &self.spec.broker_ref {
            if r.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
                errs.push(FieldError::new(
                    "spec.brokerRef.namespace",
                    "must not set the field(s): only name, apiVersion and kind are supported fields when feature cross-namespace-event-links is disabled",
                ));
            }
        }
        if let Some(f) = &self.spec.filter {
            errs.extend(f.validate("spec.filter"));
        }
        errs.extend(validate_filters(&self.spec.filters, "spec.filters"));
        errs.extend(self.spec.subscriber.validate("spec.subscriber"));
        if let Some(d) = &self.spec.delivery {
            errs.extend(d.validate("spec.delivery"));
        }
        errs
    }

    /// `spec.broker` (and `spec.brokerRef`) are immutable (TRG-01).
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.spec.broker != old.spec.broker {
            errs.push(FieldError::immutable("spec.broker"));
        }
        if self.spec.broker_ref != old.spec.broker_ref {
            errs.push(FieldError::immutable("spec.brokerRef"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(yaml: &str) -> Trigger {
        let mut t: Trigger = serde_yaml::from_str(yaml).unwrap();
        t.set_defaults();
        t
    }

    const BASE: &str = "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: orders}\nspec:\n  broker: default\n  subscriber: {uri: 'http://example.com/'}\n";

    #[test]
    fn broker_defaults() {
        let mut b = Broker::new("default", BrokerSpec::default());
        b.set_defaults();
        assert_eq!(b.class(), Some("MTChannelBasedBroker"));
        assert_eq!(b.spec.delivery, Some(default_broker_delivery()));
        assert_eq!(b.spec.config, Some(default_broker_config()));
        assert!(b.validate().is_empty());

        let mut k = Broker::new("k", BrokerSpec::default());
        k.metadata.annotations = Some([(BROKER_CLASS_ANNOTATION.to_string(), "Kafka".to_string())].into());
        k.metadata.namespace = Some("ns".into());
        k.set_defaults();
        assert_eq!(k.spec.config, None);
        assert_eq!(k.spec.delivery.as_ref().unwrap().retry, Some(10));
    }

    #[test]
    fn broker_immutable_fields() {
        let mut old = Broker::new("b", BrokerSpec::default());
        old.set_defaults();
        let mut new = old.clone();
        new.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(BROKER_CLASS_ANNOTATION.into(), "Kafka".into());
        new.spec.config = None;
        let errs = new.validate_update(&old);
        assert_eq!(
            errs,
            vec![
                FieldError::new(
                    "metadata.annotations[eventing.knative.dev/broker.class]",
                    "Immutable fields changed (-old +new)"
                ),
                FieldError::new("spec.config", "Immutable fields changed (-old +new)"),
            ]
        );
        let mut delivery_only = old.clone();
        delivery_only.spec.delivery = None;
        assert!(delivery_only.validate_update(&old).is_empty());
    }

    #[test]
    fn trigger_defaults_and_label() {
        let mut t = trigger(BASE);
        t.spec.subscriber = Destination {
            r#ref: Some(KReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: "s".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        t.metadata.namespace = Some("team".into());
        t.set_defaults();
        assert_eq!(t.spec.subscriber.r#ref.as_ref().unwrap().namespace.as_deref(), Some("team"));
        assert_eq!(t.metadata.labels.as_ref().unwrap()[BROKER_LABEL], "default");
        assert!(t.validate().is_empty());
    }

    #[test]
    fn trigger_requires_broker_and_subscriber() {
        let t = trigger("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {}\n");
        let errs = t.validate();
        assert_eq!(
            errs,
            vec![
                FieldError::missing("spec.broker"),
                FieldError::new("spec.subscriber", "expected at least one, got none: ref, uri")
            ]
        );
    }

    #[test]
    fn multiple_dialects() {
        let t = trigger(&format!(
            "{BASE}  filters:\n    - exact: {{type: a}}\n    - exact: {{type: a}}\n      prefix: {{source: b}}\n"
        ));
        assert_eq!(
            t.validate(),
            vec![FieldError::new("spec.filters[1]", "multiple dialects found (exact, prefix)")]
        );
    }

    #[test]
    fn empty_filter_values_are_refused_at_admission() {
        let t = trigger(&format!(
            "{BASE}  filters:\n    - exact: {{type: \"\"}}\n    - not: {{suffix: {{source: \"\"}}}}\n"
        ));
        assert_eq!(
            t.validate(),
            vec![
                FieldError::new("spec.filters[0].exact.type", "the value must not be empty"),
                FieldError::new("spec.filters[1].not.suffix.source", "the value must not be empty"),
            ]
        );
    }

    #[test]
    fn empty_filter_element() {
        let t = trigger(&format!("{BASE}  filters:\n    - {{}}\n"));
        assert_eq!(
            t.validate(),
            vec![FieldError::new("spec.filters[0]", "expected exactly one, got neither")]
        );
    }

    #[test]
    fn nested_filters_are_validated() {
        let t = trigger(&format!(
            "{BASE}  filters:\n    - all:\n        - exact: {{type: a}}\n        - exact: {{Type: a}}\n    - not: {{suffix: {{source: x}}, prefix: {{id: y}}}}\n    - any: [{{}}]\n"
        ));
        let errs = t.validate();
        assert_eq!(errs[0].path, "spec.filters[0].all[1].exact");
        assert!(errs[0].message.contains("\"Type\""));
        assert_eq!(
            errs[1],
            FieldError::new("spec.filters[1].not", "multiple dialects found (prefix, suffix)")
        );
        assert_eq!(
            errs[2],
            FieldError::new("spec.filters[2].any[0]", "expected exactly one, got neither")
        );
    }

    #[test]
    fn attribute_names() {
        for bad in ["Type", "my_ext", "my-ext", "1abc", "ünï", "a b", ""] {
            assert!(!is_valid_attribute_name(bad), "{bad}");
        }
        assert!(is_valid_attribute_name("abcdefghijklmnopqrst"));
        let t = trigger(&format!("{BASE}  filter:\n    attributes: {{Type: x}}\n"));
        assert_eq!(t.validate()[0].path, "spec.filter.attributes");
    }

    #[test]
    fn invalid_cesql_is_rejected() {
        let t = trigger(&format!("{BASE}  filters:\n    - cesql: \"type = = 'x'\"\n"));
        let errs = t.validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "spec.filters[0].cesql");
    }

    #[test]
    fn valid_cesql_is_accepted_once_the_parser_exists() {
        let expr = "type = 'com.example.order' AND EXISTS subject";
        let t = trigger(&format!("{BASE}  filters:\n    - cesql: \"{expr}\"\n"));
        match sluice_cesql::parse(expr) {
            Ok(_) => assert!(t.validate().is_empty(), "{:?}", t.validate()),
            Err(_) => assert_eq!(t.validate()[0].path, "spec.filters[0].cesql"),
        }
    }

    #[test]
    fn broker_is_immutable() {
        let old = trigger(BASE);
        let mut new = old.clone();
        new.spec.broker = "other".into();
        assert_eq!(new.validate_update(&old), vec![FieldError::immutable("spec.broker")]);
    }

    #[test]
    fn dependency_annotation() {
        let mut t = trigger(BASE);
        t.metadata.annotations = Some([(DEPENDENCY_ANNOTATION.to_string(), r#"{"kind":"PingSource"}"#.to_string())].into());
        let errs = t.validate();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].path, "metadata.annotations[knative.dev/dependency].name");
    }
}
