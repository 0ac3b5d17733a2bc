//! The legacy `filter.attributes` (TRG-05): every key must be present; a non-empty value must
//! match exactly; `""` matches any non-empty value.

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::{attribute_value, Filter, FilterResult};

/// Exact attribute matching with the empty-string wildcard.
#[derive(Debug)]
pub struct Attributes {
    wanted: Vec<(String, String)>,
}

impl Attributes {
    /// A filter over `attributes` (an empty map passes everything).
    pub fn new(attributes: BTreeMap<String, String>) -> Self {
        Self { wanted: attributes.into_iter().collect() }
    }
}

impl Filter for Attributes {
    fn filter(&self, event: &Event) -> FilterResult {
        if self.wanted.is_empty() {
            return FilterResult::NoFilter;
        }
        for (name, want) in &self.wanted {
            match attribute_value(event, name) {
                None => return FilterResult::Fail,
                Some(v) if want.is_empty() && v.is_empty() => return FilterResult::Fail,
                Some(v) if !want.is_empty() && &v != want => return FilterResult::Fail,
                Some(_) => {}
            }
        }
        FilterResult::Pass
    }
}
