//! Runs the manifest loader over the Knative sample corpus (`shared/knative-samples/`, or the
//! `knative-samples` folder under `$SLUICE_SHARED_DIR`) and checks each file against
//! `EXPECTED.tsv`: `accept` files load without errors, `reject` files produce errors that
//! name a field (and, where listed below, the problem), `unclear` files either load or fail
//! with field paths. Nothing may panic.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sluice_crds::manifest::{load_paths, Document, DocumentOutcome};

fn samples_dir() -> PathBuf {
    let shared = match std::env::var_os("SLUICE_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let dir = shared.join("knative-samples");
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "the Knative sample corpus is missing: expected {} (set SLUICE_SHARED_DIR to the shared folder)",
        dir.display()
    );
    dir
}

/// What the errors of each `reject` file must mention (a field path or the problem). Where a
/// line of EXPECTED.tsv and Knative's own behaviour differ, the comment says so.
fn reject_mentions() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        (
            "docs__docs--versioned--serving--revisions--revision-developer-config-options.md__block1.yaml",
            &["metadata.name"][..],
        ),
        (
            "docs__docs--versioned--serving--autoscaling--autoscaler-types.md__block5.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--autoscaling--concurrency.md__block4.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--load-balancing--target-burst-capacity.md__block1.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--configuration--config-defaults.md__block4.yaml",
            &["metadata.spec", "spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--configuration--config-defaults.md__block25.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--rolling-out-latest-revision.md__block1.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--services--configure-requests-limits-services.md__block2.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--services--http-protocol.md__block1.yaml",
            &["spec: invalid type: string"][..],
        ),
        (
            "docs__docs--versioned--serving--services--http-protocol.md__block4.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--serving--encryption--cluster-local-domain-tls.md__block4.yaml",
            &["spec.template.spec.containers"][..],
        ),
        (
            "docs__docs--versioned--eventing--triggers--README.md__block5.yaml",
            &["spec.filters[0]: multiple dialects found (exact, suffix)"][..],
        ),
        (
            "docs__docs--versioned--eventing--triggers--README.md__block15.yaml",
            &["spec.filters: invalid type: map"][..],
        ),
        (
            "docs__docs--versioned--eventing--triggers--README.md__block16.yaml",
            &["spec.filter.subscriber", "spec.subscriber"][..],
        ),
        (
            "docs__docs--versioned--eventing--brokers--broker-types--kafka-broker--README.md__block15.yaml",
            &["data: invalid type: string"][..],
        ),
        (
            "docs__docs--versioned--eventing--brokers--broker-types--rabbitmq-broker--README.md__block5.yaml",
            &["spec.broker", "spec.subscriber"][..],
        ),
        (
            "docs__docs--versioned--eventing--event-delivery.md__block1.yaml",
            &["spec.channel", "spec.subscriber", "spec.delivery.retry"][..],
        ),
        (
            "docs__docs--versioned--eventing--configuration--sources-configuration.md__block1.yaml",
            &["data.data-max-size"][..],
        ),
        (
            "docs__docs--versioned--eventing--event-registry--README.md__block4.yaml",
            &["spec.sink.apiVersion"][..],
        ),
        // Knative also rejects retryAfterMax while the delivery-retryafter flag is off; Sluice
        // implements Retry-After and accepts the field, so only the missing channel is reported.
        (
            "docs__docs--versioned--eventing--features--delivery-retryafter.md__block1.yaml",
            &["spec.channel"][..],
        ),
        (
            "docs__docs--versioned--eventing--features--delivery-timeout.md__block1.yaml",
            &["spec.channel"][..],
        ),
        (
            "docs__docs--versioned--eventing--features--new-apiserversource-filters.md__block1.yaml",
            &["spec.resources", "spec.sink"][..],
        ),
        (
            "docs__docs--versioned--eventing--sinks--job-sink.md__block10.yaml",
            &["spec.filter.subscriber", "spec.subscriber"][..],
        ),
        (
            "docs__docs--versioned--eventing--sources--apiserversource--reference.md__block2.yaml",
            &["spec.sink"][..],
        ),
        (
            "docs__docs--versioned--eventing--sources--apiserversource--reference.md__block3.yaml",
            &["spec.sink"][..],
        ),
        (
            "docs__docs--versioned--eventing--sources--apiserversource--reference.md__block14.yaml",
            &["spec: invalid type: string"][..],
        ),
        (
            "docs__docs--versioned--eventing--sources--kafka-source--README.md__block26.yaml",
            &["metadata.name", "bootstrapServers"][..],
        ),
        (
            "docs__docs--versioned--eventing--sources--kafka-source--README.md__block27.yaml",
            &["initialOffset", "spec.topics"][..],
        ),
        (
            "docs__docs--versioned--eventing--sugar--README.md__block3.yaml",
            &["metadata.name", "namespace"][..],
        ),
        ("eventing__docs--delivery--imc.yaml", &["apiVersion", "not served"][..]),
        (
            "eventing__docs--delivery--imc-one-per-subcriber.yaml",
            &["apiVersion", "not served"][..],
        ),
        ("kafka__docs--channel--README.md__block11.yaml", &["data.ca.crt"][..]),
        ("github__samples--githubsource.yaml", &["not served"][..]),
        ("awssqs__samples--display-resources.yaml", &["spec.runLatest"][..]),
        (
            "specs__test-plan--eventing--control-plane--broker-lifecycle--broker.yaml",
            &["kind", "case-sensitive"][..],
        ),
    ])
}

/// Lines of EXPECTED.tsv that contradict Knative's own validation; the test follows Knative.
/// Each entry gives the outcome Knative has and what the errors must mention.
fn knative_overrides() -> BTreeMap<&'static str, (&'static str, &'static [&'static str])> {
    BTreeMap::from([
        // EXPECTED says accept, but the fragment has no containers: Serving's webhook answers
        // "missing field(s): spec.template.spec.containers", like the other fragments of this
        // kind that EXPECTED marks reject.
        (
            "docs__docs--versioned--serving--autoscaling--autoscaling-metrics.md__block4.yaml",
            ("reject", &["spec.template.spec.containers"][..]),
        ),
    ])
}

/// True when every error in `message` (after the file/document prefix) names a field path:
/// `<kind> <ns>/<name>: <path>: <problem>[; <path>: <problem>]...`, or is a YAML/JSON syntax
/// error with its line and column.
fn has_field_paths(message: &str) -> bool {
    let Some((_, rest)) = message.split_once("): ") else { return false };
    if (rest.starts_with("invalid yaml: ") || rest.starts_with("invalid json: ")) && rest.contains(" line ") {
        return true;
    }
    let mut words = rest.splitn(3, ' ');
    let (Some(_kind), Some(_name_and_colon), Some(errors)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    errors.split("; ").all(|e| match e.split_once(": ") {
        Some((path, problem)) => !path.is_empty() && !path.contains(' ') && !problem.is_empty(),
        None => false,
    })
}

fn errors(docs: &[Document]) -> Vec<&str> {
    docs.iter()
        .filter_map(|d| match &d.outcome {
            DocumentOutcome::Error(e) => Some(e.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn knative_samples() {
    let dir = samples_dir();
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv is readable");
    let mut mentions = reject_mentions();
    let overrides = knative_overrides();
    for (file, (_, needles)) in &overrides {
        mentions.insert(file, needles);
    }
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut seen = 0;
    for line in expected.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let (Some(file), Some(expect)) = (cols.next(), cols.next()) else {
            failures.push(format!("malformed EXPECTED.tsv line: {line:?}"));
            continue;
        };
        let why = cols.next().unwrap_or("");
        let expect = overrides.get(file).map_or(expect, |o| o.0);
        seen += 1;
        let path = dir.join(file);
        let result = std::panic::catch_unwind(|| load_paths(std::slice::from_ref(&path)));
        let docs = match result {
            Err(_) => {
                failures.push(format!("{file}: the loader panicked"));
                continue;
            }
            Ok(Err(e)) => {
                failures.push(format!("{file}: cannot be read: {e}"));
                continue;
            }
            Ok(Ok(docs)) => docs,
        };
        let errs = errors(&docs);
        let entry = counts.entry(match expect {
            "accept" => "accept",
            "reject" => "reject",
            _ => "unclear",
        });
        let ok = match expect {
            "accept" => {
                for e in &errs {
                    failures.push(format!("{file}: expected accept, got: {e}"));
                }
                errs.is_empty()
            }
            "reject" => {
                let mut ok = !errs.is_empty();
                if errs.is_empty() {
                    failures.push(format!("{file}: expected reject ({why}), but it loaded"));
                }
                for e in &errs {
                    if !has_field_paths(e) {
                        ok = false;
                        failures.push(format!("{file}: error without a field path: {e}"));
                    }
                }
                let all = errs.join("\n");
                for needle in mentions.get(file).copied().unwrap_or_default() {
                    if !all.contains(needle) {
                        ok = false;
                        failures.push(format!("{file}: errors do not mention {needle:?} ({why}):\n{all}"));
                    }
                }
                if !mentions.contains_key(file) {
                    failures.push(format!("{file}: reject file without expected mentions in this test"));
                }
                ok
            }
            _ => {
                let mut ok = true;
                for e in &errs {
                    if !has_field_paths(e) {
                        ok = false;
                        failures.push(format!("{file}: unclear file failed without field paths: {e}"));
                    }
                }
                ok
            }
        };
        let c = entry.or_default();
        c.0 += 1;
        if ok {
            c.1 += 1;
        }
        if std::env::var_os("SLUICE_SAMPLES_VERBOSE").is_some() {
            println!("{expect:8} {file}");
            for e in &errs {
                println!("         {e}");
            }
        }
    }
    println!("knative samples: {seen} files");
    for (k, (total, ok)) in &counts {
        println!("  {k:8} {ok}/{total} as expected");
    }
    assert!(seen >= 190, "EXPECTED.tsv lists only {seen} files");
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn whole_corpus_loads_as_a_directory() {
    let dir = samples_dir();
    let docs = load_paths(&[dir]).expect("the corpus is readable");
    assert!(docs.len() > 200, "only {} documents", docs.len());
    let mut sources: Vec<&str> = docs.iter().map(|d| d.source.as_str()).collect();
    let sorted = {
        let mut s = sources.clone();
        s.sort();
        s
    };
    sources.dedup();
    let mut dedup_sorted = sorted;
    dedup_sorted.dedup();
    assert_eq!(sources, dedup_sorted, "files are loaded in sorted order");
}

#[test]
fn loaded_objects_round_trip_through_json() {
    let docs = load_paths(&[samples_dir()]).expect("the corpus is readable");
    let mut checked = 0;
    for doc in docs {
        let DocumentOutcome::Object(obj) = doc.outcome else { continue };
        let value = obj.to_value();
        let mut again = sluice_crds::KnativeObject::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{} (document {}): re-decoding {value}: {e}", doc.source, doc.index));
        again.apply_defaults();
        assert_eq!(again, obj, "{} (document {}): defaults are not idempotent", doc.source, doc.index);
        assert!(again.validate().is_empty(), "{} (document {})", doc.source, doc.index);
        checked += 1;
    }
    assert!(checked > 150, "only {checked} objects");
}
