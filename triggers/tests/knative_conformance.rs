//! Knative's trigger filter conformance cases (knative-reference 5.1, the
//! `new_trigger_filters` features; TRG-06), run against compiled filters: for each Trigger, the
//! events it must deliver and the events it must not.

mod support;

use cloudevents::Event;
use sluice_crds::eventing::SubscriptionsApiFilter;
use sluice_triggers::{compile, CompiledFilter, FilterResult};
use support::{all, any, attributes, cesql, event, exact, filters, prefix, suffix};

/// Asserts which events `filter` delivers.
fn assert_delivers(filter: &CompiledFilter, delivered: &[&Event], dropped: &[&Event]) {
    for event in delivered {
        assert!(filter.matches(event), "{filter:?} must deliver {event}");
    }
    for event in dropped {
        assert_eq!(filter.filter(event), FilterResult::Fail, "{filter:?} must not deliver {event}");
    }
}

#[test]
fn single_dialect_exact() {
    let filter = filters(vec![exact(&[("type", "exact.event.type")])]);
    assert_delivers(
        &filter,
        &[&event("exact.event.type", "/s", &[])],
        &[&event("exact.event.type.other", "/s", &[]), &event("EXACT.EVENT.TYPE", "/s", &[])],
    );
}

#[test]
fn single_dialect_prefix() {
    let filter = filters(vec![prefix(&[("type", "prefix.event")])]);
    assert_delivers(
        &filter,
        &[&event("prefix.event.type", "/s", &[]), &event("prefix.event", "/s", &[])],
        &[&event("other.prefix.event", "/s", &[])],
    );
}

#[test]
fn single_dialect_suffix() {
    let filter = filters(vec![suffix(&[("type", "event.suffix")])]);
    assert_delivers(
        &filter,
        &[&event("type.event.suffix", "/s", &[])],
        &[&event("event.suffix.type", "/s", &[])],
    );
}

#[test]
fn single_dialect_cesql() {
    let filter = filters(vec![cesql("type = 'cesql.event.type' AND source LIKE '%/eu'")]);
    assert_delivers(
        &filter,
        &[&event("cesql.event.type", "/shop/eu", &[])],
        &[
            &event("cesql.event.type", "/shop/us", &[]),
            &event("other.event.type", "/shop/eu", &[]),
        ],
    );
}

#[test]
fn any_filter() {
    let filter = filters(vec![any(vec![exact(&[("type", "first.type")]), prefix(&[("source", "/second")])])]);
    assert_delivers(
        &filter,
        &[&event("first.type", "/x", &[]), &event("other.type", "/second/y", &[])],
        &[&event("other.type", "/x", &[])],
    );
}

#[test]
fn any_of_multiple_exact_filters() {
    let filter = filters(vec![any(vec![
        exact(&[("type", "order.created")]),
        exact(&[("type", "order.updated")]),
        exact(&[("source", "/legacy"), ("type", "order.deleted")]),
    ])]);
    assert_delivers(
        &filter,
        &[
            &event("order.created", "/shop", &[]),
            &event("order.updated", "/shop", &[]),
            &event("order.deleted", "/legacy", &[]),
        ],
        &[&event("order.deleted", "/shop", &[]), &event("order.shipped", "/legacy", &[])],
    );
}

#[test]
fn all_filter() {
    let filter = filters(vec![all(vec![exact(&[("type", "order.created")]), suffix(&[("source", "/eu")])])]);
    assert_delivers(
        &filter,
        &[&event("order.created", "/shop/eu", &[])],
        &[&event("order.created", "/shop/us", &[]), &event("order.updated", "/shop/eu", &[])],
    );
}

#[test]
fn missing_extension_attribute_fails_every_dialect() {
    let without = event("t", "/s", &[]);
    let with = event("t", "/s", &[("extensionattribute", "value")]);
    let dialects: Vec<SubscriptionsApiFilter> = vec![
        exact(&[("extensionattribute", "value")]),
        prefix(&[("extensionattribute", "val")]),
        suffix(&[("extensionattribute", "lue")]),
        cesql("extensionattribute = 'value'"),
        cesql("extensionattribute != 'other'"),
        cesql("NOT (extensionattribute = 'other')"),
        any(vec![exact(&[("extensionattribute", "value")])]),
        all(vec![prefix(&[("extensionattribute", "v")])]),
    ];
    for dialect in dialects {
        let filter = filters(vec![dialect]);
        assert_delivers(&filter, &[&with], &[&without]);
    }
}

#[test]
fn empty_filters_keep_the_attributes_filter() {
    let legacy = attributes(&[("type", "legacy.type"), ("source", "/legacy")]);
    let filter = compile(Some(&legacy), Some(&[])).expect("compiles");
    assert_delivers(
        &filter,
        &[&event("legacy.type", "/legacy", &[])],
        &[&event("legacy.type", "/other", &[]), &event("other.type", "/legacy", &[])],
    );
}

#[test]
fn filters_override_the_attributes_filter() {
    let legacy = attributes(&[("type", "legacy.type")]);
    let filter = compile(Some(&legacy), Some(&[exact(&[("type", "new.type")])])).expect("compiles");
    assert_delivers(&filter, &[&event("new.type", "/s", &[])], &[&event("legacy.type", "/s", &[])]);
}

#[test]
fn multiple_top_level_filters_are_anded() {
    let filter = filters(vec![
        exact(&[("type", "order.created")]),
        prefix(&[("source", "/shop")]),
        suffix(&[("region", "-1")]),
        cesql("EXISTS region"),
    ]);
    assert_delivers(
        &filter,
        &[&event("order.created", "/shop/eu", &[("region", "eu-1")])],
        &[
            &event("order.updated", "/shop/eu", &[("region", "eu-1")]),
            &event("order.created", "/warehouse", &[("region", "eu-1")]),
            &event("order.created", "/shop/eu", &[("region", "eu-2")]),
            &event("order.created", "/shop/eu", &[]),
        ],
    );
}

#[test]
fn no_filter_delivers_everything() {
    let filter = compile(None, None).expect("compiles");
    assert_eq!(filter.filter(&event("any", "/s", &[])), FilterResult::NoFilter);
    let empty = compile(Some(&attributes(&[])), Some(&[])).expect("compiles");
    assert_eq!(empty.filter(&event("any", "/s", &[])), FilterResult::NoFilter);
}

#[test]
fn two_triggers_one_matches() {
    let first = filters(vec![exact(&[("type", "a")])]);
    let second = filters(vec![exact(&[("type", "b")])]);
    let sent = event("b", "/s", &[]);
    assert_eq!((first.matches(&sent), second.matches(&sent)), (false, true));
}
