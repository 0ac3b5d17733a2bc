//! The Knative API as Rust types.
//!
//! Pure data: no network, no tokio. Each kind has its types, defaults and validation; shared
//! shapes live in [`duck`]. Validation errors carry the field path of what is wrong.

pub mod duck;
pub mod eventing;

use std::fmt;

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
        Self { path: path.into(), message: message.into() }
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
