//! Runs the CloudEvents SQL test compatibility kit: every YAML file of
//! `cloudevents-spec/cesql-tck/` in the shared folder (next to the checkout, or the folder named
//! by `SLUICE_SHARED_DIR`). Every case runs; the test fails listing each case that does not
//! pass, and fails outright when the kit cannot be found.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::{Mapping, Value as Yaml};
use sluice_cesql::{parse, EvalErrorKind, EventContext, Value};

/// One TCK file.
#[derive(Deserialize)]
struct Suite {
    name: String,
    tests: Vec<Case>,
}

/// One TCK case (see the kit's README).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    name: String,
    /// A scalar: YAML reads some expressions (`0`, `TRUE`) as numbers or booleans.
    expression: Yaml,
    result: Option<Yaml>,
    error: Option<String>,
    event: Option<Mapping>,
    event_overrides: Option<Mapping>,
}

/// What a case expects.
#[derive(Debug, PartialEq)]
enum Expected {
    ParseError,
    Evaluation {
        value: Option<Value>,
        error: Option<EvalErrorKind>,
    },
}

/// An event as a map of attributes.
struct Event(BTreeMap<String, Value>);

impl EventContext for Event {
    fn attribute(&self, name: &str) -> Option<Value> {
        self.0.get(name).cloned()
    }
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("SLUICE_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn tck_files() -> Vec<PathBuf> {
    let dir = shared_dir().join("cloudevents-spec/cesql-tck");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the CESQL TCK is missing: cannot read {} ({e}); set SLUICE_SHARED_DIR to the shared folder",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the CESQL TCK folder {} has no YAML files", dir.display());
    files
}

/// The text of a scalar (the expression, written as YAML saw it).
fn scalar_text(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A YAML value as a CESQL value: booleans, 32-bit integers and strings map to themselves;
/// anything else (a timestamp, a float) is represented by its text, as spec §3.2 says.
fn cesql_value(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Bool(b) => Value::Boolean(*b),
        Yaml::Number(n) => match n.as_i64().map(i32::try_from) {
            Some(Ok(i)) => Value::Integer(i),
            _ => Value::String(n.to_string()),
        },
        other => Value::String(scalar_text(other)),
    }
}

fn error_kind(name: &str) -> EvalErrorKind {
    match name {
        "cast" => EvalErrorKind::Cast,
        "math" => EvalErrorKind::Math,
        "missingAttribute" => EvalErrorKind::MissingAttribute,
        "missingFunction" => EvalErrorKind::MissingFunction,
        "functionEvaluation" => EvalErrorKind::FunctionEvaluation,
        other => panic!("unknown TCK error type {other:?}"),
    }
}

impl Case {
    fn expected(&self) -> Expected {
        match self.error.as_deref() {
            Some("parse") => Expected::ParseError,
            error => Expected::Evaluation {
                value: self.result.as_ref().map(cesql_value),
                error: error.map(error_kind),
            },
        }
    }

    /// The event: `event` if given, else any valid event (the required attributes), then the
    /// overrides.
    fn event(&self) -> Event {
        let mut attributes = BTreeMap::new();
        match &self.event {
            Some(event) => attributes.extend(entries(event)),
            None => {
                for (name, value) in [("specversion", "1.0"), ("id", "tck-id"), ("source", "/tck"), ("type", "tck.type")] {
                    attributes.insert(name.to_string(), Value::from(value));
                }
            }
        }
        if let Some(overrides) = &self.event_overrides {
            attributes.extend(entries(overrides));
        }
        Event(attributes)
    }

    /// Runs the case; `Err` describes what went wrong.
    fn run(&self) -> Result<(), String> {
        let expression = scalar_text(&self.expression);
        let expected = self.expected();
        let parsed = parse(&expression);
        let Expected::Evaluation { value, error } = &expected else {
            return match parsed {
                Err(_) => Ok(()),
                Ok(_) => Err("expected a parse error, got an expression".to_string()),
            };
        };
        let parsed = parsed.map_err(|e| format!("expected {expected:?}, got {e}"))?;
        let got = parsed.evaluate(&self.event());
        let kinds: Vec<EvalErrorKind> = got.errors.iter().map(|e| e.kind).collect();
        let value_ok = value.as_ref().is_none_or(|value| *value == got.value);
        let errors_ok = match error {
            Some(kind) => !kinds.is_empty() && kinds.iter().all(|k| k == kind),
            None => kinds.is_empty(),
        };
        if value_ok && errors_ok {
            Ok(())
        } else {
            Err(format!("expected {expected:?}, got {:?} with errors {:?}", got.value, got.errors))
        }
    }
}

fn entries(mapping: &Mapping) -> impl Iterator<Item = (String, Value)> + '_ {
    mapping
        .iter()
        .map(|(name, value)| (scalar_text(name).to_lowercase(), cesql_value(value)))
}

#[test]
fn every_tck_case_passes() {
    let (mut total, mut report) = (0, String::new());
    let mut failures = 0;
    for file in tck_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let suite: Suite = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", file.display()));
        let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for case in &suite.tests {
            total += 1;
            if let Err(problem) = case.run() {
                failures += 1;
                let expression = scalar_text(&case.expression);
                let _ = writeln!(report, "{file_name} [{}] {}: `{expression}`: {problem}", suite.name, case.name);
            }
        }
    }
    println!("cesql tck: {} of {total} cases pass", total - failures);
    // The kit in the shared folder has 275 cases; far fewer means it was cut short.
    assert!(total >= 270, "only {total} TCK cases found: is the test kit complete?");
    assert_eq!(failures, 0, "{failures} of {total} TCK cases failed:\n{report}");
}
