//! `flows.knative.dev/v1`: Sequence and Parallel (reference section 1.6).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duck::{
    impl_has_conditions, Addressable, AppliedEventPolicy, AuthStatus, ChannelTemplateSpec, Condition, DeliverySpec, Destination,
    KReference, ObjectReference,
};
use crate::meta::{validate_object_meta, NameRule};
use crate::{field, index, Admission, FieldError};

/// One step of a Sequence: a destination plus its delivery options.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequenceStep {
    /// Reference to an Addressable object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<KReference>,
    /// Absolute URI, or a URI relative to `ref`'s address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// PEM CA certificates to trust for this step.
    #[serde(default, rename = "CACerts", skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<String>,
    /// OIDC audience of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Delivery options of the step's Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

impl SequenceStep {
    /// The step's destination.
    pub fn destination(&self) -> Destination {
        Destination {
            r#ref: self.r#ref.clone(),
            uri: self.uri.clone(),
            ca_certs: self.ca_certs.clone(),
            audience: self.audience.clone(),
        }
    }
}

/// The desired state of a Sequence (FLW-01).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "flows.knative.dev",
    version = "v1",
    kind = "Sequence",
    doc = "Sequence: events pass through each step in turn.",
    namespaced,
    status = "SequenceStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "flows",
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequenceSpec {
    /// The steps, in order (at least one).
    #[serde(default)]
    pub steps: Vec<SequenceStep>,
    /// The channel kind between steps (default InMemoryChannel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_template: Option<ChannelTemplateSpec>,
    /// Where the last step's replies go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
}

/// A channel or subscription owned by a flow, with its readiness.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatusRef {
    /// The channel.
    #[serde(default)]
    pub channel: ObjectReference,
    /// Its `Ready` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Condition>,
}

/// A subscription owned by a flow, with its readiness.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatusRef {
    /// The subscription.
    #[serde(default)]
    pub subscription: ObjectReference,
    /// Its `Ready` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Condition>,
}

/// Status of a Sequence.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SequenceStatus {
    /// Conditions (`Ready`, `ChannelsReady`, `SubscriptionsReady`, `Addressable`, ), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// One per step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_statuses: Vec<SubscriptionStatusRef>,
    /// One per step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel_statuses: Vec<ChannelStatusRef>,
    /// The first channel's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// EventPolicies applied to the Sequence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppliedEventPolicy>,
    /// The identity deliveries are made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

/// One branch of a Parallel.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParallelBranch {
    /// A filter: passes an event by replying with it; no filter passes everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Destination>,
    /// Where passing events go (required).
    #[serde(default)]
    pub subscriber: Destination,
    /// Where the subscriber's replies go (default `spec.reply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
    /// Delivery options of the branch's subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// The desired state of a Parallel (FLW-02).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "flows.knative.dev",
    version = "v1",
    kind = "Parallel",
    doc = "Parallel: every event goes to each branch whose filter passes it.",
    namespaced,
    status = "ParallelStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "flows",
    label("duck.knative.dev/addressable", "true"),
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.address.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParallelSpec {
    /// The branches (at least one).
    #[serde(default)]
    pub branches: Vec<ParallelBranch>,
    /// The channel kind (default InMemoryChannel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_template: Option<ChannelTemplateSpec>,
    /// Where branch replies go unless a branch says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
}

/// The channels and subscriptions of one Parallel branch.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParallelBranchStatus {
    /// The filter's subscription.
    #[serde(default)]
    pub filter_subscription_status: SubscriptionStatusRef,
    /// The branch channel.
    #[serde(default)]
    pub filter_channel_status: ChannelStatusRef,
    /// The subscriber's subscription.
    #[serde(default)]
    pub subscriber_subscription_status: SubscriptionStatusRef,
}

/// Status of a Parallel.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParallelStatus {
    /// Conditions (`Ready`, `ChannelsReady`, `SubscriptionsReady`, `Addressable`, ), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// The ingress channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_channel_status: Option<ChannelStatusRef>,
    /// One per branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branch_statuses: Vec<ParallelBranchStatus>,
    /// The ingress channel's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// All addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Addressable>,
    /// EventPolicies applied to the Parallel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppliedEventPolicy>,
    /// The identity deliveries are made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

impl_has_conditions!(SequenceStatus, ParallelStatus);

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into())
}

fn validate_template(t: &Option<ChannelTemplateSpec>) -> Vec<FieldError> {
    match t {
        None => vec![FieldError::missing("spec.channelTemplate")],
        Some(t) => t.validate("spec.channelTemplate"),
    }
}

impl Admission for Sequence {
    /// Defaults the channel template to InMemoryChannel and reference namespaces.
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        if self.spec.channel_template.is_none() {
            self.spec.channel_template = Some(ChannelTemplateSpec::in_memory());
        }
        for step in &mut self.spec.steps {
            if let Some(r) = &mut step.r#ref {
                r.set_default_namespace(&ns);
            }
            if let Some(d) = &mut step.delivery {
                d.set_default_namespace(&ns);
            }
        }
        if let Some(r) = &mut self.spec.reply {
            r.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        if self.spec.steps.is_empty() {
            errs.push(FieldError::missing("spec.steps"));
        }
        for (i, step) in self.spec.steps.iter().enumerate() {
            let p = index("spec.steps", i);
            errs.extend(step.destination().validate(&p));
            if let Some(d) = &step.delivery {
                errs.extend(d.validate(&field(&p, "delivery")));
            }
        }
        errs.extend(validate_template(&self.spec.channel_template));
        if let Some(r) = &self.spec.reply {
            errs.extend(r.validate("spec.reply"));
        }
        errs
    }
}

impl Admission for Parallel {
    /// Defaults the channel template to InMemoryChannel and reference namespaces.
    fn set_defaults(&mut self) {
        let ns = namespace_of(&self.metadata);
        if self.spec.channel_template.is_none() {
            self.spec.channel_template = Some(ChannelTemplateSpec::in_memory());
        }
        for b in &mut self.spec.branches {
            for d in [&mut b.filter, &mut b.reply].into_iter().flatten() {
                d.set_default_namespace(&ns);
            }
            b.subscriber.set_default_namespace(&ns);
            if let Some(d) = &mut b.delivery {
                d.set_default_namespace(&ns);
            }
        }
        if let Some(r) = &mut self.spec.reply {
            r.set_default_namespace(&ns);
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        if self.spec.branches.is_empty() {
            errs.push(FieldError::missing("spec.branches"));
        }
        for (i, b) in self.spec.branches.iter().enumerate() {
            let p = index("spec.branches", i);
            if let Some(f) = &b.filter {
                errs.extend(f.validate(&field(&p, "filter")));
            }
            errs.extend(b.subscriber.validate(&field(&p, "subscriber")));
            if let Some(r) = &b.reply {
                errs.extend(r.validate(&field(&p, "reply")));
            }
            if let Some(d) = &b.delivery {
                errs.extend(d.validate(&field(&p, "delivery")));
            }
        }
        errs.extend(validate_template(&self.spec.channel_template));
        if let Some(r) = &self.spec.reply {
            errs.extend(r.validate("spec.reply"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_needs_steps() {
        let mut s = Sequence::new("s", SequenceSpec::default());
        s.set_defaults();
        assert_eq!(s.spec.channel_template, Some(ChannelTemplateSpec::in_memory()));
        assert_eq!(s.validate(), vec![FieldError::missing("spec.steps")]);
        s.spec.steps.push(SequenceStep {
            uri: Some("relative".into()),
            ..Default::default()
        });
        assert_eq!(s.validate()[0].path, "spec.steps[0].uri");
    }

    #[test]
    fn parallel_needs_branches() {
        let mut p = Parallel::new("p", ParallelSpec::default());
        p.set_defaults();
        assert_eq!(p.validate(), vec![FieldError::missing("spec.branches")]);
        p.spec.branches.push(ParallelBranch::default());
        assert_eq!(p.validate()[0].path, "spec.branches[0].subscriber");
    }
}
