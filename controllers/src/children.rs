//! Children a controller owns (a flow's channels and subscriptions, a Service's Configuration
//! and Route, a Configuration's Revisions): created when missing, replaced when what the
//! controller owns of them differs.

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};
use sluice_crds::registry::find_by_type;

use crate::Error;

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v["metadata"][field].as_str().unwrap_or("")
}

/// The API of a child's kind in its namespace, its plural from the registry of kinds.
pub(crate) fn api_for(client: &Client, child: &Value) -> Result<Api<DynamicObject>, Error> {
    let (api_version, kind) = (child["apiVersion"].as_str().unwrap_or(""), child["kind"].as_str().unwrap_or(""));
    let info = find_by_type(api_version, kind).ok_or_else(|| Error::UnknownKind(format!("{kind} ({api_version})")))?;
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(info.group, info.version, info.kind), info.plural);
    Ok(Api::namespaced_with(client.clone(), text(child, "namespace"), &resource))
}

/// The parts of a child the controller owns: its spec (less the server-filled channel
/// `subscribers`) and its owner references.
fn owned_parts(v: &Value) -> Value {
    let mut spec = v.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = spec.as_object_mut() {
        m.remove("subscribers");
    }
    json!({"spec": spec, "ownerReferences": v["metadata"]["ownerReferences"]})
}

/// Creates a child, or replaces it when what the controller owns differs.
pub(crate) async fn put(client: &Client, child: &Value) -> Result<(), Error> {
    let api = api_for(client, child)?;
    let name = text(child, "name").to_string();
    let desired: DynamicObject = serde_json::from_value(child.clone())?;
    match api.get_opt(&name).await? {
        None => {
            api.create(&PostParams::default(), &desired).await?;
        }
        Some(existing) => {
            let existing_json = serde_json::to_value(&existing)?;
            if owned_parts(&existing_json) != owned_parts(child) {
                let mut replacement = desired;
                replacement.metadata.resource_version = existing.resource_version();
                api.replace(&name, &PostParams::default(), &replacement).await?;
            }
        }
    }
    Ok(())
}
