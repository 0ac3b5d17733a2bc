//! Knative's filter conformance cases (TRG-05, TRG-06, reference 5.1) as unit tests.

use std::collections::BTreeMap;

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use sluice_crds::eventing::{SubscriptionsApiFilter, TriggerFilter};

use crate::{compile, FilterResult};

fn event(ty: &str, source: &str, ext: &[(&str, &str)]) -> Event {
    let mut b = EventBuilderV10::new().id("1").ty(ty).source(source);
    for (k, v) in ext {
        b = b.extension(k, *v);
    }
    b.build().unwrap()
}

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn exact(pairs: &[(&str, &str)]) -> SubscriptionsApiFilter {
    SubscriptionsApiFilter { exact: map(pairs), ..Default::default() }
}

fn filters(list: Vec<SubscriptionsApiFilter>) -> crate::CompiledFilter {
    compile(None, Some(&list)).unwrap()
}

#[test]
fn single_dialects() {
    let e = event("com.example.order.created", "/shop/eu", &[("region", "eu")]);
    assert!(filters(vec![exact(&[("type", "com.example.order.created")])]).matches(&e));
    assert!(!filters(vec![exact(&[("type", "com.example.order")])]).matches(&e));
    let prefix = SubscriptionsApiFilter { prefix: map(&[("type", "com.example.")]), ..Default::default() };
    assert!(filters(vec![prefix]).matches(&e));
    let suffix = SubscriptionsApiFilter { suffix: map(&[("source", "/eu")]), ..Default::default() };
    assert!(filters(vec![suffix]).matches(&e));
    let cesql = SubscriptionsApiFilter { cesql: Some("region = 'eu' AND type LIKE '%.created'".into()), ..Default::default() };
    assert!(filters(vec![cesql]).matches(&e));
    let cesql_no = SubscriptionsApiFilter { cesql: Some("region = 'us'".into()), ..Default::default() };
    assert!(!filters(vec![cesql_no]).matches(&e));
}

#[test]
fn any_all_not() {
    let e = event("a", "/s", &[]);
    let any = SubscriptionsApiFilter { any: Some(vec![exact(&[("type", "b")]), exact(&[("type", "a")])]), ..Default::default() };
    assert!(filters(vec![any]).matches(&e));
    let any_none = SubscriptionsApiFilter { any: Some(vec![exact(&[("type", "b")]), exact(&[("type", "c")])]), ..Default::default() };
    assert!(!filters(vec![any_none]).matches(&e));
    let all = SubscriptionsApiFilter { all: Some(vec![exact(&[("type", "a")]), exact(&[("source", "/s")])]), ..Default::default() };
    assert!(filters(vec![all]).matches(&e));
    let all_no = SubscriptionsApiFilter { all: Some(vec![exact(&[("type", "a")]), exact(&[("source", "/x")])]), ..Default::default() };
    assert!(!filters(vec![all_no]).matches(&e));
    let not = SubscriptionsApiFilter { not: Some(Box::new(exact(&[("type", "a")]))), ..Default::default() };
    assert!(!filters(vec![not]).matches(&e));
}

#[test]
fn missing_extension_fails_every_dialect() {
    let e = event("a", "/s", &[]);
    for f in [
        exact(&[("ext", "x")]),
        SubscriptionsApiFilter { prefix: map(&[("ext", "x")]), ..Default::default() },
        SubscriptionsApiFilter { suffix: map(&[("ext", "x")]), ..Default::default() },
        SubscriptionsApiFilter { cesql: Some("ext = 'x'".into()), ..Default::default() },
    ] {
        assert_eq!(filters(vec![f]).filter(&e), FilterResult::Fail);
    }
    // Even `NOT (ext = 'x')` fails: any evaluation error means fail.
    let not = SubscriptionsApiFilter { cesql: Some("NOT (ext = 'x')".into()), ..Default::default() };
    assert_eq!(filters(vec![not]).filter(&e), FilterResult::Fail);
}

#[test]
fn multiple_top_level_filters_are_anded() {
    let e = event("a", "/s", &[]);
    assert!(filters(vec![exact(&[("type", "a")]), exact(&[("source", "/s")])]).matches(&e));
    assert!(!filters(vec![exact(&[("type", "a")]), exact(&[("source", "/x")])]).matches(&e));
}

#[test]
fn filters_override_attributes_but_an_empty_list_does_not() {
    let e = event("a", "/s", &[]);
    let legacy = TriggerFilter { attributes: map(&[("type", "b")]) };
    assert!(!compile(Some(&legacy), Some(&[])).unwrap().matches(&e), "empty filters: the attributes filter applies");
    assert!(compile(Some(&legacy), Some(&[exact(&[("type", "a")])])).unwrap().matches(&e), "filters override attributes");
}

#[test]
fn legacy_attributes_and_the_empty_string_rule() {
    let with_region = event("a", "/s", &[("region", "eu")]);
    let empty_region = event("a", "/s", &[("region", "")]);
    let without = event("a", "/s", &[]);
    let any_region = TriggerFilter { attributes: map(&[("region", "")]) };
    let f = compile(Some(&any_region), None).unwrap();
    assert!(f.matches(&with_region));
    assert!(!f.matches(&empty_region), "\"\" needs a non-empty value");
    assert!(!f.matches(&without));
    let subject_any = TriggerFilter { attributes: map(&[("subject", "")]) };
    assert!(!compile(Some(&subject_any), None).unwrap().matches(&without), "no subject fails the empty-string rule");
    let exact_type = TriggerFilter { attributes: map(&[("type", "a"), ("source", "/s")]) };
    assert!(compile(Some(&exact_type), None).unwrap().matches(&without));
    let case = TriggerFilter { attributes: map(&[("type", "A")]) };
    assert!(!compile(Some(&case), None).unwrap().matches(&without), "case-sensitive");
    assert_eq!(compile(None, None).unwrap().filter(&without), FilterResult::NoFilter);
}

#[test]
fn dialect_errors_name_the_path() {
    let two = SubscriptionsApiFilter { exact: map(&[("type", "a")]), prefix: map(&[("type", "b")]), ..Default::default() };
    let err = compile(None, Some(&[exact(&[("type", "a")]), two])).unwrap_err();
    assert_eq!(err.to_string(), "spec.filters[1]: multiple dialects found (exact, prefix)");
    let bad = SubscriptionsApiFilter { all: Some(vec![SubscriptionsApiFilter { cesql: Some("a = ".into()), ..Default::default() }]), ..Default::default() };
    let err = compile(None, Some(&[bad])).unwrap_err();
    assert!(err.to_string().starts_with("spec.filters[0].all[0].cesql: invalid cesql expression"), "{err}");
}

#[test]
fn non_string_attributes_compare_by_string_form() {
    let e = EventBuilderV10::new().id("1").ty("a").source("/s").extension("count", 42i64).extension("flag", true).build().unwrap();
    assert!(filters(vec![exact(&[("count", "42"), ("flag", "true")])]).matches(&e));
    let cesql = SubscriptionsApiFilter { cesql: Some("count > 40 AND flag".into()), ..Default::default() };
    assert!(filters(vec![cesql]).matches(&e));
}
