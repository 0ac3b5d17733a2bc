//! The CustomResourceDefinitions of every kind (ConfigMap and Secret are built in), generated
//! from the Rust types, with the labels Knative's own CRDs carry (`duck.knative.dev/*`,
//! `messaging.knative.dev/subscribable`, `eventing.knative.dev/source`) and their categories
//! and short names.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::eventing::{Broker, Trigger};
use crate::flows::{Parallel, Sequence};
use crate::kafka::{KafkaChannel, KafkaSink};
use crate::messaging::{Channel, InMemoryChannel, Subscription};
use crate::serving::{Configuration, Revision, Route, Service};
use crate::sources::{ApiServerSource, AwsSqsSource, ContainerSource, GitHubSource, KafkaSource, PingSource, RabbitmqSource, SinkBinding};

/// Every CRD, in registry order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut all = vec![
        Service::crd(),
        Configuration::crd(),
        Revision::crd(),
        Route::crd(),
        Broker::crd(),
        Trigger::crd(),
        Channel::crd(),
        InMemoryChannel::crd(),
        Subscription::crd(),
        Sequence::crd(),
        Parallel::crd(),
        PingSource::crd(),
        SinkBinding::crd(),
        ContainerSource::crd(),
        ApiServerSource::crd(),
        KafkaSource::crd(),
        GitHubSource::crd(),
        AwsSqsSource::crd(),
        RabbitmqSource::crd(),
        KafkaSink::crd(),
        KafkaChannel::crd(),
    ];
    for crd in &mut all {
        crd.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("knative.dev/crd-install".into(), "true".into());
        for version in &mut crd.spec.versions {
            if let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
                let mut value = serde_json::to_value(&*schema).expect("a schema always serializes");
                drop_defaults(&mut value);
                // `spec` is optional, as in Knative's CRDs: a Broker or InMemoryChannel with no
                // spec is valid (admission defaults it), and kubectl validates against this.
                if let Some(required) = value.get_mut("required").and_then(|r| r.as_array_mut()) {
                    required.retain(|field| field != "spec");
                    if required.is_empty() {
                        value.as_object_mut().expect("a schema is an object").remove("required");
                    }
                }
                *schema = serde_json::from_value(value).expect("removing defaults keeps a valid schema");
            }
        }
    }
    all
}

/// Removes `default` from a schema and its sub-schemas: defaults are Knative's webhooks'
/// business (and [`crate::Admission::set_defaults`]'s), not the API server's.
fn drop_defaults(schema: &mut serde_json::Value) {
    let Some(obj) = schema.as_object_mut() else { return };
    obj.remove("default");
    if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
        props.values_mut().for_each(drop_defaults);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = obj.get_mut(key) {
            drop_defaults(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = obj.get_mut(key).and_then(|l| l.as_array_mut()) {
            list.iter_mut().for_each(drop_defaults);
        }
    }
}

/// Every CRD as multi-document YAML, ready for `kubectl apply -f -`.
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| serde_yaml::to_string(crd).expect("a CustomResourceDefinition always serializes"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_names() {
        let crds = crds();
        assert_eq!(crds.len(), crate::registry::kinds().iter().filter(|k| k.is_knative()).count());
        let channel = crds.iter().find(|c| c.spec.names.kind == "Channel").unwrap();
        let labels = channel.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["messaging.knative.dev/subscribable"], "true");
        assert_eq!(labels["duck.knative.dev/addressable"], "true");
        assert!(channel.spec.names.categories.as_ref().unwrap().contains(&"channel".to_string()));
        let ping = crds.iter().find(|c| c.spec.names.kind == "PingSource").unwrap();
        assert_eq!(ping.metadata.labels.as_ref().unwrap()["duck.knative.dev/source"], "true");
        for crd in &crds {
            let info = crate::registry::find_by_plural(&crd.spec.group, &crd.spec.versions[0].name, &crd.spec.names.plural)
                .unwrap_or_else(|| panic!("{} not in the registry", crd.spec.names.kind));
            assert_eq!(crd.spec.names.short_names.clone().unwrap_or_default(), info.short_names);
            assert_eq!(crd.spec.names.singular.as_deref(), Some(info.singular));
        }
        assert!(!crds_yaml().contains("$ref"));
    }
}
