//! The adapters' health on a cluster, where they run in `sluice dataplane` and the controllers
//! that write the sources' status run in `sluice controller`: the data plane keeps one
//! ConfigMap ([`HEALTH_CONFIGMAP`], in its own namespace) with an entry per source,
//! `<kind>.<namespace>.<name>` → `{"state": "Running"}`, `{"state": "Starting"}` or
//! `{"state": "Failing", "reason": …, "message": …}`, and the controllers read it. So a fault
//! of an adapter (a refused login, an unreachable broker) makes its source Ready=False with the
//! reason on a cluster too, as it does in `sluice run`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::{Health, SourceKey, SourcePlane};

/// The ConfigMap the data plane reports its adapters' health in.
pub const HEALTH_CONFIGMAP: &str = "sluice-source-health";

/// The field manager of the data plane's writes.
const FIELD_MANAGER: &str = "sluice-dataplane";

/// The entry of a source in the ConfigMap.
pub fn entry_key(key: &SourceKey) -> String {
    format!("{}.{}.{}", key.kind, key.namespace, key.name)
}

/// The source an entry is about: `<kind>.<namespace>.<name>` (kinds and namespaces have no
/// dots; names may).
pub fn source_key(entry: &str) -> Option<SourceKey> {
    let (kind, rest) = entry.split_once('.')?;
    let (namespace, name) = rest.split_once('.')?;
    Some(SourceKey {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    })
}

/// The sources whose entry differs between two versions of the ConfigMap's data.
pub fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<SourceKey> {
    before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|k| source_key(k))
        .collect()
}

/// A health as its entry's text.
pub fn encode(health: &Health) -> String {
    match health {
        Health::Starting => json!({"state": "Starting"}),
        Health::Running => json!({"state": "Running"}),
        Health::Failing { reason, message } => json!({"state": "Failing", "reason": reason, "message": message}),
    }
    .to_string()
}

/// The health an entry says; `None` for text that is no health.
pub fn decode(text: &str) -> Option<Health> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v["state"].as_str()? {
        "Starting" => Some(Health::Starting),
        "Running" => Some(Health::Running),
        "Failing" => Some(Health::failing(
            v["reason"].as_str().unwrap_or("AdapterFailing"),
            v["message"].as_str().unwrap_or_default(),
        )),
        _ => None,
    }
}

/// The health of `key` in the ConfigMap's `data`, if the data plane reported it.
pub fn health_in(data: &BTreeMap<String, String>, key: &SourceKey) -> Option<Health> {
    data.get(&entry_key(key)).and_then(|t| decode(t))
}

/// Keeps the ConfigMap in `namespace` saying the health of every adapter of `plane`, until the
/// plane's changes end. Writes are batched (one per 200 ms at most) and retried after a failure.
pub async fn publish(client: kube::Client, namespace: String, plane: Arc<SourcePlane>) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut changes = plane.changes();
    let mut written: Option<BTreeMap<String, String>> = None;
    loop {
        let data: BTreeMap<String, String> = plane.healths().iter().map(|(k, h)| (entry_key(k), encode(h))).collect();
        if written.as_ref() != Some(&data) {
            // A merge patch would keep the entries of sources gone: replace the whole data.
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": HEALTH_CONFIGMAP, "namespace": namespace}, "data": data});
            match api
                .patch(HEALTH_CONFIGMAP, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
                .await
            {
                Ok(_) => written = Some(data),
                Err(e) => {
                    tracing::warn!(configmap = %format!("{namespace}/{HEALTH_CONFIGMAP}"), error = %e,
                        "cannot report the sources' health; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        match changes.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        while changes.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_through_its_entry() {
        let key = SourceKey {
            kind: "rabbitmqsource".into(),
            namespace: "team".into(),
            name: "orders".into(),
        };
        assert_eq!(entry_key(&key), "rabbitmqsource.team.orders");
        assert_eq!(source_key("rabbitmqsource.team.orders"), Some(key.clone()));
        assert_eq!(source_key("pingsource.team.every.minute").unwrap().name, "every.minute");
        assert_eq!(source_key("nodots"), None);
        let before = BTreeMap::from([
            (entry_key(&key), encode(&Health::Starting)),
            ("pingsource.a.p".to_string(), encode(&Health::Running)),
        ]);
        let after = BTreeMap::from([
            (entry_key(&key), encode(&Health::Running)),
            ("pingsource.a.p".to_string(), encode(&Health::Running)),
        ]);
        assert_eq!(changed(&before, &after), vec![key.clone()]);
        assert_eq!(changed(&after, &BTreeMap::new()).len(), 2, "entries gone are changes");
        for health in [
            Health::Starting,
            Health::Running,
            Health::failing("AuthenticationFailed", "login refused"),
        ] {
            let data = BTreeMap::from([(entry_key(&key), encode(&health))]);
            assert_eq!(health_in(&data, &key), Some(health));
        }
        assert_eq!(decode("{\"state\": \"Sleeping\"}"), None);
        assert_eq!(decode("not json"), None);
        assert_eq!(health_in(&BTreeMap::new(), &key), None);
    }
}
