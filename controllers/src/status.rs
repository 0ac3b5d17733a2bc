//! Writing what a controller decided: the status through `/status` as a JSON merge patch of
//! only what changed, and nothing when nothing did.

use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::Error;

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: changed and added members,
/// `null` for removed ones, recursing into objects (arrays are replaced whole).
pub fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov @ Value::Object(_)) if nv.is_object() => {
                        patch.insert(k.clone(), merge_diff(ov, nv));
                    }
                    _ => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// `part` of `object` as `K` has it: the object with `part` set to `value`, read back through
/// `K`, so that a comparison with the stored object is not fooled by what `K` leaves out.
fn as_typed<K: Serialize + DeserializeOwned>(object: &Value, part: &str, value: &Value) -> Result<Value, Error> {
    let mut next = object.clone();
    next[part] = value.clone();
    let typed: K = serde_json::from_value(next)?;
    Ok(serde_json::to_value(typed)?[part].clone())
}

/// Writes `status` through the `/status` subresource unless the object has it already.
/// Returns whether it wrote.
pub async fn write_status<K>(api: &Api<K>, object: &Value, status: &Value) -> Result<bool, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let current = &object["status"];
    if &as_typed::<K>(object, "status", status)? == current {
        return Ok(false);
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let patch = json!({ "status": merge_diff(current, status) });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(true)
}

/// Writes `spec.{field}` (a server-owned part of the spec, such as a channel's subscribers)
/// unless the object has it already. Returns whether it wrote.
pub async fn write_spec_field<K>(api: &Api<K>, object: &Value, field: &str, value: &Value) -> Result<bool, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let mut spec = object["spec"].clone();
    spec[field] = value.clone();
    if as_typed::<K>(object, "spec", &spec)?[field] == object["spec"][field] {
        return Ok(false);
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": {field: value}})))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_diff_holds_only_changes_and_nulls_removed_members() {
        let old = json!({"a": 1, "b": {"x": 1, "y": 2}, "c": [1, 2], "gone": true});
        let new = json!({"a": 1, "b": {"x": 1, "y": 3}, "c": [1], "new": "n"});
        assert_eq!(merge_diff(&old, &new), json!({"b": {"y": 3}, "c": [1], "new": "n", "gone": null}));
        assert_eq!(merge_diff(&Value::Null, &json!({"a": 1})), json!({"a": 1}));
    }
}
