//! Why a trigger's filters could not be compiled.

use sluice_crds::FieldError;

/// Filters that admission refuses, with every error's field path (e.g.
/// `spec.filters[1].exact.type`). [`crate::compile`] checks them with the same rules admission
/// applies (`sluice_crds::eventing::validate_filters`), so a Trigger that was accepted always
/// compiles.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct FilterError {
    /// Every problem found, in field order.
    pub errors: Vec<FieldError>,
}
