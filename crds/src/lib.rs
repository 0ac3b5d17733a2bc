//! The Knative API as Rust types.
//!
//! `sluice-crds` mirrors the resources of Knative Eventing (`eventing.knative.dev`,
//! `messaging.knative.dev`, `flows.knative.dev`, `sources.knative.dev`), the Kafka, GitHub,
//! RabbitMQ and AWS SQS extensions, and the core of Knative Serving (`serving.knative.dev`):
//! one typed struct per kind with Knative's JSON field names, the defaults Knative's defaulting
//! webhooks fill in, the checks its validating webhooks (and the Kubernetes API server's schema)
//! make, and the CustomResourceDefinitions generated from the types.
//!
//! What it guarantees:
//! - pure data: no network, no async runtime, no I/O except [`manifest::load_paths`] reading
//!   manifest files;
//! - strict decoding: an unknown field anywhere in a spec (or at the top level, or in
//!   `metadata`) is an error naming the field with its path, e.g.
//!   `spec.filters[0].exactt: unknown field ...` (the pod parts of Serving objects and
//!   ContainerSource use the `k8s-openapi` types, and [`pod`]'s field mask does this for them);
//! - every validation problem is a [`FieldError`] carrying the field path it concerns, and
//!   [`KnativeObject::describe_errors`] prefixes them with the object, e.g.
//!   `trigger default/orders: spec.filters[1]: multiple dialects found (exact, prefix)`.
//!
//! Entry points: [`KnativeObject::from_value`] to decode any supported object,
//! [`manifest::parse_documents`] / [`manifest::load_paths`] for YAML or JSON manifests,
//! [`registry`] for the kinds and their names, [`crd::crds_yaml`] for the CRDs. Shared shapes
//! (Destination, DeliverySpec, KReference, conditions) live in [`duck`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod autoscaling;
pub mod core;
pub mod crd;
pub mod duck;
pub mod eventing;
pub mod flows;
pub mod kafka;
pub mod manifest;
pub mod messaging;
pub mod meta;
pub mod object;
pub mod pod;
pub mod registry;
mod schema;
pub mod serving;
pub mod sources;
pub mod storage;

use std::fmt;

pub use object::{KnativeObject, ObjectError};

/// One validation problem, with the field path it concerns (e.g. `spec.filters[1]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted field path, e.g. `spec.delivery.backoffDelay`.
    pub path: String,
    /// Lower-case description of the problem.
    pub message: String,
}

impl FieldError {
    /// Builds an error for `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Knative's "missing field(s)" error for `path`.
    pub fn missing(path: impl Into<String>) -> Self {
        Self::new(path, "missing field(s)")
    }

    /// Knative's "invalid value" error for `path`, showing the value.
    pub fn invalid(path: impl Into<String>, value: impl fmt::Display) -> Self {
        Self::new(path, format!("invalid value: {value}"))
    }

    /// Knative's "must not set the field(s)" error for `path`.
    pub fn disallowed(path: impl Into<String>) -> Self {
        Self::new(path, "must not set the field(s)")
    }

    /// The error Knative reports when an immutable field changes on update.
    pub fn immutable(path: impl Into<String>) -> Self {
        Self::new(path, "Immutable fields changed (-old +new)")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Knative's admission behaviour for one kind: what its defaulting webhook fills in and what
/// its validating webhook rejects.
pub trait Admission {
    /// Fills in the defaults Knative sets on create.
    fn set_defaults(&mut self);

    /// Every problem Knative (and the Kubernetes API server) would reject on create, including
    /// the object's name and metadata.
    fn validate(&self) -> Vec<FieldError>;

    /// Every problem of an object that replaces an existing one, before
    /// [`Admission::validate_update`] compares the two: the same as on create, unless a kind
    /// requires fields only of new objects (as `events.k8s.io` Events do).
    fn validate_existing(&self) -> Vec<FieldError> {
        self.validate()
    }

    /// The additional problems of replacing `old` with `self`: changed immutable fields.
    /// Does not repeat what [`Admission::validate`] reports.
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let _ = old;
        Vec::new()
    }
}

/// Joins a field path and a field name: `field("spec", "broker")` is `spec.broker`.
pub(crate) fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A path into a list: `index("spec.filters", 1)` is `spec.filters[1]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A path to a map entry, Knative style: `key("metadata.annotations", "a/b")` is
/// `metadata.annotations[a/b]`.
pub(crate) fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}
