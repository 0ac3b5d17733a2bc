//! The data plane's snapshot: every hub and subscriber the objects call for, from the same
//! decisions the controllers write as status.
//!
//! A [`Snapshotter`] remembers each Trigger's and Subscription's subscriber with the versions
//! it was decided from (its own `resourceVersion` and those of the addressable objects of its
//! namespace, which are all its decision reads), so a snapshot after one change decides only
//! what that change touches instead of compiling every filter again.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use sluice_brokers::{HubKey, HubSpec, Snapshot, SubscriberConfig};

use crate::objects::ObjectId;
use crate::{broker, channel, meta_str, subscription, trigger, Environment, Objects};

/// The kinds a Trigger's or Subscription's decision reads besides the object itself.
const ADDRESSABLE: [(&str, &str); 6] = [
    ("eventing.knative.dev", "Broker"),
    ("messaging.knative.dev", "Channel"),
    ("messaging.knative.dev", "InMemoryChannel"),
    ("flows.knative.dev", "Sequence"),
    ("flows.knative.dev", "Parallel"),
    ("serving.knative.dev", "Service"),
];

/// A subscriber as decided, with the versions it was decided from.
struct Decided {
    versions: (String, u64),
    subscriber: Option<(HubKey, Arc<SubscriberConfig>)>,
}

/// Builds snapshots, deciding again only the subscribers whose inputs changed.
pub struct Snapshotter {
    env: Environment,
    decided: HashMap<ObjectId, Decided>,
}

impl Snapshotter {
    /// A snapshotter for the gateway of `env`.
    pub fn new(env: Environment) -> Self {
        Self {
            env,
            decided: HashMap::new(),
        }
    }

    /// The hubs and subscribers that serve `objects`.
    pub fn snapshot(&mut self, objects: &Objects) -> Snapshot {
        let env = &self.env;
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
        // What each namespace's addressable objects are, as one number.
        let mut epochs: HashMap<&str, DefaultHasher> = HashMap::new();
        for (group, kind) in ADDRESSABLE {
            for o in objects.of_kind(group, kind) {
                let h = epochs.entry(meta_str(o, "namespace")).or_default();
                (kind, meta_str(o, "name"), meta_str(o, "resourceVersion")).hash(h);
            }
        }
        let epochs: HashMap<&str, u64> = epochs.into_iter().map(|(ns, h)| (ns, h.finish())).collect();
        let mut seen = Vec::new();
        for (group, kind) in [("eventing.knative.dev", "Trigger"), ("messaging.knative.dev", "Subscription")] {
            for o in objects.of_kind(group, kind) {
                let id = Objects::id(o);
                let versions = (
                    meta_str(o, "resourceVersion").to_string(),
                    epochs.get(meta_str(o, "namespace")).copied().unwrap_or(0),
                );
                let current = self.decided.get(&id).is_some_and(|d| d.versions == versions);
                if !current {
                    let subscriber = if kind == "Trigger" {
                        trigger::trigger(o, env, objects).subscriber
                    } else {
                        let d = subscription::subscription(o, env, objects);
                        d.subscriber.map(|config| (d.channel, config))
                    };
                    // Shared with the hub, which keeps running it while it is the same `Arc`.
                    let subscriber = subscriber.map(|(key, config)| (key, Arc::new(config)));
                    self.decided.insert(id.clone(), Decided { versions, subscriber });
                }
                if let Some((key, config)) = &self.decided[&id].subscriber {
                    if let Some(hub) = hubs.get_mut(key) {
                        hub.subscribers.push(config.clone());
                    }
                }
                seen.push(id);
            }
        }
        // Forget what was deleted.
        if seen.len() < self.decided.len() {
            let seen: std::collections::HashSet<ObjectId> = seen.into_iter().collect();
            self.decided.retain(|id, _| seen.contains(id));
        }
        Snapshot {
            hubs: hubs.into_values().collect(),
        }
    }
}

/// The hubs and subscribers that serve `objects`, decided from scratch.
pub fn snapshot(objects: &Objects, env: &Environment) -> Snapshot {
    Snapshotter::new(env.clone()).snapshot(objects)
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
        assert_eq!(
            hub1.subscribers[0].reply,
            ReplyTo::Url(Target::parse("http://127.0.0.1:1/out").unwrap())
        );
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
            sub(
                "seq-kn-sequence-1",
                json!({"uri": "http://127.0.0.1:1/out"}),
                "http://127.0.0.1:1/b",
            ),
        ]
    }

    #[test]
    fn a_snapshotter_decides_again_what_a_change_touches() {
        let mut w = world(vec![
            obj("Broker", "eventing.knative.dev", "default", json!({})),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            ),
        ]);
        let mut s = Snapshotter::new(env());
        assert_eq!(s.snapshot(&w).hubs[0].subscribers[0].subscriber.url, "http://127.0.0.1:1/");
        // A new version of the trigger is decided again.
        let mut t = obj(
            "Trigger",
            "eventing.knative.dev",
            "t",
            json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:2/"}}),
        );
        t["metadata"]["resourceVersion"] = json!("2");
        w.insert(t);
        assert_eq!(s.snapshot(&w).hubs[0].subscribers[0].subscriber.url, "http://127.0.0.1:2/");
        // So is every trigger of a namespace whose broker changed (here: gone).
        w.remove(&Objects::id(&obj("Broker", "eventing.knative.dev", "default", json!({}))));
        assert!(s.snapshot(&w).hubs.is_empty());
        w.insert(obj("Broker", "eventing.knative.dev", "default", json!({})));
        assert_eq!(s.snapshot(&w).hubs[0].subscribers.len(), 1);
    }

    #[test]
    fn triggers_join_the_hub_of_their_broker() {
        let w = world(vec![
            obj("Broker", "eventing.knative.dev", "default", json!({})),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "t1",
                json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            ),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "t2",
                json!({"broker": "other", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            ),
        ]);
        let snap = snapshot(&w, &env());
        assert_eq!(snap.hubs.len(), 1);
        let names: Vec<&str> = snap.hubs[0].subscribers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["t1"]);
    }
}
