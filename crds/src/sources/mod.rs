//! `sources.knative.dev`: event sources, one module per kind, all shaped like the source duck
//! (SRC-01): a `sink` (required), optional `ceOverrides`, and a status with `sinkUri` and
//! `ceAttributes`.

pub mod apiserver;
pub mod awssqs;
pub mod container;
pub mod cron;
pub mod github;
pub mod kafka;
pub mod ping;
pub mod rabbitmq;
pub mod sinkbinding;

pub use apiserver::{ApiServerSource, ApiServerSourceSpec, ApiServerSourceStatus};
pub use awssqs::{AwsSqsSource, AwsSqsSourceSpec, AwsSqsSourceStatus};
pub use container::{ContainerSource, ContainerSourceSpec, ContainerSourceStatus};
pub use github::{GitHubSource, GitHubSourceSpec, GitHubSourceStatus};
pub use kafka::{KafkaSource, KafkaSourceSpec, KafkaSourceStatus};
pub use ping::{PingSource, PingSourceSpec, PingSourceStatus};
pub use rabbitmq::{RabbitmqSource, RabbitmqSourceSpec, RabbitmqSourceStatus};
pub use sinkbinding::{SinkBinding, SinkBindingSpec, SinkBindingStatus};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::duck::{CloudEventOverrides, Destination};
use crate::FieldError;

/// The sink and CloudEvent overrides every source spec carries (knative.dev/pkg `SourceSpec`).
pub(crate) fn validate_source(sink: &Destination, overrides: Option<&CloudEventOverrides>) -> Vec<FieldError> {
    let mut errs = sink.validate("spec.sink");
    if let Some(o) = overrides {
        errs.extend(o.validate("spec.ceOverrides"));
    }
    errs
}

/// The object's namespace, `default` when unset.
pub(crate) fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into())
}

/// Declares a source status struct: the source duck's fields plus the kind's own.
macro_rules! source_status {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// Conditions (`Ready` and the kind's own), observed generation and annotations.
            #[serde(flatten)]
            pub base: $crate::duck::Status,
            /// Resolved sink URI (SRC-01).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sink_uri: Option<String>,
            /// CA certificates of the sink.
            #[serde(default, rename = "sinkCACerts", skip_serializing_if = "Option::is_none")]
            pub sink_ca_certs: Option<String>,
            /// OIDC audience of the sink.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sink_audience: Option<String>,
            /// Types and sources of the events the source emits.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub ce_attributes: Vec<$crate::duck::CloudEventAttributes>,
            /// The identity events are sent as.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub auth: Option<$crate::duck::AuthStatus>,
            $($(#[$fm])* pub $f: $t,)*
        }
        $crate::duck::impl_has_conditions!($name);
    };
}
pub(crate) use source_status;
