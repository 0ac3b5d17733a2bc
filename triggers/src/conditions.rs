//! The attribute conditions shared by the `exact`, `prefix` and `suffix` dialects: every
//! listed attribute must exist on the event and its string form must satisfy the dialect's
//! comparison with the listed value.

use std::collections::BTreeMap;

use cloudevents::Event;

use crate::{attribute_value, FilterResult};

/// Attribute name and value pairs, none of them empty (admission refuses empty ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttributeConditions {
    entries: Vec<(String, String)>,
}

impl AttributeConditions {
    /// The conditions of a validated map (see [`crate::compile`]).
    pub(crate) fn new(map: &BTreeMap<String, String>) -> Self {
        Self {
            entries: map.iter().map(|(name, value)| (name.clone(), value.clone())).collect(),
        }
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
