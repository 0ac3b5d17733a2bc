//! The `suffix` dialect: every listed attribute ends with its value, case-sensitively.

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::conditions::AttributeConditions;
use crate::{Filter, FilterResult};

/// Passes when every listed attribute exists and its string form ends with the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuffixFilter {
    conditions: AttributeConditions,
}

impl SuffixFilter {
    /// A filter over `attributes`, which [`crate::compile`] has validated (no empty names or
    /// values).
    pub fn new(attributes: &BTreeMap<String, String>) -> Self {
        Self {
            conditions: AttributeConditions::new(attributes),
        }
    }
}

impl Filter for SuffixFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        self.conditions.evaluate(event, |actual, wanted| actual.ends_with(wanted))
    }
}
