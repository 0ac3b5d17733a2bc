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
//!   server refuses it for custom resources; for the core kinds it is taken as a merge patch
//!   (exact for ConfigMap and Secret, whose fields are maps and scalars).

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
            json_patch::merge(&mut object, &patch);
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
}
