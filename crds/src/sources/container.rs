//! ContainerSource (`sources.knative.dev/v1`): runs a user container that sends events to
//! `K_SINK` (CS-01).

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{namespace_of, source_status, validate_source};
use crate::duck::{CloudEventOverrides, Destination};
use crate::meta::{validate_object_meta, NameRule};
use crate::pod::{validate_source_pod, validate_template_metadata};
use crate::{Admission, FieldError};

/// The desired state of a ContainerSource.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1",
    kind = "ContainerSource",
    doc = "ContainerSource: runs a container that sends events to its sink.",
    namespaced,
    status = "ContainerSourceStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "sources",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSourceSpec {
    /// The pod to run (required: at least one container).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::pod_template")]
    pub template: PodTemplateSpec,
    /// Where the container's events go (required).
    #[serde(default)]
    pub sink: Destination,
    /// Extension attributes the container should add to every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_overrides: Option<CloudEventOverrides>,
}

source_status! {
    /// Status of a ContainerSource (`SinkBindingReady`, `ReceiveAdapterReady`).
    ContainerSourceStatus {}
}

impl Admission for ContainerSource {
    /// Names unnamed containers `<source>-<index>` and defaults the sink's namespace.
    fn set_defaults(&mut self) {
        let name = self.metadata.name.clone().unwrap_or_default();
        let containers = self.spec.template.spec.iter_mut().flat_map(|s| s.containers.iter_mut());
        for (i, c) in containers.enumerate() {
            if c.name.is_empty() {
                c.name = format!("{name}-{i}");
            }
        }
        let ns = namespace_of(&self.metadata);
        self.spec.sink.set_default_namespace(&ns);
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(validate_source(&self.spec.sink, self.spec.ce_overrides.as_ref()));
        let no_pod = PodSpec::default();
        errs.extend(validate_source_pod(
            self.spec.template.spec.as_ref().unwrap_or(&no_pod),
            "spec.template.spec",
        ));
        if let Some(m) = &self.spec.template.metadata {
            errs.extend(validate_template_metadata(m, "spec.template.metadata"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;

    #[test]
    fn containers_are_named_and_required() {
        let mut s = ContainerSource::new("heartbeats", ContainerSourceSpec::default());
        s.spec.sink.uri = Some("http://x/".into());
        s.set_defaults();
        assert_eq!(s.validate(), vec![FieldError::missing("spec.template.spec.containers")]);
        s.spec.template.spec.get_or_insert_default().containers.push(Container {
            image: Some("img".into()),
            ..Default::default()
        });
        s.set_defaults();
        assert_eq!(s.spec.template.spec.as_ref().unwrap().containers[0].name, "heartbeats-0");
        assert!(s.validate().is_empty());
    }
}
