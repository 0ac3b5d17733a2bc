//! The data plane's snapshot: every hub and subscriber the objects call for, from the same
//! decisions the controllers write as status.

use std::collections::BTreeMap;

use sluice_brokers::{HubKey, HubSpec, Snapshot};

use crate::{broker, channel, subscription, trigger, Environment, Objects};

/// The hubs and subscribers that serve `objects`.
pub fn snapshot(objects: &Objects, env: &Environment) -> Snapshot {
    let mut hubs: BTreeMap<HubKey, HubSpec> = BTreeMap::new();
    for b in objects.of_kind("eventing.knative.dev", "Broker") {
        if let Some(hub) = broker::broker(b, env, objects).hub {
            hubs.insert(hub.key.clone(), hub);
        }
    }
    for kind in ["Channel", "InMemoryChannel"] {
        for c in objects.of_kind("messaging.knative.dev", kind) {
            let hub = channel::hub(c);
            hubs.insert(hub.key.clone(), hub);
        }
    }
    for t in objects.of_kind("eventing.knative.dev", "Trigger") {
        if let Some((key, config)) = trigger::trigger(t, env, objects).subscriber {
            if let Some(hub) = hubs.get_mut(&key) {
                hub.subscribers.push(config);
            }
        }
    }
    for s in objects.of_kind("messaging.knative.dev", "Subscription") {
        let d = subscription::subscription(s, env, objects);
        if let (Some(config), Some(hub)) = (d.subscriber, hubs.get_mut(&d.channel)) {
            hub.subscribers.push(config);
        }
    }
    Snapshot {
        hubs: hubs.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_brokers::ReplyTo;
    use sluice_delivery::Target;

    use super::*;
    use crate::test_support::{env, obj, world};

    #[test]
    fn a_sequence_is_served_through_the_channels_and_subscriptions_its_controller_writes() {
        let seq = obj(
            "Sequence",
            "flows.knative.dev",
            "seq",
            json!({"steps": [{"uri": "http://127.0.0.1:1/a"}, {"uri": "http://127.0.0.1:1/b"}], "reply": {"uri": "http://127.0.0.1:1/out"}}),
        );
        let mut w = world(vec![]);
        for mut child in sequence_children(&seq) {
            let name = child["metadata"]["name"].as_str().unwrap().to_string();
            child["metadata"]["uid"] = json!(format!("uid-{name}-{}", child["kind"].as_str().unwrap()));
            child["metadata"]["generation"] = json!(1);
            w.insert(child);
        }
        w.insert(seq);
        let snap = snapshot(&w, &env());
        let hub0 = snap.hubs.iter().find(|h| h.key.name == "seq-kn-sequence-0").unwrap();
        assert_eq!(
            hub0.subscribers[0].reply,
            ReplyTo::Url(Target::parse("http://127.0.0.1:8080/channels/default/seq-kn-sequence-1").unwrap())
        );
        let hub1 = snap.hubs.iter().find(|h| h.key.name == "seq-kn-sequence-1").unwrap();
        assert_eq!(hub1.subscribers[0].reply, ReplyTo::Url(Target::parse("http://127.0.0.1:1/out").unwrap()));
    }

    /// The children the Sequence controller writes for a two-step sequence (its own tests check
    /// how it builds them).
    fn sequence_children(seq: &serde_json::Value) -> Vec<serde_json::Value> {
        let imc = |n: &str| json!({"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel", "metadata": {"name": n, "namespace": "default"}, "spec": {}});
        let sub = |n: &str, reply: serde_json::Value, uri: &str| {
            json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": n, "namespace": "default"},
                "spec": {"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel", "name": n},
                    "subscriber": {"uri": uri}, "reply": reply}})
        };
        assert_eq!(seq["spec"]["steps"].as_array().unwrap().len(), 2);
        vec![
            imc("seq-kn-sequence-0"),
            imc("seq-kn-sequence-1"),
            sub(
                "seq-kn-sequence-0",
                json!({"ref": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel", "name": "seq-kn-sequence-1"}}),
                "http://127.0.0.1:1/a",
            ),
            sub("seq-kn-sequence-1", json!({"uri": "http://127.0.0.1:1/out"}), "http://127.0.0.1:1/b"),
        ]
    }

    #[test]
    fn triggers_join_the_hub_of_their_broker() {
        let w = world(vec![
            obj("Broker", "eventing.knative.dev", "default", json!({})),
            obj("Trigger", "eventing.knative.dev", "t1", json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:1/"}})),
            obj("Trigger", "eventing.knative.dev", "t2", json!({"broker": "other", "subscriber": {"uri": "http://127.0.0.1:1/"}})),
        ]);
        let snap = snapshot(&w, &env());
        assert_eq!(snap.hubs.len(), 1);
        let names: Vec<&str> = snap.hubs[0].subscribers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["t1"]);
    }
}
