//! The Broker decision (BRK-01, BRK-03): served by the memory backend when its class is
//! `MTChannelBasedBroker`; addressable at `{gateway}/{namespace}/{name}`.

use serde_json::Value;
use sluice_brokers::{Acknowledge, BackendKind, HubKey, HubKind, HubSpec};
use sluice_crds::duck::{ConditionCheck as Cond, DeliverySpec};

use crate::address::{addressable_with_delivery, broker_url, resolve_delivery};
use crate::{decode, meta_str, status_with, Environment, Lookup, BROKER_CLASS, MT_CHANNEL_BASED};

/// What a Broker is: its status and, when it is served, its hub.
#[derive(Debug)]
pub struct BrokerDecision {
    /// The status to write.
    pub status: Value,
    /// The hub that serves it (`None` when it cannot be served).
    pub hub: Option<HubSpec>,
}

/// The hub key of broker `namespace/name`.
pub fn hub_key(namespace: &str, name: &str) -> HubKey {
    HubKey {
        kind: HubKind::Broker,
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// Whether a broker is served, with the delivery its triggers fall back to; `Err` says why not.
pub(crate) fn readiness(b: &Value, env: &Environment, world: &dyn Lookup) -> Result<Option<DeliverySpec>, String> {
    let class = b["metadata"]["annotations"][BROKER_CLASS].as_str().unwrap_or(MT_CHANNEL_BASED);
    if class != MT_CHANNEL_BASED {
        return Err(format!(
            "broker class {class:?} is not served by this build (supported: {MT_CHANNEL_BASED})"
        ));
    }
    let delivery: Option<DeliverySpec> = decode(&b["spec"]["delivery"]);
    resolve_delivery(delivery.as_ref(), "spec.delivery", meta_str(b, "namespace"), env, world).map_err(|(_, m)| m)?;
    Ok(delivery)
}

/// Decides a Broker's status and hub.
pub fn broker(b: &Value, env: &Environment, world: &dyn Lookup) -> BrokerDecision {
    let (ns, name) = (meta_str(b, "namespace"), meta_str(b, "name"));
    let class = b["metadata"]["annotations"][BROKER_CLASS].as_str().unwrap_or(MT_CHANNEL_BASED);
    let mut conds = Vec::new();
    let mut extra = serde_json::Map::new();
    if class != MT_CHANNEL_BASED {
        let msg = format!("broker class {class:?} is not served by this build (supported: {MT_CHANNEL_BASED})");
        conds.push(Cond::fail("IngressReady", "BrokerClassNotSupported", msg));
        return BrokerDecision {
            status: status_with(b, conds, extra),
            hub: None,
        };
    }
    let url = broker_url(env, ns, name);
    for ok in [
        "IngressReady",
        "TriggerChannelReady",
        "FilterReady",
        "Addressable",
        "EventPoliciesReady",
    ] {
        conds.push(Cond::ok(ok));
    }
    addressable_with_delivery(b, &url, env, world, &mut conds, &mut extra);
    // The ingress takes events whatever its dead-letter sink does; triggers wait for it.
    let hub = HubSpec {
        key: hub_key(ns, name),
        backend: BackendKind::Memory,
        acknowledge: Acknowledge::WhenStored,
        subscribers: vec![],
    };
    BrokerDecision {
        status: status_with(b, conds, extra),
        hub: Some(hub),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{condition, env, obj, world};

    #[test]
    fn a_broker_is_addressable_on_the_gateway_with_its_dead_letter_sink_resolved() {
        let b = obj(
            "Broker",
            "eventing.knative.dev",
            "default",
            json!({"delivery": {"deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}}}}),
        );
        let w = world(vec![b.clone(), obj("Broker", "eventing.knative.dev", "dlq", json!({}))]);
        let d = broker(&b, &env(), &w);
        assert_eq!(d.status["address"]["url"], "http://127.0.0.1:8080/default/default");
        assert_eq!(d.status["deadLetterSinkUri"], "http://127.0.0.1:8080/default/dlq");
        assert_eq!(condition(&d.status, "Ready")["status"], "True");
        assert_eq!(d.status["observedGeneration"], 1);
        assert!(d.hub.is_some());
    }

    #[test]
    fn a_missing_dead_letter_sink_makes_the_broker_not_ready() {
        let b = obj(
            "Broker",
            "eventing.knative.dev",
            "default",
            json!({"delivery": {"deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}}}}),
        );
        let d = broker(&b, &env(), &world(vec![b.clone()]));
        let c = condition(&d.status, "DeadLetterSinkResolved");
        assert_eq!(c["status"], "False");
        assert_eq!(c["message"], "Broker default/dlq not found");
        assert_eq!(condition(&d.status, "Ready")["status"], "False");
        assert!(readiness(&b, &env(), &world(vec![b.clone()])).is_err());
    }

    #[test]
    fn an_unsupported_broker_class_is_not_ready_and_not_served() {
        let mut b = obj("Broker", "eventing.knative.dev", "k", json!({}));
        b["metadata"]["annotations"] = json!({BROKER_CLASS: "Kafka"});
        let d = broker(&b, &env(), &world(vec![]));
        assert_eq!(condition(&d.status, "Ready")["reason"], "BrokerClassNotSupported");
        assert!(d.hub.is_none());
    }

    #[test]
    fn conditions_keep_their_transition_time_while_unchanged() {
        let mut b = obj("Broker", "eventing.knative.dev", "default", json!({}));
        b["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
        let d = broker(&b, &env(), &world(vec![]));
        assert_eq!(condition(&d.status, "Ready")["lastTransitionTime"], "2020-01-01T00:00:00Z");
    }
}
