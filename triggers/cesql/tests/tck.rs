//! Runs the CloudEvents CESQL test compatibility kit (from the shared folder beside the
//! checkout, or `SLUICE_SHARED_DIR`) and fails listing every case that does not pass.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_yaml::Value as Yaml;
use sluice_cesql::{parse, EvalErrorKind, EventContext, Value};

struct Event(BTreeMap<String, Value>);

impl EventContext for Event {
    fn attribute(&self, name: &str) -> Option<Value> {
        self.0.get(name).cloned()
    }
}

fn to_value(y: &Yaml) -> Value {
    match y {
        Yaml::Bool(b) => Value::Boolean(*b),
        Yaml::Number(n) => Value::Integer(n.as_i64().expect("integer") as i32),
        Yaml::String(s) => Value::String(s.clone()),
        other => Value::String(serde_yaml::to_string(other).unwrap().trim().to_string()),
    }
}

fn tck_dir() -> PathBuf {
    let shared = std::env::var("SLUICE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let dir = shared.join("cloudevents-spec/cesql-tck");
    assert!(dir.is_dir(), "the CESQL TCK is missing at {} (set SLUICE_SHARED_DIR to the shared folder)", dir.display());
    dir
}

fn error_kind(name: &str) -> Option<EvalErrorKind> {
    Some(match name {
        "cast" => EvalErrorKind::Cast,
        "math" => EvalErrorKind::Math,
        "missingAttribute" => EvalErrorKind::MissingAttribute,
        "missingFunction" => EvalErrorKind::MissingFunction,
        "functionEvaluation" => EvalErrorKind::FunctionEvaluation,
        _ => return None,
    })
}

#[test]
fn every_tck_case_passes() {
    let mut files: Vec<_> = std::fs::read_dir(tck_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    let (mut total, mut failures) = (0, Vec::new());
    for file in files {
        let doc: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for case in doc["tests"].as_sequence().unwrap() {
            total += 1;
            let name = case["name"].as_str().unwrap_or("?");
            let expr = case["expression"].as_str().map(str::to_string).unwrap_or_else(|| serde_yaml::to_string(&case["expression"]).unwrap().trim().to_string());
            let mut attrs = BTreeMap::new();
            match case.get("event").and_then(Yaml::as_mapping) {
                Some(ev) => {
                    for (k, v) in ev {
                        attrs.insert(k.as_str().unwrap().to_string(), to_value(v));
                    }
                }
                None => {
                    for (k, v) in [("specversion", "1.0"), ("id", "some-id"), ("source", "/some/source"), ("type", "some.type")] {
                        attrs.insert(k.to_string(), Value::String(v.to_string()));
                    }
                }
            }
            if let Some(ov) = case.get("eventOverrides").and_then(Yaml::as_mapping) {
                for (k, v) in ov {
                    attrs.insert(k.as_str().unwrap().to_string(), to_value(v));
                }
            }
            let expected_error = case.get("error").and_then(Yaml::as_str);
            let where_ = format!("{} / {name}: `{expr}`", file.file_name().unwrap().to_string_lossy());
            let parsed = parse(&expr);
            if expected_error == Some("parse") {
                if parsed.is_ok() {
                    failures.push(format!("{where_}: expected a parse error, parsed fine"));
                }
                continue;
            }
            let parsed = match parsed {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{where_}: unexpected {e}"));
                    continue;
                }
            };
            let got = parsed.evaluate(&Event(attrs));
            if let Some(want) = case.get("result") {
                let want = match want {
                    Yaml::String(s) if s.eq_ignore_ascii_case("true") && matches!(got.value, Value::Boolean(_)) => Value::Boolean(true),
                    Yaml::String(s) if s.eq_ignore_ascii_case("false") && matches!(got.value, Value::Boolean(_)) => Value::Boolean(false),
                    other => to_value(other),
                };
                if got.value != want {
                    failures.push(format!("{where_}: expected {want:?}, got {:?} (errors {:?})", got.value, got.errors));
                    continue;
                }
            }
            match expected_error.map(|e| (e, error_kind(e))) {
                None if !got.errors.is_empty() => failures.push(format!("{where_}: unexpected errors {:?}", got.errors)),
                Some((name, Some(kind))) if !got.errors.iter().any(|e| e.kind == kind) => {
                    failures.push(format!("{where_}: expected a {name} error, got {:?}", got.errors))
                }
                Some((name, None)) if got.errors.is_empty() => failures.push(format!("{where_}: expected a {name} error, got none")),
                _ => {}
            }
        }
    }
    println!("CESQL TCK: {} of {total} cases pass", total - failures.len());
    assert!(failures.is_empty(), "{} of {total} TCK cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(total > 200, "only {total} cases found");
}
