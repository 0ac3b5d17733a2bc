//! Knative's KPA autoscaler as pure code (knative-reference 4.4 and 4.5): what
//! `config-autoscaler` and a revision's `autoscaling.knative.dev/*` annotations ask for
//! ([`config`]), the per-second metric windows ([`window`]), and the decision of how many
//! instances a revision should have ([`kpa`]). Nothing here reads a clock: every call takes
//! `now`, so the tests replay series of observations and check each decision.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod kpa;
pub mod window;

pub use config::{Config, ConfigError, Metric, RevisionSpec};
pub use kpa::{Autoscaler, ScaleResult, Scaler};
