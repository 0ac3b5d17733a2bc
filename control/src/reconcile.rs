//! The embedded reconciler: from the stored objects, compute every object's status (Knative's
//! conditions, addresses, resolved URIs) and the data-plane snapshot, in one pass.
//!
//! Pure: takes objects, returns statuses and a snapshot, so it is tested without servers.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};
use sluice_brokers::{Acknowledge, BackendKind, HubKey, HubKind, HubSpec, ReplyTo, Snapshot, SubscriberConfig, DEFAULT_MAX_IN_FLIGHT};
use sluice_crds::duck::{DeliverySpec, Destination};
use sluice_crds::eventing::{SubscriptionsApiFilter, TriggerFilter};
use sluice_delivery::{RetryPolicy, Target};

use crate::store::ObjectKey;

/// InMemoryChannel annotation that makes ingress answer once events are queued (CH-04).
pub const ASYNC_HANDLER_ANNOTATION: &str = "messaging.knative.dev/async-handler";

/// Annotation selecting the broker implementation (BRK-03).
pub const BROKER_CLASS: &str = "eventing.knative.dev/broker.class";
/// The broker class served by the memory backend.
pub const MT_CHANNEL_BASED: &str = "MTChannelBasedBroker";
/// Annotation limiting a trigger's or subscription's deliveries in flight (validated at admission).
pub use sluice_crds::meta::MAX_IN_FLIGHT_ANNOTATION;

/// What the reconciler needs to know about the environment.
#[derive(Clone, Debug)]
pub struct Environment {
    /// Base URL of the gateway, e.g. `http://127.0.0.1:8080`.
    pub gateway_url: String,
}

/// The reconciler's output.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// New status of every managed object.
    pub statuses: Vec<(ObjectKey, Value)>,
    /// Desired data plane.
    pub snapshot: Snapshot,
    /// `spec.subscribers` of every InMemoryChannel, server-owned like Knative's Subscription
    /// controller writes it (CH-01, CH-02).
    pub channel_subscribers: Vec<(ObjectKey, Value)>,
}

/// One condition being computed (`sluice_crds::duck::ConditionCheck`).
pub(crate) use sluice_crds::duck::ConditionCheck as Cond;

/// Builds a Knative status block: `extra`, the conditions plus a summary `Ready` (keeping the
/// `lastTransitionTime` of conditions whose status did not change) and `observedGeneration`.
pub(crate) fn status_with(obj: &Value, conds: Vec<Cond>, mut extra: serde_json::Map<String, Value>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    extra.insert(
        "conditions".into(),
        sluice_crds::duck::conditions(&obj["status"]["conditions"], conds, &now),
    );
    extra.insert("observedGeneration".into(), obj["metadata"]["generation"].clone());
    Value::Object(extra)
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    if v.is_null() {
        return None;
    }
    serde_json::from_value(v.clone()).ok()
}

/// Index of addressable objects by (group, kind, namespace, name) → URL.
pub(crate) struct Addresses {
    urls: HashMap<(String, String, String, String), String>,
}

impl Addresses {
    pub(crate) fn resolve(&self, dest: &Destination, namespace: &str) -> Result<String, String> {
        let base = match &dest.r#ref {
            None => None,
            Some(r) => {
                let ns = r.namespace.clone().unwrap_or_else(|| namespace.to_string());
                let group = r.api_group().to_string();
                let key = (group.clone(), r.kind.clone(), ns.clone(), r.name.clone());
                match self.urls.get(&key) {
                    Some(u) => Some(u.clone()),
                    None => {
                        let what = format!("{} {}/{}", r.kind, ns, r.name);
                        return Err(if self.known_kind(&group, &r.kind) {
                            format!("{what} not found")
                        } else if group == "serving.knative.dev" {
                            format!("{what} is not addressable yet: Knative Services are served by the serving core, which this build does not include")
                        } else {
                            format!("{what} is not addressable in embedded mode (kind {} of group {:?})", r.kind, group)
                        });
                    }
                }
            }
        };
        match (base, dest.uri.as_deref()) {
            (Some(b), None) => Ok(b),
            (Some(b), Some(rel)) => {
                let base = url::Url::parse(&format!("{}/", b.trim_end_matches('/'))).map_err(|e| e.to_string())?;
                base.join(rel.trim_start_matches('/'))
                    .map(|u| u.to_string())
                    .map_err(|e| e.to_string())
            }
            (None, Some(uri)) => Ok(uri.to_string()),
            (None, None) => Err("destination has neither ref nor uri".into()),
        }
    }

    fn known_kind(&self, group: &str, kind: &str) -> bool {
        matches!(
            (group, kind),
            ("eventing.knative.dev", "Broker")
                | ("messaging.knative.dev", "Channel" | "InMemoryChannel")
                | ("flows.knative.dev", "Sequence" | "Parallel")
        )
    }
}

pub(crate) fn target(url: &str) -> Result<Target, String> {
    Target::parse(url)
}

fn max_in_flight(obj: &Value) -> usize {
    obj["metadata"]["annotations"][MAX_IN_FLIGHT_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_IN_FLIGHT)
}

/// Resolved delivery settings for one subscriber.
pub(crate) struct ResolvedDelivery {
    pub(crate) policy: RetryPolicy,
    pub(crate) dead_letter: Option<Target>,
    pub(crate) dead_letter_uri: Option<String>,
}

pub(crate) fn resolve_delivery(
    spec: Option<&DeliverySpec>,
    path: &str,
    namespace: &str,
    addrs: &Addresses,
) -> Result<ResolvedDelivery, (String, String)> {
    let Some(spec) = spec else {
        return Ok(ResolvedDelivery {
            policy: RetryPolicy::default(),
            dead_letter: None,
            dead_letter_uri: None,
        });
    };
    let policy = RetryPolicy::from_spec(spec, path).map_err(|errs| {
        (
            "DeliveryInvalid".to_string(),
            errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        )
    })?;
    let (dead_letter, dead_letter_uri) = match &spec.dead_letter_sink {
        None => (None, None),
        Some(d) => {
            let url = addrs
                .resolve(d, namespace)
                .map_err(|m| ("Unable to get the dead letter sink's URI".to_string(), m))?;
            (
                Some(target(&url).map_err(|m| ("DeadLetterSinkResolveFailed".to_string(), m))?),
                Some(url),
            )
        }
    };
    Ok(ResolvedDelivery {
        policy,
        dead_letter,
        dead_letter_uri,
    })
}

/// Whether a delivery spec sets any option of the retry group (SUB-03).
fn sets_retry_group(d: &DeliverySpec) -> bool {
    d.retry.is_some() || d.backoff_policy.is_some() || d.backoff_delay.is_some() || d.timeout.is_some() || d.retry_after_max.is_some()
}

/// The delivery a Trigger or Subscription runs with (BRK-01, SUB-03): the retry group
/// (retry, backoff, timeout, retryAfterMax, with the format) comes whole from its own spec when
/// `own_retry_group`, else from the broker's or channel's; the dead-letter sink is resolved on
/// its own, its own else the parent's.
fn effective_delivery(own: Option<DeliverySpec>, parent: Option<DeliverySpec>, own_retry_group: bool) -> Option<DeliverySpec> {
    let own_sink = own.as_ref().and_then(|d| d.dead_letter_sink.clone());
    let parent_sink = parent.as_ref().and_then(|d| d.dead_letter_sink.clone());
    let retry_group = if own_retry_group { own } else { parent };
    let dead_letter_sink = own_sink.or(parent_sink);
    match (retry_group, dead_letter_sink) {
        (None, None) => None,
        (group, dead_letter_sink) => Some(DeliverySpec {
            dead_letter_sink,
            ..group.unwrap_or_default()
        }),
    }
}

/// Computes statuses and the snapshot from every stored object.
pub fn reconcile(objects: &BTreeMap<ObjectKey, Value>, env: &Environment) -> Reconciled {
    let gw = env.gateway_url.trim_end_matches('/');
    let by_kind = |kind: &'static str| objects.iter().filter(move |(_, v)| v["kind"] == kind);
    let mut urls = HashMap::new();
    for (_, b) in by_kind("Broker") {
        urls.insert(
            (
                "eventing.knative.dev".into(),
                "Broker".into(),
                meta_str(b, "namespace").into(),
                meta_str(b, "name").into(),
            ),
            format!("{gw}/{}/{}", meta_str(b, "namespace"), meta_str(b, "name")),
        );
    }
    for kind in ["Channel", "InMemoryChannel"] {
        for (_, c) in by_kind(kind) {
            urls.insert(
                (
                    "messaging.knative.dev".into(),
                    kind.into(),
                    meta_str(c, "namespace").into(),
                    meta_str(c, "name").into(),
                ),
                channel_url(gw, meta_str(c, "namespace"), meta_str(c, "name")),
            );
        }
    }
    for (_, s) in by_kind("Sequence") {
        let (ns, name) = (meta_str(s, "namespace"), meta_str(s, "name"));
        urls.insert(
            ("flows.knative.dev".into(), "Sequence".into(), ns.into(), name.into()),
            channel_url(gw, ns, &format!("{name}-kn-sequence-0")),
        );
    }
    for (_, p) in by_kind("Parallel") {
        let (ns, name) = (meta_str(p, "namespace"), meta_str(p, "name"));
        urls.insert(
            ("flows.knative.dev".into(), "Parallel".into(), ns.into(), name.into()),
            channel_url(gw, ns, &format!("{name}-kn-parallel")),
        );
    }
    let addrs = Addresses { urls };
    let mut out = Reconciled::default();
    let mut hubs: BTreeMap<HubKey, HubSpec> = BTreeMap::new();
    let mut broker_ready: HashMap<(String, String), Result<Option<DeliverySpec>, String>> = HashMap::new();

    for (key, b) in by_kind("Broker") {
        let (ns, name) = (meta_str(b, "namespace"), meta_str(b, "name"));
        let class = b["metadata"]["annotations"][BROKER_CLASS].as_str().unwrap_or(MT_CHANNEL_BASED);
        let delivery: Option<DeliverySpec> = decode(&b["spec"]["delivery"]);
        let mut conds = Vec::new();
        let mut extra = serde_json::Map::new();
        if class != MT_CHANNEL_BASED {
            let msg = format!("broker class {class:?} is not served by this build (supported: {MT_CHANNEL_BASED})");
            conds.push(Cond::fail("IngressReady", "BrokerClassNotSupported", msg.clone()));
            broker_ready.insert((ns.into(), name.into()), Err(msg));
        } else {
            let url = format!("{gw}/{ns}/{name}");
            conds.push(Cond::ok("IngressReady"));
            conds.push(Cond::ok("TriggerChannelReady"));
            conds.push(Cond::ok("FilterReady"));
            conds.push(Cond::ok("Addressable"));
            conds.push(Cond::ok("EventPoliciesReady"));
            match resolve_delivery(delivery.as_ref(), "spec.delivery", ns, &addrs) {
                Ok(rd) => {
                    conds.push(Cond::ok("DeadLetterSinkResolved"));
                    if let Some(u) = rd.dead_letter_uri {
                        extra.insert("deadLetterSinkUri".into(), json!(u));
                    }
                    broker_ready.insert((ns.into(), name.into()), Ok(delivery.clone()));
                }
                Err((reason, msg)) => {
                    conds.push(Cond::fail("DeadLetterSinkResolved", &reason, msg.clone()));
                    broker_ready.insert((ns.into(), name.into()), Err(msg));
                }
            }
            extra.insert("address".into(), json!({"name": "http", "url": url}));
            extra.insert("addresses".into(), json!([{"name": "http", "url": url}]));
            hubs.insert(
                HubKey {
                    kind: HubKind::Broker,
                    namespace: ns.into(),
                    name: name.into(),
                },
                HubSpec {
                    key: HubKey {
                        kind: HubKind::Broker,
                        namespace: ns.into(),
                        name: name.into(),
                    },
                    backend: BackendKind::Memory,
                    acknowledge: Acknowledge::WhenStored,
                    subscribers: vec![],
                },
            );
        }
        out.statuses.push((key.clone(), status_with(b, conds, extra)));
    }

    for (key, t) in by_kind("Trigger") {
        let (ns, name) = (meta_str(t, "namespace"), meta_str(t, "name"));
        // `spec.broker`, or `spec.brokerRef` (same namespace: validation refuses another one).
        let broker = t["spec"]["broker"]
            .as_str()
            .filter(|b| !b.is_empty())
            .or_else(|| t["spec"]["brokerRef"]["name"].as_str())
            .unwrap_or("")
            .to_string();
        let mut conds = Vec::new();
        let mut extra = serde_json::Map::new();
        let broker_delivery = match broker_ready.get(&(ns.to_string(), broker.clone())) {
            None => {
                conds.push(Cond::fail(
                    "BrokerReady",
                    "BrokerDoesNotExist",
                    format!("broker {ns}/{broker} does not exist"),
                ));
                None
            }
            Some(Err(msg)) => {
                conds.push(Cond::fail("BrokerReady", "BrokerNotReady", msg.clone()));
                None
            }
            Some(Ok(d)) => {
                conds.push(Cond::ok("BrokerReady"));
                Some(d.clone())
            }
        };
        conds.push(Cond::ok("DependencyReady"));
        conds.push(Cond::ok("OIDCIdentityCreated"));
        let subscriber: Option<Destination> = decode(&t["spec"]["subscriber"]);
        let sub_url = subscriber
            .as_ref()
            .ok_or_else(|| "spec.subscriber is missing".to_string())
            .and_then(|d| addrs.resolve(d, ns))
            .and_then(|u| target(&u).map(|t| (u, t)));
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
        // BRK-01: the retry group is the trigger's when it has a delivery, else the broker's;
        // the dead-letter sink is the trigger's, else the broker's.
        let own: Option<DeliverySpec> = decode(&t["spec"]["delivery"]);
        let path = if own.is_some() { "spec.delivery" } else { "broker spec.delivery" };
        let own_retry_group = own.is_some();
        let effective = effective_delivery(own, broker_delivery.clone().flatten(), own_retry_group);
        let delivery = resolve_delivery(effective.as_ref(), path, ns, &addrs);
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
        let hub_key = HubKey {
            kind: HubKind::Broker,
            namespace: ns.into(),
            name: broker.clone(),
        };
        match (&sub_url, delivery, compiled, hubs.get_mut(&hub_key), broker_delivery.is_some()) {
            (Ok((_, subscriber)), Ok(rd), Ok(filter), Some(hub), true) => {
                conds.push(Cond::ok("SubscriptionReady"));
                hub.subscribers.push(SubscriberConfig {
                    id: format!("{ns}/{name}/{}", meta_str(t, "uid")),
                    kind: "trigger",
                    namespace: ns.into(),
                    name: name.into(),
                    filter: Some(filter),
                    subscriber: subscriber.clone(),
                    reply: ReplyTo::SameBroker,
                    policy: rd.policy,
                    dead_letter: rd.dead_letter,
                    max_in_flight: max_in_flight(t),
                });
            }
            (_, _, Ok(_), _, _) => conds.push(Cond::fail(
                "SubscriptionReady",
                "NotSubscribed",
                "the trigger is not subscribed until its broker, subscriber and delivery resolve",
            )),
            _ => {}
        }
        out.statuses.push((key.clone(), status_with(t, conds, extra)));
    }

    // Channels: Channel and InMemoryChannel are both served directly by a memory hub.
    let mut channel_subs: HashMap<(String, String), Vec<Value>> = HashMap::new();
    let mut channel_spec_subs: HashMap<(String, String), Vec<Value>> = HashMap::new();
    let mut channel_delivery: HashMap<(String, String), Option<DeliverySpec>> = HashMap::new();
    // Which kinds of channel exist under each name (a Channel and the InMemoryChannel of the
    // same name share a hub, as a Channel and its backing channel do in Knative).
    let mut channel_kinds: HashSet<(String, String, &str)> = HashSet::new();
    for kind in ["Channel", "InMemoryChannel"] {
        for (_, c) in by_kind(kind) {
            let (ns, name) = (meta_str(c, "namespace"), meta_str(c, "name"));
            channel_kinds.insert((ns.into(), name.into(), kind));
            let key = HubKey {
                kind: HubKind::Channel,
                namespace: ns.into(),
                name: name.into(),
            };
            // Channels answer after fan-out unless the IMC asks for the asynchronous handler
            // (CH-04); a Channel's backing IMC carries no annotations, so it is synchronous.
            let asynchronous = kind == "InMemoryChannel" && c["metadata"]["annotations"][ASYNC_HANDLER_ANNOTATION].as_str() == Some("true");
            let acknowledge = if asynchronous {
                Acknowledge::WhenStored
            } else {
                Acknowledge::AfterFanOut
            };
            hubs.insert(
                key.clone(),
                HubSpec {
                    key,
                    backend: BackendKind::Memory,
                    acknowledge,
                    subscribers: vec![],
                },
            );
            channel_delivery.insert((ns.into(), name.into()), decode(&c["spec"]["delivery"]));
        }
    }

    for (key, s) in by_kind("Subscription") {
        let (ns, name) = (meta_str(s, "namespace"), meta_str(s, "name"));
        let channel = s["spec"]["channel"]["name"].as_str().unwrap_or("").to_string();
        let hub_key = HubKey {
            kind: HubKind::Channel,
            namespace: ns.into(),
            name: channel.clone(),
        };
        let mut conds = Vec::new();
        let subscriber: Option<Destination> = decode(&s["spec"]["subscriber"]);
        let reply: Option<Destination> = decode(&s["spec"]["reply"]);
        let sub = subscriber
            .as_ref()
            .ok_or_else(|| "spec.subscriber is missing".to_string())
            .and_then(|d| addrs.resolve(d, ns));
        let rep = reply.as_ref().map(|d| addrs.resolve(d, ns)).transpose();
        // SUB-03: the retry group is the subscription's when it sets any of it, else the
        // channel's; the dead-letter sink is the subscription's, else the channel's.
        let own: Option<DeliverySpec> = decode(&s["spec"]["delivery"]);
        let own_retry_group = own.as_ref().is_some_and(sets_retry_group);
        let parent = channel_delivery.get(&(ns.to_string(), channel.clone())).cloned().flatten();
        let effective = effective_delivery(own, parent, own_retry_group);
        let delivery = resolve_delivery(effective.as_ref(), "spec.delivery", ns, &addrs);
        // The channel's SubscriberSpec (CH-02): resolved URIs, the dead-letter sink as a URI.
        let mut spec_entry = json!({
            "name": name, "uid": meta_str(s, "uid"), "generation": s["metadata"]["generation"],
            "subscriberUri": sub.as_ref().cloned().unwrap_or_default(),
        });
        if let Ok(Some(r)) = &rep {
            spec_entry["replyUri"] = json!(r);
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
        let mut physical = json!({"subscriberUri": sub.as_ref().cloned().unwrap_or_default()});
        if let Ok(Some(r)) = &rep {
            physical["replyUri"] = json!(r);
        }
        if let Ok(ResolvedDelivery {
            dead_letter_uri: Some(d), ..
        }) = &delivery
        {
            physical["deadLetterSinkUri"] = json!(d);
        }
        let resolved = match (&sub, &rep, &delivery) {
            (Err(m), _, _) | (_, Err(m), _) => Err(m.clone()),
            (_, _, Err((_, m))) => Err(m.clone()),
            _ => Ok(()),
        };
        match &resolved {
            Ok(()) => conds.push(Cond::ok("ReferencesResolved")),
            Err(m) => conds.push(Cond::fail("ReferencesResolved", "ReferencesNotResolved", m.clone())),
        }
        let channel_kind = s["spec"]["channel"]["kind"].as_str().unwrap_or("");
        let hub_exists = hubs.contains_key(&hub_key) && channel_kinds.contains(&(ns.to_string(), channel.clone(), channel_kind));
        if hub_exists {
            conds.push(Cond::ok("ChannelReady"));
        } else {
            conds.push(Cond::fail(
                "ChannelReady",
                "ChannelNotFound",
                format!("{channel_kind} {ns}/{channel} does not exist"),
            ));
        }
        let config = match (&sub, &rep, delivery) {
            (Ok(su), Ok(re), Ok(rd)) if hub_exists => {
                let subscriber = target(su);
                let reply_to = match re {
                    None => Ok(ReplyTo::Discard),
                    Some(u) => target(u).map(ReplyTo::Url),
                };
                match (subscriber, reply_to) {
                    (Ok(subscriber), Ok(reply)) => Some(SubscriberConfig {
                        id: format!("{ns}/{name}/{}", meta_str(s, "uid")),
                        kind: "subscription",
                        namespace: ns.into(),
                        name: name.into(),
                        filter: None,
                        subscriber,
                        reply,
                        policy: rd.policy,
                        dead_letter: rd.dead_letter,
                        max_in_flight: max_in_flight(s),
                    }),
                    (Err(m), _) | (_, Err(m)) => {
                        conds.push(Cond::fail("AddedToChannel", "SubscriberInvalid", m));
                        None
                    }
                }
            }
            _ => None,
        };
        match config {
            Some(cfg) => {
                conds.push(Cond::ok("AddedToChannel"));
                channel_subs.entry((ns.to_string(), channel.clone())).or_default().push(json!({
                    "uid": meta_str(s, "uid"), "observedGeneration": s["metadata"]["generation"], "ready": "True"
                }));
                channel_spec_subs
                    .entry((ns.to_string(), channel.clone()))
                    .or_default()
                    .push(spec_entry);
                if let Some(hub) = hubs.get_mut(&hub_key) {
                    hub.subscribers.push(cfg);
                }
            }
            None if hub_exists && resolved.is_ok() => {}
            None => conds.push(Cond::fail(
                "AddedToChannel",
                "NotAddedToChannel",
                "the subscription is not added until its references resolve",
            )),
        }
        let mut extra = serde_json::Map::new();
        extra.insert("physicalSubscription".into(), physical);
        // Without the authentication-oidc feature there is no identity to create; Knative
        // reports the condition as met then, as it does for Triggers.
        conds.push(Cond::ok("OIDCIdentityCreated"));
        out.statuses.push((key.clone(), status_with(s, conds, extra)));
    }

    for kind in ["Channel", "InMemoryChannel"] {
        for (key, c) in by_kind(kind) {
            let (ns, name) = (meta_str(c, "namespace"), meta_str(c, "name"));
            let url = channel_url(gw, ns, name);
            let mut conds = vec![Cond::ok("Addressable"), Cond::ok("EventPoliciesReady")];
            // The gateway is a channel's service, endpoints and dispatcher at once (CH-04).
            let ready: &[&str] = if kind == "Channel" {
                &["BackingChannelReady"]
            } else {
                &["DispatcherReady", "ServiceReady", "EndpointsReady", "ChannelServiceReady"]
            };
            conds.extend(ready.iter().copied().map(Cond::ok));
            let mut extra = serde_json::Map::new();
            match resolve_delivery(decode::<DeliverySpec>(&c["spec"]["delivery"]).as_ref(), "spec.delivery", ns, &addrs) {
                Ok(rd) => {
                    conds.push(Cond::ok("DeadLetterSinkResolved"));
                    if let Some(u) = rd.dead_letter_uri {
                        extra.insert("deadLetterSinkUri".into(), json!(u));
                    }
                }
                Err((r, m)) => conds.push(Cond::fail("DeadLetterSinkResolved", &r, m)),
            }
            extra.insert("address".into(), json!({"name": "http", "url": url}));
            extra.insert("addresses".into(), json!([{"name": "http", "url": url}]));
            extra.insert(
                "subscribers".into(),
                json!(channel_subs.get(&(ns.to_string(), name.to_string())).cloned().unwrap_or_default()),
            );
            // Knative's Channel keeps no subscribers in its spec (its backing channel does, and
            // embedded mode has none), so only InMemoryChannels get them.
            if kind == "InMemoryChannel" {
                let subs = channel_spec_subs.remove(&(ns.to_string(), name.to_string())).unwrap_or_default();
                out.channel_subscribers.push((key.clone(), json!(subs)));
            }
            out.statuses.push((key.clone(), status_with(c, conds, extra)));
        }
    }

    // Sequence and Parallel: their children are served above, and their own status is written
    // by their kube-rs controller (`sluice-controllers`).

    for (key, o) in objects {
        let kind = o["kind"].as_str().unwrap_or("");
        if !key.group.ends_with("knative.dev") {
            // Kubernetes' built-in kinds are stored and served; a Namespace is always active.
            if key.group.is_empty() && kind == "Namespace" {
                out.statuses.push((key.clone(), json!({"phase": "Active"})));
            }
            continue;
        }
        if matches!(
            kind,
            "Broker" | "Trigger" | "Channel" | "InMemoryChannel" | "Subscription" | "Sequence" | "Parallel" | "ConfigMap" | "Secret"
        ) {
            continue;
        }
        let msg = format!("{kind} is accepted and stored, but this build does not run it yet");
        out.statuses.push((
            key.clone(),
            status_with(o, vec![Cond::fail("Ready", "NotServedYet", msg)], serde_json::Map::new()),
        ));
    }

    out.snapshot = Snapshot {
        hubs: hubs.into_values().collect(),
    };
    out
}

/// The URL of a channel on the gateway.
pub fn channel_url(gw: &str, namespace: &str, name: &str) -> String {
    format!("{gw}/channels/{namespace}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, group: &str, plural: &str, name: &str, spec: Value) -> (ObjectKey, Value) {
        let key = ObjectKey {
            group: group.into(),
            plural: plural.into(),
            namespace: "default".into(),
            name: name.into(),
        };
        let v = json!({"apiVersion": format!("{group}/v1"), "kind": kind,
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "generation": 1}, "spec": spec});
        (key, v)
    }

    /// The store's map of objects, from a list.
    fn world(objs: Vec<(ObjectKey, Value)>) -> BTreeMap<ObjectKey, Value> {
        objs.into_iter().collect()
    }

    fn env() -> Environment {
        Environment {
            gateway_url: "http://127.0.0.1:8080".into(),
        }
    }

    fn status<'a>(out: &'a Reconciled, name: &str) -> &'a Value {
        &out.statuses.iter().find(|(k, _)| k.name == name).expect("status computed").1
    }

    fn condition<'a>(status: &'a Value, ty: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == ty)
            .expect("condition present")
    }

    #[test]
    fn trigger_with_broker_ref_finds_its_broker() {
        let objs = vec![
            obj("Broker", "eventing.knative.dev", "brokers", "b", json!({})),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "triggers",
                "t",
                json!({"brokerRef": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b"}, "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            ),
        ];
        let out = reconcile(&world(objs), &env());
        assert_eq!(condition(status(&out, "t"), "BrokerReady")["status"], "True");
        assert_eq!(out.snapshot.hubs[0].subscribers.len(), 1);
    }

    #[test]
    fn subscription_needs_a_channel_of_the_kind_it_names() {
        let sub = |name: &str, kind: &str| {
            obj(
                "Subscription",
                "messaging.knative.dev",
                "subscriptions",
                name,
                json!({"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": kind, "name": "events"}, "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            )
        };
        let objs = vec![
            obj("InMemoryChannel", "messaging.knative.dev", "inmemorychannels", "events", json!({})),
            sub("right-kind", "InMemoryChannel"),
            sub("wrong-kind", "Channel"),
        ];
        let out = reconcile(&world(objs), &env());
        assert_eq!(condition(status(&out, "right-kind"), "ChannelReady")["status"], "True");
        let wrong = condition(status(&out, "wrong-kind"), "ChannelReady");
        assert_eq!(wrong["status"], "False");
        assert_eq!(wrong["message"], "Channel default/events does not exist");
        assert_eq!(out.snapshot.hubs[0].subscribers.len(), 1);
    }

    #[test]
    fn trigger_without_broker_is_not_ready() {
        let objs = vec![obj(
            "Trigger",
            "eventing.knative.dev",
            "triggers",
            "t",
            json!({"broker": "missing", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
        )];
        let out = reconcile(&world(objs), &env());
        let s = status(&out, "t");
        assert_eq!(condition(s, "BrokerReady")["status"], "False");
        assert_eq!(condition(s, "BrokerReady")["reason"], "BrokerDoesNotExist");
        assert_eq!(condition(s, "Ready")["status"], "False");
        assert!(out.snapshot.hubs.is_empty());
    }

    #[test]
    fn trigger_retry_group_overrides_the_brokers_and_the_dead_letter_sink_falls_back() {
        let objs = vec![
            obj(
                "Broker",
                "eventing.knative.dev",
                "brokers",
                "default",
                json!({"delivery": {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S",
                "deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}}}}),
            ),
            obj("Broker", "eventing.knative.dev", "brokers", "dlq", json!({})),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "triggers",
                "inherits",
                json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:1/"}}),
            ),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "triggers",
                "own",
                json!({"broker": "default", "subscriber": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "dlq"}, "uri": "/extra"},
                "delivery": {"retry": 1}}),
            ),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "triggers",
                "sink-only",
                json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:1/"},
                "delivery": {"deadLetterSink": {"uri": "http://127.0.0.1:2/dls"}}}),
            ),
        ];
        let out = reconcile(&world(objs), &env());
        let b = status(&out, "default");
        assert_eq!(b["address"]["url"], "http://127.0.0.1:8080/default/default");
        assert_eq!(b["deadLetterSinkUri"], "http://127.0.0.1:8080/default/dlq");
        assert_eq!(condition(b, "Ready")["status"], "True");
        let hub = out.snapshot.hubs.iter().find(|h| h.key.name == "default").unwrap();
        let inherits = hub.subscribers.iter().find(|s| s.name == "inherits").unwrap();
        assert_eq!(inherits.policy.retries, 10);
        assert_eq!(inherits.dead_letter.as_ref().unwrap().url, "http://127.0.0.1:8080/default/dlq");
        let own = hub.subscribers.iter().find(|s| s.name == "own").unwrap();
        assert_eq!(own.policy.retries, 1);
        assert_eq!(own.policy.backoff, None, "the retry group comes whole from the trigger");
        // BRK-01: the dead-letter sink is resolved on its own, the broker's when the trigger has none.
        assert_eq!(own.dead_letter.as_ref().unwrap().url, "http://127.0.0.1:8080/default/dlq");
        assert_eq!(status(&out, "own")["deadLetterSinkUri"], "http://127.0.0.1:8080/default/dlq");
        // A trigger with a delivery that sets only a sink has its own (empty) retry group.
        let sink_only = hub.subscribers.iter().find(|s| s.name == "sink-only").unwrap();
        assert_eq!(sink_only.policy.retries, 0);
        assert_eq!(sink_only.dead_letter.as_ref().unwrap().url, "http://127.0.0.1:2/dls");
        assert_eq!(own.subscriber.url, "http://127.0.0.1:8080/default/dlq/extra");
        assert_eq!(status(&out, "own")["subscriberUri"], "http://127.0.0.1:8080/default/dlq/extra");
    }

    #[test]
    fn unresolvable_subscriber_leaves_an_empty_uri_and_a_reason() {
        let objs = vec![
            obj("Broker", "eventing.knative.dev", "brokers", "default", json!({})),
            obj(
                "Trigger",
                "eventing.knative.dev",
                "triggers",
                "t",
                json!({"broker": "default",
                "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "display"}}}),
            ),
        ];
        let out = reconcile(&world(objs), &env());
        let s = status(&out, "t");
        assert_eq!(s["subscriberUri"], "");
        let c = condition(s, "SubscriberResolved");
        assert_eq!(c["status"], "False");
        assert!(c["message"].as_str().unwrap().contains("Service default/display"), "{c}");
        assert!(out.snapshot.hubs[0].subscribers.is_empty());
    }

    #[test]
    fn unsupported_broker_class_is_not_ready() {
        let (k, mut b) = obj("Broker", "eventing.knative.dev", "brokers", "k", json!({}));
        b["metadata"]["annotations"] = json!({BROKER_CLASS: "Kafka"});
        let out = reconcile(&BTreeMap::from([(k, b)]), &env());
        assert_eq!(condition(status(&out, "k"), "Ready")["reason"], "BrokerClassNotSupported");
    }

    #[test]
    fn sequence_chains_channels_and_replies() {
        let objs = vec![obj(
            "Sequence",
            "flows.knative.dev",
            "sequences",
            "seq",
            json!({"steps": [{"uri": "http://127.0.0.1:1/a"}, {"uri": "http://127.0.0.1:1/b"}],
            "reply": {"uri": "http://127.0.0.1:1/out"}}),
        )];
        let mut world = world(objs);
        // The channels and subscriptions the flow's controller writes.
        let flow = world.values().next().unwrap().clone();
        let children = sluice_controllers::flows::children(&flow);
        // (What the children are is the controller's test; here they are served.)
        for mut child in children {
            let (kind, name) = (
                child["kind"].as_str().unwrap().to_string(),
                child["metadata"]["name"].as_str().unwrap().to_string(),
            );
            let (group, plural) = if kind == "Subscription" {
                ("messaging.knative.dev", "subscriptions")
            } else {
                ("messaging.knative.dev", "inmemorychannels")
            };
            child["metadata"]["uid"] = json!(format!("uid-{name}-{plural}"));
            world.insert(
                ObjectKey {
                    group: group.into(),
                    plural: plural.into(),
                    namespace: "default".into(),
                    name,
                },
                child,
            );
        }
        let out = reconcile(&world, &env());
        // The flow's own status is its controller's (sluice-controllers); the pass serves its
        // children, which are Ready.
        assert!(out.statuses.iter().all(|(k, _)| k.name != "seq"));
        for (k, st) in out.statuses.iter().filter(|(k, _)| k.name.starts_with("seq-kn-sequence-")) {
            assert_eq!(condition(st, "Ready")["status"], "True", "{}: {st:#}", k.name);
        }
        let hub0 = out.snapshot.hubs.iter().find(|h| h.key.name == "seq-kn-sequence-0").unwrap();
        assert_eq!(
            hub0.subscribers[0].reply,
            ReplyTo::Url(Target::parse("http://127.0.0.1:8080/channels/default/seq-kn-sequence-1").unwrap())
        );
        let hub1 = out.snapshot.hubs.iter().find(|h| h.key.name == "seq-kn-sequence-1").unwrap();
        assert_eq!(
            hub1.subscribers[0].reply,
            ReplyTo::Url(Target::parse("http://127.0.0.1:1/out").unwrap())
        );
    }

    #[test]
    fn conditions_keep_their_transition_time_while_unchanged() {
        let (k, mut b) = obj("Broker", "eventing.knative.dev", "brokers", "default", json!({}));
        b["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
        let out = reconcile(&BTreeMap::from([(k, b)]), &env());
        assert_eq!(
            condition(status(&out, "default"), "Ready")["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }
}
