//! Per-event cost of each trigger filter dialect, through the runtime API the dispatch loop
//! uses: a Trigger's `filter`/`filters` compiled once into a `CompiledFilter`, then
//! `matches` per event. Two baselines run in the same process so the figures can be read as
//! ratios: reading `type` and comparing it with `==` by hand, and cloning the event.
//!
//! `cargo bench -p sluice-triggers --bench filters -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::hint::black_box;

use cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};
use criterion::{criterion_group, criterion_main, Criterion};
use sluice_crds::eventing::{SubscriptionsApiFilter, TriggerFilter};
use sluice_triggers::{compile, CompiledFilter};

const TYPE: &str = "com.example.order.created";

/// A CloudEvent 1.0 as the broker holds it after a binary-mode request: the optional context
/// attributes set, a JSON body of about 300 bytes kept as bytes (`Data::Binary`, as
/// `sluice_delivery::binding` stores it), extensions as strings (as `ce-` headers carry them).
fn event() -> Event {
    let body = serde_json::json!({
        "orderId": "8f14e45f-ceea-467f-a8d1-a1c5e2c3b0d4",
        "customer": {"id": "c-20931", "name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold"},
        "items": [
            {"sku": "SKU-1001", "name": "Analytical engine gear", "quantity": 2, "price": "19.90"},
            {"sku": "SKU-2002", "name": "Punched card pack", "quantity": 1, "price": "4.50"}
        ],
        "currency": "EUR",
        "total": "44.30"
    })
    .to_string()
    .into_bytes();
    assert!(
        (280..=360).contains(&body.len()),
        "the body should be about 300 bytes, not {}",
        body.len()
    );
    EventBuilderV10::new()
        .id("b7c1e2f4-5d6a-4e3b-9c8d-7f6e5d4c3b2a")
        .ty(TYPE)
        .source("https://shop.example.com/orders")
        .subject("orders/8f14e45f")
        .time("2026-12-02T10:15:30.123Z")
        .data("application/json", body)
        .extension("region", "eu")
        .extension("amount", "42")
        .extension("tenant", "acme")
        .extension("knativearrivaltime", "2026-12-02T10:15:30.125Z")
        .build()
        .expect("valid event")
}

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn filters(list: Vec<SubscriptionsApiFilter>) -> CompiledFilter {
    compile(None, Some(&list)).expect("compiles")
}

/// The filters measured, each as a Trigger would carry it.
fn dialects() -> Vec<(&'static str, CompiledFilter)> {
    let exact = SubscriptionsApiFilter {
        exact: map(&[("type", TYPE)]),
        ..Default::default()
    };
    let prefix = SubscriptionsApiFilter {
        prefix: map(&[("type", "com.example.order.")]),
        ..Default::default()
    };
    let all = SubscriptionsApiFilter {
        all: Some(vec![
            SubscriptionsApiFilter {
                exact: map(&[("type", TYPE)]),
                ..Default::default()
            },
            SubscriptionsApiFilter {
                prefix: map(&[("source", "https://shop.example.com/")]),
                ..Default::default()
            },
            SubscriptionsApiFilter {
                suffix: map(&[("subject", "/8f14e45f")]),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let cesql = SubscriptionsApiFilter {
        cesql: Some("UPPER(region) = 'EU' AND INT(amount) > 10".into()),
        ..Default::default()
    };
    let legacy = TriggerFilter {
        attributes: map(&[("type", TYPE), ("source", "https://shop.example.com/orders")]),
    };
    vec![
        ("exact", filters(vec![exact])),
        ("prefix", filters(vec![prefix])),
        ("all (exact + prefix + suffix)", filters(vec![all])),
        ("cesql", filters(vec![cesql])),
        ("attributes (2)", compile(Some(&legacy), None).expect("compiles")),
    ]
}

fn bench(c: &mut Criterion) {
    let event = event();
    let mut group = c.benchmark_group("filter");
    group.bench_function("baseline: type == by hand", |b| {
        b.iter(|| black_box(&event).ty() == black_box(TYPE))
    });
    group.bench_function("baseline: clone the event", |b| b.iter(|| black_box(&event).clone()));
    for (name, filter) in dialects() {
        assert!(filter.matches(&event), "{name} must match the event");
        group.bench_function(name, |b| b.iter(|| black_box(&filter).matches(black_box(&event))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
