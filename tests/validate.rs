//! End-to-end: `sluice validate` and `sluice crds` as a user runs them.

use std::process::Command;

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap()
}

#[test]
fn validate_reports_field_paths_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n").unwrap();
    let out = sluice(&["validate", "-f", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipping Namespace"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\nspec:\n  broker: default\n  filter:\n    attributes:\n      Bad-Key: x\n  subscriber:\n    uri: http://x.example/\n  delivery:\n    backoffDelay: 2s\n---\nkind: [oops\n").unwrap();
    let out = sluice(&["validate", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("spec.filter.attributes"), "{text}");
    assert!(text.contains("spec.delivery.backoffDelay"), "{text}");
    assert!(text.contains("document 2"), "{text}");

    // A misspelt Knative kind is an error, not a skipped object; a duration too large for the
    // clock is an error, not a crash.
    let odd = dir.path().join("odd.yaml");
    std::fs::write(&odd, "apiVersion: eventing.knative.dev/v1\nkind: Triger\nmetadata:\n  name: t\n---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\nspec:\n  delivery:\n    backoffDelay: P99999999999999999999Y\n").unwrap();
    let out = sluice(&["validate", "-f", odd.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#"kind: no kind "Triger" in eventing.knative.dev/v1 (did you mean "Trigger"?)"#), "{text}");
    assert!(text.contains("spec.delivery.backoffDelay: invalid value: P99999999999999999999Y: not an ISO-8601 duration (out of range)"), "{text}");

    let missing = sluice(&["validate", "-f", "/nonexistent/path.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn crds_output_matches_the_committed_copy() {
    let out = sluice(&["crds"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

/// `sluice validate` over the whole Knative sample corpus, file by file, as a user would run
/// it: `accept` files exit 0, `reject` files exit 1 with an error naming a field, `unclear`
/// files do either, and nothing crashes. (The loader's per-file expectations, including where
/// Sluice follows Knative over EXPECTED.tsv, are in `crds/tests/samples.rs`.)
#[test]
fn validate_over_the_knative_sample_corpus() {
    let shared = std::env::var("SLUICE_SHARED_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")));
    let dir = shared.join("knative-samples");
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap_or_else(|e| panic!("Knative samples missing at {} ({e}); set SLUICE_SHARED_DIR", dir.display()));
    // Where Sluice follows Knative's webhook rather than EXPECTED.tsv (see crds/tests/samples.rs).
    let knative_rejects = ["docs__docs--versioned--serving--autoscaling--autoscaling-metrics.md__block4.yaml"];
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for line in expected.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(file), Some(expect)) = (cols.next(), cols.next()) else { continue };
        let expect = if knative_rejects.contains(&file) { "reject" } else { expect };
        let out = sluice(&["validate", "-f", dir.join(file).to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let code = out.status.code();
        assert!(code == Some(0) || code == Some(1), "{file}: crashed ({:?}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        match expect {
            "accept" => assert_eq!(code, Some(0), "{file} should be accepted:\n{stdout}"),
            "reject" => {
                assert_eq!(code, Some(1), "{file} should be rejected:\n{stdout}");
                assert!(stdout.contains("error: ") && stdout.contains(file), "{file}: the error must name the file:\n{stdout}");
            }
            _ => {}
        }
        *counts.entry(expect).or_default() += 1;
    }
    println!("validated the Knative sample corpus: {counts:?}");
    assert!(counts.values().sum::<usize>() > 190);
}
