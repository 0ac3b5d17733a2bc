//! The Subscription decision (SUB-01..03, CH-02): its channel, subscriber, reply and delivery
//! resolved into a status, the entry it adds to its channel, and the subscriber the channel's
//! hub runs.

use serde_json::{json, Value};
use sluice_brokers::{HubKey, HubKind, ReplyTo, SubscriberConfig};
use sluice_crds::duck::{ConditionCheck as Cond, DeliverySpec, Destination};
use sluice_delivery::Target;

use crate::address::{effective_delivery, resolve, resolve_delivery, sets_retry_group, ResolvedDelivery};
use crate::trigger::subscriber_id;
use crate::{decode, generation, max_in_flight, meta_str, status_with, Environment, Lookup};

/// What a Subscription is: its status and, when it is added to its channel, what it adds.
#[derive(Debug)]
pub struct SubscriptionDecision {
    /// The status to write.
    pub status: Value,
    /// The hub of its channel.
    pub channel: HubKey,
    /// The subscriber the channel's hub runs for it (`None`: not added).
    pub subscriber: Option<SubscriberConfig>,
    /// Its entry in the channel's `spec.subscribers` (CH-02), when added.
    pub spec_entry: Option<Value>,
    /// Its entry in the channel's `status.subscribers`, when added.
    pub status_entry: Option<Value>,
}

/// The channel a subscription names: (kind, name).
pub fn channel_of(s: &Value) -> (&str, &str) {
    let c = &s["spec"]["channel"];
    (c["kind"].as_str().unwrap_or(""), c["name"].as_str().unwrap_or(""))
}

/// Decides a Subscription's status and what it adds to its channel.
pub fn subscription(s: &Value, env: &Environment, world: &dyn Lookup) -> SubscriptionDecision {
    let (ns, name) = (meta_str(s, "namespace"), meta_str(s, "name"));
    let (channel_kind, channel) = channel_of(s);
    let hub = HubKey {
        kind: HubKind::Channel,
        namespace: ns.into(),
        name: channel.into(),
    };
    let channel_object = match channel_kind {
        "Channel" | "InMemoryChannel" => world.get("messaging.knative.dev", channel_kind, ns, channel),
        _ => None,
    };
    let mut conds = Vec::new();
    let subscriber: Option<Destination> = decode(&s["spec"]["subscriber"]);
    let reply: Option<Destination> = decode(&s["spec"]["reply"]);
    let sub = subscriber
        .as_ref()
        .ok_or_else(|| "spec.subscriber is missing".to_string())
        .and_then(|d| resolve(d, ns, env, world));
    let rep = reply.as_ref().map(|d| resolve(d, ns, env, world)).transpose();
    // SUB-03: the retry group is the subscription's when it sets any of it, else the channel's;
    // the dead-letter sink is the subscription's, else the channel's.
    let own: Option<DeliverySpec> = decode(&s["spec"]["delivery"]);
    let own_retry_group = own.as_ref().is_some_and(sets_retry_group);
    let parent: Option<DeliverySpec> = channel_object.as_ref().and_then(|c| decode(&c["spec"]["delivery"]));
    let effective = effective_delivery(own, parent, own_retry_group);
    let delivery = resolve_delivery(effective.as_ref(), "spec.delivery", ns, env, world);
    // The channel's SubscriberSpec (CH-02): resolved URIs, the dead-letter sink as a URI.
    let mut spec_entry = json!({
        "name": name, "uid": meta_str(s, "uid"), "generation": s["metadata"]["generation"],
        "subscriberUri": sub.as_ref().cloned().unwrap_or_default(),
    });
    let mut physical = json!({"subscriberUri": sub.as_ref().cloned().unwrap_or_default()});
    if let Ok(Some(r)) = &rep {
        spec_entry["replyUri"] = json!(r);
        physical["replyUri"] = json!(r);
    }
    if let Ok(ResolvedDelivery {
        dead_letter_uri: Some(d), ..
    }) = &delivery
    {
        physical["deadLetterSinkUri"] = json!(d);
    }
    if let Some(d) = &effective {
        let mut d = serde_json::to_value(d).expect("delivery specs serialize");
        if let Ok(ResolvedDelivery {
            dead_letter_uri: Some(u), ..
        }) = &delivery
        {
            d["deadLetterSink"] = json!({ "uri": u });
        }
        spec_entry["delivery"] = d;
    }
    let resolved = match (&sub, &rep, &delivery) {
        (Err(m), _, _) | (_, Err(m), _) | (_, _, Err((_, m))) => Err(m.clone()),
        _ => Ok(()),
    };
    match &resolved {
        Ok(()) => conds.push(Cond::ok("ReferencesResolved")),
        Err(m) => conds.push(Cond::fail("ReferencesResolved", "ReferencesNotResolved", m.clone())),
    }
    match (&channel_object, channel_kind) {
        (Some(_), _) => conds.push(Cond::ok("ChannelReady")),
        (None, "Channel" | "InMemoryChannel") => conds.push(Cond::fail(
            "ChannelReady",
            "ChannelNotFound",
            format!("{channel_kind} {ns}/{channel} does not exist"),
        )),
        (None, _) => conds.push(Cond::fail(
            "ChannelReady",
            "ChannelNotServed",
            format!("channel kind {channel_kind:?} is not served by this build (supported: Channel, InMemoryChannel)"),
        )),
    }
    let config = match (&sub, &rep, delivery) {
        (Ok(su), Ok(re), Ok(rd)) if channel_object.is_some() => {
            let reply_to = match re {
                None => Ok(ReplyTo::Discard),
                Some(u) => Target::parse(u).map(ReplyTo::Url),
            };
            match (Target::parse(su), reply_to) {
                (Ok(subscriber), Ok(reply)) => Some(SubscriberConfig {
                    id: subscriber_id(s),
                    kind: "subscription",
                    namespace: ns.into(),
                    name: name.into(),
                    filter: None,
                    subscriber,
                    reply,
                    policy: rd.policy,
                    dead_letter: rd.dead_letter,
                    max_in_flight: max_in_flight(s),
                    generation: generation(s),
                }),
                (Err(m), _) | (_, Err(m)) => {
                    conds.push(Cond::fail("AddedToChannel", "SubscriberInvalid", m));
                    None
                }
            }
        }
        _ => None,
    };
    let added = config.is_some();
    if added {
        conds.push(Cond::ok("AddedToChannel"));
    } else if channel_object.is_none() || resolved.is_err() {
        conds.push(Cond::fail(
            "AddedToChannel",
            "NotAddedToChannel",
            "the subscription is not added until its references resolve",
        ));
    }
    let mut extra = serde_json::Map::new();
    extra.insert("physicalSubscription".into(), physical);
    // Without the authentication-oidc feature there is no identity to create; Knative reports
    // the condition as met then, as it does for Triggers.
    conds.push(Cond::ok("OIDCIdentityCreated"));
    SubscriptionDecision {
        status: status_with(s, conds, extra),
        channel: hub,
        subscriber: config,
        spec_entry: added.then_some(spec_entry),
        status_entry: added.then(|| json!({"uid": meta_str(s, "uid"), "observedGeneration": s["metadata"]["generation"], "ready": "True"})),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{condition, env, obj, world};

    fn sub(name: &str, kind: &str, extra: Value) -> Value {
        let mut spec = json!({"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": kind, "name": "events"}, "subscriber": {"uri": "http://127.0.0.1:1/"}});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        obj("Subscription", "messaging.knative.dev", name, spec)
    }

    #[test]
    fn a_subscription_needs_a_channel_of_the_kind_it_names() {
        let imc = obj("InMemoryChannel", "messaging.knative.dev", "events", json!({}));
        let w = world(vec![imc]);
        let right = subscription(&sub("right-kind", "InMemoryChannel", json!({})), &env(), &w);
        assert_eq!(condition(&right.status, "ChannelReady")["status"], "True");
        assert!(right.subscriber.is_some());
        assert_eq!(right.spec_entry.unwrap()["subscriberUri"], "http://127.0.0.1:1/");
        let wrong = subscription(&sub("wrong-kind", "Channel", json!({})), &env(), &w);
        let c = condition(&wrong.status, "ChannelReady");
        assert_eq!(c["status"], "False");
        assert_eq!(c["message"], "Channel default/events does not exist");
        assert!(wrong.subscriber.is_none() && wrong.spec_entry.is_none());
    }

    #[test]
    fn the_channels_delivery_is_the_fallback_and_replies_resolve() {
        let imc = obj(
            "InMemoryChannel",
            "messaging.knative.dev",
            "events",
            json!({"delivery": {"retry": 4, "deadLetterSink": {"uri": "http://127.0.0.1:3/dls"}}}),
        );
        let s = sub(
            "s",
            "InMemoryChannel",
            json!({"reply": {"ref": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel", "name": "events"}}}),
        );
        let d = subscription(&s, &env(), &world(vec![imc]));
        let config = d.subscriber.unwrap();
        assert_eq!(config.policy.retries, 4);
        assert_eq!(config.dead_letter.unwrap().url, "http://127.0.0.1:3/dls");
        assert_eq!(
            d.status["physicalSubscription"]["replyUri"],
            "http://127.0.0.1:8080/channels/default/events"
        );
        assert_eq!(d.status["physicalSubscription"]["deadLetterSinkUri"], "http://127.0.0.1:3/dls");
        let entry = d.spec_entry.unwrap();
        assert_eq!(entry["delivery"]["deadLetterSink"]["uri"], "http://127.0.0.1:3/dls");
        assert_eq!(entry["replyUri"], "http://127.0.0.1:8080/channels/default/events");
    }

    #[test]
    fn an_unresolvable_reply_keeps_the_subscription_out_of_its_channel() {
        let imc = obj("InMemoryChannel", "messaging.knative.dev", "events", json!({}));
        let s = sub(
            "s",
            "InMemoryChannel",
            json!({"reply": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "nope"}}}),
        );
        let d = subscription(&s, &env(), &world(vec![imc]));
        assert_eq!(
            condition(&d.status, "ReferencesResolved")["message"],
            "Broker default/nope not found"
        );
        assert_eq!(condition(&d.status, "AddedToChannel")["status"], "False");
        assert!(d.subscriber.is_none());
    }
}
