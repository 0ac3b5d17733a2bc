//! Sequence and Parallel (FLW-01, FLW-02), wired as Knative wires them: internal channels and
//! subscriptions on the same hubs and dispatcher as user channels.
//!
//! Sequence `s` with n steps: channel `s-kn-sequence-i` → step i, reply → channel i+1; the last
//! step replies to `spec.reply` (or nowhere). Parallel `p`: ingress channel `p-kn-parallel`; per
//! branch i a filter subscription (ingress → filter, reply → channel `p-kn-parallel-i`; without a
//! filter the branch channel itself subscribes) and a subscriber subscription (branch channel →
//! subscriber, reply → branch reply or `spec.reply`).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sluice_brokers::{Acknowledge, BackendKind, HubKey, HubKind, HubSpec, ReplyTo, SubscriberConfig, DEFAULT_MAX_IN_FLIGHT};
use sluice_crds::duck::{DeliverySpec, Destination};

use crate::reconcile::{channel_url, decode, meta_str, resolve_delivery, status_with, target, Addresses, Cond};
use crate::store::ObjectKey;

/// A step or branch part: a Destination with an optional `delivery` beside it.
fn split_destination(v: &Value) -> (Option<Destination>, Option<DeliverySpec>) {
    let mut d = v.clone();
    let delivery = d.as_object_mut().and_then(|m| m.remove("delivery"));
    (decode(&d), delivery.as_ref().and_then(decode))
}

struct Wiring<'a> {
    ns: &'a str,
    owner: &'a str,
    uid: &'a str,
    gw: &'a str,
    addrs: &'a Addresses,
    hubs: &'a mut BTreeMap<HubKey, HubSpec>,
    failures: Vec<String>,
}

impl Wiring<'_> {
    fn channel(&mut self, name: &str) -> String {
        let key = HubKey {
            kind: HubKind::Channel,
            namespace: self.ns.into(),
            name: name.into(),
        };
        // Knative makes these from the flow's channelTemplate without annotations: synchronous.
        self.hubs.entry(key.clone()).or_insert(HubSpec {
            key,
            backend: BackendKind::Memory,
            acknowledge: Acknowledge::AfterFanOut,
            subscribers: vec![],
        });
        channel_url(self.gw, self.ns, name)
    }

    /// Adds a subscription on `channel`; returns whether it is wired.
    fn subscribe(
        &mut self,
        channel: &str,
        name: &str,
        subscriber: Result<String, String>,
        reply: Option<Result<String, String>>,
        delivery: Option<&DeliverySpec>,
    ) -> bool {
        let wired = (|| {
            let subscriber = target(&subscriber?)?;
            let reply = match reply {
                None => ReplyTo::Discard,
                Some(r) => ReplyTo::Url(target(&r?)?),
            };
            let resolved = resolve_delivery(delivery, "delivery", self.ns, self.addrs).map_err(|(_, m)| m)?;
            let (policy, dead_letter) = (resolved.policy, resolved.dead_letter);
            Ok::<_, String>(SubscriberConfig {
                id: format!("{}/{}/{}/{}", self.ns, self.owner, name, self.uid),
                kind: "subscription",
                namespace: self.ns.into(),
                name: name.into(),
                filter: None,
                subscriber,
                reply,
                policy,
                dead_letter,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            })
        })();
        match wired {
            Ok(cfg) => {
                let key = HubKey {
                    kind: HubKind::Channel,
                    namespace: self.ns.into(),
                    name: channel.into(),
                };
                if let Some(hub) = self.hubs.get_mut(&key) {
                    hub.subscribers.push(cfg);
                }
                true
            }
            Err(m) => {
                self.failures.push(format!("{name}: {m}"));
                false
            }
        }
    }
}

fn sub_status(name: &str, ready: bool) -> Value {
    json!({"subscription": {"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "name": name},
           "ready": {"type": "Ready", "status": if ready { "True" } else { "False" }}})
}

fn chan_status(name: &str) -> Value {
    json!({"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel", "name": name},
           "ready": {"type": "Ready", "status": "True"}})
}

/// Wires every Sequence and Parallel into `hubs` and records their statuses.
pub(crate) fn reconcile_flows(
    objects: &BTreeMap<ObjectKey, Value>,
    gw: &str,
    addrs: &Addresses,
    hubs: &mut BTreeMap<HubKey, HubSpec>,
    statuses: &mut Vec<(ObjectKey, Value)>,
) {
    for (key, s) in objects.iter().filter(|(_, v)| v["kind"] == "Sequence") {
        let (ns, name, uid) = (meta_str(s, "namespace"), meta_str(s, "name"), meta_str(s, "uid"));
        let steps = s["spec"]["steps"].as_array().cloned().unwrap_or_default();
        let reply: Option<Destination> = decode(&s["spec"]["reply"]);
        let mut w = Wiring {
            ns,
            owner: name,
            uid,
            gw,
            addrs,
            hubs,
            failures: vec![],
        };
        let mut channels = Vec::new();
        let mut subs = Vec::new();
        let names: Vec<String> = (0..steps.len()).map(|i| format!("{name}-kn-sequence-{i}")).collect();
        for n in &names {
            w.channel(n);
            channels.push(chan_status(n));
        }
        for (i, step) in steps.iter().enumerate() {
            let (dest, delivery) = split_destination(step);
            let subscriber = dest
                .ok_or_else(|| format!("spec.steps[{i}] is not a destination"))
                .and_then(|d| addrs.resolve(&d, ns));
            let next = if i + 1 < names.len() {
                Some(Ok(channel_url(gw, ns, &names[i + 1])))
            } else {
                reply.as_ref().map(|r| addrs.resolve(r, ns))
            };
            let ok = w.subscribe(&names[i], &names[i], subscriber, next, delivery.as_ref());
            subs.push(sub_status(&names[i], ok));
        }
        let failures = std::mem::take(&mut w.failures);
        let mut conds = vec![Cond::ok("ChannelsReady"), Cond::ok("EventPoliciesReady")];
        conds.push(if failures.is_empty() {
            Cond::ok("SubscriptionsReady")
        } else {
            Cond::fail("SubscriptionsReady", "SubscriptionsNotReady", failures.join("; "))
        });
        conds.push(if names.is_empty() {
            Cond::fail("Addressable", "NoSteps", "sequence has no steps")
        } else {
            Cond::ok("Addressable")
        });
        let mut extra = serde_json::Map::new();
        if let Some(first) = names.first() {
            let url = channel_url(gw, ns, first);
            extra.insert("address".into(), json!({"name": "http", "url": url}));
        }
        extra.insert("channelStatuses".into(), Value::Array(channels));
        extra.insert("subscriptionStatuses".into(), Value::Array(subs));
        statuses.push((key.clone(), status_with(s, conds, extra)));
    }

    for (key, p) in objects.iter().filter(|(_, v)| v["kind"] == "Parallel") {
        let (ns, name, uid) = (meta_str(p, "namespace"), meta_str(p, "name"), meta_str(p, "uid"));
        let branches = p["spec"]["branches"].as_array().cloned().unwrap_or_default();
        let reply: Option<Destination> = decode(&p["spec"]["reply"]);
        let mut w = Wiring {
            ns,
            owner: name,
            uid,
            gw,
            addrs,
            hubs,
            failures: vec![],
        };
        let ingress = format!("{name}-kn-parallel");
        let ingress_url = w.channel(&ingress);
        let mut branch_statuses = Vec::new();
        for (i, b) in branches.iter().enumerate() {
            let branch_channel = format!("{name}-kn-parallel-{i}");
            let branch_url = w.channel(&branch_channel);
            let filter_sub = format!("{name}-kn-parallel-filter-{i}");
            let subscriber_sub = format!("{name}-kn-parallel-{i}");
            let delivery: Option<DeliverySpec> = decode(&b["delivery"]);
            let filter_ok = match decode::<Destination>(&b["filter"]) {
                Some(f) => w.subscribe(
                    &ingress,
                    &filter_sub,
                    addrs.resolve(&f, ns),
                    Some(Ok(branch_url.clone())),
                    delivery.as_ref(),
                ),
                None => w.subscribe(&ingress, &filter_sub, Ok(branch_url.clone()), None, delivery.as_ref()),
            };
            let subscriber = decode::<Destination>(&b["subscriber"])
                .ok_or_else(|| format!("spec.branches[{i}].subscriber is missing"))
                .and_then(|d| addrs.resolve(&d, ns));
            let branch_reply = decode::<Destination>(&b["reply"])
                .or_else(|| reply.clone())
                .map(|r| addrs.resolve(&r, ns));
            let sub_ok = w.subscribe(&branch_channel, &subscriber_sub, subscriber, branch_reply, delivery.as_ref());
            branch_statuses.push(json!({
                "filterSubscriptionStatus": sub_status(&filter_sub, filter_ok),
                "filterChannelStatus": chan_status(&branch_channel),
                "subscriberSubscriptionStatus": sub_status(&subscriber_sub, sub_ok),
            }));
        }
        let failures = std::mem::take(&mut w.failures);
        let mut conds = vec![Cond::ok("ChannelsReady"), Cond::ok("Addressable"), Cond::ok("EventPoliciesReady")];
        conds.push(if failures.is_empty() {
            Cond::ok("SubscriptionsReady")
        } else {
            Cond::fail("SubscriptionsReady", "SubscriptionsNotReady", failures.join("; "))
        });
        let mut extra = serde_json::Map::new();
        extra.insert("address".into(), json!({"name": "http", "url": ingress_url}));
        extra.insert("ingressChannelStatus".into(), chan_status(&ingress));
        extra.insert("branchStatuses".into(), Value::Array(branch_statuses));
        statuses.push((key.clone(), status_with(p, conds, extra)));
    }
}
