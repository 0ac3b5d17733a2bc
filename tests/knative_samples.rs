//! The Knative sample corpus (`knative-samples/` in the shared folder next to the checkout, or
//! under `$SLUICE_SHARED_DIR`) through the real binary and through the runtime's compile path.
//! `scripts/test` skips this binary, naming it, when the corpus is absent (and fails with
//! `CI=true`); run on its own, it fails without the corpus.

use std::path::PathBuf;
use std::process::Command;

use sluice_crds::manifest::{load_paths, DocumentOutcome};
use sluice_crds::KnativeObject;

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap()
}

fn samples_dir() -> PathBuf {
    let shared = std::env::var_os("SLUICE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")));
    let dir = shared.join("knative-samples");
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "the Knative sample corpus is missing at {} (set SLUICE_SHARED_DIR)",
        dir.display()
    );
    dir
}

/// Every accepted sample runs: its Trigger (and ApiServerSource) filters compile with the
/// runtime's `sluice_triggers::compile`, and every `delivery` object anywhere in it parses into
/// the dispatcher's `RetryPolicy`. Admission and runtime share one set of rules, so an accepted
/// manifest can never fail later as `FilterInvalid` or with a dropped delivery setting.
#[test]
fn every_accepted_sample_compiles_through_the_runtime_path() {
    let docs = load_paths(&[samples_dir()]).unwrap();
    let (mut triggers, mut deliveries) = (0, 0);
    for doc in docs {
        let DocumentOutcome::Object(obj) = doc.outcome else { continue };
        let label = format!("{} (document {}) {}", doc.source, doc.index, obj.label());
        if let KnativeObject::Trigger(t) = &obj {
            sluice_triggers::compile(t.spec.filter.as_ref(), Some(&t.spec.filters)).unwrap_or_else(|e| panic!("{label}: {e}"));
            triggers += 1;
        }
        let mut found = Vec::new();
        delivery_objects(&obj.to_value(), "", &mut found);
        for (path, value) in found {
            let spec: sluice_crds::duck::DeliverySpec = serde_json::from_value(value).unwrap_or_else(|e| panic!("{label} {path}: {e}"));
            sluice_delivery::RetryPolicy::from_spec(&spec, &path).unwrap_or_else(|e| panic!("{label}: {e:?}"));
            deliveries += 1;
        }
    }
    println!("compiled {triggers} triggers and {deliveries} delivery specs");
    assert!(
        triggers >= 20 && deliveries >= 15,
        "too few found: {triggers} triggers, {deliveries} delivery specs"
    );
}

/// Every object under a `delivery` key, with its path (annotations and labels excluded).
fn delivery_objects(value: &serde_json::Value, path: &str, out: &mut Vec<(String, serde_json::Value)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if k == "delivery" && v.is_object() {
                    out.push((p.clone(), v.clone()));
                }
                if k != "metadata" {
                    delivery_objects(v, &p, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                delivery_objects(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `sluice validate` over the whole Knative sample corpus, file by file, as a user would run
/// it: `accept` files exit 0, `reject` files exit 1 with an error naming a field, `unclear`
/// files do either, and nothing crashes. (The loader's per-file expectations, including where
/// Sluice follows Knative over EXPECTED.tsv, are in `crds/tests/samples.rs`.)
#[test]
fn validate_over_the_knative_sample_corpus() {
    let dir = samples_dir();
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
    // Where Sluice follows Knative's webhook rather than EXPECTED.tsv (see crds/tests/samples.rs).
    let knative_rejects = ["docs__docs--versioned--serving--autoscaling--autoscaling-metrics.md__block4.yaml"];
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for line in expected.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(file), Some(expect)) = (cols.next(), cols.next()) else {
            continue;
        };
        let expect = if knative_rejects.contains(&file) { "reject" } else { expect };
        let out = sluice(&["validate", "-f", dir.join(file).to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "{file}: crashed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        match expect {
            "accept" => assert_eq!(code, Some(0), "{file} should be accepted:\n{stdout}"),
            "reject" => {
                assert_eq!(code, Some(1), "{file} should be rejected:\n{stdout}");
                assert!(
                    stdout.contains("error: ") && stdout.contains(file),
                    "{file}: the error must name the file:\n{stdout}"
                );
            }
            _ => {}
        }
        *counts.entry(expect).or_default() += 1;
    }
    println!("validated the Knative sample corpus: {counts:?}");
    assert!(counts.values().sum::<usize>() > 190);
}
