//! Sequence and Parallel (FLW-01, FLW-02) as Knative builds them: real child objects, a channel
//! of the flow's `channelTemplate` kind per hop and Subscriptions between them, named as
//! Knative names them and owned by the flow (`ownerReferences`, controller), so the channel and
//! subscription reconciliation serves them like any others, `kubectl get subscriptions` shows
//! them, and deleting the flow garbage-collects them.
//!
//! Sequence `s` with n steps: channel and subscription `s-kn-sequence-i` (channel i → step i,
//! reply → channel i+1; the last step replies to `spec.reply`, or nowhere). Parallel `p`:
//! ingress channel `p-kn-parallel`; per branch i a channel `p-kn-parallel-i`, a filter
//! subscription `p-kn-parallel-filter-i` (ingress → filter, reply → the branch channel; without
//! a filter the branch channel itself is the subscriber) and a subscription `p-kn-parallel-i`
//! (branch channel → subscriber, reply → the branch's `reply` or `spec.reply`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::reconcile::{meta_str, status_with, Cond};
use crate::store::ObjectKey;

/// The child objects one flow should have.
pub(crate) struct Children {
    /// The Sequence or Parallel, for logs.
    pub(crate) owner: String,
    /// Every channel and subscription, as manifests.
    pub(crate) objects: Vec<Value>,
}

/// The channel kind of a flow's `channelTemplate` (defaulted to InMemoryChannel at admission).
fn template(flow: &Value) -> (String, String, Value) {
    let t = &flow["spec"]["channelTemplate"];
    let api_version = t["apiVersion"].as_str().unwrap_or("messaging.knative.dev/v1").to_string();
    let kind = t["kind"].as_str().unwrap_or("InMemoryChannel").to_string();
    (api_version, kind, t.get("spec").cloned().unwrap_or_else(|| json!({})))
}

/// Builds a flow's children, each owned by it.
struct Builder<'a> {
    flow: &'a Value,
    namespace: &'a str,
    channel_api: String,
    channel_kind: String,
    channel_spec: Value,
    objects: Vec<Value>,
}

impl<'a> Builder<'a> {
    fn new(flow: &'a Value) -> Self {
        let (channel_api, channel_kind, channel_spec) = template(flow);
        Self {
            flow,
            namespace: meta_str(flow, "namespace"),
            channel_api,
            channel_kind,
            channel_spec,
            objects: Vec::new(),
        }
    }

    fn metadata(&self, name: &str) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "ownerReferences": [{
                "apiVersion": self.flow["apiVersion"], "kind": self.flow["kind"],
                "name": meta_str(self.flow, "name"), "uid": meta_str(self.flow, "uid"),
                "controller": true, "blockOwnerDeletion": true,
            }],
        })
    }

    fn channel(&mut self, name: &str) {
        let channel =
            json!({"apiVersion": self.channel_api, "kind": self.channel_kind, "metadata": self.metadata(name), "spec": self.channel_spec});
        self.objects.push(channel);
    }

    /// A Destination pointing at one of the flow's channels.
    fn channel_ref(&self, name: &str) -> Value {
        json!({"ref": {"apiVersion": self.channel_api, "kind": self.channel_kind, "name": name, "namespace": self.namespace}})
    }

    fn subscription(&mut self, name: &str, channel: &str, subscriber: Option<Value>, reply: Option<Value>, delivery: Option<Value>) {
        let mut spec = json!({"channel": {"apiVersion": self.channel_api, "kind": self.channel_kind, "name": channel}});
        for (field, value) in [("subscriber", subscriber), ("reply", reply), ("delivery", delivery)] {
            if let Some(v) = value.filter(|v| !v.is_null()) {
                spec[field] = v;
            }
        }
        let subscription =
            json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": self.metadata(name), "spec": spec});
        self.objects.push(subscription);
    }
}

/// A step or branch part: its Destination (without the `delivery` kept beside it).
fn destination(v: &Value) -> Option<Value> {
    let mut d = v.clone();
    d.as_object_mut()?.remove("delivery");
    Some(d)
}

/// The children every Sequence and Parallel should have.
pub(crate) fn desired_children(objects: &BTreeMap<ObjectKey, Value>) -> Vec<Children> {
    let mut all = Vec::new();
    for s in objects
        .values()
        .filter(|v| v["kind"] == "Sequence" && v["apiVersion"] == "flows.knative.dev/v1")
    {
        let name = meta_str(s, "name");
        let steps = s["spec"]["steps"].as_array().cloned().unwrap_or_default();
        let mut b = Builder::new(s);
        let names: Vec<String> = (0..steps.len()).map(|i| format!("{name}-kn-sequence-{i}")).collect();
        for n in &names {
            b.channel(n);
        }
        for (i, step) in steps.iter().enumerate() {
            let reply = match names.get(i + 1) {
                Some(next) => Some(b.channel_ref(next)),
                None => s["spec"].get("reply").cloned(),
            };
            b.subscription(&names[i], &names[i], destination(step), reply, step.get("delivery").cloned());
        }
        all.push(Children {
            owner: format!("sequence {}/{name}", b.namespace),
            objects: b.objects,
        });
    }
    for p in objects
        .values()
        .filter(|v| v["kind"] == "Parallel" && v["apiVersion"] == "flows.knative.dev/v1")
    {
        let name = meta_str(p, "name");
        let branches = p["spec"]["branches"].as_array().cloned().unwrap_or_default();
        let mut b = Builder::new(p);
        let ingress = format!("{name}-kn-parallel");
        b.channel(&ingress);
        for (i, branch) in branches.iter().enumerate() {
            let branch_channel = format!("{name}-kn-parallel-{i}");
            b.channel(&branch_channel);
            let delivery = branch.get("delivery").cloned();
            let to_branch = b.channel_ref(&branch_channel);
            match branch.get("filter").filter(|f| !f.is_null()) {
                Some(filter) => b.subscription(
                    &format!("{name}-kn-parallel-filter-{i}"),
                    &ingress,
                    Some(filter.clone()),
                    Some(to_branch),
                    delivery.clone(),
                ),
                None => b.subscription(
                    &format!("{name}-kn-parallel-filter-{i}"),
                    &ingress,
                    Some(to_branch),
                    None,
                    delivery.clone(),
                ),
            }
            let reply = branch
                .get("reply")
                .filter(|r| !r.is_null())
                .or_else(|| p["spec"].get("reply"))
                .cloned();
            b.subscription(
                &format!("{name}-kn-parallel-{i}"),
                &branch_channel,
                branch.get("subscriber").cloned(),
                reply,
                delivery,
            );
        }
        all.push(Children {
            owner: format!("parallel {}/{name}", b.namespace),
            objects: b.objects,
        });
    }
    all
}

/// Objects a Sequence or Parallel controls that it should no longer have (a removed step or
/// branch); `desired` names every child that should exist, by (kind, namespace, name).
pub(crate) fn stale_children(objects: &BTreeMap<ObjectKey, Value>, desired: &BTreeSet<(String, String, String)>) -> Vec<ObjectKey> {
    objects
        .iter()
        .filter(|(_, v)| {
            v["metadata"]["ownerReferences"].as_array().is_some_and(|refs| {
                refs.iter().any(|r| {
                    r["controller"] == true
                        && r["apiVersion"] == "flows.knative.dev/v1"
                        && (r["kind"] == "Sequence" || r["kind"] == "Parallel")
                })
            })
        })
        .filter(|(_, v)| {
            let id = (
                v["kind"].as_str().unwrap_or("").to_string(),
                meta_str(v, "namespace").to_string(),
                meta_str(v, "name").to_string(),
            );
            !desired.contains(&id)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The Ready condition of a child in this pass's statuses: `None` when the child has none yet.
fn child_ready(statuses: &[(ObjectKey, Value)], kind_plural: &str, namespace: &str, name: &str) -> Option<(bool, String)> {
    let (_, status) = statuses
        .iter()
        .find(|(k, _)| k.plural == kind_plural && k.namespace == namespace && k.name == name)?;
    let ready = status["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?;
    let message = ready["message"].as_str().unwrap_or("").to_string();
    Some((ready["status"] == "True", message))
}

fn ready_json(ready: Option<&(bool, String)>) -> Value {
    match ready {
        Some((true, _)) => json!({"type": "Ready", "status": "True"}),
        Some((false, m)) => json!({"type": "Ready", "status": "False", "message": m}),
        None => json!({"type": "Ready", "status": "Unknown"}),
    }
}

/// The statuses of every Sequence and Parallel, from the statuses its children got in this
/// pass (`statuses`): Ready once every channel and subscription is.
pub(crate) fn flow_statuses(objects: &BTreeMap<ObjectKey, Value>, gw: &str, statuses: &mut Vec<(ObjectKey, Value)>) {
    let plural = |kind: &str| format!("{}s", kind.to_ascii_lowercase());
    let mut flows = Vec::new();
    for (key, flow) in objects.iter().filter(|(_, v)| v["apiVersion"] == "flows.knative.dev/v1") {
        let kind = flow["kind"].as_str().unwrap_or("");
        if kind != "Sequence" && kind != "Parallel" {
            continue;
        }
        let (ns, name) = (meta_str(flow, "namespace"), meta_str(flow, "name"));
        let (channel_api, channel_kind, _) = template(flow);
        let channel_plural = plural(&channel_kind);
        let mut failures = Vec::new();
        let channel = |n: &str, failures: &mut Vec<String>| {
            let ready = child_ready(statuses, &channel_plural, ns, n);
            if !matches!(ready, Some((true, _))) {
                failures.push(format!("channel {n} is not ready"));
            }
            json!({"channel": {"apiVersion": channel_api, "kind": channel_kind, "name": n}, "ready": ready_json(ready.as_ref())})
        };
        let subscription = |n: &str, failures: &mut Vec<String>| {
            let ready = child_ready(statuses, "subscriptions", ns, n);
            if !matches!(ready, Some((true, _))) {
                let why = ready
                    .as_ref()
                    .map(|(_, m)| m.clone())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "not ready".into());
                failures.push(format!("subscription {n}: {why}"));
            }
            json!({"subscription": {"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "name": n}, "ready": ready_json(ready.as_ref())})
        };
        let mut extra = serde_json::Map::new();
        let mut conds = Vec::new();
        if kind == "Sequence" {
            let steps = flow["spec"]["steps"].as_array().map_or(0, Vec::len);
            let names: Vec<String> = (0..steps).map(|i| format!("{name}-kn-sequence-{i}")).collect();
            let channels: Vec<Value> = names.iter().map(|n| channel(n, &mut failures)).collect();
            let subs: Vec<Value> = names.iter().map(|n| subscription(n, &mut failures)).collect();
            if let Some(first) = names.first() {
                extra.insert(
                    "address".into(),
                    json!({"name": "http", "url": crate::reconcile::channel_url(gw, ns, first)}),
                );
            }
            extra.insert("channelStatuses".into(), Value::Array(channels));
            extra.insert("subscriptionStatuses".into(), Value::Array(subs));
            conds.push(if names.is_empty() {
                Cond::fail("Addressable", "NoSteps", "sequence has no steps")
            } else {
                Cond::ok("Addressable")
            });
        } else {
            let branches = flow["spec"]["branches"].as_array().map_or(0, Vec::len);
            let ingress = format!("{name}-kn-parallel");
            let ingress_status = channel(&ingress, &mut failures);
            let branch_statuses: Vec<Value> = (0..branches)
                .map(|i| {
                    json!({
                        "filterSubscriptionStatus": subscription(&format!("{name}-kn-parallel-filter-{i}"), &mut failures),
                        "filterChannelStatus": channel(&format!("{name}-kn-parallel-{i}"), &mut failures),
                        "subscriberSubscriptionStatus": subscription(&format!("{name}-kn-parallel-{i}"), &mut failures),
                    })
                })
                .collect();
            extra.insert(
                "address".into(),
                json!({"name": "http", "url": crate::reconcile::channel_url(gw, ns, &ingress)}),
            );
            extra.insert("ingressChannelStatus".into(), ingress_status);
            extra.insert("branchStatuses".into(), Value::Array(branch_statuses));
            conds.push(Cond::ok("Addressable"));
        }
        let (channel_failures, sub_failures): (Vec<String>, Vec<String>) = failures.into_iter().partition(|f| f.starts_with("channel "));
        conds.push(if channel_failures.is_empty() {
            Cond::ok("ChannelsReady")
        } else {
            Cond::fail("ChannelsReady", "ChannelsNotReady", channel_failures.join("; "))
        });
        conds.push(if sub_failures.is_empty() {
            Cond::ok("SubscriptionsReady")
        } else {
            Cond::fail("SubscriptionsReady", "SubscriptionsNotReady", sub_failures.join("; "))
        });
        conds.push(Cond::ok("EventPoliciesReady"));
        flows.push((key.clone(), status_with(flow, conds, extra)));
    }
    statuses.extend(flows);
}
