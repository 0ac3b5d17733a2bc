//! The published OpenAPI documents, built from the CRD schemas (`sluice_crds::crd::crds`):
//!
//! - `GET /openapi/v3`: the index, one entry per group-version (`apis/{group}/{version}`,
//!   `api/v1`) pointing at `/openapi/v3/apis/{group}/{version}?hash=...`;
//! - `GET /openapi/v3/apis/{group}/{version}` and `/openapi/v3/api/v1`: an OpenAPI 3.0 document
//!   whose `components.schemas` hold each kind and its list (named as the API server names CRD
//!   schemas, e.g. `dev.knative.eventing.v1.Trigger`, with `x-kubernetes-group-version-kind`) and
//!   whose `paths` hold the operations the resource API serves;
//! - `GET /openapi/v2`: one Swagger 2.0 document with every kind under `definitions`, converted
//!   as the API server converts CRD schemas for v2 (no `nullable`, `anyOf`, `oneOf`, `allOf`,
//!   `not`; nullable and free-form fields untyped), as JSON or, when `Accept` asks for it as
//!   client-go does, in protobuf ([`crate::openapi_proto`], definitions only).
//!
//! kubectl uses v3 for `explain` and to find out whether the server validates fields (it does
//! not declare it: no PATCH operation is served), and then the v2 protobuf document for its
//! client-side validation of `apply` and `create`.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use serde_json::{json, Map, Value};
use sluice_crds::registry::{kinds, KindInfo};

use crate::discovery::{crd_version_of, groups};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// The name under which a kind's schema is published: the reversed group, the version and the
/// kind (`dev.knative.eventing.v1.Broker`), or, for Kubernetes' built-in kinds, the name the
/// API server gives them (`io.k8s.api.core.v1.ConfigMap`, `io.k8s.api.apps.v1.Deployment`).
pub fn schema_name(info: &KindInfo) -> String {
    if info.group.is_empty() {
        return format!("io.k8s.api.core.{}.{}", info.version, info.kind);
    }
    if !info.is_knative() {
        let package = info.group.split('.').next().unwrap_or(info.group);
        return format!("io.k8s.api.{package}.{}.{}", info.version, info.kind);
    }
    let reversed: Vec<&str> = info.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), info.version, info.kind)
}

fn gvk(info: &KindInfo, kind: &str) -> Value {
    json!([{"group": info.group, "version": info.version, "kind": kind}])
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn string_map(description: &str) -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}, "description": description})
}

fn reference(prefix: &str, name: &str, description: &str) -> Value {
    json!({"allOf": [{"$ref": format!("{prefix}{name}")}], "default": {}, "description": description})
}

/// ObjectMeta, ListMeta and OwnerReference, with the field descriptions of the Kubernetes API
/// reference (shortened).
fn meta_schemas(prefix: &str) -> Vec<(String, Value)> {
    let date = |d: &str| json!({"type": "string", "format": "date-time", "description": d});
    let object_meta = json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "properties": {
            "annotations": string_map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata."),
            "creationTimestamp": date("CreationTimestamp is a timestamp representing the server time when this object was created. Populated by the system. Read-only."),
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64", "description": "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system."},
            "deletionTimestamp": date("DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted."),
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "description": "Must be empty before the object is deleted from the registry."},
            "generateName": string("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
            "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only."},
            "labels": string_map("Map of string keys and values that can be used to organize and categorize (scope and select) objects."),
            "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}, "description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow."},
            "name": string("Name must be unique within a namespace. Cannot be updated."),
            "namespace": string("Namespace defines the space within which each name must be unique."),
            "ownerReferences": {
                "type": "array",
                "items": {"allOf": [{"$ref": format!("{prefix}{META}.OwnerReference")}], "default": {}},
                "description": "List of objects depended by this object.",
                "x-kubernetes-patch-merge-key": "uid",
                "x-kubernetes-patch-strategy": "merge"
            },
            "resourceVersion": string("An opaque value that represents the internal version of this object. Populated by the system. Read-only."),
            "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
            "uid": string("UID is the unique in time and space value for this object. Populated by the system. Read-only.")
        }
    });
    let owner = json!({
        "type": "object",
        "description": "OwnerReference contains enough information to let you identify an owning object.",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": {"type": "string", "default": "", "description": "API version of the referent."},
            "blockOwnerDeletion": {"type": "boolean", "description": "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed."},
            "controller": {"type": "boolean", "description": "If true, this reference points to the managing controller."},
            "kind": {"type": "string", "default": "", "description": "Kind of the referent."},
            "name": {"type": "string", "default": "", "description": "Name of the referent."},
            "uid": {"type": "string", "default": "", "description": "UID of the referent."}
        },
        "x-kubernetes-map-type": "atomic"
    });
    let list_meta = json!({
        "type": "object",
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects.",
        "properties": {
            "continue": string("continue may be set if the user set a limit on the number of items returned."),
            "remainingItemCount": {"type": "integer", "format": "int64", "description": "The number of subsequent items in the list which are not included in this list response."},
            "resourceVersion": string("String that identifies the server's internal version of this object."),
            "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system.")
        }
    });
    vec![
        (format!("{META}.ObjectMeta"), object_meta),
        (format!("{META}.OwnerReference"), owner),
        (format!("{META}.ListMeta"), list_meta),
    ]
}

/// The top-level fields of the built-in kinds besides apiVersion, kind and metadata, each with
/// its type: the objects among them are free-form (`x-kubernetes-preserve-unknown-fields`), since
/// k8s-openapi carries no schema; the server checks them when it decodes the object.
fn builtin_fields(info: &KindInfo) -> &'static [(&'static str, &'static str)] {
    const OBJECT: &str = "object";
    const STRING: &str = "string";
    match (info.group, info.kind) {
        ("", "Event") => &[
            ("action", STRING),
            ("count", "integer"),
            ("eventTime", STRING),
            ("firstTimestamp", STRING),
            ("involvedObject", OBJECT),
            ("lastTimestamp", STRING),
            ("message", STRING),
            ("reason", STRING),
            ("related", OBJECT),
            ("reportingComponent", STRING),
            ("reportingInstance", STRING),
            ("series", OBJECT),
            ("source", OBJECT),
            ("type", STRING),
        ],
        ("events.k8s.io", "Event") => &[
            ("action", STRING),
            ("deprecatedCount", "integer"),
            ("deprecatedFirstTimestamp", STRING),
            ("deprecatedLastTimestamp", STRING),
            ("deprecatedSource", OBJECT),
            ("eventTime", STRING),
            ("note", STRING),
            ("reason", STRING),
            ("regarding", OBJECT),
            ("related", OBJECT),
            ("reportingController", STRING),
            ("reportingInstance", STRING),
            ("series", OBJECT),
            ("type", STRING),
        ],
        ("coordination.k8s.io", "Lease") => &[("spec", OBJECT)],
        _ => &[("spec", OBJECT), ("status", OBJECT)],
    }
}

/// The body of a built-in kind: ConfigMap's and Secret's fields, or [`builtin_fields`].
fn core_schema(info: &KindInfo) -> Value {
    let immutable = json!({"type": "boolean", "description": "If set to true, ensures that data stored in the object cannot be updated."});
    match info.kind {
        "ConfigMap" => json!({
            "description": "ConfigMap holds configuration data for pods to consume.",
            "type": "object",
            "properties": {
                "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}, "description": "BinaryData contains the binary data."},
                "data": string_map("Data contains the configuration data."),
                "immutable": immutable
            }
        }),
        "Secret" => json!({
            "description": "Secret holds secret data of a certain type.",
            "type": "object",
            "properties": {
                "data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}, "description": "Data contains the secret data; values are base64 encoded."},
                "immutable": immutable,
                "stringData": string_map("stringData allows specifying non-binary secret data in string form; it is merged into data on write."),
                "type": string("Used to facilitate programmatic handling of secret data.")
            }
        }),
        _ => {
            let properties: Map<String, Value> = builtin_fields(info)
                .iter()
                .map(|(name, ty)| {
                    let schema = if *ty == "object" {
                        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "description": format!("See the Kubernetes API reference for {}.{name}.", info.kind)})
                    } else {
                        json!({"type": ty, "description": format!("See the Kubernetes API reference for {}.{name}.", info.kind)})
                    };
                    (name.to_string(), schema)
                })
                .collect();
            json!({
                "description": format!("{} ({}), as Kubernetes defines it.", info.kind, info.api_version()),
                "type": "object",
                "properties": properties,
            })
        }
    }
}

/// The schema of a kind (`prefix` is where references point: `#/components/schemas/` or
/// `#/definitions/`): its CRD schema (or the core schema) with apiVersion, kind and metadata
/// added, as the API server publishes it.
fn kind_schema(info: &KindInfo, prefix: &str) -> Value {
    let mut schema = if !info.is_knative() {
        core_schema(info)
    } else {
        crd_version_of(info)
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
            .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}))
    };
    let obj = schema.as_object_mut().expect("a kind's schema is an object");
    obj.remove("title");
    obj.insert("type".into(), json!("object"));
    let props = obj
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties is an object");
    props.insert(
        "apiVersion".into(),
        string("APIVersion defines the versioned schema of this representation of an object."),
    );
    props.insert(
        "kind".into(),
        string("Kind is a string value representing the REST resource this object represents."),
    );
    props.insert(
        "metadata".into(),
        reference(
            prefix,
            &format!("{META}.ObjectMeta"),
            "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        ),
    );
    obj.insert("x-kubernetes-group-version-kind".into(), gvk(info, info.kind));
    schema
}

/// The schema of a kind's list (`BrokerList`).
fn list_schema(info: &KindInfo, prefix: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {}", info.kind, info.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
            "items": {"type": "array", "items": {"$ref": format!("{prefix}{}", schema_name(info))}, "description": format!("List of {}.", info.plural)},
            "kind": string("Kind is a string value representing the REST resource this object represents."),
            "metadata": reference(prefix, &format!("{META}.ListMeta"), "Standard list metadata.")
        },
        "x-kubernetes-group-version-kind": gvk(info, &format!("{}List", info.kind)),
    })
}

fn kinds_at(group: &str, version: &str) -> Vec<&'static KindInfo> {
    kinds().iter().filter(|k| k.group == group && k.version == version).collect()
}

/// The served operations of a kind (`prefix` as in [`kind_schema`]): on the collection GET
/// (list) and POST (create); on one object GET, PUT, PATCH and DELETE; on its `status` (when
/// it has that subresource) GET, PUT and PATCH; each tagged with the kind's
/// `x-kubernetes-group-version-kind` and `x-kubernetes-action` as the API server tags them.
/// Cluster-scoped kinds have no namespace in their paths.
fn paths_of(info: &KindInfo, v3: bool) -> Vec<(String, Value)> {
    let base = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    let prefix = if v3 { "#/components/schemas/" } else { "#/definitions/" };
    let body_ref = |name: &str| json!({"$ref": format!("{prefix}{name}")});
    let one = schema_name(info);
    let list = format!("{one}List");
    let op = |action: &str, verb: &str, schema: &str, codes: &[u16], body: bool| {
        let responses: Map<String, Value> = codes
            .iter()
            .map(|c| {
                let r = if v3 {
                    json!({"description": "OK", "content": {"application/json": {"schema": body_ref(schema)}}})
                } else {
                    json!({"description": "OK", "schema": body_ref(schema)})
                };
                (c.to_string(), r)
            })
            .collect();
        let mut o = json!({
            "operationId": format!("{verb}{}", info.kind),
            "description": format!("{verb} {}", info.kind),
            "tags": [info.api_version()],
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(info, info.kind)[0],
        });
        if body {
            if v3 {
                o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body_ref(&one)}}});
            } else {
                o["parameters"] = json!([{"in": "body", "name": "body", "required": true, "schema": body_ref(&one)}]);
            }
        }
        o
    };
    let param = |name: &str, description: &str| {
        if v3 {
            json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string", "uniqueItems": true}})
        } else {
            json!({"name": name, "in": "path", "required": true, "description": description, "type": "string", "uniqueItems": true})
        }
    };
    let ns = param("namespace", "object name and auth scope, such as for teams and projects");
    let name = param("name", &format!("name of the {}", info.kind));
    let collection = json!({
        "get": op("list", "list", &list, &[200], false),
        "post": op("post", "create", &one, &[200, 201], true),
        "parameters": [ns],
    });
    let item = json!({
        "get": op("get", "read", &one, &[200], false),
        "put": op("put", "replace", &one, &[200, 201], true),
        "patch": op("patch", "patch", &one, &[200, 201], true),
        "delete": op("delete", "delete", &one, &[200], false),
        "parameters": [name.clone(), ns.clone()],
    });
    let status = json!({
        "get": op("get", "readStatus", &one, &[200], false),
        "put": op("put", "replaceStatus", &one, &[200, 201], true),
        "patch": op("patch", "patchStatus", &one, &[200, 201], true),
        "parameters": [name, ns],
    });
    let all = json!({"get": op("list", "listAllNamespaces", &list, &[200], false)});
    let mut paths = if info.namespaced {
        vec![
            (format!("{base}/namespaces/{{namespace}}/{}", info.plural), collection),
            (format!("{base}/namespaces/{{namespace}}/{}/{{name}}", info.plural), item),
            (format!("{base}/namespaces/{{namespace}}/{}/{{name}}/status", info.plural), status),
            (format!("{base}/{}", info.plural), all),
        ]
    } else {
        let unscoped = |mut path: Value| {
            if let Some(params) = path["parameters"].as_array_mut() {
                params.retain(|p| p["name"] != "namespace");
            }
            path
        };
        vec![
            (format!("{base}/{}", info.plural), unscoped(collection)),
            (format!("{base}/{}/{{name}}", info.plural), unscoped(item)),
            (format!("{base}/{}/{{name}}/status", info.plural), unscoped(status)),
        ]
    };
    if !info.status_subresource {
        paths.retain(|(path, _)| !path.ends_with("/status"));
    }
    paths
}

/// The OpenAPI v3 document of one group-version, or `None` when nothing is served there.
pub fn v3_document(group: &str, version: &str) -> Option<Value> {
    let infos = kinds_at(group, version);
    if infos.is_empty() {
        return None;
    }
    let prefix = "#/components/schemas/";
    let mut schemas: BTreeMap<String, Value> = meta_schemas(prefix).into_iter().collect();
    let mut paths = BTreeMap::new();
    for info in &infos {
        schemas.insert(schema_name(info), kind_schema(info, prefix));
        schemas.insert(format!("{}List", schema_name(info)), list_schema(info, prefix));
        paths.extend(paths_of(info, true));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Sluice", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Rewrites a v3 schema for OpenAPI v2 as the API server does for CRDs: drops `nullable`,
/// `anyOf`, `oneOf`, `allOf` (except a lone reference) and `not`; nullable and free-form
/// (`x-kubernetes-preserve-unknown-fields`) schemas lose their properties and items, and an
/// array without items loses its type, so kubectl's v2 validation accepts what v3 allows.
fn to_v2(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else { return };
    if let Some(Value::Array(all)) = obj.get("allOf") {
        if let [single] = all.as_slice() {
            if single.get("$ref").is_some() {
                let r = single["$ref"].clone();
                obj.remove("allOf");
                obj.insert("$ref".into(), r);
            }
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "not"] {
        obj.remove(key);
    }
    if obj.remove("nullable") == Some(Value::Bool(true)) {
        obj.remove("type");
        obj.remove("items");
        obj.remove("properties");
    }
    if obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        obj.remove("items");
        obj.remove("properties");
    }
    if obj.get("type") == Some(&json!("array")) && !obj.contains_key("items") {
        obj.remove("type");
    }
    let nullable: Vec<String> = obj
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().filter(|(_, s)| s["nullable"] == true).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    if let Some(Value::Array(required)) = obj.get_mut("required") {
        required.retain(|r| !r.as_str().is_some_and(|r| nullable.iter().any(|n| n == r)));
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.values_mut().for_each(to_v2);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get_mut(key) {
            to_v2(sub);
        }
    }
}

/// The Swagger 2.0 document with every kind under `definitions`.
pub fn v2_document() -> Value {
    let prefix = "#/definitions/";
    let mut definitions: BTreeMap<String, Value> = meta_schemas(prefix).into_iter().collect();
    let mut paths = BTreeMap::new();
    for info in kinds() {
        definitions.insert(schema_name(info), kind_schema(info, prefix));
        definitions.insert(format!("{}List", schema_name(info)), list_schema(info, prefix));
        paths.extend(paths_of(info, false));
    }
    definitions.values_mut().for_each(to_v2);
    json!({
        "swagger": "2.0",
        "info": {"title": "Sluice", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "definitions": definitions,
    })
}

/// The key of a group-version in the v3 index: `api/v1` or `apis/{group}/{version}`.
fn index_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Every published document, serialized once: v3 per group-version (by index key) and v2.
struct Published {
    v3: BTreeMap<String, (String, String)>,
    v2: String,
    v2_protobuf: Vec<u8>,
}

static PUBLISHED: LazyLock<Published> = LazyLock::new(|| {
    let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
    for (g, versions) in groups() {
        gvs.extend(versions.into_iter().map(|v| (g, v)));
    }
    let v3 = gvs
        .into_iter()
        .filter_map(|(g, v)| {
            let text = v3_document(g, v)?.to_string();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut hasher);
            Some((index_key(g, v), (format!("{:016X}", hasher.finish()), text)))
        })
        .collect();
    let v2 = v2_document();
    Published {
        v3,
        v2: v2.to_string(),
        v2_protobuf: crate::openapi_proto::encode_document(&v2),
    }
});

/// `GET /openapi/v3`: the index of the per-group-version documents.
pub fn v3_index() -> Value {
    let paths: Map<String, Value> = PUBLISHED
        .v3
        .iter()
        .map(|(key, (hash, _))| (key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")})))
        .collect();
    json!({"paths": paths})
}

/// The serialized v3 document at an index key (`apis/eventing.knative.dev/v1`, `api/v1`).
pub fn v3_text(key: &str) -> Option<&'static str> {
    PUBLISHED.v3.get(key).map(|(_, text)| text.as_str())
}

/// The serialized v2 document.
pub fn v2_text() -> &'static str {
    &PUBLISHED.v2
}

/// The v2 document in protobuf.
pub fn v2_protobuf() -> &'static [u8] {
    &PUBLISHED.v2_protobuf
}

/// An encoding of the OpenAPI documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`.
    Json,
    /// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (v2 only).
    Protobuf,
}

/// The first encoding of `Accept` that is served (no header: JSON); `protobuf` says whether
/// the protobuf encoding is available.
pub fn negotiate(accept: Option<&str>, protobuf: bool) -> Option<Encoding> {
    let Some(accept) = accept else { return Some(Encoding::Json) };
    accept.split(',').find_map(|media| {
        let ty = media.split(';').next().unwrap_or("").trim();
        if ["*/*", "application/*", "application/json"]
            .iter()
            .any(|t| ty.eq_ignore_ascii_case(t))
        {
            Some(Encoding::Json)
        } else if protobuf
            && [crate::openapi_proto::MEDIA_TYPE, crate::openapi_proto::CONTENT_TYPE]
                .iter()
                .any(|t| ty.eq_ignore_ascii_case(t))
        {
            Some(Encoding::Protobuf)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use sluice_crds::registry::find_kind;

    use super::*;

    #[test]
    fn names_follow_the_api_server() {
        assert_eq!(schema_name(find_kind("broker").unwrap()), "dev.knative.eventing.v1.Broker");
        assert_eq!(schema_name(find_kind("imc").unwrap()), "dev.knative.messaging.v1.InMemoryChannel");
        assert_eq!(schema_name(find_kind("cm").unwrap()), "io.k8s.api.core.v1.ConfigMap");
        assert_eq!(schema_name(find_kind("deploy").unwrap()), "io.k8s.api.apps.v1.Deployment");
        assert_eq!(
            schema_name(find_kind("events.events.k8s.io").unwrap()),
            "io.k8s.api.events.v1.Event"
        );
        assert_eq!(schema_name(find_kind("lease").unwrap()), "io.k8s.api.coordination.v1.Lease");
    }

    #[test]
    fn v3_documents_hold_kinds_lists_and_paths() {
        let doc = v3_document("eventing.knative.dev", "v1").unwrap();
        let schemas = &doc["components"]["schemas"];
        let trigger = &schemas["dev.knative.eventing.v1.Trigger"];
        assert_eq!(
            trigger["x-kubernetes-group-version-kind"],
            json!([{"group": "eventing.knative.dev", "version": "v1", "kind": "Trigger"}])
        );
        assert_eq!(
            trigger["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(trigger["properties"]["spec"]["properties"]["filters"]["type"], "array");
        assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"].is_object());
        assert_eq!(
            schemas["dev.knative.eventing.v1.BrokerList"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/dev.knative.eventing.v1.Broker"
        );
        assert!(schemas.get("dev.knative.eventing.v1alpha1.KafkaSink").is_none());
        let item = &doc["paths"]["/apis/eventing.knative.dev/v1/namespaces/{namespace}/triggers/{name}"];
        assert_eq!(item["get"]["x-kubernetes-action"], "get");
        assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
        let status = &doc["paths"]["/apis/eventing.knative.dev/v1/namespaces/{namespace}/triggers/{name}/status"];
        assert!(status["put"].is_object() && status["patch"].is_object());
        assert!(doc["paths"]["/apis/eventing.knative.dev/v1/triggers"]["get"].is_object());
        assert!(v3_document("eventing.knative.dev", "v9").is_none());
        let core = v3_document("", "v1").unwrap();
        assert!(core["components"]["schemas"]["io.k8s.api.core.v1.Secret"]["properties"]["stringData"].is_object());
    }

    #[test]
    fn index_points_at_every_group_version() {
        let index = v3_index();
        let url = index["paths"]["apis/eventing.knative.dev/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/eventing.knative.dev/v1?hash="), "{url}");
        assert!(index["paths"]["apis/eventing.knative.dev/v1alpha1"].is_object());
        assert!(index["paths"]["api/v1"].is_object());
        assert!(v3_text("apis/sources.knative.dev/v1").is_some());
        assert!(v3_text("apis/apps/v1").is_some());
        assert!(v3_text("apis/batch/v1").is_none());
    }

    #[test]
    fn v2_drops_what_swagger_cannot_say() {
        let doc: Value = serde_json::from_str(v2_text()).unwrap();
        assert_eq!(doc["swagger"], "2.0");
        let trigger = &doc["definitions"]["dev.knative.eventing.v1.Trigger"];
        assert_eq!(
            trigger["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(!v2_text().contains("nullable"));
        assert!(!v2_text().contains("#/components"));
        let filters = &trigger["properties"]["spec"]["properties"]["filters"];
        assert_eq!(filters["type"], "array", "filters is not nullable");
        let all = &filters["items"]["properties"]["all"];
        assert!(all["items"].get("properties").is_none());
        assert!(doc["definitions"]["io.k8s.api.core.v1.ConfigMap"].is_object());
        assert_eq!(doc["definitions"].as_object().unwrap().len(), 3 + 2 * kinds().len());
    }

    #[test]
    fn v2_conversion_rules() {
        let mut s = json!({
            "type": "object",
            "required": ["a", "b"],
            "properties": {
                "a": {"type": "object", "nullable": true, "properties": {"x": {"type": "string"}}},
                "b": {"type": "array", "x-kubernetes-preserve-unknown-fields": true, "items": {"type": "string"}},
                "c": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true}
            }
        });
        to_v2(&mut s);
        assert_eq!(
            s,
            json!({
                "type": "object",
                "required": ["b"],
                "properties": {
                    "a": {},
                    "b": {"x-kubernetes-preserve-unknown-fields": true},
                    "c": {"x-kubernetes-int-or-string": true}
                }
            })
        );
    }

    #[test]
    fn negotiation() {
        let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert_eq!(negotiate(None, false), Some(Encoding::Json));
        assert_eq!(negotiate(Some("application/json"), true), Some(Encoding::Json));
        assert_eq!(negotiate(Some("*/*"), false), Some(Encoding::Json));
        assert_eq!(negotiate(Some(pb), true), Some(Encoding::Protobuf));
        assert_eq!(negotiate(Some(&format!("{pb}, application/json")), true), Some(Encoding::Protobuf));
        assert_eq!(negotiate(Some(pb), false), None);
        assert_eq!(negotiate(Some("text/html"), true), None);
    }

    #[test]
    fn builtin_kinds_have_free_form_bodies_and_their_paths() {
        let core = v3_document("", "v1").unwrap();
        let ns = &core["components"]["schemas"]["io.k8s.api.core.v1.Namespace"];
        assert_eq!(ns["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"], true);
        assert!(ns["properties"]["metadata"].is_object());
        assert!(core["paths"]["/api/v1/namespaces/{name}"]["get"].is_object());
        assert!(core["paths"]["/api/v1/namespaces"]["post"].is_object());
        assert!(core["paths"].get("/api/v1/namespaces/{namespace}/namespaces").is_none());
        assert!(core["paths"].get("/api/v1/namespaces/{name}/status").is_none());
        let params = core["paths"]["/api/v1/namespaces/{name}"]["parameters"].as_array().unwrap();
        assert_eq!(params.len(), 1);
        let event = &core["components"]["schemas"]["io.k8s.api.core.v1.Event"];
        assert_eq!(event["properties"]["count"]["type"], "integer");
        assert_eq!(event["properties"]["involvedObject"]["type"], "object");

        let apps = v3_document("apps", "v1").unwrap();
        assert!(apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]["put"].is_object());
        let v2: Value = serde_json::from_str(v2_text()).unwrap();
        let deployment = &v2["definitions"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(deployment["properties"]["spec"]["type"], "object", "free-form, but an object");
        assert!(deployment["properties"]["spec"].get("properties").is_none());
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
    }
}
