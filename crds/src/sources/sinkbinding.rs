//! SinkBinding (`sources.knative.dev/v1`): injects `K_SINK` and `K_CE_OVERRIDES` into the
//! pods of a subject (SB-01).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{namespace_of, source_status, validate_source};
use crate::duck::{CloudEventOverrides, Destination, LabelSelector};
use crate::meta::{validate_object_meta, NameRule};
use crate::{field, Admission, FieldError};

/// The objects a binding applies to: one by name, or all matching a label selector.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindingSubject {
    /// API version of the subject, e.g. `apps/v1`.
    #[serde(default)]
    pub api_version: String,
    /// Kind of the subject, e.g. `Deployment`.
    #[serde(default)]
    pub kind: String,
    /// Namespace of the subject (defaults to, and must equal, the binding's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the subject (exclusive with `selector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Label selector of the subjects (exclusive with `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

impl BindingSubject {
    /// apiVersion and kind are required; exactly one of name and selector.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.api_version.is_empty() {
            errs.push(FieldError::missing(field(path, "apiVersion")));
        } else if let Err(e) = crate::meta::check_qualified_name(&self.api_version) {
            errs.push(FieldError::new(
                field(path, "apiVersion"),
                format!("invalid value {:?}: {e}", self.api_version),
            ));
        }
        if self.kind.is_empty() {
            errs.push(FieldError::missing(field(path, "kind")));
        }
        let name = self.name.as_deref().filter(|n| !n.is_empty());
        match (name, &self.selector) {
            (Some(_), Some(_)) => errs.push(FieldError::new(path.to_string(), "expected exactly one, got both: name, selector")),
            (None, None) => errs.push(FieldError::new(
                path.to_string(),
                "expected exactly one, got neither: name, selector",
            )),
            (Some(n), None) => {
                if let Err(e) = crate::meta::check_dns1123_subdomain(n) {
                    errs.push(FieldError::new(field(path, "name"), format!("invalid value {n:?}: {e}")));
                }
            }
            (None, Some(s)) => errs.extend(s.validate(&field(path, "selector"))),
        }
        errs
    }
}

/// The desired state of a SinkBinding.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1",
    kind = "SinkBinding",
    doc = "SinkBinding: tells the pods of a subject where to send events.",
    namespaced,
    status = "SinkBindingStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "sources",
    category = "bindings",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    label("duck.knative.dev/binding", "true"),
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkBindingSpec {
    /// The objects whose pods get the sink.
    #[serde(default)]
    pub subject: BindingSubject,
    /// Where the subject's events go (required).
    #[serde(default)]
    pub sink: Destination,
    /// Extension attributes the subject should add to every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_overrides: Option<CloudEventOverrides>,
}

source_status! {
    /// Status of a SinkBinding (`SinkBindingAvailable`, `SinkProvided`, ...).
    SinkBindingStatus {}
}

impl Admission for SinkBinding {
    /// Defaults the subject's and the sink's namespace to the binding's.
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        if self.spec.subject.namespace.as_deref().unwrap_or("").is_empty() {
            self.spec.subject.namespace = Some(ns.clone());
        }
        self.spec.sink.set_default_namespace(&ns);
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(self.spec.subject.validate("spec.subject"));
        if let Some(ns) = self.spec.subject.namespace.as_deref().filter(|n| !n.is_empty()) {
            if ns != namespace_of(&self.metadata) {
                errs.push(FieldError::invalid("spec.subject.namespace", ns));
            }
        }
        errs.extend(validate_source(&self.spec.sink, self.spec.ce_overrides.as_ref()));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_rules() {
        let mut b = SinkBinding::new("b", SinkBindingSpec::default());
        b.spec.sink.uri = Some("http://x/".into());
        b.set_defaults();
        let errs = b.validate();
        assert_eq!(errs[0].path, "spec.subject.apiVersion");
        b.spec.subject = BindingSubject {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: Some("d".into()),
            namespace: Some("other".into()),
            selector: None,
        };
        assert_eq!(b.validate(), vec![FieldError::invalid("spec.subject.namespace", "other")]);
    }
}
