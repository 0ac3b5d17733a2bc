//! Hand-written OpenAPI schemas for fields whose Rust type says too little for a structural
//! CRD schema (free-form objects, recursive filters).

use schemars::{json_schema, Schema, SchemaGenerator};

/// Any JSON object, kept as is (`x-kubernetes-preserve-unknown-fields`).
pub(crate) fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A list of free-form objects (used where the element type is recursive).
pub(crate) fn preserve_unknown_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}

/// The metadata of a pod or Revision template: the subset of ObjectMeta Knative accepts there
/// (the field mask in [`crate::pod`] refuses the rest).
pub(crate) fn template_metadata(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "nullable": true,
                "description": "Name (for Revision templates: the Revision's name, which must start with `<parent>-`)."
            },
            "generateName": {"type": "string", "nullable": true, "description": "Prefix of a generated name."},
            "namespace": {
                "type": "string",
                "nullable": true,
                "description": "Namespace (ignored; templates live in their parent's namespace)."
            },
            "labels": {"type": "object", "nullable": true, "additionalProperties": {"type": "string"}, "description": "Labels."},
            "annotations": {
                "type": "object",
                "nullable": true,
                "additionalProperties": {"type": "string"},
                "description": "Annotations (for Revision templates: autoscaling and other per-revision settings)."
            }
        }
    })
}

/// A pod template (ContainerSource `spec.template`): its metadata, and a free-form PodSpec
/// (the field mask and validation in [`crate::pod`] check it).
pub(crate) fn pod_template(g: &mut SchemaGenerator) -> Schema {
    let mut metadata = template_metadata(g);
    metadata.insert("description".into(), "Labels and annotations of the pods.".into());
    json_schema!({
        "type": "object",
        "properties": {
            "metadata": metadata,
            "spec": {
                "type": "object",
                "description": "The pod specification.",
                "x-kubernetes-preserve-unknown-fields": true
            }
        }
    })
}

/// An optional reference to an object in the same namespace by name.
pub(crate) fn local_object_reference(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "nullable": true,
        "properties": {
            "name": {"type": "string", "description": "Name of the referent."}
        }
    })
}
