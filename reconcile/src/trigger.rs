//! The Trigger decision (BRK-01, BRK-02): its broker, subscriber, delivery and filter resolved
//! into a status and, when everything resolves, the subscriber the broker's hub runs.

use serde_json::{json, Value};
use sluice_brokers::{HubKey, ReplyTo, SubscriberConfig};
use sluice_crds::duck::{ConditionCheck as Cond, DeliverySpec, Destination};
use sluice_crds::eventing::{SubscriptionsApiFilter, TriggerFilter};
use sluice_delivery::Target;

use crate::address::{effective_delivery, resolve, resolve_delivery};
use crate::broker::{hub_key, readiness};
use crate::{decode, generation, max_in_flight, meta_str, status_with, Environment, Lookup};

/// What a Trigger is: its status and, when it is subscribed, its subscriber.
#[derive(Debug)]
pub struct TriggerDecision {
    /// The status to write.
    pub status: Value,
    /// The broker hub and the subscriber it runs for this trigger.
    pub subscriber: Option<(HubKey, SubscriberConfig)>,
}

/// The broker a trigger names: `spec.broker`, or `spec.brokerRef` (same namespace: validation
/// refuses another one).
pub fn broker_name(t: &Value) -> &str {
    t["spec"]["broker"]
        .as_str()
        .filter(|b| !b.is_empty())
        .or_else(|| t["spec"]["brokerRef"]["name"].as_str())
        .unwrap_or("")
}

/// The identity of a trigger's or subscription's subscriber in the data plane (and its cursor).
pub fn subscriber_id(obj: &Value) -> String {
    format!("{}/{}/{}", meta_str(obj, "namespace"), meta_str(obj, "name"), meta_str(obj, "uid"))
}

/// Decides a Trigger's status and subscriber.
pub fn trigger(t: &Value, env: &Environment, world: &dyn Lookup) -> TriggerDecision {
    let (ns, name) = (meta_str(t, "namespace"), meta_str(t, "name"));
    let broker = broker_name(t);
    let mut conds = Vec::new();
    let mut extra = serde_json::Map::new();
    let broker_delivery = match world.get("eventing.knative.dev", "Broker", ns, broker) {
        None => {
            conds.push(Cond::fail(
                "BrokerReady",
                "BrokerDoesNotExist",
                format!("broker {ns}/{broker} does not exist"),
            ));
            None
        }
        Some(b) => match readiness(&b, env, world) {
            Err(msg) => {
                conds.push(Cond::fail("BrokerReady", "BrokerNotReady", msg));
                None
            }
            Ok(d) => {
                conds.push(Cond::ok("BrokerReady"));
                Some(d)
            }
        },
    };
    conds.push(Cond::ok("DependencyReady"));
    conds.push(Cond::ok("OIDCIdentityCreated"));
    let subscriber: Option<Destination> = decode(&t["spec"]["subscriber"]);
    let sub_url = subscriber
        .as_ref()
        .ok_or_else(|| "spec.subscriber is missing".to_string())
        .and_then(|d| resolve(d, ns, env, world))
        .and_then(|u| Target::parse(&u).map(|t| (u, t)));
    match &sub_url {
        Ok((u, _)) => {
            conds.push(Cond::ok("SubscriberResolved"));
            extra.insert("subscriberUri".into(), json!(u));
        }
        Err(m) => {
            conds.push(Cond::fail("SubscriberResolved", "Unable to get the Subscriber's URI", m.clone()));
            extra.insert("subscriberUri".into(), json!(""));
        }
    }
    // BRK-01: the retry group is the trigger's when it has a delivery, else the broker's; the
    // dead-letter sink is the trigger's, else the broker's.
    let own: Option<DeliverySpec> = decode(&t["spec"]["delivery"]);
    let path = if own.is_some() { "spec.delivery" } else { "broker spec.delivery" };
    let own_retry_group = own.is_some();
    let effective = effective_delivery(own, broker_delivery.clone().flatten(), own_retry_group);
    let delivery = resolve_delivery(effective.as_ref(), path, ns, env, world);
    match &delivery {
        Ok(rd) => {
            conds.push(Cond::ok("DeadLetterSinkResolved"));
            if let Some(u) = &rd.dead_letter_uri {
                extra.insert("deadLetterSinkUri".into(), json!(u));
            }
        }
        Err((r, m)) => conds.push(Cond::fail("DeadLetterSinkResolved", r, m.clone())),
    }
    let filter: Option<TriggerFilter> = decode(&t["spec"]["filter"]);
    let filters: Option<Vec<SubscriptionsApiFilter>> = decode(&t["spec"]["filters"]);
    let compiled = sluice_triggers::compile(filter.as_ref(), filters.as_deref());
    if let Err(e) = &compiled {
        conds.push(Cond::fail("SubscriptionReady", "FilterInvalid", e.to_string()));
    }
    let subscribed = match (sub_url, delivery, compiled, broker_delivery.is_some()) {
        (Ok((_, subscriber)), Ok(rd), Ok(filter), true) => {
            conds.push(Cond::ok("SubscriptionReady"));
            Some((
                hub_key(ns, broker),
                SubscriberConfig {
                    id: subscriber_id(t),
                    kind: "trigger",
                    namespace: ns.into(),
                    name: name.into(),
                    filter: Some(filter),
                    subscriber,
                    reply: ReplyTo::SameBroker,
                    policy: rd.policy,
                    dead_letter: rd.dead_letter,
                    max_in_flight: max_in_flight(t),
                    generation: generation(t),
                },
            ))
        }
        (_, _, Ok(_), _) => {
            conds.push(Cond::fail(
                "SubscriptionReady",
                "NotSubscribed",
                "the trigger is not subscribed until its broker, subscriber and delivery resolve",
            ));
            None
        }
        _ => None,
    };
    TriggerDecision {
        status: status_with(t, conds, extra),
        subscriber: subscribed,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{condition, env, obj, world};

    fn decided(objs: Vec<Value>, name: &str) -> TriggerDecision {
        let w = world(objs.clone());
        let t = objs.iter().find(|o| o["metadata"]["name"] == name).unwrap();
        trigger(t, &env(), &w)
    }

    #[test]
    fn a_trigger_with_a_broker_ref_finds_its_broker() {
        let d = decided(
            vec![
                obj("Broker", "eventing.knative.dev", "b", json!({})),
                obj(
                    "Trigger",
                    "eventing.knative.dev",
                    "t",
                    json!({"brokerRef": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b"}, "subscriber": {"uri": "http://127.0.0.1:1/"}}),
                ),
            ],
            "t",
        );
        assert_eq!(condition(&d.status, "BrokerReady")["status"], "True");
        assert_eq!(condition(&d.status, "Ready")["status"], "True");
        let (hub, config) = d.subscriber.unwrap();
        assert_eq!(hub.name, "b");
        assert_eq!(config.id, "default/t/uid-t");
        assert_eq!(config.generation, 1);
    }

    #[test]
    fn a_trigger_without_its_broker_is_not_ready_nor_subscribed() {
        let d = decided(
            vec![obj(
                "Trigger",
                "eventing.knative.dev",
                "t",
                json!({"broker": "missing", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            )],
            "t",
        );
        assert_eq!(condition(&d.status, "BrokerReady")["reason"], "BrokerDoesNotExist");
        assert_eq!(condition(&d.status, "Ready")["status"], "False");
        assert!(d.subscriber.is_none());
    }

    #[test]
    fn the_retry_group_comes_whole_from_the_trigger_and_the_dead_letter_sink_falls_back() {
        let objs = vec![
            obj(
                "Broker",
                "eventing.knative.dev",
                "default",
                json!({"delivery": {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S",
                "deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}}}}),
            ),
            obj("Broker", "eventing.knative.dev", "dlq", json!({})),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "inherits",
                json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            ),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "own",
                json!({"broker": "default", "subscriber": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}, "uri": "/extra"},
                "delivery": {"retry": 1}}),
            ),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "sink-only",
                json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:1/"},
                "delivery": {"deadLetterSink": {"uri": "http://127.0.0.1:2/dls"}}}),
            ),
        ];
        let inherits = decided(objs.clone(), "inherits").subscriber.unwrap().1;
        assert_eq!(inherits.policy.retries, 10);
        assert_eq!(inherits.dead_letter.as_ref().unwrap().url, "http://127.0.0.1:8080/default/dlq");
        let own = decided(objs.clone(), "own");
        assert_eq!(own.status["deadLetterSinkUri"], "http://127.0.0.1:8080/default/dlq");
        assert_eq!(own.status["subscriberUri"], "http://127.0.0.1:8080/default/dlq/extra");
        let own = own.subscriber.unwrap().1;
        assert_eq!(own.policy.retries, 1);
        assert_eq!(own.policy.backoff, None, "the retry group comes whole from the trigger");
        // BRK-01: the dead-letter sink is resolved on its own, the broker's when the trigger has none.
        assert_eq!(own.dead_letter.as_ref().unwrap().url, "http://127.0.0.1:8080/default/dlq");
        assert_eq!(own.subscriber.url, "http://127.0.0.1:8080/default/dlq/extra");
        // A trigger with a delivery that sets only a sink has its own (empty) retry group.
        let sink_only = decided(objs, "sink-only").subscriber.unwrap().1;
        assert_eq!(sink_only.policy.retries, 0);
        assert_eq!(sink_only.dead_letter.as_ref().unwrap().url, "http://127.0.0.1:2/dls");
    }

    #[test]
    fn an_unresolvable_subscriber_leaves_an_empty_uri_and_a_reason() {
        let d = decided(
            vec![
                obj("Broker", "eventing.knative.dev", "default", json!({})),
                obj(
                    "Trigger",
                    "eventing.knative.dev",
                    "t",
                    json!({"broker": "default", "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "display"}}}),
                ),
            ],
            "t",
        );
        assert_eq!(d.status["subscriberUri"], "");
        let c = condition(&d.status, "SubscriberResolved");
        assert_eq!(c["status"], "False");
        assert!(c["message"].as_str().unwrap().contains("Service default/display"), "{c}");
        assert!(d.subscriber.is_none());
    }

    #[test]
    fn a_trigger_of_a_broker_that_is_not_ready_says_why() {
        let mut kafka = obj("Broker", "eventing.knative.dev", "k", json!({}));
        kafka["metadata"]["annotations"] = json!({crate::BROKER_CLASS: "Kafka"});
        let d = decided(
            vec![
                kafka,
                obj(
                    "Trigger",
                    "eventing.knative.dev",
                    "t",
                    json!({"broker": "k", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
                ),
            ],
            "t",
        );
        let c = condition(&d.status, "BrokerReady");
        assert_eq!(c["reason"], "BrokerNotReady");
        assert!(c["message"].as_str().unwrap().contains("\"Kafka\""), "{c}");
        assert!(d.subscriber.is_none());
    }
}
