//! PATCH request bodies, by content type, as the Kubernetes API server takes them:
//!
//! - `application/merge-patch+json`: RFC 7386 JSON merge patch (the `json-patch` crate);
//! - `application/json-patch+json`: RFC 6902 JSON patch (the same crate);
//! - `application/apply-patch+yaml`: server-side apply. Sluice merges the applied
//!   configuration into the object as a merge patch does (maps field by field, lists replaced
//!   whole) and creates the object when it does not exist. It does not track `managedFields`:
//!   a field left out of a later apply stays, and no conflict between field managers is
//!   reported.
//! - `application/strategic-merge-patch+json` is refused (415) for Knative kinds, as the API
//!   server refuses it for custom resources; for the built-in kinds it is a strategic merge
//!   patch ([`strategic_merge`]): lists of objects with a merge key in Kubernetes' types
//!   (containers, volumes, env and ports by name or port, ...) are merged element by element,
//!   and the directives kubectl sends (`$patch`, `$setElementOrder/...`, `$retainKeys`,
//!   `$deleteFromPrimitiveList/...`) are followed.

use serde_json::Value;

/// The patch formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchFormat {
    /// RFC 7386.
    Merge,
    /// RFC 6902.
    Json,
    /// Server-side apply.
    Apply,
    /// Kubernetes strategic merge patch.
    StrategicMerge,
}

impl PatchFormat {
    /// The format a `Content-Type` names (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+yml" => Some(Self::Apply),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of its format.
    #[error("invalid {format} patch: {reason}")]
    Malformed {
        /// The format's name.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A JSON patch operation failed (a `test` that did not hold, a missing path).
    #[error("the JSON patch cannot be applied: {0}")]
    Failed(String),
    /// Only server-side apply creates; other formats need an existing object.
    #[error("not found")]
    NotFound,
}

/// The object after applying `body` in `format` to `current` (`None` when it does not exist).
pub fn apply(format: PatchFormat, current: Option<&Value>, body: &[u8]) -> Result<Value, PatchError> {
    let json = |format: &'static str| {
        serde_json::from_slice::<Value>(body).map_err(|e| PatchError::Malformed {
            format,
            reason: e.to_string(),
        })
    };
    match format {
        PatchFormat::Merge | PatchFormat::StrategicMerge => {
            let patch = json("merge")?;
            if !patch.is_object() {
                return Err(PatchError::Malformed {
                    format: "merge",
                    reason: "a merge patch must be a JSON object".into(),
                });
            }
            let mut object = current.cloned().ok_or(PatchError::NotFound)?;
            if format == PatchFormat::StrategicMerge {
                strategic_merge(&mut object, &patch);
            } else {
                json_patch::merge(&mut object, &patch);
            }
            Ok(object)
        }
        PatchFormat::Json => {
            let patch: json_patch::Patch = serde_json::from_value(json("JSON")?).map_err(|e| PatchError::Malformed {
                format: "JSON",
                reason: e.to_string(),
            })?;
            let mut object = current.cloned().ok_or(PatchError::NotFound)?;
            json_patch::patch(&mut object, &patch).map_err(|e| PatchError::Failed(e.to_string()))?;
            Ok(object)
        }
        PatchFormat::Apply => {
            let applied: Value = serde_yaml::from_slice(body).map_err(|e| PatchError::Malformed {
                format: "apply",
                reason: e.to_string(),
            })?;
            if !applied.is_object() {
                return Err(PatchError::Malformed {
                    format: "apply",
                    reason: "the applied configuration must be an object".into(),
                });
            }
            match current {
                None => Ok(applied),
                Some(current) => {
                    let mut object = current.clone();
                    json_patch::merge(&mut object, &applied);
                    Ok(object)
                }
            }
        }
    }
}

/// The merge key of a list field of Kubernetes' built-in types (`patchMergeKey`), chosen by the
/// field's name and, for `ports`, by what its elements hold (a container's `containerPort`, a
/// Service's `port`). Lists without one are replaced whole.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates" => {
            if field == "readinessGates" {
                "conditionType"
            } else {
                "name"
            }
        }
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ownerReferences" => "uid",
        "conditions" => "type",
        _ => return None,
    })
}

/// Applies a Kubernetes strategic merge patch to `object`, as the API server does for its
/// built-in kinds: maps merge field by field (`null` removes), lists with a merge key
/// ([`merge_key`]) merge element by element (`$patch: delete` removes one), `finalizers` are
/// a set, other lists are replaced; `$patch: replace`, `$retainKeys`, `$setElementOrder/{f}` and
/// `$deleteFromPrimitiveList/{f}` are followed.
pub fn strategic_merge(object: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *object = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch.clone();
        replaced.remove("$patch");
        *object = Value::Object(replaced);
        return;
    }
    if !object.is_object() {
        *object = Value::Object(Default::default());
    }
    let target = object.as_object_mut().expect("made an object above");
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        target.retain(|k, _| keep.iter().any(|r| r == k) || patch.contains_key(k));
    }
    let mut orders = Vec::new();
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            orders.push((field, value));
        } else if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(gone)) = (target.get_mut(field), value.as_array()) {
                items.retain(|i| !gone.contains(i));
            }
        } else if key.starts_with('$') {
            continue;
        } else if value.is_null() {
            target.remove(key);
        } else if let Value::Array(patch_items) = value {
            let current = target.entry(key.clone()).or_insert(Value::Null);
            merge_list(key, current, patch_items);
        } else if value.is_object() {
            strategic_merge(target.entry(key.clone()).or_insert(Value::Null), value);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
    for (field, order) in orders {
        if let (Some(Value::Array(items)), Some(order)) = (target.get_mut(field), order.as_array()) {
            let key = merge_key(field, items);
            let position = |item: &Value| {
                order
                    .iter()
                    .position(|o| match key {
                        Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
                        None => o == item,
                    })
                    .unwrap_or(usize::MAX)
            };
            items.sort_by_key(|i| position(i));
        }
    }
}

/// Merges the list `patch` into `current` (the list field `field`).
fn merge_list(field: &str, current: &mut Value, patch: &[Value]) {
    if field == "finalizers" {
        let items = current.as_array().cloned().unwrap_or_default();
        let mut merged = items;
        merged.extend(patch.iter().filter(|p| p.is_string()).cloned());
        let mut seen = Vec::new();
        merged.retain(|v| {
            if seen.contains(v) {
                false
            } else {
                seen.push(v.clone());
                true
            }
        });
        *current = Value::Array(merged);
        return;
    }
    let Some(key) = merge_key(field, patch).filter(|_| patch.iter().all(Value::is_object)) else {
        *current = Value::Array(patch.iter().filter(|p| p.get("$patch").is_none()).cloned().collect());
        return;
    };
    if !current.is_array() {
        *current = Value::Array(Vec::new());
    }
    let items = current.as_array_mut().expect("made an array above");
    for element in patch {
        let id = element.get(key);
        let found = items.iter().position(|i| id.is_some() && i.get(key) == id);
        match (element.get("$patch").and_then(Value::as_str), found) {
            (Some("delete"), Some(i)) => {
                items.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => strategic_merge(&mut items[i], element),
            (_, None) => {
                let mut added = Value::Null;
                strategic_merge(&mut added, element);
                items.push(added);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object() -> Value {
        json!({"metadata": {"name": "t", "labels": {"a": "1", "b": "2"}}, "spec": {"broker": "default", "filters": [{"exact": {"type": "x"}}]}})
    }

    #[test]
    fn merge_patch_merges_maps_removes_nulls_and_replaces_lists() {
        let patch = br#"{"metadata": {"labels": {"b": null, "c": "3"}}, "spec": {"filters": [{"prefix": {"type": "y"}}]}}"#;
        let out = apply(PatchFormat::Merge, Some(&object()), patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        assert_eq!(out["spec"]["filters"], json!([{"prefix": {"type": "y"}}]));
        assert_eq!(out["spec"]["broker"], "default");
        assert!(matches!(apply(PatchFormat::Merge, None, patch), Err(PatchError::NotFound)));
        assert!(matches!(
            apply(PatchFormat::Merge, Some(&object()), b"[1]"),
            Err(PatchError::Malformed { .. })
        ));
    }

    #[test]
    fn json_patch_applies_operations_and_tests() {
        let patch = br#"[{"op": "test", "path": "/spec/broker", "value": "default"}, {"op": "add", "path": "/spec/filters/-", "value": {"suffix": {"source": "z"}}}, {"op": "remove", "path": "/metadata/labels/a"}]"#;
        let out = apply(PatchFormat::Json, Some(&object()), patch).unwrap();
        assert_eq!(out["spec"]["filters"].as_array().unwrap().len(), 2);
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        let failing = br#"[{"op": "test", "path": "/spec/broker", "value": "other"}]"#;
        assert!(matches!(
            apply(PatchFormat::Json, Some(&object()), failing),
            Err(PatchError::Failed(_))
        ));
        assert!(matches!(
            apply(PatchFormat::Json, Some(&object()), br#"{"op": "add"}"#),
            Err(PatchError::Malformed { .. })
        ));
    }

    #[test]
    fn server_side_apply_creates_or_merges_yaml() {
        let applied = b"metadata:\n  name: t\n  labels:\n    c: \"3\"\nspec:\n  broker: other\n";
        let created = apply(PatchFormat::Apply, None, applied).unwrap();
        assert_eq!(created["spec"]["broker"], "other");
        let merged = apply(PatchFormat::Apply, Some(&object()), applied).unwrap();
        assert_eq!(merged["metadata"]["labels"], json!({"a": "1", "b": "2", "c": "3"}));
        assert_eq!(
            merged["spec"]["filters"],
            object()["spec"]["filters"],
            "fields left out stay (no managedFields)"
        );
        assert_eq!(
            PatchFormat::from_content_type("application/apply-patch+yaml; charset=utf-8"),
            Some(PatchFormat::Apply)
        );
        assert_eq!(PatchFormat::from_content_type("application/json"), None);
    }

    #[test]
    fn strategic_merge_merges_keyed_lists_and_follows_directives() {
        let mut deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 80}], "env": [{"name": "E", "value": "1"}]},
            {"name": "b", "image": "y"}
        ]}}}, "metadata": {"finalizers": ["f1"]}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}],
            "containers": [
                {"name": "a", "image": "x2", "$setElementOrder/env": [{"name": "E"}, {"name": "F"}], "env": [{"name": "F", "value": "2"}]},
                {"name": "c", "image": "z"}
            ]}}}, "metadata": {"finalizers": ["f2"]}});
        strategic_merge(&mut deployment, &patch);
        let containers = &deployment["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0], json!({"name": "b", "image": "y"}));
        assert_eq!(containers[1]["image"], "x2");
        assert_eq!(containers[1]["ports"], json!([{"containerPort": 80}]), "kept");
        assert_eq!(
            containers[1]["env"],
            json!([{"name": "E", "value": "1"}, {"name": "F", "value": "2"}])
        );
        assert_eq!(containers[2], json!({"name": "c", "image": "z"}));
        assert_eq!(deployment["metadata"]["finalizers"], json!(["f1", "f2"]));

        let remove =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}}, "metadata": {"finalizers": null}});
        strategic_merge(&mut deployment, &remove);
        let names: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert!(deployment["metadata"].get("finalizers").is_none());

        let mut service =
            json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}], "selector": {"app": "a"}}});
        strategic_merge(
            &mut service,
            &json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}], "selector": {"$patch": "replace", "app": "b"}}}),
        );
        assert_eq!(
            service["spec"]["ports"][1],
            json!({"port": 443, "name": "https", "targetPort": 8443})
        );
        assert_eq!(service["spec"]["selector"], json!({"app": "b"}));
    }
}
