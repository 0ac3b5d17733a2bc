//! What a Revision runs, read from its spec (REV-02, RT-01): the first container's `command`,
//! `args`, `env` (with `valueFrom` and `envFrom` from ConfigMaps and Secrets), `workingDir`
//! and `readinessProbe`, with `PORT`, `K_SERVICE`, `K_CONFIGURATION` and `K_REVISION` added per
//! instance. Pure: the ConfigMaps and Secrets come from a lookup.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

/// Names a Revision: namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevisionKey {
    /// Namespace of the Revision.
    pub namespace: String,
    /// Name of the Revision.
    pub name: String,
}

impl std::fmt::Display for RevisionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How an instance is known to be ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// `httpGet`: a GET of `path` on the instance's port answers 2xx or 3xx.
    Http {
        /// Path of the request.
        path: String,
        /// `httpHeaders` of the probe.
        headers: Vec<(String, String)>,
    },
    /// `tcpSocket`, or no probe: the instance's port accepts a connection.
    Tcp,
    /// Ready once started: for processes that serve nothing (a ContainerSource's, which sends).
    Started,
}

/// Everything needed to start instances of one Revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The Revision.
    pub key: RevisionKey,
    /// `K_SERVICE` (empty when the Revision has no Service).
    pub service: String,
    /// `K_CONFIGURATION`.
    pub configuration: String,
    /// The program and its arguments: `command` then `args`, before `$(VAR)` expansion.
    pub argv: Vec<String>,
    /// The container's environment, in order (`envFrom` first, then `env`), without `PORT`
    /// and `K_*`, which are set per instance.
    pub env: Vec<(String, String)>,
    /// `workingDir`.
    pub working_dir: Option<String>,
    /// The container image: recorded, not pulled.
    pub image: String,
    /// The readiness probe.
    pub readiness: Readiness,
    /// How long a stopped instance has between SIGTERM and SIGKILL (`timeoutSeconds`, as
    /// Knative sets the termination grace period).
    pub grace_period: Duration,
}

/// Why a Revision cannot be run; `field` is the path of what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WorkloadError {
    /// Field path in the Revision, such as `spec.containers[0].env[1].valueFrom`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> WorkloadError {
    WorkloadError {
        field: field.into(),
        message: message.into(),
    }
}

/// Finds a ConfigMap or Secret: `(kind, namespace, name)` to the object, when it exists.
pub trait Lookup {
    /// The object of `kind` (`ConfigMap` or `Secret`) named `name` in `namespace`.
    fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<Value>;
}

impl<F: Fn(&str, &str, &str) -> Option<Value>> Lookup for F {
    fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self(kind, namespace, name)
    }
}

/// The default `timeoutSeconds` of a Revision (REV-02).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 300;

/// The string entries of a ConfigMap's `data`, or a Secret's `data` decoded (and
/// `stringData`), for `envFrom` and `valueFrom`.
fn entries(kind: &str, object: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(data) = object["data"].as_object() {
        for (k, v) in data {
            let text = v.as_str().unwrap_or_default();
            let value = if kind == "Secret" {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default()
            } else {
                text.to_string()
            };
            out.push((k.clone(), value));
        }
    }
    if let Some(data) = object["stringData"].as_object() {
        for (k, v) in data {
            out.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
        }
    }
    out
}

/// Reads what `revision` runs, looking its ConfigMaps and Secrets up in `lookup`.
pub fn from_revision(revision: &Value, lookup: &dyn Lookup) -> Result<Workload, WorkloadError> {
    let meta = &revision["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let namespace = text(&meta["namespace"]);
    let key = RevisionKey {
        namespace: namespace.clone(),
        name: text(&meta["name"]),
    };
    let labels = &meta["labels"];
    let container = &revision["spec"]["containers"][0];
    if !container.is_object() {
        return Err(error("spec.containers", "a Revision needs a container"));
    }
    let at = "spec.containers[0]";
    let image = text(&container["image"]);
    let strings = |field: &str| -> Result<Vec<String>, WorkloadError> {
        match &container[field] {
            Value::Null => Ok(vec![]),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| error(format!("{at}.{field}[{i}]"), "must be a string"))
                })
                .collect(),
            _ => Err(error(format!("{at}.{field}"), "must be a list of strings")),
        }
    };
    let mut argv = strings("command")?;
    if argv.is_empty() {
        return Err(error(
            format!("{at}.command"),
            format!("required: Sluice runs a container's command on this machine and does not pull images ({image:?})"),
        ));
    }
    argv.extend(strings("args")?);

    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: String, value: String| {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    };
    for (i, source) in container["envFrom"].as_array().into_iter().flatten().enumerate() {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        let (kind, reference, field) = if source["configMapRef"].is_object() {
            ("ConfigMap", &source["configMapRef"], "configMapRef")
        } else if source["secretRef"].is_object() {
            ("Secret", &source["secretRef"], "secretRef")
        } else {
            return Err(error(format!("{at}.envFrom[{i}]"), "needs configMapRef or secretRef"));
        };
        let name = text(&reference["name"]);
        match lookup.find(kind, &namespace, &name) {
            Some(object) => {
                for (k, v) in entries(kind, &object) {
                    set(format!("{prefix}{k}"), v);
                }
            }
            None if reference["optional"] == true => {}
            None => return Err(error(format!("{at}.envFrom[{i}].{field}"), format!("{kind} {name:?} not found"))),
        }
    }
    for (i, var) in container["env"].as_array().into_iter().flatten().enumerate() {
        let name = text(&var["name"]);
        if name.is_empty() {
            return Err(error(format!("{at}.env[{i}].name"), "required"));
        }
        let from = &var["valueFrom"];
        if !from.is_object() {
            set(name, text(&var["value"]));
            continue;
        }
        let (kind, reference, field) = if from["configMapKeyRef"].is_object() {
            ("ConfigMap", &from["configMapKeyRef"], "configMapKeyRef")
        } else if from["secretKeyRef"].is_object() {
            ("Secret", &from["secretKeyRef"], "secretKeyRef")
        } else {
            return Err(error(
                format!("{at}.env[{i}].valueFrom"),
                "only configMapKeyRef and secretKeyRef are supported",
            ));
        };
        let (object_name, wanted) = (text(&reference["name"]), text(&reference["key"]));
        let optional = reference["optional"] == true;
        let path = format!("{at}.env[{i}].valueFrom.{field}");
        match lookup.find(kind, &namespace, &object_name) {
            Some(object) => match entries(kind, &object).into_iter().find(|(k, _)| *k == wanted) {
                Some((_, value)) => set(name, value),
                None if optional => {}
                None => return Err(error(path, format!("{kind} {object_name:?} has no key {wanted:?}"))),
            },
            None if optional => {}
            None => return Err(error(path, format!("{kind} {object_name:?} not found"))),
        }
    }
    env.retain(|(n, _)| !matches!(n.as_str(), "PORT" | "K_SERVICE" | "K_CONFIGURATION" | "K_REVISION"));

    let probe = &container["readinessProbe"];
    let readiness = if probe["httpGet"].is_object() {
        let get = &probe["httpGet"];
        Readiness::Http {
            path: get["path"].as_str().filter(|p| !p.is_empty()).unwrap_or("/").to_string(),
            headers: get["httpHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| (text(&h["name"]), text(&h["value"])))
                .collect(),
        }
    } else if probe.is_object() && !probe["tcpSocket"].is_object() && !probe.as_object().is_some_and(|p| p.is_empty()) {
        let kinds: Vec<&String> = probe.as_object().map(|p| p.keys().collect()).unwrap_or_default();
        if probe["exec"].is_object() || probe["grpc"].is_object() {
            return Err(error(
                format!("{at}.readinessProbe"),
                format!("only httpGet and tcpSocket probes are supported (RT-03), got {kinds:?}"),
            ));
        }
        Readiness::Tcp
    } else {
        Readiness::Tcp
    };
    let timeout = revision["spec"]["timeoutSeconds"].as_u64().unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    Ok(Workload {
        key,
        service: text(&labels["serving.knative.dev/service"]),
        configuration: text(&labels["serving.knative.dev/configuration"]),
        argv,
        env,
        working_dir: container["workingDir"].as_str().filter(|d| !d.is_empty()).map(str::to_string),
        image,
        readiness,
        grace_period: Duration::from_secs(timeout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn revision(container: Value) -> Value {
        json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": "hello-00001", "namespace": "default", "labels": {
                "serving.knative.dev/service": "hello", "serving.knative.dev/configuration": "hello"}},
            "spec": {"containers": [container], "timeoutSeconds": 10},
        })
    }

    fn objects(kind: &str, namespace: &str, name: &str) -> Option<Value> {
        match (kind, namespace, name) {
            ("ConfigMap", "default", "settings") => Some(json!({"data": {"MODE": "fast", "LEVEL": "3"}})),
            // "s3cret" and "t0ken"
            ("Secret", "default", "creds") => Some(json!({"data": {"PASSWORD": "czNjcmV0", "TOKEN": "dDBrZW4="}})),
            _ => None,
        }
    }

    #[test]
    fn reads_command_env_and_probe() {
        let w = from_revision(
            &revision(json!({
                "image": "gcr.io/knative-samples/helloworld-python",
                "command": ["gunicorn"], "args": ["--bind", ":$(PORT)", "app:app"],
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}, {"secretRef": {"name": "absent", "optional": true}}],
                "env": [
                    {"name": "TARGET", "value": "Sluice"},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
                    {"name": "CFG_MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}},
                    {"name": "PORT", "value": "1"},
                ],
                "workingDir": "/srv",
                "readinessProbe": {"httpGet": {"path": "/healthz", "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
            })),
            &objects,
        )
        .unwrap();
        assert_eq!(w.argv, ["gunicorn", "--bind", ":$(PORT)", "app:app"]);
        assert_eq!(
            w.env,
            [
                ("CFG_LEVEL".to_string(), "3".to_string()),
                ("TARGET".into(), "Sluice".into()),
                ("PASSWORD".into(), "s3cret".into()),
                ("CFG_MODE".into(), "3".into()),
            ]
        );
        assert_eq!((w.service.as_str(), w.configuration.as_str()), ("hello", "hello"));
        assert_eq!(w.working_dir.as_deref(), Some("/srv"));
        assert_eq!(w.grace_period, Duration::from_secs(10));
        assert_eq!(
            w.readiness,
            Readiness::Http {
                path: "/healthz".into(),
                headers: vec![("X-Probe".into(), "1".into())]
            }
        );
    }

    #[test]
    fn names_the_field_that_stops_it() {
        let cases = [
            (json!({"image": "x"}), "spec.containers[0].command"),
            (json!({"command": ["a", 1]}), "spec.containers[0].command[1]"),
            (
                json!({"command": ["a"], "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}),
                "spec.containers[0].env[0].valueFrom.configMapKeyRef",
            ),
            (
                json!({"command": ["a"], "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}}]}),
                "spec.containers[0].env[0].valueFrom.secretKeyRef",
            ),
            (
                json!({"command": ["a"], "envFrom": [{"secretRef": {"name": "gone"}}]}),
                "spec.containers[0].envFrom[0].secretRef",
            ),
            (
                json!({"command": ["a"], "readinessProbe": {"exec": {"command": ["true"]}}}),
                "spec.containers[0].readinessProbe",
            ),
        ];
        for (container, field) in cases {
            let e = from_revision(&revision(container.clone()), &objects).unwrap_err();
            assert_eq!(e.field, field, "{container}: {e}");
        }
        let optional = json!({"command": ["a"], "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}]});
        assert!(from_revision(&revision(optional), &objects).unwrap().env.is_empty());
    }
}
