//! The Sequence and Parallel controllers (FLW-01, FLW-02), building the flows as Knative
//! builds them: a channel of the flow's `channelTemplate` kind per hop and Subscriptions between
//! them, named as Knative names them and owned by the flow (`ownerReferences`, controller).
//! The channels and subscriptions are then served like any others; the flow's status is made
//! from theirs, so a change of a child's status reconciles its flow again.
//!
//! Sequence `s` with n steps: channel and subscription `s-kn-sequence-i` (channel i → step i,
//! reply → channel i+1; the last step replies to `spec.reply`, or nowhere). Parallel `p`:
//! ingress channel `p-kn-parallel`; per branch i a channel `p-kn-parallel-i`, a filter
//! subscription `p-kn-parallel-filter-i` (ingress → filter, reply → the branch channel; without
//! a filter the branch channel itself is the subscriber) and a subscription `p-kn-parallel-i`
//! (branch channel → subscriber, reply → the branch's `reply` or `spec.reply`).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::StreamExt;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::{Client, Resource, ResourceExt};
use serde_json::{json, Value};
use sluice_crds::flows::{Parallel, Sequence};
use sluice_crds::messaging::{InMemoryChannel, Subscription};

use crate::children::{api_for, put};
use crate::{Error, Settings};
use sluice_crds::duck::{conditions, ConditionCheck};

/// The channel kind of a flow's `channelTemplate` (InMemoryChannel unless it says otherwise).
fn template(flow: &Value) -> (String, String, Value) {
    let t = &flow["spec"]["channelTemplate"];
    let api_version = t["apiVersion"].as_str().unwrap_or("messaging.knative.dev/v1").to_string();
    let kind = t["kind"].as_str().unwrap_or("InMemoryChannel").to_string();
    (api_version, kind, t.get("spec").cloned().unwrap_or_else(|| json!({})))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v["metadata"][field].as_str().unwrap_or("")
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
            namespace: text(flow, "namespace"),
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
                "name": text(self.flow, "name"), "uid": text(self.flow, "uid"),
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

/// The channels and subscriptions a Sequence or Parallel (as JSON) should have.
pub fn children(flow: &Value) -> Vec<Value> {
    let name = text(flow, "name");
    let mut b = Builder::new(flow);
    match flow["kind"].as_str() {
        Some("Sequence") => {
            let steps = flow["spec"]["steps"].as_array().cloned().unwrap_or_default();
            let names: Vec<String> = (0..steps.len()).map(|i| format!("{name}-kn-sequence-{i}")).collect();
            for n in &names {
                b.channel(n);
            }
            for (i, step) in steps.iter().enumerate() {
                let reply = match names.get(i + 1) {
                    Some(next) => Some(b.channel_ref(next)),
                    None => flow["spec"].get("reply").cloned(),
                };
                b.subscription(&names[i], &names[i], destination(step), reply, step.get("delivery").cloned());
            }
        }
        Some("Parallel") => {
            let branches = flow["spec"]["branches"].as_array().cloned().unwrap_or_default();
            let ingress = format!("{name}-kn-parallel");
            b.channel(&ingress);
            for (i, branch) in branches.iter().enumerate() {
                let branch_channel = format!("{name}-kn-parallel-{i}");
                b.channel(&branch_channel);
                let delivery = branch.get("delivery").cloned();
                let to_branch = b.channel_ref(&branch_channel);
                let filter_sub = format!("{name}-kn-parallel-filter-{i}");
                match branch.get("filter").filter(|f| !f.is_null()) {
                    Some(filter) => b.subscription(&filter_sub, &ingress, Some(filter.clone()), Some(to_branch), delivery.clone()),
                    None => b.subscription(&filter_sub, &ingress, Some(to_branch), None, delivery.clone()),
                }
                let reply = branch
                    .get("reply")
                    .filter(|r| !r.is_null())
                    .or_else(|| flow["spec"].get("reply"))
                    .cloned();
                b.subscription(
                    &format!("{name}-kn-parallel-{i}"),
                    &branch_channel,
                    branch.get("subscriber").cloned(),
                    reply,
                    delivery,
                );
            }
        }
        _ => {}
    }
    b.objects
}

/// Deletes the flow's children that are not in `desired` (a removed step or branch).
async fn delete_stale(client: &Client, flow: &Value, desired: &[Value]) -> Result<(), Error> {
    let uid = text(flow, "uid");
    let wanted: BTreeSet<(String, String)> = desired
        .iter()
        .map(|c| (c["kind"].as_str().unwrap_or("").to_string(), text(c, "name").to_string()))
        .collect();
    let (channel_api, channel_kind, _) = template(flow);
    let kinds = [
        json!({"apiVersion": channel_api, "kind": channel_kind, "metadata": {"namespace": text(flow, "namespace")}}),
        json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"namespace": text(flow, "namespace")}}),
    ];
    for kind in kinds {
        let api = api_for(client, &kind)?;
        for object in api.list(&ListParams::default()).await? {
            let owned = object.owner_references().iter().any(|r| r.uid == uid && r.controller == Some(true));
            let key = (kind["kind"].as_str().unwrap_or("").to_string(), object.name_any());
            if owned && !wanted.contains(&key) {
                api.delete(&key.1, &DeleteParams::default()).await?;
            }
        }
    }
    Ok(())
}

/// A child's Ready condition, from the API: (ready, message); `None` when it has none yet.
async fn child_ready(client: &Client, child: &Value) -> Result<Option<(bool, String)>, Error> {
    let Some(object) = api_for(client, child)?.get_opt(text(child, "name")).await? else {
        return Ok(None);
    };
    let status = object.data.get("status").cloned().unwrap_or_default();
    let ready = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned());
    Ok(ready.map(|c| (c["status"] == "True", c["message"].as_str().unwrap_or("").to_string())))
}

fn ready_json(ready: &Option<(bool, String)>) -> Value {
    match ready {
        Some((true, _)) => json!({"type": "Ready", "status": "True"}),
        Some((false, m)) => json!({"type": "Ready", "status": "False", "message": m}),
        None => json!({"type": "Ready", "status": "Unknown"}),
    }
}

/// The flow's status from its children's: channel and subscription statuses, the address of
/// its first channel, and the conditions.
async fn status(client: &Client, flow: &Value, children: &[Value], settings: &Settings) -> Result<Value, Error> {
    let (ns, name) = (text(flow, "namespace"), text(flow, "name"));
    let mut by_name = std::collections::BTreeMap::new();
    let (mut channel_failures, mut subscription_failures) = (Vec::new(), Vec::new());
    for child in children {
        let ready = child_ready(client, child).await?;
        let child_name = text(child, "name").to_string();
        let kind = child["kind"].as_str().unwrap_or("").to_string();
        if !matches!(ready, Some((true, _))) {
            let why = ready
                .as_ref()
                .map(|(_, m)| m.clone())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "not ready".into());
            let failure = format!("{child_name}: {why}");
            if kind == "Subscription" {
                subscription_failures.push(failure)
            } else {
                channel_failures.push(failure)
            }
        }
        let entry = if kind == "Subscription" {
            json!({"subscription": {"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "name": child_name}, "ready": ready_json(&ready)})
        } else {
            json!({"channel": {"apiVersion": child["apiVersion"], "kind": kind, "name": child_name}, "ready": ready_json(&ready)})
        };
        by_name.insert((kind == "Subscription", child_name), entry);
    }
    let get = |subscription: bool, n: &str| by_name.get(&(subscription, n.to_string())).cloned().unwrap_or(Value::Null);
    let gateway = settings.gateway_url.trim_end_matches('/');
    let mut status = json!({"observedGeneration": flow["metadata"]["generation"]});
    let mut conds = Vec::new();
    if flow["kind"] == "Sequence" {
        let steps = flow["spec"]["steps"].as_array().map_or(0, Vec::len);
        let names: Vec<String> = (0..steps).map(|i| format!("{name}-kn-sequence-{i}")).collect();
        status["channelStatuses"] = names.iter().map(|n| get(false, n)).collect();
        status["subscriptionStatuses"] = names.iter().map(|n| get(true, n)).collect();
        match names.first() {
            Some(first) => {
                status["address"] = json!({"name": "http", "url": format!("{gateway}/channels/{ns}/{first}")});
                conds.push(ConditionCheck::ok("Addressable"));
            }
            None => conds.push(ConditionCheck::fail("Addressable", "NoSteps", "sequence has no steps")),
        }
    } else {
        let ingress = format!("{name}-kn-parallel");
        let branches = flow["spec"]["branches"].as_array().map_or(0, Vec::len);
        status["address"] = json!({"name": "http", "url": format!("{gateway}/channels/{ns}/{ingress}")});
        status["ingressChannelStatus"] = get(false, &ingress);
        status["branchStatuses"] = (0..branches)
            .map(|i| {
                json!({
                    "filterSubscriptionStatus": get(true, &format!("{name}-kn-parallel-filter-{i}")),
                    "filterChannelStatus": get(false, &format!("{name}-kn-parallel-{i}")),
                    "subscriberSubscriptionStatus": get(true, &format!("{name}-kn-parallel-{i}")),
                })
            })
            .collect();
        conds.push(ConditionCheck::ok("Addressable"));
    }
    conds.push(match channel_failures.is_empty() {
        true => ConditionCheck::ok("ChannelsReady"),
        false => ConditionCheck::fail("ChannelsReady", "ChannelsNotReady", channel_failures.join("; ")),
    });
    conds.push(match subscription_failures.is_empty() {
        true => ConditionCheck::ok("SubscriptionsReady"),
        false => ConditionCheck::fail("SubscriptionsReady", "SubscriptionsNotReady", subscription_failures.join("; ")),
    });
    conds.push(ConditionCheck::ok("EventPoliciesReady"));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    status["conditions"] = conditions(&flow["status"]["conditions"], conds, &now);
    Ok(status)
}

/// Reconciles one flow: children created, updated or deleted, then status written.
async fn reconcile_flow<K>(flow: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    if flow.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change()); // its children go by garbage collection
    }
    let value = serde_json::to_value(flow.as_ref())?;
    let desired = children(&value);
    for child in &desired {
        put(&ctx.client, child).await?;
    }
    delete_stale(&ctx.client, &value, &desired).await?;
    let status = status(&ctx.client, &value, &desired, &ctx.settings).await?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), text(&value, "namespace"));
    crate::status::write_status(&api, &value, &status).await?;
    ctx.backoff.succeeded(&crate::core::label(flow.as_ref()));
    Ok(Action::await_change())
}

/// A failed reconcile is retried with backoff (100 ms, doubling to 30 s); other flows go on.
fn error_policy<K: Resource<DynamicType = ()>>(flow: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.backoff.failed(&crate::core::label(flow.as_ref()), error))
}

/// What the flow controllers share.
pub struct Context {
    client: Client,
    settings: Settings,
    backoff: crate::core::Backoff,
}

/// Runs the Sequence and Parallel controllers until their watches end.
pub async fn run(client: Client, settings: Settings) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings,
        backoff: Default::default(),
    });
    let sequences = Controller::new(Api::<Sequence>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Subscription>::all(client.clone()), watcher::Config::default())
        .owns(Api::<InMemoryChannel>::all(client.clone()), watcher::Config::default())
        .run(reconcile_flow::<Sequence>, error_policy::<Sequence>, ctx.clone())
        .for_each(|_| async {});
    let parallels = Controller::new(Api::<Parallel>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Subscription>::all(client.clone()), watcher::Config::default())
        .owns(Api::<InMemoryChannel>::all(client), watcher::Config::default())
        .run(reconcile_flow::<Parallel>, error_policy::<Parallel>, ctx)
        .for_each(|_| async {});
    futures_util::future::join(sequences, parallels).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence() -> Value {
        json!({"apiVersion": "flows.knative.dev/v1", "kind": "Sequence",
            "metadata": {"name": "seq", "namespace": "default", "uid": "uid-seq"},
            "spec": {"steps": [{"uri": "http://127.0.0.1:1/a", "delivery": {"retry": 2}}, {"uri": "http://127.0.0.1:1/b"}],
                "reply": {"uri": "http://127.0.0.1:1/out"}}})
    }

    #[test]
    fn a_sequence_has_a_channel_and_subscription_per_step_chained_by_replies() {
        let out = children(&sequence());
        let names: Vec<String> = out
            .iter()
            .map(|c| format!("{} {}", c["kind"].as_str().unwrap(), text(c, "name")))
            .collect();
        assert_eq!(
            names,
            [
                "InMemoryChannel seq-kn-sequence-0",
                "InMemoryChannel seq-kn-sequence-1",
                "Subscription seq-kn-sequence-0",
                "Subscription seq-kn-sequence-1"
            ]
        );
        assert_eq!(out[2]["metadata"]["ownerReferences"][0]["uid"], "uid-seq");
        assert_eq!(out[2]["spec"]["reply"]["ref"]["name"], "seq-kn-sequence-1");
        assert_eq!(out[2]["spec"]["delivery"]["retry"], 2);
        assert!(out[2]["spec"]["subscriber"].get("delivery").is_none());
        assert_eq!(out[3]["spec"]["reply"]["uri"], "http://127.0.0.1:1/out");
    }

    #[test]
    fn a_parallel_branch_without_a_filter_subscribes_its_channel() {
        let parallel = json!({"apiVersion": "flows.knative.dev/v1", "kind": "Parallel",
            "metadata": {"name": "par", "namespace": "default", "uid": "uid-par"},
            "spec": {"branches": [{"subscriber": {"uri": "http://127.0.0.1:1/s"}},
                {"filter": {"uri": "http://127.0.0.1:1/f"}, "subscriber": {"uri": "http://127.0.0.1:1/t"}, "reply": {"uri": "http://127.0.0.1:1/r"}}],
                "reply": {"uri": "http://127.0.0.1:1/out"}}});
        let out = children(&parallel);
        let find = |name: &str| {
            out.iter()
                .find(|c| c["kind"] == "Subscription" && text(c, "name") == name)
                .unwrap()
                .clone()
        };
        let unfiltered = find("par-kn-parallel-filter-0");
        assert_eq!(unfiltered["spec"]["subscriber"]["ref"]["name"], "par-kn-parallel-0");
        assert!(unfiltered["spec"].get("reply").is_none());
        assert_eq!(
            find("par-kn-parallel-filter-1")["spec"]["reply"]["ref"]["name"],
            "par-kn-parallel-1"
        );
        assert_eq!(find("par-kn-parallel-0")["spec"]["reply"]["uri"], "http://127.0.0.1:1/out");
        assert_eq!(find("par-kn-parallel-1")["spec"]["reply"]["uri"], "http://127.0.0.1:1/r");
    }
}
