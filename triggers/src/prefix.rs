//! The `prefix` dialect: every listed attribute starts with its value, case-sensitively.

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::conditions::AttributeConditions;
use crate::{Filter, FilterResult};

/// Passes when every listed attribute exists and its string form starts with the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixFilter {
    conditions: AttributeConditions,
}

impl PrefixFilter {
    /// A filter over `attributes`, which [`crate::compile`] has validated (no empty names or
    /// values).
    pub fn new(attributes: &BTreeMap<String, String>) -> Self {
        Self {
            conditions: AttributeConditions::new(attributes),
        }
    }
}

impl Filter for PrefixFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        self.conditions.evaluate(event, |actual, wanted| actual.starts_with(wanted))
    }
}
