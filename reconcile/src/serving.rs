//! Knative Serving's object model (SVC-*, CFG-*, RTE-*): a Service owns a Configuration and a
//! Route of its name; a Configuration stamps an immutable Revision per template generation
//! (`{name}-00001`, ...); a Route resolves its traffic targets to revisions and has a URL
//! (`http://{name}.{namespace}.{domain}`, with the gateway's port when it is not 80). Pure:
//! objects in, children and status out. Revisions are not run yet (the process runtime and the
//! routing on the gateway are still to come), so their controller reports them not served,
//! and nothing here becomes Ready.

use serde_json::{json, Map, Value};
use sluice_crds::duck::ConditionCheck as Cond;

use crate::{meta_str, status_with};

/// The domain of routes when `config-domain` names none: `localhost`, so the URLs resolve here
/// (Knative's own default, `svc.cluster.local`, means nothing on a laptop).
pub const DEFAULT_DOMAIN: &str = "localhost";
/// Namespace of Knative Serving's settings ConfigMaps.
pub const SETTINGS_NAMESPACE: &str = "knative-serving";
/// The ConfigMap naming the domain of routes.
pub const CONFIG_DOMAIN: &str = "config-domain";

/// The default domain of `config-domain`'s `data`: a key whose value (a label selector) is
/// empty, as Knative reads it; [`DEFAULT_DOMAIN`] when there is none. (Selectors for other
/// routes are not applied yet: every route gets the default domain.)
pub fn domain(config_domain: Option<&Value>) -> String {
    config_domain
        .and_then(|cm| cm["data"].as_object())
        .and_then(|data| {
            data.iter()
                .find(|(k, v)| !k.starts_with('_') && v.as_str().is_some_and(|s| s.trim().is_empty()))
                .map(|(k, _)| k.clone())
        })
        .unwrap_or_else(|| DEFAULT_DOMAIN.to_string())
}
/// Label naming the Service of a Configuration, Route or Revision.
pub const SERVICE_LABEL: &str = "serving.knative.dev/service";
/// Label naming the Configuration of a Revision.
pub const CONFIGURATION_LABEL: &str = "serving.knative.dev/configuration";
/// Label with the Configuration generation a Revision was stamped from.
pub const CONFIGURATION_GENERATION_LABEL: &str = "serving.knative.dev/configurationGeneration";

/// An owner reference to `owner` as its controller.
pub(crate) fn owned_by(owner: &Value) -> Value {
    json!([{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"), "controller": true, "blockOwnerDeletion": true,
    }])
}

/// The Ready condition of an object: (status, reason, message); `None` when it has none.
fn ready_of(obj: &Value) -> Option<(String, String, String)> {
    let c = obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?;
    let text = |k: &str| c[k].as_str().unwrap_or("").to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// The name of the Revision a Configuration stamps for its current generation: the
/// template's own name when it has one, else `{name}-{generation:05}`.
pub fn revision_name(configuration: &Value) -> String {
    match configuration["spec"]["template"]["metadata"]["name"].as_str() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!(
            "{}-{:05}",
            meta_str(configuration, "name"),
            configuration["metadata"]["generation"].as_i64().unwrap_or(1)
        ),
    }
}

/// What a Configuration is: the Revision of its generation, and its status.
#[derive(Debug)]
pub struct ConfigurationDecision {
    /// The Revision it should have (created once: revisions are immutable).
    pub revision: Value,
    /// Its status.
    pub status: Value,
}

/// Decides a Configuration from its `revisions` (the ones it owns).
pub fn configuration(cfg: &Value, revisions: &[Value]) -> ConfigurationDecision {
    let name = meta_str(cfg, "name");
    let template = &cfg["spec"]["template"];
    let latest = revision_name(cfg);
    let mut labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(CONFIGURATION_LABEL.into(), json!(name));
    labels.insert(
        CONFIGURATION_GENERATION_LABEL.into(),
        json!(cfg["metadata"]["generation"].as_i64().unwrap_or(1).to_string()),
    );
    if let Some(service) = cfg["metadata"]["labels"][SERVICE_LABEL].as_str() {
        labels.insert(SERVICE_LABEL.into(), json!(service));
    }
    let mut metadata = json!({"name": latest, "namespace": meta_str(cfg, "namespace"), "labels": labels, "ownerReferences": owned_by(cfg)});
    if let Some(a) = template["metadata"].get("annotations").filter(|a| a.is_object()) {
        metadata["annotations"] = a.clone();
    }
    let revision = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))});
    // The newest ready revision (by the generation it was stamped from).
    let generation = |r: &Value| {
        r["metadata"]["labels"][CONFIGURATION_GENERATION_LABEL]
            .as_str()
            .and_then(|g| g.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let latest_ready = revisions
        .iter()
        .filter(|r| ready_of(r).is_some_and(|(s, _, _)| s == "True"))
        .max_by_key(|r| generation(r))
        .map(|r| meta_str(r, "name").to_string());
    let mut extra = Map::new();
    extra.insert("latestCreatedRevisionName".into(), json!(latest));
    if let Some(ready) = &latest_ready {
        extra.insert("latestReadyRevisionName".into(), json!(ready));
    }
    // CFG: Ready follows the latest created revision.
    let current = revisions.iter().find(|r| meta_str(r, "name") == latest);
    let cond = match current.and_then(ready_of) {
        Some((s, _, _)) if s == "True" => Cond::ok("Ready"),
        Some((s, reason, message)) if s == "False" => Cond::fail(
            "Ready",
            if reason.is_empty() { "RevisionFailed" } else { &reason },
            format!("Revision {latest:?} failed with message: {message}."),
        ),
        _ => Cond::unknown(
            "Ready",
            "RevisionMissing",
            format!("Configuration {name:?} is waiting for a Revision to become ready."),
        ),
    };
    ConfigurationDecision {
        revision,
        status: status_with(cfg, vec![cond], extra),
    }
}

/// A Route's URL on the gateway: `http://{name}.{namespace}.{domain}`, with the port of
/// `gateway_url` unless it is 80.
pub fn route_url(name: &str, namespace: &str, domain: &str, gateway_url: &str) -> String {
    let port = url::Url::parse(gateway_url).ok().and_then(|u| u.port()).filter(|p| *p != 80);
    match port {
        Some(p) => format!("http://{name}.{namespace}.{domain}:{p}"),
        None => format!("http://{name}.{namespace}.{domain}"),
    }
}

/// Decides a Route's status from the Configurations and Revisions of its namespace, with its
/// URL under `domain`.
pub fn route(rt: &Value, configurations: &[Value], revisions: &[Value], domain: &str, gateway_url: &str, routed: Option<bool>) -> Value {
    let (name, ns) = (meta_str(rt, "name"), meta_str(rt, "namespace"));
    let url = route_url(name, ns, domain, gateway_url);
    let by_name = |list: &[Value], n: &str| list.iter().find(|o| meta_str(o, "name") == n).cloned();
    let mut traffic = Vec::new();
    let mut missing = Vec::new();
    for target in rt["spec"]["traffic"].as_array().into_iter().flatten() {
        let mut resolved = Map::new();
        let revision = match (target["revisionName"].as_str(), target["configurationName"].as_str()) {
            (Some(r), _) => match by_name(revisions, r) {
                Some(rev) if ready_of(&rev).is_some_and(|(s, _, _)| s == "True") => Some(r.to_string()),
                _ => {
                    missing.push(format!("Revision {r:?} is not ready."));
                    None
                }
            },
            (None, Some(c)) => {
                let cfg = by_name(configurations, c);
                match cfg
                    .as_ref()
                    .and_then(|cfg| cfg["status"]["latestReadyRevisionName"].as_str().map(str::to_string))
                {
                    Some(r) => {
                        resolved.insert("configurationName".into(), json!(c));
                        resolved.insert("latestRevision".into(), json!(true));
                        Some(r)
                    }
                    None => {
                        // Why not, when the Configuration says (a failing revision's message).
                        let why = cfg
                            .as_ref()
                            .and_then(ready_of)
                            .filter(|(s, _, m)| s == "False" && !m.is_empty())
                            .map(|(_, _, m)| format!(" {m}"))
                            .unwrap_or_default();
                        missing.push(format!("Configuration {c:?} does not have any ready Revision.{why}"));
                        None
                    }
                }
            }
            _ => None,
        };
        if let Some(r) = revision {
            resolved.insert("revisionName".into(), json!(r));
            resolved.insert("percent".into(), target["percent"].clone());
            if let Some(tag) = target["tag"].as_str() {
                resolved.insert("tag".into(), json!(tag));
                resolved.insert("url".into(), json!(route_url(&format!("{tag}-{name}"), ns, domain, gateway_url)));
            }
            traffic.push(Value::Object(resolved));
        }
    }
    let mut extra = Map::new();
    extra.insert("url".into(), json!(url));
    extra.insert("address".into(), json!({"url": url}));
    let mut conds = Vec::new();
    if missing.is_empty() {
        extra.insert("traffic".into(), json!(traffic));
        conds.push(Cond::ok("AllTrafficAssigned"));
    } else {
        conds.push(Cond::fail("AllTrafficAssigned", "RevisionMissing", missing.join(" ")));
    }
    conds.push(match routed {
        Some(true) => Cond::ok("IngressReady"),
        Some(false) => Cond::unknown("IngressReady", "Programming", "the gateway is not routing the new traffic yet"),
        None => Cond::fail(
            "IngressReady",
            "NotServedYet",
            "no serving runtime routes by Host here: run the Route under `sluice run`",
        ),
    });
    conds.push(Cond::ok("CertificateProvisioned"));
    status_with(rt, conds, extra)
}

/// What a Service is: its Configuration and Route, and its status.
#[derive(Debug)]
pub struct ServiceDecision {
    /// The Configuration it owns.
    pub configuration: Value,
    /// The Route it owns.
    pub route: Value,
    /// Its status.
    pub status: Value,
}

/// Decides a Service from its children as they are (`None`: not created yet).
pub fn service(svc: &Value, configuration: Option<&Value>, route: Option<&Value>) -> ServiceDecision {
    let (name, ns) = (meta_str(svc, "name"), meta_str(svc, "namespace"));
    let mut labels = svc["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(SERVICE_LABEL.into(), json!(name));
    let metadata = json!({"name": name, "namespace": ns, "labels": labels, "ownerReferences": owned_by(svc)});
    let child = |kind: &str, spec: Value| json!({"apiVersion": "serving.knative.dev/v1", "kind": kind, "metadata": metadata, "spec": spec});
    let traffic = match svc["spec"]["traffic"].as_array().filter(|t| !t.is_empty()) {
        // SVC: targets of the latest revision follow the Service's Configuration.
        Some(targets) => json!(targets
            .iter()
            .map(|t| {
                let mut t = t.clone();
                if t["revisionName"].is_null() {
                    t["configurationName"] = json!(name);
                    t["latestRevision"] = json!(true);
                }
                t
            })
            .collect::<Vec<_>>()),
        None => json!([{"configurationName": name, "latestRevision": true, "percent": 100}]),
    };
    let configuration_child = child("Configuration", json!({"template": svc["spec"]["template"]}));
    let route_child = child("Route", json!({"traffic": traffic}));
    let mut extra = Map::new();
    if let Some(c) = configuration {
        for k in ["latestCreatedRevisionName", "latestReadyRevisionName"] {
            if let Some(v) = c["status"].get(k) {
                extra.insert(k.into(), v.clone());
            }
        }
    }
    if let Some(r) = route {
        for k in ["url", "address", "traffic"] {
            if let Some(v) = r["status"].get(k) {
                extra.insert(k.into(), v.clone());
            }
        }
    }
    let from_child = |ty: &'static str, kind: &str, child: Option<&Value>| match child.and_then(ready_of) {
        Some((s, _, _)) if s == "True" => Cond::ok(ty),
        Some((s, reason, message)) if s == "False" => Cond::fail(ty, &reason, message),
        _ => Cond::unknown(ty, "Outdated", format!("{kind} {name:?} is not ready yet")),
    };
    let conds = vec![
        from_child("ConfigurationsReady", "Configuration", configuration),
        from_child("RoutesReady", "Route", route),
    ];
    ServiceDecision {
        configuration: configuration_child,
        route: route_child,
        status: status_with(svc, conds, extra),
    }
}

/// Label naming the Revision of a Deployment, Service or pod.
pub const REVISION_LABEL: &str = "serving.knative.dev/revision";
/// Label with the Revision's uid, which a Revision's Deployment selects its pods by.
pub const REVISION_UID_LABEL: &str = "serving.knative.dev/revisionUID";
/// The port a container listens on when it names none (RT-01).
pub const DEFAULT_CONTAINER_PORT: i64 = 8080;

/// The name of a Revision's Deployment on a cluster, as Knative names it.
pub fn deployment_name(revision: &str) -> String {
    format!("{revision}-deployment")
}

/// What runs a Revision on a cluster (`sluice controller`): a Deployment of its pod spec,
/// scaled through `replicas` (the autoscaler's), with `PORT` and `K_*` set (RT-01), and a
/// Service of the Revision's name in front of its pods. Both are owned by the Revision.
pub fn revision_workloads(rev: &Value, replicas: i64) -> (Value, Value) {
    let (name, ns) = (meta_str(rev, "name"), meta_str(rev, "namespace"));
    let labels_in = &rev["metadata"]["labels"];
    let mut labels = Map::new();
    for key in [SERVICE_LABEL, CONFIGURATION_LABEL] {
        if let Some(v) = labels_in[key].as_str() {
            labels.insert(key.into(), json!(v));
        }
    }
    labels.insert(REVISION_LABEL.into(), json!(name));
    labels.insert(REVISION_UID_LABEL.into(), json!(meta_str(rev, "uid")));
    let selector = json!({REVISION_UID_LABEL: meta_str(rev, "uid")});
    let mut pod = rev["spec"].clone();
    let mut port = DEFAULT_CONTAINER_PORT;
    if let Some(pod) = pod.as_object_mut() {
        for field in [
            "containerConcurrency",
            "timeoutSeconds",
            "responseStartTimeoutSeconds",
            "idleTimeoutSeconds",
        ] {
            pod.remove(field);
        }
        if let Some(timeout) = rev["spec"]["timeoutSeconds"].as_i64() {
            // Knative gives an instance its request timeout to finish when stopped.
            pod.insert("terminationGracePeriodSeconds".into(), json!(timeout));
        }
        if let Some(containers) = pod.get_mut("containers").and_then(Value::as_array_mut) {
            // The serving container is the one with a port, else the first.
            let serving = containers.iter().position(|c| c["ports"].is_array()).unwrap_or(0);
            if let Some(c) = containers.get_mut(serving) {
                port = c["ports"][0]["containerPort"].as_i64().unwrap_or(DEFAULT_CONTAINER_PORT);
                c["ports"] = json!([{"name": "http1", "containerPort": port}]);
                let mut env: Vec<Value> = c["env"].as_array().cloned().unwrap_or_default();
                env.retain(|e| !matches!(e["name"].as_str(), Some("PORT" | "K_SERVICE" | "K_CONFIGURATION" | "K_REVISION")));
                env.push(json!({"name": "PORT", "value": port.to_string()}));
                env.push(json!({"name": "K_REVISION", "value": name}));
                env.push(json!({"name": "K_CONFIGURATION", "value": labels_in[CONFIGURATION_LABEL].as_str().unwrap_or("")}));
                env.push(json!({"name": "K_SERVICE", "value": labels_in[SERVICE_LABEL].as_str().unwrap_or("")}));
                c["env"] = json!(env);
            }
        }
    }
    let owner = owned_by(rev);
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": deployment_name(name), "namespace": ns, "labels": labels, "ownerReferences": owner},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": port}]},
    });
    (deployment, service)
}

/// The facts of a Revision from its Deployment and its pods on a cluster: wanted and ready
/// replicas, and what the kubelet reports of pods that do not run ([`pod_problems`]).
pub fn facts_from_deployment(rev: &Value, deployment: Option<&Value>, pods: &[Value]) -> RevisionFacts {
    let Some(d) = deployment else {
        return RevisionFacts::default();
    };
    let ready = d["status"]["readyReplicas"].as_u64().unwrap_or(0) as u32;
    let (failure, resources_unavailable) = if ready > 0 { (None, None) } else { pod_problems(rev, pods) };
    RevisionFacts {
        desired: d["spec"]["replicas"].as_u64().unwrap_or(0) as u32,
        ready,
        failure,
        resources_unavailable,
        ..Default::default()
    }
}

/// Why something does not run: a condition's reason and message.
pub type Problem = (String, String);

/// Container states the kubelet reports of a container that cannot start.
const CONTAINER_START_ERRORS: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// What a Revision's pods say of why it does not run, as Knative's Revision reconciler reads
/// them: the serving container's last termination (`ContainerHealthy` False, reason
/// `ExitCode<n>`, message `Container failed with: <termination message>`), or a waiting state
/// that cannot start it (`ErrImagePull`, `CreateContainerConfigError`…); and a pod that cannot
/// be scheduled (`ResourcesAvailable` False with the scheduler's reason).
pub fn pod_problems(rev: &Value, pods: &[Value]) -> (Option<Problem>, Option<Problem>) {
    let containers = rev["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let serving = containers.iter().find(|c| c["ports"].is_array()).or(containers.first());
    let name = serving
        .and_then(|c| c["name"].as_str())
        .unwrap_or(sluice_crds::serving::DEFAULT_CONTAINER_NAME);
    let mut failure = None;
    let mut unschedulable = None;
    for pod in pods {
        for status in pod["status"]["containerStatuses"].as_array().into_iter().flatten() {
            if status["name"] != name {
                continue;
            }
            let terminated = &status["lastState"]["terminated"];
            let waiting = &status["state"]["waiting"];
            if terminated.is_object() {
                let code = terminated["exitCode"].as_i64().unwrap_or(0);
                let message = match terminated["message"].as_str().filter(|m| !m.is_empty()) {
                    Some(m) => m.to_string(),
                    None if code == 0 => "container exited with no error".to_string(),
                    None => terminated["reason"].as_str().unwrap_or("Error").to_string(),
                };
                failure.get_or_insert((format!("ExitCode{code}"), format!("Container failed with: {message}")));
            } else if let Some(reason) = waiting["reason"].as_str().filter(|r| CONTAINER_START_ERRORS.contains(r)) {
                let message = waiting["message"].as_str().unwrap_or_default().to_string();
                failure.get_or_insert((reason.to_string(), message));
            }
        }
        let scheduled = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False");
        if let Some(c) = scheduled {
            unschedulable.get_or_insert((
                c["reason"].as_str().unwrap_or("Unschedulable").to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    (failure, unschedulable)
}

/// What the runtime reports of a Revision, for its status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevisionFacts {
    /// Instances wanted.
    pub desired: u32,
    /// Instances ready.
    pub ready: u32,
    /// The last crash: reason and message (cleared once an instance is ready again).
    pub failure: Option<(String, String)>,
    /// Why the Revision cannot run at all (field path and message).
    pub not_runnable: Option<String>,
    /// Its initial scale is 0 (`allow-zero-initial-scale`): it is ready with no instance.
    pub starts_at_zero: bool,
    /// Why its instances cannot be placed (a cluster's scheduler): reason and message.
    pub resources_unavailable: Option<(String, String)>,
}

/// A Revision's status (REV-02): `ResourcesAvailable` once an instance has been ready (and
/// still when scaled to zero), `ContainerHealthy` False with the exit message of a crashing
/// process, `Active` while instances are ready, `actualReplicas` and `desiredReplicas`.
pub fn revision(rev: &Value, facts: &RevisionFacts) -> Value {
    let was = |ty: &str| {
        rev["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == ty && c["status"] == "True")
    };
    let mut conds = Vec::new();
    if let Some(why) = &facts.not_runnable {
        conds.push(Cond::fail("ContainerHealthy", "InvalidContainer", why.clone()));
        conds.push(Cond::fail("ResourcesAvailable", "NotRunnable", why.clone()));
    } else {
        let resources =
            facts.ready > 0 || was("ResourcesAvailable") || (facts.starts_at_zero && facts.desired == 0 && facts.failure.is_none());
        conds.push(match &facts.failure {
            Some((reason, message)) => Cond::fail("ContainerHealthy", reason, message.clone()),
            None if resources => Cond::ok("ContainerHealthy"),
            None => Cond::unknown(
                "ContainerHealthy",
                "Deploying",
                "waiting for an instance to pass its readiness probe",
            ),
        });
        conds.push(match &facts.resources_unavailable {
            Some((reason, message)) => Cond::fail("ResourcesAvailable", reason, message.clone()),
            None if resources => Cond::ok("ResourcesAvailable"),
            None => Cond::unknown("ResourcesAvailable", "Deploying", "starting the first instance"),
        });
    }
    let mut extra = Map::new();
    extra.insert("actualReplicas".into(), json!(facts.ready));
    extra.insert("desiredReplicas".into(), json!(facts.desired));
    if let Some(image) = rev["spec"]["containers"][0]["image"].as_str() {
        let name = rev["spec"]["containers"][0]["name"].as_str().unwrap_or("user-container");
        extra.insert("containerStatuses".into(), json!([{"name": name, "imageDigest": image}]));
    }
    let mut status = status_with(rev, conds, extra);
    // Active is informational (REV-02): it does not count towards Ready.
    let active = if facts.ready > 0 {
        json!({"type": "Active", "status": "True"})
    } else {
        json!({"type": "Active", "status": "False", "reason": "NoTraffic", "message": "The target is not receiving traffic."})
    };
    if let Some(conditions) = status["conditions"].as_array_mut() {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let previous = rev["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Active"))
            .filter(|c| c["status"] == active["status"])
            .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string));
        let mut active = active;
        active["lastTransitionTime"] = json!(previous.unwrap_or(now));
        conditions.push(active);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{condition, obj};

    fn ksvc() -> Value {
        obj(
            "Service",
            "serving.knative.dev",
            "hello",
            json!({"template": {"metadata": {"annotations": {"autoscaling.knative.dev/target": "10"}},
                "spec": {"containers": [{"image": "ghcr.io/knative/helloworld-go:latest"}]}}}),
        )
    }

    #[test]
    fn a_service_owns_a_configuration_and_a_route_of_its_name() {
        let d = service(&ksvc(), None, None);
        assert_eq!(d.configuration["kind"], "Configuration");
        assert_eq!(d.configuration["metadata"]["name"], "hello");
        assert_eq!(d.configuration["metadata"]["labels"][SERVICE_LABEL], "hello");
        assert_eq!(d.configuration["metadata"]["ownerReferences"][0]["uid"], "uid-hello");
        assert_eq!(
            d.configuration["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/knative/helloworld-go:latest"
        );
        assert_eq!(
            d.route["spec"]["traffic"],
            json!([{"configurationName": "hello", "latestRevision": true, "percent": 100}])
        );
        assert_eq!(condition(&d.status, "Ready")["status"], "Unknown");
    }

    #[test]
    fn a_configuration_stamps_a_revision_per_generation() {
        let mut cfg = obj("Configuration", "serving.knative.dev", "hello", ksvc()["spec"].clone());
        cfg["metadata"]["labels"] = json!({SERVICE_LABEL: "hello"});
        let d = configuration(&cfg, &[]);
        assert_eq!(d.revision["metadata"]["name"], "hello-00001");
        assert_eq!(d.revision["metadata"]["labels"][CONFIGURATION_GENERATION_LABEL], "1");
        assert_eq!(d.revision["metadata"]["labels"][SERVICE_LABEL], "hello");
        assert_eq!(d.revision["metadata"]["annotations"]["autoscaling.knative.dev/target"], "10");
        assert_eq!(d.status["latestCreatedRevisionName"], "hello-00001");
        cfg["metadata"]["generation"] = json!(2);
        assert_eq!(revision_name(&cfg), "hello-00002");
        // The latest ready one is the newest revision that is Ready.
        let mut r1 = d.revision.clone();
        r1["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let mut r2 = configuration(&cfg, &[]).revision;
        r2["status"] = json!({"conditions": [{"type": "Ready", "status": "False", "reason": "NotServedYet", "message": "no runtime"}]});
        let d = configuration(&cfg, &[r1, r2]);
        assert_eq!(d.status["latestReadyRevisionName"], "hello-00001");
        assert_eq!(d.status["latestCreatedRevisionName"], "hello-00002");
        let ready = condition(&d.status, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("NotServedYet"))
        );
    }

    #[test]
    fn a_route_has_a_url_on_the_gateway_and_resolves_its_traffic() {
        let rt = obj(
            "Route",
            "serving.knative.dev",
            "hello",
            json!({"traffic": [{"configurationName": "hello", "latestRevision": true, "percent": 90},
                {"revisionName": "hello-00001", "percent": 10, "tag": "old"}]}),
        );
        let mut cfg = obj("Configuration", "serving.knative.dev", "hello", json!({}));
        let mut rev = obj("Revision", "serving.knative.dev", "hello-00001", json!({}));
        let status = route(
            &rt,
            &[cfg.clone()],
            &[rev.clone()],
            DEFAULT_DOMAIN,
            "http://127.0.0.1:8080",
            Some(true),
        );
        assert_eq!(status["url"], "http://hello.default.localhost:8080");
        let c = condition(&status, "AllTrafficAssigned");
        assert_eq!(c["status"], "False");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("Configuration \"hello\" does not have any ready Revision."),
            "{c}"
        );
        cfg["status"] = json!({"latestReadyRevisionName": "hello-00002"});
        rev["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let status = route(&rt, &[cfg], &[rev], "example.org", "http://127.0.0.1:80", None);
        assert_eq!(status["url"], "http://hello.default.example.org");
        assert_eq!(condition(&status, "AllTrafficAssigned")["status"], "True");
        assert_eq!(status["traffic"][0]["revisionName"], "hello-00002");
        assert_eq!(status["traffic"][1]["url"], "http://old-hello.default.example.org");
    }

    #[test]
    fn the_domain_is_the_config_domain_key_with_an_empty_selector() {
        assert_eq!(domain(None), "localhost");
        let cm = json!({"data": {"_example": "", "internal.example.com": "app: secret", "example.org": ""}});
        assert_eq!(domain(Some(&cm)), "example.org");
        assert_eq!(domain(Some(&json!({"data": {"internal.example.com": "app: secret"}}))), "localhost");
    }

    #[test]
    fn a_revision_reports_its_instances_and_crashes() {
        let rev = obj(
            "Revision",
            "serving.knative.dev",
            "hello-00001",
            json!({"containers": [{"image": "app"}]}),
        );
        let starting = revision(
            &rev,
            &RevisionFacts {
                desired: 1,
                ..Default::default()
            },
        );
        assert_eq!(condition(&starting, "Ready")["status"], "Unknown");
        assert_eq!(condition(&starting, "ResourcesAvailable")["reason"], "Deploying");

        let mut rev = rev;
        rev["status"] = revision(
            &rev,
            &RevisionFacts {
                desired: 1,
                ready: 1,
                ..Default::default()
            },
        );
        assert_eq!(condition(&rev["status"], "Ready")["status"], "True");
        assert_eq!(condition(&rev["status"], "Active")["status"], "True");
        assert_eq!(
            (rev["status"]["actualReplicas"].clone(), rev["status"]["desiredReplicas"].clone()),
            (json!(1), json!(1))
        );

        // Scaled to zero: still Ready, no longer Active.
        let idle = revision(&rev, &RevisionFacts::default());
        assert_eq!(condition(&idle, "Ready")["status"], "True");
        assert_eq!(condition(&idle, "Active")["reason"], "NoTraffic");
        assert_eq!(idle["actualReplicas"], 0);

        let crashing = revision(
            &rev,
            &RevisionFacts {
                desired: 1,
                failure: Some(("ExitCode1".into(), "Container exited with code 1: boom".into())),
                ..Default::default()
            },
        );
        assert_eq!(condition(&crashing, "ContainerHealthy")["reason"], "ExitCode1");
        assert_eq!(condition(&crashing, "Ready")["status"], "False");
        assert!(condition(&crashing, "Ready")["message"].as_str().unwrap().contains("boom"));

        let invalid = revision(
            &rev,
            &RevisionFacts {
                not_runnable: Some("spec.containers[0].command: required".into()),
                ..Default::default()
            },
        );
        assert_eq!(condition(&invalid, "Ready")["status"], "False");
    }

    #[test]
    fn on_a_cluster_a_revision_is_a_deployment_and_a_service() {
        let mut rev = obj(
            "Revision",
            "serving.knative.dev",
            "hello-00001",
            json!({"containerConcurrency": 2, "timeoutSeconds": 30,
                "containers": [{"image": "app", "env": [{"name": "TARGET", "value": "x"}], "ports": [{"containerPort": 9000}]}]}),
        );
        rev["metadata"]["labels"] = json!({SERVICE_LABEL: "hello", CONFIGURATION_LABEL: "hello"});
        let (deployment, service) = revision_workloads(&rev, 1);
        assert_eq!(deployment["metadata"]["name"], "hello-00001-deployment");
        assert_eq!(deployment["spec"]["replicas"], 1);
        assert_eq!(deployment["metadata"]["ownerReferences"][0]["uid"], "uid-hello-00001");
        assert_eq!(deployment["spec"]["selector"]["matchLabels"][REVISION_UID_LABEL], "uid-hello-00001");
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert!(pod.get("containerConcurrency").is_none());
        let env = pod["containers"][0]["env"].as_array().unwrap();
        let value = |n: &str| env.iter().find(|e| e["name"] == n).map(|e| e["value"].clone());
        assert_eq!(value("PORT"), Some(json!("9000")));
        assert_eq!(value("K_SERVICE"), Some(json!("hello")));
        assert_eq!(value("TARGET"), Some(json!("x")));
        assert_eq!(service["metadata"]["name"], "hello-00001");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], 9000);

        let mut d = deployment;
        d["status"] = json!({"readyReplicas": 1});
        let facts = facts_from_deployment(&rev, Some(&d), &[]);
        assert_eq!((facts.desired, facts.ready), (1, 1));
        assert_eq!(condition(&revision(&rev, &facts), "Ready")["status"], "True");
    }

    #[test]
    fn on_a_cluster_the_pods_say_why_a_revision_does_not_run() {
        let mut rev = obj(
            "Revision",
            "serving.knative.dev",
            "hello-00001",
            json!({"containers": [{"name": "user-container", "image": "app"}]}),
        );
        rev["metadata"]["labels"] = json!({SERVICE_LABEL: "hello", CONFIGURATION_LABEL: "hello"});
        let (mut d, _) = revision_workloads(&rev, 1);
        d["status"] = json!({"replicas": 1, "readyReplicas": 0});
        let pod = |container_status: Value, conditions: Value| json!({"status": {"containerStatuses": [container_status], "conditions": conditions}});
        let crashing = pod(
            json!({"name": "user-container", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                   "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "message": "cannot open the database"}}}),
            json!([]),
        );
        let no_message = pod(
            json!({"name": "user-container", "lastState": {"terminated": {"exitCode": 0}}}),
            json!([]),
        );
        let bad_image = pod(
            json!({"name": "user-container", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"app\""}}}),
            json!([]),
        );
        let sidecar = pod(json!({"name": "sidecar", "lastState": {"terminated": {"exitCode": 1}}}), json!([]));
        let unschedulable = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."}]}});
        let cases = [
            (
                crashing,
                "ContainerHealthy",
                "ExitCode2",
                "Container failed with: cannot open the database",
            ),
            (
                no_message,
                "ContainerHealthy",
                "ExitCode0",
                "Container failed with: container exited with no error",
            ),
            (bad_image, "ContainerHealthy", "ImagePullBackOff", "Back-off pulling image \"app\""),
            (
                unschedulable,
                "ResourcesAvailable",
                "Unschedulable",
                "0/3 nodes are available: 3 Insufficient memory.",
            ),
        ];
        for (pod, condition_type, reason, message) in cases {
            let status = revision(&rev, &facts_from_deployment(&rev, Some(&d), &[pod]));
            let c = condition(&status, condition_type);
            assert_eq!(
                (c["status"].as_str(), c["reason"].as_str(), c["message"].as_str()),
                (Some("False"), Some(reason), Some(message))
            );
            assert_eq!(condition(&status, "Ready")["status"], "False");
        }
        // Another container's crash is not the Revision's; a ready pod clears what others say.
        let status = revision(&rev, &facts_from_deployment(&rev, Some(&d), &[sidecar]));
        assert_eq!(condition(&status, "ContainerHealthy")["status"], "Unknown");
        d["status"]["readyReplicas"] = json!(1);
        let crashing = pod(
            json!({"name": "user-container", "lastState": {"terminated": {"exitCode": 2}}}),
            json!([]),
        );
        let status = revision(&rev, &facts_from_deployment(&rev, Some(&d), &[crashing]));
        assert_eq!(condition(&status, "Ready")["status"], "True");
    }
}
