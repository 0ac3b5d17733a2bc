//! Sources (SRC-01): where a source's events go ([`sink`]: its resolved `sink`, the retry
//! policy of its kind and its dead-letter sink), what its adapter runs on ([`inputs`]), and its
//! status ([`status`]: `SinkProvided`, the adapter's `Deployed`, `sinkUri`, `ceAttributes`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_crds::duck::{BackoffPolicy, ConditionCheck as Cond, DeliverySpec, Destination};
use sluice_crds::sources::{ApiServerSource, AwsSqsSource, GitHubSource, KafkaSource, PingSource, RabbitmqSource};
use sluice_delivery::RetryPolicy;
use sluice_sources::plane::AdapterConfig;
use sluice_sources::{ConfigError, Health, SecretLookup, SinkPlan, SourceInput, SourceKey};

use crate::address::{resolve, resolve_delivery};
use crate::{decode, meta_str, status_with, Environment, Lookup, Objects};

/// The API group of every source kind.
pub const GROUP: &str = "sources.knative.dev";

/// The source kinds whose adapters run here.
pub const RUN: [&str; 6] = [
    "PingSource",
    "RabbitmqSource",
    "KafkaSource",
    "GitHubSource",
    "AwsSqsSource",
    "ApiServerSource",
];

/// Why a source's sink does not resolve: the condition reason and the message.
pub type SinkError = (String, String);

/// Where a source's adapter runs, for its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// In this process (`sluice run`), with this health; `None` while none runs.
    InProcess(Option<Health>),
    /// In `sluice dataplane` on a cluster, which reports faults in its logs and metrics.
    DataPlane,
}

/// The key of a source object in the data plane.
pub fn key(obj: &Value) -> SourceKey {
    SourceKey {
        kind: obj["kind"].as_str().unwrap_or("").to_ascii_lowercase(),
        namespace: meta_str(obj, "namespace").to_string(),
        name: meta_str(obj, "name").to_string(),
    }
}

/// A RabbitmqSource's own delivery settings as a delivery spec (RMQS-01: no dead-letter sink).
fn rabbitmq_delivery(obj: &Value) -> Option<DeliverySpec> {
    let d = &obj["spec"]["delivery"];
    if d.is_null() {
        return None;
    }
    Some(DeliverySpec {
        retry: d["retry"].as_i64().map(|r| r as i32),
        backoff_policy: decode(&d["backoffPolicy"]),
        backoff_delay: d["backoffDelay"].as_str().map(str::to_string),
        ..DeliverySpec::default()
    })
}

/// Where a source's events go: its sink, and the retries of its kind (PingSource: Knative's
/// adapter retries 5 times, exponentially from 50 ms; RabbitmqSource: its `delivery`;
/// KafkaSource: its `delivery`, with a dead-letter sink).
pub fn sink(obj: &Value, env: &Environment, world: &dyn Lookup) -> Result<SinkPlan, SinkError> {
    let namespace = meta_str(obj, "namespace");
    let dest: Destination = if obj["kind"] == "AwsSqsSource" {
        // Its sink is a plain object reference (SQS-01), not a Destination.
        decode(&json!({"ref": obj["spec"]["sink"]})).unwrap_or_default()
    } else {
        decode(&obj["spec"]["sink"]).unwrap_or_default()
    };
    let uri = resolve(&dest, namespace, env, world).map_err(|m| ("NotFound".to_string(), format!("sink: {m}")))?;
    let (policy, dead_letter) = match obj["kind"].as_str().unwrap_or("") {
        "PingSource" => (
            RetryPolicy {
                retries: 5,
                backoff: Some((BackoffPolicy::Exponential, Duration::from_millis(50))),
                ..RetryPolicy::default()
            },
            None,
        ),
        "RabbitmqSource" => {
            let resolved = resolve_delivery(rabbitmq_delivery(obj).as_ref(), "spec.delivery", namespace, env, world)?;
            (resolved.policy, None)
        }
        _ => {
            let spec: Option<DeliverySpec> = decode(&obj["spec"]["delivery"]);
            let resolved = resolve_delivery(spec.as_ref(), "spec.delivery", namespace, env, world)?;
            (resolved.policy, resolved.dead_letter_uri)
        }
    };
    Ok(SinkPlan { uri, policy, dead_letter })
}

/// The adapter config of a source object, from its spec and the Secrets it names.
pub fn config(obj: &Value, secrets: &dyn SecretLookup) -> Result<AdapterConfig, ConfigError> {
    let typed = |e: serde_json::Error| ConfigError::new("spec", "InvalidSpec", e.to_string());
    match obj["kind"].as_str().unwrap_or("") {
        "PingSource" => {
            let ping: PingSource = serde_json::from_value(obj.clone()).map_err(typed)?;
            sluice_sources::ping::Config::from_source(&ping).map(|c| AdapterConfig::Ping(Box::new(c)))
        }
        "RabbitmqSource" => {
            let source: RabbitmqSource = serde_json::from_value(obj.clone()).map_err(typed)?;
            sluice_sources::rabbitmq::Config::from_source(&source, secrets).map(AdapterConfig::Rabbitmq)
        }
        "KafkaSource" => {
            let source: KafkaSource = serde_json::from_value(obj.clone()).map_err(typed)?;
            sluice_sources::kafka::Config::from_source(&source, secrets).map(AdapterConfig::Kafka)
        }
        "GitHubSource" => {
            let source: GitHubSource = serde_json::from_value(obj.clone()).map_err(typed)?;
            sluice_sources::github::Config::from_source(&source, secrets).map(AdapterConfig::GitHub)
        }
        "ApiServerSource" => {
            let source: ApiServerSource = serde_json::from_value(obj.clone()).map_err(typed)?;
            sluice_sources::apiserver::Config::from_source(&source).map(AdapterConfig::ApiServer)
        }
        "AwsSqsSource" => {
            let source: AwsSqsSource = serde_json::from_value(obj.clone()).map_err(typed)?;
            sluice_sources::sqs::Config::from_source(&source, secrets).map(AdapterConfig::Sqs)
        }
        other => Err(ConfigError::new(
            "kind",
            "NotServedYet",
            format!("{other} adapters do not run in this build"),
        )),
    }
}

/// The `ceOverrides.extensions` of a source.
pub fn overrides(obj: &Value) -> BTreeMap<String, String> {
    decode(&obj["spec"]["ceOverrides"]["extensions"]).unwrap_or_default()
}

/// What the data plane runs for every source whose kind runs here.
pub fn inputs(objects: &Objects, env: &Environment, secrets: &dyn SecretLookup) -> Vec<SourceInput> {
    RUN.iter()
        .flat_map(|kind| objects.of_kind(GROUP, kind))
        .filter(|o| o["metadata"]["deletionTimestamp"].is_null())
        .map(|o| SourceInput {
            key: key(o),
            sink: sink(o, env, objects).ok(),
            overrides: overrides(o),
            config: config(o, secrets),
        })
        .collect()
}

/// The CloudEvents attributes a source emits (`status.ceAttributes`).
fn ce_attributes(obj: &Value) -> Value {
    let ns = meta_str(obj, "namespace");
    let name = meta_str(obj, "name");
    match obj["kind"].as_str().unwrap_or("") {
        "PingSource" => {
            json!([{"type": sluice_crds::sources::ping::EVENT_TYPE, "source": format!("/apis/v1/namespaces/{ns}/pingsources/{name}")}])
        }
        "RabbitmqSource" => {
            let queue = obj["spec"]["rabbitmqResourcesConfig"]["queueName"].as_str().unwrap_or("");
            json!([{"type": sluice_crds::sources::rabbitmq::EVENT_TYPE, "source": format!("/apis/v1/namespaces/{ns}/rabbitmqsources/{name}#{queue}")}])
        }
        "KafkaSource" => obj["spec"]["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|topic| json!({"type": sluice_crds::sources::kafka::EVENT_TYPE, "source": format!("/apis/v1/namespaces/{ns}/kafkasources/{name}#{topic}")}))
            .collect(),
        "ApiServerSource" => {
            let mode = if obj["spec"]["mode"] == "Resource" { "resource" } else { "ref" };
            ["add", "update", "delete"]
                .iter()
                // The source is the URL of the API the data plane watches, known to it alone.
                .map(|verb| json!({"type": format!("dev.knative.apiserver.{mode}.{verb}")}))
                .collect()
        }
        "AwsSqsSource" => json!([{"type": sluice_crds::sources::awssqs::EVENT_TYPE, "source": obj["spec"]["queueUrl"]}]),
        "GitHubSource" => {
            let repo = obj["spec"]["ownerAndRepository"].as_str().unwrap_or("");
            obj["spec"]["eventTypes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|t| json!({"type": format!("{}.{t}", sluice_crds::sources::github::EVENT_TYPE_PREFIX), "source": format!("https://github.com/{repo}")}))
                .collect()
        }
        _ => Value::Null,
    }
}

/// The URL of a GitHubSource's webhook receiver: on the public URL when one is set, else on
/// the gateway. `spec.secure` picks its scheme (`true` https, `false` http); unset keeps the
/// scheme of that base URL, as Knative keeps the receiver Service's.
pub fn webhook_url(obj: &Value, env: &Environment) -> String {
    let base = env.public_url.as_deref().unwrap_or(env.gateway()).trim_end_matches('/');
    let base = match (obj["spec"]["secure"].as_bool(), base.split_once("://")) {
        (Some(true), Some((_, rest))) => format!("https://{rest}"),
        (Some(false), Some((_, rest))) => format!("http://{rest}"),
        _ => base.to_string(),
    };
    format!(
        "{base}{}",
        sluice_sources::github::webhook_path(meta_str(obj, "namespace"), meta_str(obj, "name"))
    )
}

/// The env a SinkBinding or ContainerSource gives its workload (SB-01, CS-01): `K_SINK`, the
/// resolved sink, and `K_CE_OVERRIDES`, `{"extensions": {...}}` of its `ceOverrides`.
pub fn sink_env(sink_uri: &str, overrides: Option<&sluice_crds::duck::CloudEventOverrides>) -> Vec<(String, String)> {
    let extensions = overrides.map(|o| o.extensions.clone()).unwrap_or_default();
    vec![
        ("K_SINK".to_string(), sink_uri.to_string()),
        ("K_CE_OVERRIDES".to_string(), json!({ "extensions": extensions }).to_string()),
    ]
}

/// [`sink_env`] of a SinkBinding or ContainerSource as JSON.
pub fn binding_env(binding: &Value, sink_uri: &str) -> Vec<(String, String)> {
    let overrides = serde_json::from_value(binding["spec"]["ceOverrides"].clone()).ok();
    sink_env(sink_uri, overrides.as_ref())
}

/// A pod template's `containers` with `env` set in each (replacing entries of the same
/// name, keeping the rest in order); `None` when every container has it already.
pub fn with_env(containers: &Value, env: &[(String, String)]) -> Option<Value> {
    let mut out = containers.as_array()?.clone();
    let mut changed = false;
    for container in &mut out {
        let mut entries: Vec<Value> = container["env"].as_array().cloned().unwrap_or_default();
        for (name, value) in env {
            let wanted = json!({"name": name, "value": value});
            match entries.iter_mut().find(|e| e["name"] == name.as_str()) {
                Some(e) if *e == wanted => {}
                Some(e) => {
                    *e = wanted;
                    changed = true;
                }
                None => {
                    entries.push(wanted);
                    changed = true;
                }
            }
        }
        container["env"] = Value::Array(entries);
    }
    changed.then_some(Value::Array(out))
}

/// Applies `edit` (e.g. [`with_env`]) to every container list of a pod spec: `containers` and
/// `initContainers`, which SB-01 binds alike; true when any changed.
pub fn edit_pod_containers(pod: &mut Value, edit: impl Fn(&Value) -> Option<Value>) -> bool {
    let mut changed = false;
    for list in ["containers", "initContainers"] {
        if let Some(edited) = edit(&pod[list]) {
            pod[list] = edited;
            changed = true;
        }
    }
    changed
}

/// A pod template's `containers` without the env entries named `names`; `None` when none has
/// them.
pub fn without_env(containers: &Value, names: &[&str]) -> Option<Value> {
    let mut out = containers.as_array()?.clone();
    let mut changed = false;
    for container in &mut out {
        if let Some(entries) = container["env"].as_array_mut() {
            let before = entries.len();
            entries.retain(|e| !names.iter().any(|n| e["name"] == *n));
            changed |= entries.len() != before;
        }
    }
    changed.then_some(Value::Array(out))
}

/// The label naming the ContainerSource of a Deployment, and of its pods.
pub const CONTAINER_SOURCE_LABEL: &str = "sources.knative.dev/containerSource";

/// On a cluster, what runs a ContainerSource (CS-01): a Deployment `{name}-deployment` of its
/// template, one replica, with `K_SINK` and `K_CE_OVERRIDES` in every container and init
/// container, owned by it.
pub fn container_source_deployment(source: &Value, sink_uri: &str) -> Value {
    let name = meta_str(source, "name");
    let template = &source["spec"]["template"];
    let mut labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(CONTAINER_SOURCE_LABEL.into(), json!(name));
    let mut pod = template["spec"].clone();
    let env = binding_env(source, sink_uri);
    edit_pod_containers(&mut pod, |containers| with_env(containers, &env));
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("{name}-deployment"), "namespace": meta_str(source, "namespace"),
                     "labels": {CONTAINER_SOURCE_LABEL: name}, "ownerReferences": crate::serving::owned_by(source)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {CONTAINER_SOURCE_LABEL: name}},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    })
}

/// A ContainerSource's health on a cluster, from its Deployment and pods: running once a pod
/// is ready; else failing with what the pods say (a crash's exit code and termination message,
/// an image that cannot be pulled, a pod that cannot be scheduled), else starting.
pub fn container_source_health(source: &Value, deployment: Option<&Value>, pods: &[Value]) -> Health {
    if deployment.is_some_and(|d| d["status"]["readyReplicas"].as_u64().unwrap_or(0) > 0) {
        return Health::Running;
    }
    let template = json!({"spec": source["spec"]["template"]["spec"]});
    match crate::serving::pod_problems(&template, pods) {
        (Some((reason, message)), _) | (None, Some((reason, message))) => Health::Failing { reason, message },
        (None, None) => Health::Starting,
    }
}

/// What a GitHubSource's controller found out besides its sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubFacts {
    /// Whether the Secrets of `accessToken` and `secretToken` could be read.
    pub secrets: Result<(), (String, String)>,
    /// The webhook registered with GitHub (its id), `None` when no `accessToken` asks for one,
    /// or why registering failed.
    pub webhook: Result<Option<i64>, (String, String)>,
}

/// A GitHubSource's status (GHS-01): `SecretsProvided`, `SinkProvided`, `WebhookConfigured`,
/// `Ready`; `address.url` (where GitHub delivers), `webhookIDKey`, `sinkUri`, `ceAttributes`.
pub fn github_status(obj: &Value, sink: &Result<SinkPlan, SinkError>, facts: &GitHubFacts, env: &Environment) -> Value {
    let mut extra = serde_json::Map::new();
    let url = webhook_url(obj, env);
    extra.insert("address".into(), json!({"url": url}));
    let secrets = match &facts.secrets {
        Ok(()) => Cond::ok("SecretsProvided"),
        Err((reason, message)) => Cond::fail("SecretsProvided", reason, message.clone()),
    };
    let sink_cond = match sink {
        Ok(plan) => {
            extra.insert("sinkUri".into(), Value::String(plan.uri.clone()));
            Cond::ok("SinkProvided")
        }
        Err((reason, message)) => Cond::fail("SinkProvided", reason, message.clone()),
    };
    let webhook = match &facts.webhook {
        Ok(Some(id)) => {
            extra.insert("webhookIDKey".into(), Value::String(id.to_string()));
            Cond::ok("WebhookConfigured")
        }
        // Without an access token the webhook is the user's to add, at `address.url`.
        Ok(None) => Cond::ok("WebhookConfigured"),
        Err((reason, message)) => Cond::fail("WebhookConfigured", reason, message.clone()),
    };
    extra.insert("ceAttributes".into(), ce_attributes(obj));
    status_with(obj, vec![secrets, sink_cond, webhook], extra)
}

/// A source's status: `SinkProvided` from its sink, `Deployed` from its adapter, `Ready` when
/// both hold.
pub fn status(obj: &Value, sink: &Result<SinkPlan, SinkError>, adapter: &Adapter) -> Value {
    let mut extra = serde_json::Map::new();
    let sink_cond = match sink {
        Ok(plan) => {
            extra.insert("sinkUri".into(), Value::String(plan.uri.clone()));
            Cond::ok("SinkProvided")
        }
        Err((reason, message)) => Cond::fail("SinkProvided", reason, message.clone()),
    };
    // The adapter's condition: a ContainerSource's process is its receive adapter; a
    // SinkBinding has none, its binding is available once its sink resolves.
    let adapter_condition = match obj["kind"].as_str().unwrap_or("") {
        "ContainerSource" => "ReceiveAdapterReady",
        "SinkBinding" => "SinkBindingAvailable",
        _ => "Deployed",
    };
    // A SinkBinding's only fault is a subject it could not bind (on a cluster).
    let adapter = if obj["kind"] == "SinkBinding" && !matches!(adapter, Adapter::InProcess(Some(Health::Failing { .. }))) {
        &Adapter::DataPlane
    } else {
        adapter
    };
    let deployed = match adapter {
        Adapter::DataPlane => Cond::ok(adapter_condition),
        Adapter::InProcess(None) if sink.is_err() => {
            Cond::unknown(adapter_condition, "SinkNotResolved", "the adapter starts once the sink resolves")
        }
        Adapter::InProcess(None) => Cond::unknown(adapter_condition, "Starting", "the adapter has not started yet"),
        Adapter::InProcess(Some(Health::Starting)) => Cond::unknown(adapter_condition, "Starting", "the adapter is connecting"),
        Adapter::InProcess(Some(Health::Running)) => Cond::ok(adapter_condition),
        Adapter::InProcess(Some(Health::Failing { reason, message })) => Cond::fail(adapter_condition, reason, message.clone()),
    };
    let mut conditions = vec![sink_cond.clone(), deployed.clone()];
    if obj["kind"] == "ContainerSource" {
        // Its SinkBinding is the sink's environment in the process, ready with the sink.
        conditions.push(Cond {
            type_: "SinkBindingReady",
            ..sink_cond
        });
    }
    if obj["kind"] == "KafkaSource" {
        // Knative's KafkaSource reports the brokers' reachability and the group's initial
        // offsets apart. The adapter commits those offsets once connected, so a failure
        // there means the connection holds.
        let offsets_failed = matches!(adapter, Adapter::InProcess(Some(Health::Failing { reason, .. }))
            if reason == sluice_sources::kafka::INITIAL_OFFSETS_NOT_COMMITTED);
        let (connection, offsets) = match adapter {
            Adapter::InProcess(Some(Health::Failing { .. })) if offsets_failed => (Cond::ok("ConnectionEstablished"), deployed.clone()),
            Adapter::InProcess(Some(Health::Failing { .. })) => (
                deployed.clone(),
                Cond::unknown(
                    "InitialOffsetsCommitted",
                    "NotConnected",
                    "the offsets are committed once the brokers answer",
                ),
            ),
            _ => (deployed.clone(), deployed.clone()),
        };
        conditions.push(Cond {
            type_: "ConnectionEstablished",
            ..connection
        });
        conditions.push(Cond {
            type_: "InitialOffsetsCommitted",
            ..offsets
        });
    }
    let attributes = ce_attributes(obj);
    if !attributes.is_null() {
        extra.insert("ceAttributes".into(), attributes);
    }
    status_with(obj, conditions, extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{condition, env, obj, world};

    fn ping(sink: Value) -> Value {
        let mut p = obj(
            "PingSource",
            GROUP,
            "ticks",
            json!({"schedule": "* * * * *", "data": "hi", "sink": sink}),
        );
        p["apiVersion"] = json!("sources.knative.dev/v1");
        p
    }

    #[test]
    fn sinks_resolve_with_the_retries_of_the_kind() {
        let broker = obj("Broker", "eventing.knative.dev", "default", json!({}));
        let w = world(vec![broker]);
        let plan = sink(
            &ping(json!({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}})),
            &env(),
            &w,
        )
        .unwrap();
        assert_eq!(plan.uri, "http://127.0.0.1:8080/default/default");
        assert_eq!(plan.policy.retries, 5);
        assert_eq!(plan.policy.backoff, Some((BackoffPolicy::Exponential, Duration::from_millis(50))));

        let mut rmq = obj(
            "RabbitmqSource",
            GROUP,
            "orders",
            json!({"sink": {"uri": "http://x/"},
            "delivery": {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.2S"}}),
        );
        rmq["apiVersion"] = json!("sources.knative.dev/v1alpha1");
        let plan = sink(&rmq, &env(), &w).unwrap();
        assert_eq!(plan.policy.retries, 3);
        assert_eq!(plan.policy.backoff, Some((BackoffPolicy::Linear, Duration::from_millis(200))));
        assert_eq!(plan.dead_letter, None);

        let missing = sink(
            &ping(json!({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "nope"}})),
            &env(),
            &w,
        )
        .unwrap_err();
        assert_eq!(missing.0, "NotFound");
        assert!(missing.1.starts_with("sink: "), "{}", missing.1);
    }

    #[test]
    fn status_reports_the_sink_and_the_adapter() {
        let p = ping(json!({"uri": "http://x/"}));
        let ok = sink(&p, &env(), &world(vec![]));
        let cases = [
            (Adapter::InProcess(Some(Health::Running)), "True", "True", None),
            (Adapter::InProcess(Some(Health::Starting)), "Unknown", "Unknown", Some("Starting")),
            (
                Adapter::InProcess(Some(Health::failing("ConnectionFailed", "refused"))),
                "False",
                "False",
                Some("ConnectionFailed"),
            ),
            (Adapter::DataPlane, "True", "True", None),
        ];
        for (adapter, deployed, ready, reason) in cases {
            let s = status(&p, &ok, &adapter);
            assert_eq!(s["sinkUri"], "http://x/");
            assert_eq!(condition(&s, "SinkProvided")["status"], "True");
            assert_eq!(condition(&s, "Deployed")["status"], deployed, "{adapter:?}");
            assert_eq!(condition(&s, "Ready")["status"], ready, "{adapter:?}");
            if let Some(r) = reason {
                assert_eq!(condition(&s, "Deployed")["reason"], r);
            }
            assert_eq!(s["ceAttributes"][0]["type"], "dev.knative.sources.ping");
            assert_eq!(s["ceAttributes"][0]["source"], "/apis/v1/namespaces/default/pingsources/ticks");
        }
        let missing: Result<SinkPlan, SinkError> = Err(("NotFound".into(), "sink: broker default/nope not found".into()));
        let s = status(&p, &missing, &Adapter::InProcess(None));
        assert_eq!(condition(&s, "SinkProvided")["status"], "False");
        assert_eq!(condition(&s, "Ready")["status"], "False");
        assert_eq!(condition(&s, "Deployed")["reason"], "SinkNotResolved");
        assert!(s.get("sinkUri").is_none());
    }

    #[test]
    fn kafka_sources_report_the_connection_and_the_initial_offsets_apart() {
        let mut kafka = obj(
            "KafkaSource",
            GROUP,
            "orders",
            json!({"bootstrapServers": ["127.0.0.1:9092"], "topics": ["orders"], "sink": {"uri": "http://x/"}}),
        );
        kafka["apiVersion"] = json!("sources.knative.dev/v1");
        let ok = sink(&kafka, &env(), &world(vec![]));
        let offsets_failed = Health::failing(sluice_sources::kafka::INITIAL_OFFSETS_NOT_COMMITTED, "coordinator not available");
        let cases = [
            (Health::Running, "True", "True", "True"),
            (Health::Starting, "Unknown", "Unknown", "Unknown"),
            (Health::failing("ConnectionFailed", "refused"), "False", "Unknown", "False"),
            (offsets_failed, "True", "False", "False"),
        ];
        for (health, connection, offsets, ready) in cases {
            let s = status(&kafka, &ok, &Adapter::InProcess(Some(health.clone())));
            assert_eq!(condition(&s, "ConnectionEstablished")["status"], connection, "{health:?}");
            assert_eq!(condition(&s, "InitialOffsetsCommitted")["status"], offsets, "{health:?}");
            assert_eq!(condition(&s, "Ready")["status"], ready, "{health:?}");
        }
    }

    #[test]
    fn a_binding_sets_its_env_in_every_container_once() {
        let binding = obj("SinkBinding", GROUP, "bind", json!({"ceOverrides": {"extensions": {"team": "a"}}}));
        let env = binding_env(&binding, "http://sink/");
        assert_eq!(env[0], ("K_SINK".to_string(), "http://sink/".to_string()));
        assert_eq!(env[1].1, r#"{"extensions":{"team":"a"}}"#);
        let containers = json!([
            {"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "K_SINK", "value": "http://old/"}]},
            {"name": "sidecar"}
        ]);
        let bound = with_env(&containers, &env).expect("changed");
        assert_eq!(
            bound[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "K_SINK", "value": "http://sink/"},
                   {"name": "K_CE_OVERRIDES", "value": r#"{"extensions":{"team":"a"}}"#}])
        );
        assert_eq!(bound[1]["env"].as_array().unwrap().len(), 2);
        assert_eq!(with_env(&bound, &env), None, "bound already");
        let unbound = without_env(&bound, &["K_SINK", "K_CE_OVERRIDES"]).expect("changed");
        assert_eq!(unbound[0]["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(unbound[1]["env"], json!([]));
        assert_eq!(without_env(&unbound, &["K_SINK"]), None);
        assert_eq!(
            binding_env(&obj("SinkBinding", GROUP, "b", json!({})), "u")[1].1,
            r#"{"extensions":{}}"#
        );
    }

    #[test]
    fn on_a_cluster_a_container_source_is_a_deployment_with_the_sink() {
        let mut source = obj(
            "ContainerSource",
            GROUP,
            "heartbeats",
            json!({"template": {"metadata": {"labels": {"app": "beat"}},
                "spec": {"containers": [{"name": "beat", "image": "example/beat", "env": [{"name": "PERIOD", "value": "1"}]}],
                         "initContainers": [{"name": "warm", "image": "example/warm"}]}}}),
        );
        source["apiVersion"] = json!("sources.knative.dev/v1");
        let d = container_source_deployment(&source, "http://sink/");
        // Init containers are bound too (SB-01), and unbound again.
        let mut pod = d["spec"]["template"]["spec"].clone();
        assert_eq!(
            pod["initContainers"][0]["env"][0],
            json!({"name": "K_SINK", "value": "http://sink/"})
        );
        assert!(edit_pod_containers(&mut pod, |c| without_env(c, &["K_SINK", "K_CE_OVERRIDES"])));
        assert_eq!(pod["initContainers"][0]["env"], json!([]));
        assert_eq!(pod["containers"][0]["env"], json!([{"name": "PERIOD", "value": "1"}]));
        assert!(!edit_pod_containers(&mut pod, |c| without_env(c, &["K_SINK"])));
        assert_eq!(d["metadata"]["name"], "heartbeats-deployment");
        assert_eq!(d["metadata"]["ownerReferences"][0]["uid"], "uid-heartbeats");
        assert_eq!(d["spec"]["selector"]["matchLabels"][CONTAINER_SOURCE_LABEL], "heartbeats");
        assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "beat");
        let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["name"], "PERIOD");
        assert_eq!(env[1], json!({"name": "K_SINK", "value": "http://sink/"}));
        assert_eq!(env[2]["name"], "K_CE_OVERRIDES");

        let mut ready = d.clone();
        ready["status"] = json!({"readyReplicas": 1});
        let crashed = json!({"status": {"containerStatuses": [{"name": "beat",
            "lastState": {"terminated": {"exitCode": 1, "message": "no sink"}}}]}});
        let cases = [
            (Some(&ready), vec![], Health::Running),
            (Some(&d), vec![], Health::Starting),
            (
                Some(&d),
                vec![crashed],
                Health::failing("ExitCode1", "Container failed with: no sink"),
            ),
            (None, vec![], Health::Starting),
        ];
        for (deployment, pods, health) in cases {
            assert_eq!(container_source_health(&source, deployment, &pods), health);
        }
    }

    #[test]
    fn webhook_urls_take_their_scheme_from_secure() {
        let mut public = env();
        public.public_url = Some("http://hooks.example.com/".into());
        let cases = [
            (Value::Null, "http://hooks.example.com"),
            (json!(true), "https://hooks.example.com"),
            (json!(false), "http://hooks.example.com"),
        ];
        for (secure, base) in cases {
            let mut source = obj("GitHubSource", GROUP, "repo", json!({"secure": secure}));
            if secure.is_null() {
                source["spec"].as_object_mut().unwrap().remove("secure");
            }
            assert_eq!(
                webhook_url(&source, &public),
                format!("{base}/githubsources/default/repo"),
                "secure: {secure}"
            );
        }
        let mut https = env();
        https.public_url = Some("https://hooks.example.com".into());
        let source = obj("GitHubSource", GROUP, "repo", json!({}));
        assert_eq!(webhook_url(&source, &https), "https://hooks.example.com/githubsources/default/repo");
    }

    #[test]
    fn configs_name_what_is_wrong() {
        let mut rmq = obj(
            "RabbitmqSource",
            GROUP,
            "orders",
            json!({"sink": {"uri": "http://x/"},
            "rabbitmqClusterReference": {"connectionSecret": {"name": "rabbit"}},
            "rabbitmqResourcesConfig": {"queueName": "orders", "predeclared": true}}),
        );
        rmq["apiVersion"] = json!("sources.knative.dev/v1alpha1");
        let none: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let err = config(&rmq, &none).unwrap_err();
        assert_eq!(err.field, "spec.rabbitmqClusterReference.connectionSecret");
        assert_eq!(err.reason, "SecretNotFound");
        let mut secrets = none.clone();
        secrets.insert(
            ("default".into(), "rabbit".into()),
            BTreeMap::from([
                ("uri".to_string(), b"http://127.0.0.1:15672".to_vec()),
                ("username".to_string(), b"guest".to_vec()),
                ("password".to_string(), b"guest".to_vec()),
            ]),
        );
        match config(&rmq, &secrets).unwrap() {
            AdapterConfig::Rabbitmq(c) => {
                assert_eq!(c.uri, "amqp://guest:guest@127.0.0.1:5672/%2F");
                assert_eq!(c.source, "/apis/v1/namespaces/default/rabbitmqsources/orders#orders");
            }
            other => panic!("{other:?}"),
        }
    }
}
