//! The `prefix` dialect: every listed attribute starts with its value, case-sensitively.

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::conditions::AttributeConditions;
use crate::{Filter, FilterError, FilterResult};

/// Passes when every listed attribute exists and its string form starts with the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixFilter {
    conditions: AttributeConditions,
}

impl PrefixFilter {
    /// A filter over `attributes`, found at `path` (used in errors).
    pub fn new(attributes: &BTreeMap<String, String>, path: &str) -> Result<Self, FilterError> {
        Ok(Self { conditions: AttributeConditions::new(attributes, path)? })
    }
}

impl Filter for PrefixFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        self.conditions.evaluate(event, |actual, wanted| actual.starts_with(wanted))
    }
}
