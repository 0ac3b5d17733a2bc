//! The Kafka extension's own kinds: KafkaSink (`eventing.knative.dev/v1alpha1`, KSK-01) and
//! KafkaChannel (`messaging.knative.dev/v1beta1`, KCH-01). KafkaSource is in
//! [`crate::sources::kafka`].

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duck::{impl_has_conditions, parse_iso8601_duration, Addressable, AppliedEventPolicy, DeliverySpec, SubscriberSpec};
use crate::messaging::{validate_subscribers, SCOPE_ANNOTATION, SUBSCRIBABLE_ANNOTATION};
use crate::meta::{annotation, annotation_path, default_annotation, validate_object_meta, NameRule};
use crate::{Admission, FieldError};

/// KafkaSink `contentMode` values.
pub const CONTENT_MODES: &[&str] = &["binary", "structured"];
/// KafkaChannel `retentionDuration` when unset (7 days).
pub const DEFAULT_RETENTION: &str = "PT168H";

/// The Secret holding a KafkaSink's credentials (`auth.secret.ref.name`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSinkAuth {
    /// The Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<KafkaSinkSecret>,
}

/// A reference to the credentials Secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSinkSecret {
    /// The Secret by name.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<KafkaSinkSecretRef>,
}

/// A Secret name.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSinkSecretRef {
    /// Name of the Secret in the sink's namespace.
    #[serde(default)]
    pub name: String,
}

/// The desired state of a KafkaSink.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "eventing.knative.dev",
    version = "v1alpha1",
    kind = "KafkaSink",
    doc = "KafkaSink: an Addressable that writes the events it receives to a Kafka topic.",
    namespaced,
    status = "KafkaSinkStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "eventing",
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSinkSpec {
    /// The topic (required; immutable).
    #[serde(default)]
    pub topic: String,
    /// Partitions when the sink creates the topic (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_partitions: Option<i32>,
    /// Replication factor when the sink creates the topic (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i16>,
    /// Kafka bootstrap servers (required).
    #[serde(default)]
    pub bootstrap_servers: Vec<String>,
    /// `binary` (default) or `structured` CloudEvents Kafka binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_mode: Option<String>,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<KafkaSinkAuth>,
}

/// Status of a KafkaSink.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSinkStatus {
    /// Conditions (`Ready`, `TopicReady`, `ConfigMapUpdated`, ), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// Where to send events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// All addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Addressable>,
    /// EventPolicies applied to the sink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppliedEventPolicy>,
}

/// The desired state of a KafkaChannel.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "messaging.knative.dev",
    version = "v1beta1",
    kind = "KafkaChannel",
    doc = "KafkaChannel: a channel backed by one Kafka topic.",
    namespaced,
    status = "KafkaChannelStatus",
    derive = "PartialEq",
    shortname = "kc",
    category = "all",
    category = "knative",
    category = "messaging",
    category = "channel",
    label("messaging.knative.dev/subscribable", "true"),
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaChannelSpec {
    /// Topic partitions (default 1; immutable).
    #[serde(default)]
    pub num_partitions: i32,
    /// Topic replication factor (default 1; immutable).
    #[serde(default)]
    pub replication_factor: i16,
    /// ISO-8601 retention of the topic (default `PT168H`; immutable).
    #[serde(default)]
    pub retention_duration: String,
    /// Subscribers, written by the Subscription controller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberSpec>,
    /// Default delivery options for the subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// Status of a KafkaChannel: the Channelable status.
pub type KafkaChannelStatus = crate::duck::ChannelableStatus;

impl_has_conditions!(KafkaSinkStatus);

impl Admission for KafkaSink {
    /// Defaults `contentMode` to `binary`.
    fn set_defaults(&mut self) {
        if self.spec.content_mode.as_deref().unwrap_or("").is_empty() {
            self.spec.content_mode = Some("binary".into());
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let spec = &self.spec;
        let mode = spec.content_mode.as_deref().unwrap_or("binary");
        if !CONTENT_MODES.contains(&mode) {
            errs.push(FieldError::new(
                "spec.contentMode",
                format!("invalid value {mode:?}: expected binary or structured"),
            ));
        }
        if spec.bootstrap_servers.is_empty() {
            errs.push(FieldError::missing("spec.bootstrapServers"));
        }
        if spec.topic.is_empty() {
            errs.push(FieldError::missing("spec.topic"));
        }
        if let Some(r) = spec.replication_factor.filter(|r| *r <= 0) {
            errs.push(FieldError::invalid("spec.replicationFactor", r));
        }
        if let Some(n) = spec.num_partitions.filter(|n| *n <= 0) {
            errs.push(FieldError::invalid("spec.numPartitions", n));
        }
        if let Some(r) = spec.auth.as_ref().and_then(|a| a.secret.as_ref()).and_then(|s| s.r#ref.as_ref()) {
            if r.name.is_empty() {
                errs.push(FieldError::missing("spec.auth.secret.ref.name"));
            }
        }
        errs
    }

    /// Topic, partitions and replication factor are immutable.
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.spec.topic != old.spec.topic {
            errs.push(FieldError::immutable("spec.topic"));
        }
        if self.spec.replication_factor != old.spec.replication_factor {
            errs.push(FieldError::immutable("spec.replicationFactor"));
        }
        if self.spec.num_partitions != old.spec.num_partitions {
            errs.push(FieldError::immutable("spec.numPartitions"));
        }
        errs
    }
}

impl Admission for KafkaChannel {
    /// Defaults partitions and replication factor to 1 and retention to 7 days.
    fn set_defaults(&mut self) {
        default_annotation(&mut self.metadata, SUBSCRIBABLE_ANNOTATION, "v1");
        let spec = &mut self.spec;
        if spec.num_partitions == 0 {
            spec.num_partitions = 1;
        }
        if spec.replication_factor == 0 {
            spec.replication_factor = 1;
        }
        if spec.retention_duration.is_empty() {
            spec.retention_duration = DEFAULT_RETENTION.into();
        }
        let ns = self
            .metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        if let Some(d) = &mut spec.delivery {
            d.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        if let Some(s) = annotation(&self.metadata, SCOPE_ANNOTATION) {
            if s != "cluster" && s != "namespace" {
                errs.push(FieldError::new(
                    annotation_path(SCOPE_ANNOTATION),
                    format!("invalid value {s:?}: expected either 'cluster' or 'namespace'"),
                ));
            }
        }
        let spec = &self.spec;
        if spec.num_partitions <= 0 {
            errs.push(FieldError::invalid("spec.numPartitions", spec.num_partitions));
        }
        if spec.replication_factor <= 0 {
            errs.push(FieldError::invalid("spec.replicationFactor", spec.replication_factor));
        }
        if let Err(e) = parse_iso8601_duration(&spec.retention_duration) {
            errs.push(FieldError::new(
                "spec.retentionDuration",
                format!("invalid value: {}: {e}", spec.retention_duration),
            ));
        }
        errs.extend(validate_subscribers(&spec.subscribers, "spec.subscribers"));
        if let Some(d) = &spec.delivery {
            errs.extend(d.validate("spec.delivery"));
        }
        errs
    }

    /// Partitions, replication factor and retention are immutable.
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.spec.num_partitions != old.spec.num_partitions {
            errs.push(FieldError::immutable("spec.numPartitions"));
        }
        if self.spec.replication_factor != old.spec.replication_factor {
            errs.push(FieldError::immutable("spec.replicationFactor"));
        }
        if !old.spec.retention_duration.is_empty() && self.spec.retention_duration != old.spec.retention_duration {
            errs.push(FieldError::immutable("spec.retentionDuration"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_channel_defaults() {
        let mut c = KafkaChannel::new("c", KafkaChannelSpec::default());
        c.set_defaults();
        assert_eq!((c.spec.num_partitions, c.spec.replication_factor), (1, 1));
        assert_eq!(c.spec.retention_duration, "PT168H");
        assert!(c.validate().is_empty());
        let old = c.clone();
        c.spec.num_partitions = 3;
        assert_eq!(c.validate_update(&old), vec![FieldError::immutable("spec.numPartitions")]);
        c.spec.retention_duration = "7 days".into();
        assert_eq!(c.validate()[0].path, "spec.retentionDuration");
    }

    #[test]
    fn kafka_sink_rules() {
        let mut s = KafkaSink::new("s", KafkaSinkSpec::default());
        s.set_defaults();
        assert_eq!(s.spec.content_mode.as_deref(), Some("binary"));
        assert_eq!(
            s.validate(),
            vec![FieldError::missing("spec.bootstrapServers"), FieldError::missing("spec.topic")]
        );
        s.spec.content_mode = Some("text".into());
        assert_eq!(s.validate()[0].path, "spec.contentMode");
    }
}
