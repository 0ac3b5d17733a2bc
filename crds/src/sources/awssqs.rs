//! AwsSqsSource (`sources.knative.dev/v1alpha1`, eventing-awssqs): SQS messages as
//! CloudEvents (SQS-01..03). Its sink is a plain object reference, not a Destination.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source_status;
use crate::duck::{ObjectReference, SecretKeySelector};
use crate::meta::{validate_object_meta, NameRule};
use crate::{Admission, FieldError};

/// The CloudEvents type of SQS messages.
pub const EVENT_TYPE: &str = "aws.sqs.message";

/// The desired state of an AwsSqsSource.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1alpha1",
    kind = "AwsSqsSource",
    doc = "AwsSqsSource: AWS SQS messages as CloudEvents.",
    namespaced,
    status = "AwsSqsSourceStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "eventing",
    category = "sources",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    annotation("registry.knative.dev/eventTypes", r#"[{"type":"aws.sqs.message"}]"#),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSqsSourceSpec {
    /// Queue URL, `https://sqs.<region>.amazonaws.com/<account>/<queue>` (required).
    #[serde(default)]
    pub queue_url: String,
    /// Secret key holding an AWS shared-credentials file (else the default AWS chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_creds_secret: Option<SecretKeySelector>,
    /// Annotations for the adapter pod (e.g. kube2iam roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Where events go: an object reference (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<ObjectReference>,
    /// Service account of the adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

source_status! {
    /// Status of an AwsSqsSource (`SinkProvided`, `Deployed`).
    AwsSqsSourceStatus {}
}

impl AwsSqsSourceSpec {
    /// The AWS region parsed from the queue URL's host (`sqs.<region>.amazonaws.com`).
    pub fn region(&self) -> Option<String> {
        let url = url::Url::parse(&self.queue_url).ok()?;
        let host = url.host_str()?;
        let mut parts = host.split('.');
        match (parts.next(), parts.next()) {
            (Some("sqs"), Some(region)) => Some(region.to_string()),
            (Some(region), Some("queue")) => Some(region.to_string()),
            _ => None,
        }
    }
}

impl Admission for AwsSqsSource {
    /// Defaults the sink's namespace.
    fn set_defaults(&mut self) {
        let ns = super::namespace_of(&self.metadata);
        if let Some(s) = &mut self.spec.sink {
            if s.namespace.as_deref().unwrap_or("").is_empty() {
                s.namespace = Some(ns);
            }
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let spec = &self.spec;
        if spec.queue_url.is_empty() {
            errs.push(FieldError::missing("spec.queueUrl"));
        } else if url::Url::parse(&spec.queue_url).map(|u| !u.has_host()).unwrap_or(true) {
            errs.push(FieldError::invalid(
                "spec.queueUrl",
                format!("{:?}: not an absolute URL", spec.queue_url),
            ));
        }
        match &spec.sink {
            None => errs.push(FieldError::missing("spec.sink")),
            Some(s) => {
                for (v, name) in [(&s.api_version, "apiVersion"), (&s.kind, "kind"), (&s.name, "name")] {
                    if v.is_empty() {
                        errs.push(FieldError::missing(format!("spec.sink.{name}")));
                    }
                }
            }
        }
        if let Some(c) = &spec.aws_creds_secret {
            errs.extend(c.validate("spec.awsCredsSecret"));
        }
        errs.extend(crate::meta::validate_annotations(spec.annotations.as_ref(), "spec.annotations"));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_and_rules() {
        let mut s = AwsSqsSource::new("s", AwsSqsSourceSpec::default());
        s.set_defaults();
        assert_eq!(
            s.validate(),
            vec![FieldError::missing("spec.queueUrl"), FieldError::missing("spec.sink")]
        );
        s.spec.queue_url = "QUEUE_URL".into();
        assert_eq!(s.validate()[0].path, "spec.queueUrl");
        s.spec.queue_url = "https://sqs.eu-west-1.amazonaws.com/123/q".into();
        assert_eq!(s.spec.region().as_deref(), Some("eu-west-1"));
    }
}
