//! The attribute conditions shared by the `exact`, `prefix` and `suffix` dialects: every
//! listed attribute must exist on the event and its string form must satisfy the dialect's
//! comparison with the listed value.

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::{attribute_value, FilterError, FilterResult};

/// Attribute name and value pairs, none of them empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttributeConditions {
    entries: Vec<(String, String)>,
}

impl AttributeConditions {
    /// Checks the map found at `path`: names and values must not be empty (Knative refuses to
    /// create such a filter).
    pub(crate) fn new(map: &BTreeMap<String, String>, path: &str) -> Result<Self, FilterError> {
        let mut entries = Vec::with_capacity(map.len());
        for (name, value) in map {
            if name.is_empty() {
                return Err(FilterError::EmptyAttributeName { path: path.to_string() });
            }
            if value.is_empty() {
                return Err(FilterError::EmptyValue { path: format!("{path}.{name}") });
            }
            entries.push((name.clone(), value.clone()));
        }
        Ok(Self { entries })
    }

    /// `Pass` when every attribute exists and `satisfies(actual, wanted)`; `Fail` otherwise.
    pub(crate) fn evaluate(&self, event: &Event, satisfies: impl Fn(&str, &str) -> bool) -> FilterResult {
        let all = self
            .entries
            .iter()
            .all(|(name, wanted)| attribute_value(event, name).is_some_and(|actual| satisfies(&actual, wanted)));
        if all {
            FilterResult::Pass
        } else {
            FilterResult::Fail
        }
    }
}
