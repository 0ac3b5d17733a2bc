//! ApiServerSource (`sources.knative.dev/v1`): Kubernetes API events as CloudEvents (API-01).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{namespace_of, source_status, validate_source};
use crate::duck::{CloudEventOverrides, Destination, LabelSelector};
use crate::eventing::{validate_filters, SubscriptionsApiFilter};
use crate::meta::{validate_object_meta, NameRule};
use crate::{field, index, Admission, FieldError};

/// `Reference` mode: events carry a reference to the object.
pub const REFERENCE_MODE: &str = "Reference";
/// `Resource` mode: events carry the whole object.
pub const RESOURCE_MODE: &str = "Resource";

/// A kind of object to watch, optionally narrowed by labels.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiVersionKindSelector {
    /// API version, e.g. `v1` or `apps/v1`.
    #[serde(default)]
    pub api_version: String,
    /// Kind, e.g. `Event`.
    #[serde(default)]
    pub kind: String,
    /// Only objects with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// An owner kind: only objects controlled by an object of this kind.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiVersionKind {
    /// API version of the owner.
    #[serde(default)]
    pub api_version: String,
    /// Kind of the owner.
    #[serde(default)]
    pub kind: String,
}

/// The desired state of an ApiServerSource.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1",
    kind = "ApiServerSource",
    doc = "ApiServerSource: Kubernetes API events as CloudEvents.",
    namespaced,
    status = "ApiServerSourceStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "sources",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    annotation(
        "registry.knative.dev/eventTypes",
        r#"[{"type":"dev.knative.apiserver.resource.add"},{"type":"dev.knative.apiserver.resource.delete"},{"type":"dev.knative.apiserver.resource.update"},{"type":"dev.knative.apiserver.ref.add"},{"type":"dev.knative.apiserver.ref.delete"},{"type":"dev.knative.apiserver.ref.update"}]"#
    ),
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServerSourceSpec {
    /// The kinds to watch (at least one).
    #[serde(default)]
    pub resources: Vec<ApiVersionKindSelector>,
    /// Only objects owned by this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ApiVersionKind>,
    /// `Reference` (default) or `Resource`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Service account whose permissions are used (default `default`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Namespaces to watch, by label (default: the source's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Subscriptions API filters applied before sending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<SubscriptionsApiFilter>,
    /// Where events go (required).
    #[serde(default)]
    pub sink: Destination,
    /// Extension attributes added to every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_overrides: Option<CloudEventOverrides>,
}

source_status! {
    /// Status of an ApiServerSource (`SinkProvided`, `Deployed`, `SufficientPermissions`, ...).
    ApiServerSourceStatus {
        /// The namespaces being watched.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        namespaces: Vec<String>,
    }
}

fn valid_group_version(gv: &str) -> bool {
    match gv.split_once('/') {
        None => !gv.is_empty(),
        Some((g, v)) => !g.is_empty() && !v.is_empty() && !v.contains('/'),
    }
}

impl Admission for ApiServerSource {
    /// Defaults the mode to `Reference`, the service account to `default` and the sink's
    /// namespace.
    fn set_defaults(&mut self) {
        if self.spec.mode.is_empty() {
            self.spec.mode = REFERENCE_MODE.into();
        }
        if self.spec.service_account_name.is_empty() {
            self.spec.service_account_name = "default".into();
        }
        let ns = namespace_of(&self.metadata);
        self.spec.sink.set_default_namespace(&ns);
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let spec = &self.spec;
        if spec.mode != REFERENCE_MODE && spec.mode != RESOURCE_MODE {
            errs.push(FieldError::new(
                "spec.mode",
                format!("invalid value {:?}: expected Reference or Resource", spec.mode),
            ));
        }
        errs.extend(validate_source(&spec.sink, spec.ce_overrides.as_ref()));
        if spec.resources.is_empty() {
            errs.push(FieldError::missing("spec.resources"));
        }
        for (i, r) in spec.resources.iter().enumerate() {
            let p = index("spec.resources", i);
            if !valid_group_version(&r.api_version) {
                errs.push(FieldError::invalid(field(&p, "apiVersion"), format!("{:?}", r.api_version)));
            }
            if r.kind.trim().is_empty() {
                errs.push(FieldError::missing(field(&p, "kind")));
            }
            if let Some(s) = &r.selector {
                errs.extend(s.validate(&field(&p, "selector")));
            }
        }
        if let Some(o) = &spec.owner {
            if !valid_group_version(&o.api_version) {
                errs.push(FieldError::invalid("spec.owner.apiVersion", format!("{:?}", o.api_version)));
            }
            if o.kind.trim().is_empty() {
                errs.push(FieldError::missing("spec.owner.kind"));
            }
        }
        if let Some(s) = &spec.namespace_selector {
            errs.extend(s.validate("spec.namespaceSelector"));
        }
        errs.extend(validate_filters(&spec.filters, "spec.filters"));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_resources_and_mode() {
        let mut s = ApiServerSource::new("a", ApiServerSourceSpec::default());
        s.spec.sink.uri = Some("http://x/".into());
        s.set_defaults();
        assert_eq!(s.spec.mode, "Reference");
        assert_eq!(s.validate(), vec![FieldError::missing("spec.resources")]);
        s.spec.mode = "Object".into();
        s.spec.resources.push(ApiVersionKindSelector {
            api_version: "v1".into(),
            kind: "".into(),
            selector: None,
        });
        let errs = s.validate();
        assert_eq!(errs[0].path, "spec.mode");
        assert_eq!(errs[1].path, "spec.resources[0].kind");
    }
}
