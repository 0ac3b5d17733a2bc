//! `messaging.knative.dev/v1`: Channel, InMemoryChannel and Subscription (reference section 1.4).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duck::{
    impl_has_conditions, AuthStatus, ChannelTemplateSpec, ChannelableStatus, Condition, DeliverySpec, Destination, KReference,
    SubscriberSpec,
};
use crate::meta::{annotation, annotation_path, default_annotation, validate_max_in_flight, validate_object_meta, NameRule};
use crate::{field, index, Admission, FieldError};

/// The annotation telling which version of the subscribable duck a channel implements.
pub const SUBSCRIBABLE_ANNOTATION: &str = "messaging.knative.dev/subscribable";
/// The annotation making an InMemoryChannel answer before fan-out completes (CH-04).
pub const ASYNC_HANDLER_ANNOTATION: &str = "messaging.knative.dev/async-handler";
/// The annotation choosing a channel's dispatcher scope (`cluster` or `namespace`).
pub const SCOPE_ANNOTATION: &str = "eventing.knative.dev/scope";

/// The desired state of a Channel (CH-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "messaging.knative.dev",
    version = "v1",
    kind = "Channel",
    doc = "Channel: an abstract channel backed by a concrete channel kind.",
    namespaced,
    status = "ChannelStatus",
    derive = "PartialEq",
    shortname = "ch",
    category = "all",
    category = "knative",
    category = "messaging",
    category = "channel",
    label("messaging.knative.dev/subscribable", "true"),
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelSpec {
    /// The backing channel kind (default InMemoryChannel; immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_template: Option<ChannelTemplateSpec>,
    /// Subscribers, written by the Subscription controller (users must not set them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberSpec>,
    /// Default delivery options for the subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// Status of a Channel: the Channelable status plus a reference to the backing channel.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    /// Conditions, address, subscribers and dead-letter sink, as every channel has them.
    #[serde(flatten)]
    pub channelable: ChannelableStatus,
    /// The backing channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<KReference>,
}

impl crate::duck::HasConditions for ChannelStatus {
    fn conditions(&self) -> &[Condition] {
        &self.channelable.base.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.channelable.base.conditions
    }
    fn observed_generation(&self) -> Option<i64> {
        self.channelable.base.observed_generation
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.channelable.base.observed_generation = generation;
    }
}

/// The desired state of an InMemoryChannel (CH-04).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "messaging.knative.dev",
    version = "v1",
    kind = "InMemoryChannel",
    doc = "InMemoryChannel: a non-durable channel.",
    namespaced,
    status = "InMemoryChannelStatus",
    derive = "PartialEq",
    shortname = "imc",
    category = "all",
    category = "knative",
    category = "messaging",
    category = "channel",
    label("messaging.knative.dev/subscribable", "true"),
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InMemoryChannelSpec {
    /// Subscribers, written by the Subscription controller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberSpec>,
    /// Default delivery options for the subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// Status of an InMemoryChannel: the Channelable status.
pub type InMemoryChannelStatus = ChannelableStatus;

/// The desired state of a Subscription (SUB-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "messaging.knative.dev",
    version = "v1",
    kind = "Subscription",
    doc = "Subscription: delivers a channel's events to a subscriber.",
    namespaced,
    status = "SubscriptionStatus",
    derive = "PartialEq",
    shortname = "sub",
    category = "all",
    category = "knative",
    category = "messaging",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// The channel to subscribe to, in the Subscription's namespace (required; immutable).
    #[serde(default)]
    pub channel: KReference,
    /// Where the channel's events go (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<Destination>,
    /// Where the subscriber's replies go; without it replies are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
    /// Delivery options; when any is set they replace the channel's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// The resolved addresses of a Subscription (`status.physicalSubscription`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalSubscription {
    /// Resolved subscriber URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_uri: Option<String>,
    /// CA certificates of the subscriber.
    #[serde(default, rename = "subscriberCACerts", skip_serializing_if = "Option::is_none")]
    pub subscriber_ca_certs: Option<String>,
    /// OIDC audience of the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_audience: Option<String>,
    /// Resolved reply URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_uri: Option<String>,
    /// CA certificates of the reply destination.
    #[serde(default, rename = "replyCACerts", skip_serializing_if = "Option::is_none")]
    pub reply_ca_certs: Option<String>,
    /// OIDC audience of the reply destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_audience: Option<String>,
    /// Resolved dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
    /// CA certificates of the dead-letter sink.
    #[serde(default, rename = "deadLetterSinkCACerts", skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_ca_certs: Option<String>,
    /// OIDC audience of the dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_audience: Option<String>,
}

/// Status of a Subscription.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    /// Conditions (`Ready`, `ReferencesResolved`, `AddedToChannel`, `ChannelReady`, ), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// The resolved subscriber, reply and dead-letter sink.
    #[serde(default)]
    pub physical_subscription: PhysicalSubscription,
    /// The identity deliveries are made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

impl_has_conditions!(SubscriptionStatus);

fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into())
}

fn validate_scope(meta: &ObjectMeta) -> Vec<FieldError> {
    match annotation(meta, SCOPE_ANNOTATION) {
        Some(s) if s != "cluster" && s != "namespace" => vec![FieldError::new(
            annotation_path(SCOPE_ANNOTATION),
            format!("invalid value {s:?}: expected either 'cluster' or 'namespace'"),
        )],
        _ => Vec::new(),
    }
}

/// Validates channel subscribers written into a channel spec (each needs a URI).
pub fn validate_subscribers(subscribers: &[SubscriberSpec], path: &str) -> Vec<FieldError> {
    subscribers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.validate(&index(path, i)))
        .collect()
}

impl Admission for Channel {
    /// Annotates the subscribable duck version and defaults the template to InMemoryChannel.
    fn set_defaults(&mut self) {
        default_annotation(&mut self.metadata, SUBSCRIBABLE_ANNOTATION, "v1");
        if self.spec.channel_template.is_none() {
            self.spec.channel_template = Some(ChannelTemplateSpec::in_memory());
        }
        let ns = namespace_of(&self.metadata);
        if let Some(d) = &mut self.spec.delivery {
            d.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        match &self.spec.channel_template {
            None => errs.push(FieldError::missing("spec.channelTemplate")),
            Some(t) => errs.extend(t.validate("spec.channelTemplate")),
        }
        if !self.spec.subscribers.is_empty() {
            errs.push(FieldError::disallowed("spec.subscribers"));
        }
        if let Some(d) = &self.spec.delivery {
            errs.extend(d.validate("spec.delivery"));
        }
        errs
    }

    /// The channel template is immutable (CH-01).
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        if self.spec.channel_template != old.spec.channel_template {
            vec![FieldError::immutable("spec.channelTemplate")]
        } else {
            Vec::new()
        }
    }
}

impl Admission for InMemoryChannel {
    fn set_defaults(&mut self) {
        default_annotation(&mut self.metadata, SUBSCRIBABLE_ANNOTATION, "v1");
        let ns = namespace_of(&self.metadata);
        if let Some(d) = &mut self.spec.delivery {
            d.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(validate_scope(&self.metadata));
        errs.extend(validate_subscribers(&self.spec.subscribers, "spec.subscribers"));
        if let Some(d) = &self.spec.delivery {
            errs.extend(d.validate("spec.delivery"));
        }
        errs
    }
}

impl Admission for Subscription {
    /// Defaults subscriber, reply and dead-letter sink namespaces to the Subscription's (the
    /// channel's namespace stays empty: it must be).
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        if let Some(s) = &mut self.spec.subscriber {
            s.set_default_namespace(&ns);
        }
        if let Some(r) = &mut self.spec.reply {
            r.set_default_namespace(&ns);
        }
        if let Some(d) = &mut self.spec.delivery {
            d.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(validate_max_in_flight(&self.metadata));
        let ch = &self.spec.channel;
        if ch.api_version.is_empty() && ch.kind.is_empty() && ch.name.is_empty() {
            errs.push(FieldError::new(
                "spec.channel",
                "missing field(s): the Subscription must reference a channel",
            ));
        } else {
            errs.extend(ch.validate("spec.channel"));
            if ch.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
                errs.push(FieldError::disallowed("spec.channel.namespace"));
            }
        }
        match self.spec.subscriber.as_ref().filter(|d| !d.is_empty()) {
            None => errs.push(FieldError::new(
                "spec.subscriber",
                "missing field(s): the Subscription must reference a subscriber",
            )),
            Some(d) => errs.extend(d.validate("spec.subscriber")),
        }
        if let Some(r) = self.spec.reply.as_ref().filter(|d| !d.is_empty()) {
            errs.extend(r.validate("spec.reply"));
        }
        if let Some(d) = &self.spec.delivery {
            errs.extend(d.validate("spec.delivery"));
        }
        errs
    }

    /// The channel is immutable (SUB-01).
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        if self.spec.channel != old.spec.channel {
            vec![FieldError::immutable(field("spec", "channel"))]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(yaml: &str) -> Subscription {
        let mut s: Subscription = serde_yaml::from_str(yaml).unwrap();
        s.set_defaults();
        s
    }

    #[test]
    fn channel_defaults_to_in_memory() {
        let mut c = Channel::new("c", ChannelSpec::default());
        c.set_defaults();
        assert_eq!(c.spec.channel_template, Some(ChannelTemplateSpec::in_memory()));
        assert_eq!(annotation(&c.metadata, SUBSCRIBABLE_ANNOTATION), Some("v1"));
        assert!(c.validate().is_empty());
        let old = c.clone();
        c.spec.channel_template.as_mut().unwrap().kind = "KafkaChannel".into();
        assert_eq!(c.validate_update(&old), vec![FieldError::immutable("spec.channelTemplate")]);
    }

    #[test]
    fn subscription_rules() {
        let s = sub("apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata: {name: s, namespace: n}\nspec:\n  channel: {apiVersion: messaging.knative.dev/v1, kind: Channel, name: c, namespace: other}\n  subscriber: {ref: {apiVersion: v1, kind: Service, name: svc}}\n");
        assert_eq!(
            s.spec.subscriber.as_ref().unwrap().r#ref.as_ref().unwrap().namespace.as_deref(),
            Some("n")
        );
        assert_eq!(s.validate(), vec![FieldError::disallowed("spec.channel.namespace")]);

        let empty = sub("apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata: {name: s}\nspec: {}\n");
        let errs = empty.validate();
        assert_eq!(errs[0].path, "spec.channel");
        assert_eq!(errs[1].path, "spec.subscriber");
    }

    #[test]
    fn subscription_channel_is_immutable() {
        let old = sub("apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata: {name: s}\nspec:\n  channel: {apiVersion: messaging.knative.dev/v1, kind: Channel, name: c}\n  subscriber: {uri: 'http://x/'}\n");
        let mut new = old.clone();
        new.spec.channel.name = "d".into();
        assert_eq!(new.validate_update(&old), vec![FieldError::immutable("spec.channel")]);
        new.spec.channel.name = "c".into();
        new.spec.subscriber = Some(Destination {
            uri: Some("http://y/".into()),
            ..Default::default()
        });
        assert!(new.validate_update(&old).is_empty());
    }

    #[test]
    fn imc_subscribers_need_a_uri() {
        let mut imc = InMemoryChannel::new(
            "i",
            InMemoryChannelSpec {
                subscribers: vec![SubscriberSpec::default()],
                delivery: None,
            },
        );
        imc.set_defaults();
        assert_eq!(imc.validate()[0].path, "spec.subscribers[0]");
    }
}
