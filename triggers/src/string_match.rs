//! The `exact`, `prefix` and `suffix` dialects: every listed attribute must exist and its
//! string form must equal / start with / end with the value (case-sensitive).

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::{attribute_value, Filter, FilterResult};

/// Which comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Equality.
    Exact,
    /// `starts_with`.
    Prefix,
    /// `ends_with`.
    Suffix,
}

/// One exact/prefix/suffix element.
#[derive(Debug)]
pub struct StringMatch {
    kind: Kind,
    wanted: Vec<(String, String)>,
}

impl StringMatch {
    /// A filter comparing each attribute in `attributes`.
    pub fn new(kind: Kind, attributes: &BTreeMap<String, String>) -> Self {
        Self { kind, wanted: attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect() }
    }
}

impl Filter for StringMatch {
    fn filter(&self, event: &Event) -> FilterResult {
        if self.wanted.is_empty() {
            return FilterResult::NoFilter;
        }
        for (name, want) in &self.wanted {
            let Some(value) = attribute_value(event, name) else { return FilterResult::Fail };
            let ok = match self.kind {
                Kind::Exact => &value == want,
                Kind::Prefix => value.starts_with(want.as_str()),
                Kind::Suffix => value.ends_with(want.as_str()),
            };
            if !ok {
                return FilterResult::Fail;
            }
        }
        FilterResult::Pass
    }
}
