//! What Sluice decides from Knative objects, as pure functions shared by the control plane and
//! the data plane: one function per kind takes the object and a [`Lookup`] of the objects it
//! refers to, and returns its status (Knative's conditions, addresses, resolved URIs) together
//! with what the data plane should run for it. The kube-rs controllers (`sluice-controllers`)
//! write the statuses; the data plane builds its [`Snapshot`](sluice_brokers::Snapshot) from
//! the same decisions ([`snapshot::snapshot`]), so the two never disagree about what an object
//! means.
//!
//! Pure: objects in, status and configuration out; tested with tables, without servers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod broker;
pub mod channel;
pub mod objects;
pub mod serving;
pub mod snapshot;
pub mod source;
pub mod subscription;
pub mod trigger;
pub mod unserved;

use serde_json::Value;
use sluice_crds::duck::ConditionCheck;

pub use objects::{Lookup, Objects};

/// InMemoryChannel annotation that makes ingress answer once events are queued (CH-04).
pub const ASYNC_HANDLER_ANNOTATION: &str = "messaging.knative.dev/async-handler";
/// Annotation selecting the broker implementation (BRK-03).
pub const BROKER_CLASS: &str = "eventing.knative.dev/broker.class";
/// The broker class served by the memory backend.
pub const MT_CHANNEL_BASED: &str = "MTChannelBasedBroker";
/// Annotation limiting a trigger's or subscription's deliveries in flight (validated at admission).
pub use sluice_crds::meta::MAX_IN_FLIGHT_ANNOTATION;

/// What the decisions need to know about the environment.
#[derive(Clone, Debug)]
pub struct Environment {
    /// Base URL of the gateway, e.g. `http://127.0.0.1:8080`.
    pub gateway_url: String,
    /// How the outside (GitHub) reaches the gateway, when not at `gateway_url`: the base of
    /// webhook receivers' addresses.
    pub public_url: Option<String>,
}

impl Environment {
    /// The gateway URL without a trailing slash.
    pub(crate) fn gateway(&self) -> &str {
        self.gateway_url.trim_end_matches('/')
    }
}

/// Builds a Knative status block: `extra`, the conditions plus a summary `Ready` (keeping the
/// `lastTransitionTime` of conditions whose status did not change) and `observedGeneration`.
pub(crate) fn status_with(obj: &Value, conds: Vec<ConditionCheck>, mut extra: serde_json::Map<String, Value>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    extra.insert(
        "conditions".into(),
        sluice_crds::duck::conditions(&obj["status"]["conditions"], conds, &now),
    );
    extra.insert("observedGeneration".into(), obj["metadata"]["generation"].clone());
    Value::Object(extra)
}

/// A `metadata` text field of an object (`""` when absent).
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

/// Decodes an optional part of an object; `None` when absent or not of the type (admission has
/// validated the stored object, so the latter does not happen).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    if v.is_null() {
        return None;
    }
    serde_json::from_value(v.clone()).ok()
}

/// `metadata.generation` of an object (0 when absent).
pub(crate) fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// The deliveries in flight a trigger or subscription allows (its annotation, else the default).
pub(crate) fn max_in_flight(obj: &Value) -> usize {
    obj["metadata"]["annotations"][MAX_IN_FLIGHT_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(sluice_brokers::DEFAULT_MAX_IN_FLIGHT)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Objects for the tables of the decision tests.
    use serde_json::{json, Value};

    use crate::{Environment, Objects};

    /// An object of `kind` in namespace `default`, generation 1, uid `uid-{name}`.
    pub fn obj(kind: &str, group: &str, name: &str, spec: Value) -> Value {
        json!({"apiVersion": format!("{group}/v1"), "kind": kind,
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "generation": 1}, "spec": spec})
    }

    /// The objects, as a lookup.
    pub fn world(objs: Vec<Value>) -> Objects {
        let mut o = Objects::default();
        for v in objs {
            o.insert(v);
        }
        o
    }

    /// The gateway of the tests.
    pub fn env() -> Environment {
        Environment {
            gateway_url: "http://127.0.0.1:8080".into(),
            public_url: None,
        }
    }

    /// The condition `ty` of a status.
    pub fn condition<'a>(status: &'a Value, ty: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == ty)
            .unwrap_or_else(|| panic!("condition {ty} in {status:#}"))
    }
}
