//! The filter rules beyond the conformance cases: legacy attributes and the empty-string
//! rule (TRG-05), the semantics of each dialect (TRG-06), CESQL filters, and compile errors.

mod support;

use cloudevents::{EventBuilder, EventBuilderV10};
use sluice_triggers::{compile, FilterResult};
use support::{all, any, attributes, cesql, event, exact, filters, legacy, not, prefix, suffix};

#[test]
fn legacy_attributes_match_exactly_and_case_sensitively() {
    let filter = legacy(attributes(&[("type", "com.example.a"), ("source", "/s"), ("region", "eu")]));
    assert_eq!(
        filter.filter(&event("com.example.a", "/s", &[("region", "eu")])),
        FilterResult::Pass
    );
    assert_eq!(
        filter.filter(&event("com.example.A", "/s", &[("region", "eu")])),
        FilterResult::Fail
    );
    assert_eq!(
        filter.filter(&event("com.example.a", "/s", &[("region", "EU")])),
        FilterResult::Fail
    );
    assert_eq!(
        filter.filter(&event("com.example.a", "/s", &[])),
        FilterResult::Fail,
        "a missing extension fails"
    );
}

#[test]
fn legacy_empty_value_means_any_non_empty_value() {
    let filter = legacy(attributes(&[("region", "")]));
    assert!(filter.matches(&event("t", "/s", &[("region", "eu")])));
    assert!(
        !filter.matches(&event("t", "/s", &[("region", "")])),
        "an empty value does not count"
    );
    assert!(!filter.matches(&event("t", "/s", &[])), "the attribute must exist");
    let subject = legacy(attributes(&[("subject", "")]));
    assert!(!subject.matches(&event("t", "/s", &[])), "an event without subject fails");
    let with_subject = EventBuilderV10::new()
        .id("1")
        .ty("t")
        .source("/s")
        .subject("x")
        .build()
        .expect("valid event");
    assert!(subject.matches(&with_subject));
}

#[test]
fn legacy_lookup_names() {
    let event = EventBuilderV10::new()
        .id("1")
        .ty("t")
        .source("/s")
        .time("2024-05-06T07:08:09+02:00")
        .data_with_schema("application/json; charset=utf-8", "https://schema.example/order", "{}")
        .extension("count", 3i64)
        .build()
        .expect("valid event");
    for (name, value) in [
        ("specversion", "1.0"),
        ("id", "1"),
        ("time", "2024-05-06T05:08:09Z"),
        ("dataschema", "https://schema.example/order"),
        ("schemaurl", "https://schema.example/order"),
        ("datacontenttype", "application/json; charset=utf-8"),
        ("datamediatype", "application/json"),
        ("count", "3"),
    ] {
        assert!(legacy(attributes(&[(name, value)])).matches(&event), "{name} = {value}");
        assert!(!legacy(attributes(&[(name, "other")])).matches(&event), "{name} != other");
    }
}

#[test]
fn dialects_compare_non_string_attributes_by_their_string_form() {
    let event = EventBuilderV10::new()
        .id("1")
        .ty("t")
        .source("/s")
        .extension("count", 42i64)
        .extension("flag", true)
        .build()
        .expect("valid event");
    assert!(filters(vec![exact(&[("count", "42"), ("flag", "true")])]).matches(&event));
    assert!(filters(vec![prefix(&[("count", "4")]), suffix(&[("flag", "ue")])]).matches(&event));
    assert!(!filters(vec![exact(&[("count", "42.0")])]).matches(&event));
}

#[test]
fn exact_prefix_and_suffix_need_every_listed_attribute() {
    let sent = event("com.example.order", "/shop/eu", &[("region", "eu-1")]);
    assert!(filters(vec![exact(&[("type", "com.example.order"), ("region", "eu-1")])]).matches(&sent));
    assert!(!filters(vec![exact(&[("type", "com.example.order"), ("region", "eu-2")])]).matches(&sent));
    assert!(
        !filters(vec![prefix(&[("type", "com."), ("subject", "x")])]).matches(&sent),
        "no subject"
    );
    assert!(
        !filters(vec![suffix(&[("source", "/eu"), ("type", ".ORDER")])]).matches(&sent),
        "case-sensitive"
    );
}

#[test]
fn not_inverts_and_nests() {
    let sent = event("a", "/s", &[]);
    assert!(!filters(vec![not(exact(&[("type", "a")]))]).matches(&sent));
    assert!(filters(vec![not(exact(&[("type", "b")]))]).matches(&sent));
    assert!(filters(vec![not(any(vec![exact(&[("type", "b")]), exact(&[("type", "c")])]))]).matches(&sent));
    assert!(!filters(vec![not(all(vec![exact(&[("type", "a")]), prefix(&[("source", "/")])]))]).matches(&sent));
    assert!(filters(vec![not(not(exact(&[("type", "a")])))]).matches(&sent));
    assert!(
        filters(vec![not(exact(&[("missing", "x")]))]).matches(&sent),
        "not of a missing attribute passes"
    );
}

#[test]
fn cesql_filters_need_a_true_result_without_errors() {
    let sent = EventBuilderV10::new()
        .id("42")
        .ty("com.example.order")
        .source("https://shop.example/eu")
        .subject("order-7")
        .time("2024-01-01T00:00:00Z")
        .extension("count", 5i64)
        .extension("vip", true)
        .extension("region", "eu")
        .build()
        .expect("valid event");
    let passes = |expression: &str| filters(vec![cesql(expression)]).filter(&sent) == FilterResult::Pass;
    for expression in [
        "type = 'com.example.order'",
        "count > 3 AND vip",
        "count = '5'",
        "region IN ('eu', 'us')",
        "EXISTS subject AND subject LIKE 'order-%'",
        "NOT EXISTS dataschema",
        "specversion = '1.0' AND id = 42",
        "time LIKE '2024-%'",
        "source LIKE 'https://%' AND LOWER(region) = 'eu'",
        "INT(SUBSTRING(subject, 7)) = 7",
    ] {
        assert!(passes(expression), "{expression} must pass");
    }
    for expression in [
        "type = 'com.example.ORDER'",
        "count",
        "'true'",
        "region",
        "missing = 'x' OR TRUE",
        "NOT (missing = 'x')",
        "vip AND 1 / 0 = 0",
        "INT(region) = 0",
        "NOPE(type)",
    ] {
        assert!(!passes(expression), "{expression} must fail");
    }
}

#[test]
fn compile_errors_name_the_field() {
    let error = |list: Vec<_>| compile(None, Some(&list)).expect_err("must not compile");
    let two_dialects = sluice_crds::eventing::SubscriptionsApiFilter {
        exact: Some(support::map(&[("type", "a")])),
        prefix: Some(support::map(&[("type", "b")])),
        ..Default::default()
    };
    assert_eq!(
        error(vec![exact(&[("type", "a")]), two_dialects]).to_string(),
        "spec.filters[1]: multiple dialects found (exact, prefix)"
    );
    assert_eq!(
        error(vec![any(vec![Default::default()])]).to_string(),
        "spec.filters[0].any[0]: expected exactly one, got neither"
    );
    assert_eq!(
        error(vec![not(exact(&[("type", "")]))]).to_string(),
        "spec.filters[0].not.exact.type: the value must not be empty"
    );
    let empty_name = error(vec![suffix(&[("", "x")])]);
    assert_eq!(empty_name.errors[0].path, "spec.filters[0].suffix", "{empty_name}");
    // Names follow admission's rule (lower-case alphanumerics), not just "non-empty".
    let upper = error(vec![exact(&[("Type", "x")])]);
    assert_eq!(upper.errors[0].path, "spec.filters[0].exact", "{upper}");
    let bad = error(vec![all(vec![exact(&[("type", "a")]), cesql("type = = 'x'")])]);
    assert!(
        bad.to_string()
            .starts_with("spec.filters[0].all[1].cesql: invalid value \"type = = 'x'\": parse error at position 8"),
        "{bad}"
    );
}

#[test]
fn empty_maps_lists_and_expressions_are_not_dialects() {
    let element = sluice_crds::eventing::SubscriptionsApiFilter {
        exact: Some(Default::default()),
        all: Some(Vec::new()),
        cesql: Some(String::new()),
        prefix: Some(support::map(&[("type", "a")])),
        ..Default::default()
    };
    let filter = filters(vec![element]);
    assert!(filter.matches(&event("abc", "/s", &[])));
    assert!(!filter.matches(&event("bcd", "/s", &[])));
}
