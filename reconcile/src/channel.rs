//! The Channel and InMemoryChannel decision (CH-01..04): a memory hub addressable at
//! `{gateway}/channels/{namespace}/{name}`, with the subscriptions added to it listed in its
//! status and, for an InMemoryChannel, in its `spec.subscribers` (as Knative's Subscription
//! controller writes them).

use serde_json::{json, Value};
use sluice_brokers::{Acknowledge, BackendKind, HubKey, HubKind, HubSpec};
use sluice_crds::duck::ConditionCheck as Cond;

use crate::address::{addressable_with_delivery, channel_url};
use crate::subscription::{channel_of, subscription};
use crate::{meta_str, status_with, Environment, Lookup, ASYNC_HANDLER_ANNOTATION};

/// What a channel is: its status, its hub, and its subscribers.
#[derive(Debug)]
pub struct ChannelDecision {
    /// The status to write.
    pub status: Value,
    /// The hub that serves it (without subscribers: each Subscription adds its own).
    pub hub: HubSpec,
    /// `spec.subscribers` of an InMemoryChannel (server-owned); `None` for a Channel.
    pub spec_subscribers: Option<Value>,
}

/// The hub of a Channel or InMemoryChannel. A Channel and the InMemoryChannel of the same name
/// share a hub, as a Channel and its backing channel do in Knative.
pub fn hub(c: &Value) -> HubSpec {
    let (ns, name) = (meta_str(c, "namespace"), meta_str(c, "name"));
    // Channels answer after fan-out unless the IMC asks for the asynchronous handler (CH-04); a
    // Channel's backing IMC carries no annotations, so it is synchronous.
    let asynchronous = c["kind"] == "InMemoryChannel" && c["metadata"]["annotations"][ASYNC_HANDLER_ANNOTATION].as_str() == Some("true");
    HubSpec {
        key: HubKey {
            kind: HubKind::Channel,
            namespace: ns.into(),
            name: name.into(),
        },
        backend: BackendKind::Memory,
        acknowledge: if asynchronous {
            Acknowledge::WhenStored
        } else {
            Acknowledge::AfterFanOut
        },
        subscribers: vec![],
    }
}

/// Decides a channel's status, hub and subscribers.
pub fn channel(c: &Value, env: &Environment, world: &dyn Lookup) -> ChannelDecision {
    let (ns, name) = (meta_str(c, "namespace"), meta_str(c, "name"));
    let kind = c["kind"].as_str().unwrap_or("");
    let url = channel_url(env, ns, name);
    let mut conds = vec![Cond::ok("Addressable"), Cond::ok("EventPoliciesReady")];
    // The gateway is a channel's service, endpoints and dispatcher at once (CH-04).
    let ready: &[&str] = if kind == "Channel" {
        &["BackingChannelReady"]
    } else {
        &["DispatcherReady", "ServiceReady", "EndpointsReady", "ChannelServiceReady"]
    };
    conds.extend(ready.iter().copied().map(Cond::ok));
    let mut extra = serde_json::Map::new();
    addressable_with_delivery(c, &url, env, world, &mut conds, &mut extra);
    let mut subscriptions = world.list("messaging.knative.dev", "Subscription", ns);
    subscriptions.retain(|s| channel_of(s) == (kind, name));
    subscriptions.sort_by(|a, b| meta_str(a, "name").cmp(meta_str(b, "name")));
    let (mut spec_entries, mut status_entries) = (Vec::new(), Vec::new());
    for s in &subscriptions {
        let d = subscription(s, env, world);
        spec_entries.extend(d.spec_entry);
        status_entries.extend(d.status_entry);
    }
    extra.insert("subscribers".into(), json!(status_entries));
    // Knative's Channel keeps no subscribers in its spec (its backing channel does, and embedded
    // mode has none), so only InMemoryChannels get them.
    let spec_subscribers = (kind == "InMemoryChannel").then(|| json!(spec_entries));
    ChannelDecision {
        status: status_with(c, conds, extra),
        hub: hub(c),
        spec_subscribers,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{condition, env, obj, world};

    #[test]
    fn a_channel_lists_the_subscriptions_added_to_it() {
        let imc = obj("InMemoryChannel", "messaging.knative.dev", "events", json!({}));
        let sub = |name: &str, kind: &str, uri: &str| {
            obj(
                "Subscription",
                "messaging.knative.dev",
                name,
                json!({"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": kind, "name": "events"}, "subscriber": {"uri": uri}}),
            )
        };
        let w = world(vec![
            imc.clone(),
            sub("a", "InMemoryChannel", "http://127.0.0.1:1/a"),
            sub("b", "InMemoryChannel", "http://127.0.0.1:1/b"),
            sub("other-kind", "Channel", "http://127.0.0.1:1/c"),
        ]);
        let d = channel(&imc, &env(), &w);
        assert_eq!(d.status["address"]["url"], "http://127.0.0.1:8080/channels/default/events");
        assert_eq!(condition(&d.status, "Ready")["status"], "True");
        let spec = d.spec_subscribers.unwrap();
        let uris: Vec<&str> = spec
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subscriberUri"].as_str().unwrap())
            .collect();
        assert_eq!(uris, ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]);
        assert_eq!(
            d.status["subscribers"][1],
            json!({"uid": "uid-b", "observedGeneration": 1, "ready": "True"})
        );
        assert_eq!(d.hub.acknowledge, Acknowledge::AfterFanOut);
    }

    #[test]
    fn the_async_handler_annotation_answers_once_stored_and_a_channel_keeps_no_spec_subscribers() {
        let mut imc = obj("InMemoryChannel", "messaging.knative.dev", "events", json!({}));
        imc["metadata"]["annotations"] = json!({ASYNC_HANDLER_ANNOTATION: "true"});
        assert_eq!(hub(&imc).acknowledge, Acknowledge::WhenStored);
        let ch = obj("Channel", "messaging.knative.dev", "events", json!({}));
        let d = channel(&ch, &env(), &world(vec![ch.clone()]));
        assert!(d.spec_subscribers.is_none());
        assert_eq!(condition(&d.status, "BackingChannelReady")["status"], "True");
    }
}
