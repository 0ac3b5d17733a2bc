//! The legacy `filter.attributes` of a Trigger (TRG-05).

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::{attribute_value, Filter, FilterResult};

/// Every listed attribute must exist on the event. A non-empty value must equal the
/// attribute's string form exactly (case-sensitive); the empty value means "any value", but,
/// as in Knative, the attribute must then not be empty either. No attributes: no filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributesFilter {
    attributes: Vec<(String, String)>,
}

impl AttributesFilter {
    /// A filter over `attributes`.
    pub fn new(attributes: &BTreeMap<String, String>) -> Self {
        Self {
            attributes: attributes.iter().map(|(name, value)| (name.clone(), value.clone())).collect(),
        }
    }
}

impl Filter for AttributesFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        if self.attributes.is_empty() {
            return FilterResult::NoFilter;
        }
        let all = self.attributes.iter().all(|(name, wanted)| match attribute_value(event, name) {
            Some(actual) if wanted.is_empty() => !actual.is_empty(),
            Some(actual) => actual == *wanted,
            None => false,
        });
        if all {
            FilterResult::Pass
        } else {
            FilterResult::Fail
        }
    }
}
