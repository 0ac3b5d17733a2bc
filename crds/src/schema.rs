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

/// An integer or a string (`x-kubernetes-int-or-string`).
pub(crate) fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true
    })
}

/// A map of string keys to integers or strings (resource quantities).
pub(crate) fn quantity_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "x-kubernetes-int-or-string": true
        }
    })
}
