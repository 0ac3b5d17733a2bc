//! KafkaSource (`sources.knative.dev/v1`, eventing-kafka-broker): Kafka records as
//! CloudEvents (KFS-01..03).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{namespace_of, source_status, validate_source};
use crate::duck::{CloudEventOverrides, DeliverySpec, Destination, SecretValueFromSource};
use crate::meta::{validate_object_meta, NameRule};
use crate::{field, Admission, FieldError};

/// The CloudEvents type of records that are not CloudEvents already.
pub const EVENT_TYPE: &str = "dev.knative.kafka.event";
/// The label choosing how record keys are decoded.
pub const KEY_TYPE_LABEL: &str = "kafkasources.sources.knative.dev/key-type";
/// Allowed values of [`KEY_TYPE_LABEL`].
pub const KEY_TYPES: &[&str] = &["string", "int", "float", "byte-array"];
/// Allowed `initialOffset` values.
pub const OFFSETS: &[&str] = &["earliest", "latest"];
/// Allowed `ordering` values.
pub const ORDERINGS: &[&str] = &["ordered", "unordered"];
/// Sluice's annotation letting a KafkaSource send up to this many records of a partition in
/// one request, in the CloudEvents batched content mode. Unset (or 1) is Knative's one event
/// per request; a sink that refuses a batch gets its events again one at a time. Only for
/// ordered delivery: the batch is a partition's next records, in order.
pub const MAX_BATCH_SIZE_ANNOTATION: &str = "sluice.dev/max-batch-size";
/// The largest [`MAX_BATCH_SIZE_ANNOTATION`] accepted.
pub const MAX_BATCH_SIZE_LIMIT: usize = 10_000;

/// The batch size [`MAX_BATCH_SIZE_ANNOTATION`] asks for, or the reason it is not one.
pub fn max_batch_size(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Result<usize, FieldError> {
    match crate::meta::annotation(meta, MAX_BATCH_SIZE_ANNOTATION) {
        None => Ok(1),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_BATCH_SIZE_LIMIT).contains(&n) => Ok(n),
            _ => Err(FieldError::new(
                crate::meta::annotation_path(MAX_BATCH_SIZE_ANNOTATION),
                format!("invalid value {v:?}: must be an integer from 1 to {MAX_BATCH_SIZE_LIMIT}"),
            )),
        },
    }
}

/// SASL settings; each value comes from a Secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSaslSpec {
    /// Use SASL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SecretValueFromSource>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretValueFromSource>,
    /// AWS role ARN (MSK IAM).
    #[serde(default, rename = "roleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<SecretValueFromSource>,
    /// OAuth token provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_provider: Option<SecretValueFromSource>,
    /// Mechanism: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, ...
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<SecretValueFromSource>,
}

/// TLS settings; each value comes from a Secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaTlsSpec {
    /// Use TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretValueFromSource>,
    /// Client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretValueFromSource>,
    /// CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<SecretValueFromSource>,
}

/// Network settings of a Kafka client.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaNetSpec {
    /// SASL authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSaslSpec>,
    /// TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTlsSpec>,
}

impl KafkaNetSpec {
    fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut check = |v: &Option<SecretValueFromSource>, p: String| {
            if let Some(sel) = v.as_ref().and_then(|v| v.secret_key_ref.as_ref()) {
                errs.extend(sel.validate(&field(&p, "secretKeyRef")));
            }
        };
        if let Some(s) = &self.sasl {
            let p = field(path, "sasl");
            for (v, name) in [
                (&s.user, "user"),
                (&s.password, "password"),
                (&s.role_arn, "roleARN"),
                (&s.token_provider, "tokenProvider"),
                (&s.type_, "type"),
            ] {
                check(v, field(&p, name));
            }
        }
        if let Some(t) = &self.tls {
            let p = field(path, "tls");
            for (v, name) in [(&t.cert, "cert"), (&t.key, "key"), (&t.ca_cert, "caCert")] {
                check(v, field(&p, name));
            }
        }
        errs
    }
}

/// The desired state of a KafkaSource.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1",
    kind = "KafkaSource",
    doc = "KafkaSource: Kafka records as CloudEvents.",
    namespaced,
    status = "KafkaSourceStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "eventing",
    category = "sources",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    annotation("registry.knative.dev/eventTypes", r#"[{"type":"dev.knative.kafka.event"}]"#),
    printcolumn = r#"{"name":"Topics","type":"string","jsonPath":".spec.topics"}"#,
    printcolumn = r#"{"name":"BootstrapServers","type":"string","jsonPath":".spec.bootstrapServers"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSourceSpec {
    /// Kafka bootstrap servers, `host:port` (required).
    #[serde(default)]
    pub bootstrap_servers: Vec<String>,
    /// Topics to consume (required).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Consumer group (Knative generates `knative-kafka-source-<uuid>`; immutable).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consumer_group: String,
    /// Number of consumers (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<i32>,
    /// Where a new group starts: `earliest` or `latest` (default).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initial_offset: String,
    /// `ordered` (default: per-partition, one at a time) or `unordered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<String>,
    /// Retries, backoff and dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    /// SASL and TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<KafkaNetSpec>,
    /// Where events go (required).
    #[serde(default)]
    pub sink: Destination,
    /// Extension attributes added to every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_overrides: Option<CloudEventOverrides>,
}

/// Where the virtual replicas of a source run.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// The dispatcher pod.
    #[serde(default)]
    pub pod_name: String,
    /// Virtual replicas placed there.
    #[serde(default)]
    pub vreplicas: i32,
}

source_status! {
    /// Status of a KafkaSource (`SinkProvided`, `Deployed`, `KeyTypeCorrect`, ...).
    KafkaSourceStatus {
        /// Number of consumers running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consumers: Option<i32>,
        /// Label selector of the dispatcher pods.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
        /// Claimed partitions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claims: Option<String>,
        /// Placement of virtual replicas.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        placements: Vec<Placement>,
    }
}

impl Admission for KafkaSource {
    /// Defaults consumers to 1, `initialOffset` to `latest`, `ordering` to `ordered`, the
    /// consumer group to `knative-kafka-source-<uid>` when the object has a uid, and reference
    /// namespaces.
    fn set_defaults(&mut self) {
        let spec = &mut self.spec;
        if spec.consumer_group.is_empty() {
            if let Some(uid) = self.metadata.uid.as_deref().filter(|u| !u.is_empty()) {
                spec.consumer_group = format!("knative-kafka-source-{uid}");
            }
        }
        if spec.consumers.is_none() {
            spec.consumers = Some(1);
        }
        if spec.initial_offset.is_empty() {
            spec.initial_offset = "latest".into();
        }
        if spec.ordering.is_none() {
            spec.ordering = Some("ordered".into());
        }
        let ns = namespace_of(&self.metadata);
        spec.sink.set_default_namespace(&ns);
        if let Some(d) = &mut spec.delivery {
            d.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let spec = &self.spec;
        match max_batch_size(&self.metadata) {
            Err(e) => errs.push(e),
            // Batches are a partition's records in order; unordered delivery sends each alone.
            Ok(n) if n > 1 && spec.ordering.as_deref() == Some("unordered") => errs.push(FieldError::new(
                crate::meta::annotation_path(MAX_BATCH_SIZE_ANNOTATION),
                format!("batches of {n} need ordering: ordered (records of a partition are batched in order); spec.ordering is unordered"),
            )),
            Ok(_) => {}
        }
        errs.extend(validate_source(&spec.sink, spec.ce_overrides.as_ref()));
        if spec.topics.is_empty() {
            errs.push(FieldError::missing("spec.topics"));
        }
        if spec.bootstrap_servers.is_empty() {
            errs.push(FieldError::missing("spec.bootstrapServers"));
        }
        if !OFFSETS.contains(&spec.initial_offset.as_str()) {
            errs.push(FieldError::new(
                "spec.initialOffset",
                format!("invalid value {:?}: expected one of earliest, latest", spec.initial_offset),
            ));
        }
        if let Some(o) = &spec.ordering {
            if !ORDERINGS.contains(&o.as_str()) {
                errs.push(FieldError::new(
                    "spec.ordering",
                    format!("invalid value {o:?}: expected one of: [ordered,unordered]"),
                ));
            }
        }
        if let Some(d) = &spec.delivery {
            errs.extend(d.validate("spec.delivery"));
        }
        if let Some(n) = &spec.net {
            errs.extend(n.validate("spec.net"));
        }
        errs
    }

    /// The consumer group is immutable once set.
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        if !old.spec.consumer_group.is_empty() && self.spec.consumer_group != old.spec.consumer_group {
            vec![FieldError::immutable("spec.consumerGroup")]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_rules() {
        let mut k = KafkaSource::new("k", KafkaSourceSpec::default());
        k.spec.sink.uri = Some("http://x/".into());
        k.set_defaults();
        assert_eq!(k.spec.initial_offset, "latest");
        assert_eq!(k.spec.ordering.as_deref(), Some("ordered"));
        assert_eq!(k.spec.consumers, Some(1));
        assert_eq!(
            k.validate(),
            vec![FieldError::missing("spec.topics"), FieldError::missing("spec.bootstrapServers")]
        );
        k.spec.topics = vec!["t".into()];
        k.spec.bootstrap_servers = vec!["localhost:9092".into()];
        k.spec.initial_offset = "KAFKA_INITIAL_OFFSET".into();
        k.spec.ordering = Some("random".into());
        let errs = k.validate();
        assert_eq!(errs[0].path, "spec.initialOffset");
        assert_eq!(errs[1].path, "spec.ordering");
    }

    #[test]
    fn batch_sizes_are_from_1_to_the_limit() {
        let mut k = KafkaSource::new("k", KafkaSourceSpec::default());
        assert_eq!(max_batch_size(&k.metadata), Ok(1));
        k.metadata.annotations = Some([(MAX_BATCH_SIZE_ANNOTATION.to_string(), "8".to_string())].into());
        k.spec.ordering = Some("unordered".into());
        let errs = k.validate();
        assert!(
            errs.iter()
                .any(|e| e.path == "metadata.annotations[sluice.dev/max-batch-size]" && e.message.contains("ordering: ordered")),
            "{errs:?}"
        );
        k.spec.ordering = None;
        for (value, expected) in [
            ("1", Some(1)),
            ("500", Some(500)),
            ("10000", Some(10_000)),
            ("0", None),
            ("10001", None),
            ("-1", None),
            ("many", None),
        ] {
            k.metadata.annotations = Some([(MAX_BATCH_SIZE_ANNOTATION.to_string(), value.to_string())].into());
            match (max_batch_size(&k.metadata), expected) {
                (Ok(n), Some(e)) => assert_eq!(n, e, "{value}"),
                (Err(e), None) => {
                    assert_eq!(e.path, "metadata.annotations[sluice.dev/max-batch-size]", "{value}");
                    assert!(k.validate().contains(&e), "{value}");
                }
                (got, _) => panic!("{value}: {got:?}"),
            }
        }
    }

    #[test]
    fn consumer_group_is_immutable() {
        let mut old = KafkaSource::new("k", KafkaSourceSpec::default());
        old.spec.consumer_group = "g".into();
        let mut new = old.clone();
        new.spec.consumer_group = "h".into();
        assert_eq!(new.validate_update(&old), vec![FieldError::immutable("spec.consumerGroup")]);
    }
}
