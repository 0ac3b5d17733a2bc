//! RabbitmqSource (`sources.knative.dev/v1alpha1`, eventing-rabbitmq): messages of a RabbitMQ
//! queue as CloudEvents (RMQS-01..03).

use k8s_openapi::api::core::v1::LocalObjectReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{namespace_of, source_status};
use crate::duck::{parse_iso8601_duration, BackoffPolicy, Destination};
use crate::meta::{validate_object_meta, NameRule};
use crate::{Admission, FieldError};

/// The CloudEvents type of messages that are not CloudEvents already.
pub const EVENT_TYPE: &str = "dev.knative.rabbitmq.event";

/// Which RabbitMQ cluster: a RabbitmqCluster by name, or a Secret with connection details.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RabbitmqClusterReference {
    /// Name of a `rabbitmq.com` RabbitmqCluster (exclusive with `connectionSecret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace of the cluster (defaults to the source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A Secret with `uri`, `username`, `password` (and optionally `port`) of an external cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::local_object_reference")]
    pub connection_secret: Option<LocalObjectReference>,
}

/// The queue and exchange the source consumes from.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RabbitmqResourcesConfig {
    /// Virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Queue to consume (required).
    #[serde(default)]
    pub queue_name: String,
    /// Exchange bound to the queue (required unless `predeclared`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_name: Option<String>,
    /// Prefetch count and number of workers, 1..1000 (default 1: FIFO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    /// The queue and exchange already exist; do not declare them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predeclared: Option<bool>,
}

/// Retries of a RabbitmqSource (no dead-letter sink: failed messages are rejected).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RabbitmqDelivery {
    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i32>,
    /// `linear` or `exponential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_policy: Option<BackoffPolicy>,
    /// ISO-8601 base delay, e.g. `PT0.2S`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_delay: Option<String>,
}

/// The desired state of a RabbitmqSource.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1alpha1",
    kind = "RabbitmqSource",
    doc = "RabbitmqSource: RabbitMQ messages as CloudEvents.",
    namespaced,
    status = "RabbitmqSourceStatus",
    derive = "PartialEq",
    shortname = "rmqsource",
    category = "all",
    category = "knative",
    category = "eventing",
    category = "sources",
    category = "importers",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    annotation("registry.knative.dev/eventTypes", r#"[{"type":"dev.knative.rabbitmq.event"}]"#),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#,
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RabbitmqSourceSpec {
    /// The RabbitMQ cluster (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_cluster_reference: Option<RabbitmqClusterReference>,
    /// Queue and exchange (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_resources_config: Option<RabbitmqResourcesConfig>,
    /// Retries and backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<RabbitmqDelivery>,
    /// Where events go (required).
    #[serde(default)]
    pub sink: Destination,
    /// Service account of the adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Name of the adapter container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_container_name: Option<String>,
}

source_status! {
    /// Status of a RabbitmqSource (`SinkProvided`, `Deployed`).
    RabbitmqSourceStatus {}
}

impl Admission for RabbitmqSource {
    /// Defaults the cluster's and the sink's namespace to the source's.
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        if let Some(c) = &mut self.spec.rabbitmq_cluster_reference {
            if c.namespace.as_deref().unwrap_or("").is_empty() {
                c.namespace = Some(ns.clone());
            }
        }
        self.spec.sink.set_default_namespace(&ns);
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let spec = &self.spec;
        errs.extend(spec.sink.validate("spec.sink"));
        match &spec.rabbitmq_resources_config {
            None => errs.push(FieldError::missing("spec.rabbitmqResourcesConfig")),
            Some(r) => {
                if r.queue_name.is_empty() {
                    errs.push(FieldError::missing("spec.rabbitmqResourcesConfig.queueName"));
                }
                if r.predeclared != Some(true) && r.exchange_name.as_deref().unwrap_or("").is_empty() {
                    errs.push(FieldError::new(
                        "spec.rabbitmqResourcesConfig.exchangeName",
                        "name of exchange must be provided when predeclared is false",
                    ));
                }
                if let Some(p) = r.parallelism {
                    if !(1..=1000).contains(&p) {
                        errs.push(FieldError::new(
                            "spec.rabbitmqResourcesConfig.parallelism",
                            format!("expected 1 <= {p} <= 1000"),
                        ));
                    }
                }
            }
        }
        match &spec.rabbitmq_cluster_reference {
            None => errs.push(FieldError::missing("spec.rabbitmqClusterReference")),
            Some(c) => match (c.name.as_deref().filter(|n| !n.is_empty()), &c.connection_secret) {
                (None, None) => errs.push(FieldError::missing("spec.rabbitmqClusterReference.name")),
                (Some(_), Some(_)) => errs.push(FieldError::new(
                    "spec.rabbitmqClusterReference.connectionSecret",
                    "rabbitmqClusterReference.name and rabbitmqClusterReference.connectionSecret must not be set simultaneously",
                )),
                _ => {}
            },
        }
        if let Some(d) = &spec.delivery {
            if d.retry.is_some_and(|r| r < 0) {
                errs.push(FieldError::invalid("spec.delivery.retry", d.retry.unwrap_or_default()));
            }
            if let Some(b) = &d.backoff_delay {
                if let Err(e) = parse_iso8601_duration(b) {
                    errs.push(FieldError::new("spec.delivery.backoffDelay", format!("invalid value: {b}: {e}")));
                }
            }
        }
        errs
    }

    /// The whole spec is immutable.
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        if self.spec != old.spec {
            vec![FieldError::immutable("spec")]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let mut s = RabbitmqSource::new("r", RabbitmqSourceSpec::default());
        s.spec.sink.uri = Some("http://x/".into());
        s.set_defaults();
        assert_eq!(
            s.validate(),
            vec![
                FieldError::missing("spec.rabbitmqResourcesConfig"),
                FieldError::missing("spec.rabbitmqClusterReference")
            ]
        );
        s.spec.rabbitmq_resources_config = Some(RabbitmqResourcesConfig {
            queue_name: "q".into(),
            parallelism: Some(0),
            ..Default::default()
        });
        s.spec.rabbitmq_cluster_reference = Some(RabbitmqClusterReference {
            name: Some("c".into()),
            namespace: None,
            connection_secret: Some(LocalObjectReference { name: "s".into() }),
        });
        let paths: Vec<String> = s.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "spec.rabbitmqResourcesConfig.exchangeName",
                "spec.rabbitmqResourcesConfig.parallelism",
                "spec.rabbitmqClusterReference.connectionSecret"
            ]
        );
    }
}
