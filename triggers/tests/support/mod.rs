//! Builders shared by the filter tests.
//!
//! Each test crate uses a subset of them.
#![allow(dead_code)]

use std::collections::BTreeMap;

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use sluice_crds::eventing::{SubscriptionsApiFilter, TriggerFilter};
use sluice_triggers::{compile, CompiledFilter};

/// A CloudEvents 1.0 event with id `1` and the given type, source and string extensions.
pub fn event(ty: &str, source: &str, extensions: &[(&str, &str)]) -> Event {
    let mut builder = EventBuilderV10::new().id("1").ty(ty).source(source);
    for (name, value) in extensions {
        builder = builder.extension(name, *value);
    }
    builder.build().expect("valid event")
}

/// A string map from pairs.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
}

/// `exact: {...}`.
pub fn exact(pairs: &[(&str, &str)]) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter {
        exact: Some(map(pairs)),
        ..Default::default()
    }
}

/// `prefix: {...}`.
pub fn prefix(pairs: &[(&str, &str)]) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter {
        prefix: Some(map(pairs)),
        ..Default::default()
    }
}

/// `suffix: {...}`.
pub fn suffix(pairs: &[(&str, &str)]) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter {
        suffix: Some(map(pairs)),
        ..Default::default()
    }
}

/// `cesql: "..."`.
pub fn cesql(expression: &str) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter {
        cesql: Some(expression.to_string()),
        ..Default::default()
    }
}

/// `any: [...]`.
pub fn any(filters: Vec<SubscriptionsApiFilter>) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter {
        any: Some(filters),
        ..Default::default()
    }
}

/// `all: [...]`.
pub fn all(filters: Vec<SubscriptionsApiFilter>) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter {
        all: Some(filters),
        ..Default::default()
    }
}

/// `not: {...}`.
pub fn not(filter: SubscriptionsApiFilter) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter {
        not: Some(Box::new(filter)),
        ..Default::default()
    }
}

/// `filter: {attributes: {...}}`.
pub fn attributes(pairs: &[(&str, &str)]) -> TriggerFilter {
    TriggerFilter {
        attributes: Some(map(pairs)),
    }
}

/// A Trigger with only `filters`.
pub fn filters(list: Vec<SubscriptionsApiFilter>) -> CompiledFilter {
    compile(None, Some(&list)).expect("filters compile")
}

/// A Trigger with only the legacy `filter`.
pub fn legacy(filter: TriggerFilter) -> CompiledFilter {
    compile(Some(&filter), None).expect("filter compiles")
}
