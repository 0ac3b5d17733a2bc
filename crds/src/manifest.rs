//! Loading manifests: multi-document YAML or JSON files, `kind: List` expansion, and for each
//! object decoding, defaulting and validation, with errors that name the file, the document
//! and the field.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::object::{label_of, KnativeObject, ObjectError};

/// One object (or problem) found in a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The file it came from (as given, e.g. `manifests/broker.yaml`).
    pub source: String,
    /// 1-based number of the YAML (or JSON) document in the file; items of a `kind: List`
    /// share their list's number.
    pub index: usize,
    /// What the document holds.
    pub outcome: DocumentOutcome,
}

/// What a manifest document turned out to be.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "objects are the common case; boxing them would only add an allocation"
)]
pub enum DocumentOutcome {
    /// A valid object, defaulted.
    Object(KnativeObject),
    /// An object of a kind Sluice does not manage (ServiceAccount, ReplicaSet, RBAC, ...).
    Skipped {
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
        /// Its `metadata.name` (empty when absent).
        name: String,
    },
    /// Everything wrong with the document, as one message naming file, document, object and
    /// fields, e.g. `a.yaml (document 2): trigger default/orders: spec.filters[1]: multiple
    /// dialects found (exact, prefix)`; several problems are joined by `; `.
    Error(String),
}

/// Parses every document of a manifest file's text. `source` names the file in messages;
/// a name ending in `.json` is read as a stream of JSON values, anything else as YAML.
/// Empty documents are ignored.
pub fn parse_documents(source: &str, text: &str) -> Vec<Document> {
    let mut out = Vec::new();
    let values = if source.to_ascii_lowercase().ends_with(".json") {
        json_values(text)
    } else {
        yaml_values(text)
    };
    for (index, value) in values {
        match value {
            Err(message) => out.push(Document {
                source: source.into(),
                index,
                outcome: DocumentOutcome::Error(format!("{source} (document {index}): {message}")),
            }),
            Ok(Value::Null) => {}
            Ok(value) => expand(source, index, value, &mut out),
        }
    }
    out
}

fn json_values(text: &str) -> Vec<(usize, Result<Value, String>)> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut index = 1;
    loop {
        match stream.next() {
            None => break,
            Some(Ok(v)) => out.push((index, Ok(v))),
            Some(Err(e)) => {
                out.push((index, Err(format!("invalid json: {e}"))));
                break;
            }
        }
        index += 1;
    }
    out
}

fn yaml_values(text: &str) -> Vec<(usize, Result<Value, String>)> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let parsed = serde_yaml::Value::deserialize(doc).map_err(|e| yaml_error(&e)).and_then(|mut v| {
            v.apply_merge().map_err(|e| yaml_error(&e))?;
            yaml_to_json(v)
        });
        let failed = parsed.is_err();
        out.push((index, parsed));
        if failed {
            break;
        }
    }
    out
}

fn yaml_error(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    match e.location() {
        Some(l) if !text.contains(" at line ") => format!("invalid yaml: {text} at line {} column {}", l.line(), l.column()),
        _ => format!("invalid yaml: {text}"),
    }
}

/// Converts YAML to JSON as Kubernetes' YAML reader does: keys become strings, tags are
/// dropped, non-finite numbers are refused.
fn yaml_to_json(v: serde_yaml::Value) -> Result<Value, String> {
    Ok(match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("invalid yaml: number {n} cannot be represented in JSON"))?
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        serde_yaml::Value::Mapping(m) => {
            let mut map = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Null => "null".into(),
                    other => return Err(format!("invalid yaml: unsupported map key {other:?}")),
                };
                map.insert(key, yaml_to_json(v)?);
            }
            Value::Object(map)
        }
        serde_yaml::Value::Tagged(t) => yaml_to_json(t.value)?,
    })
}

fn expand(source: &str, index: usize, value: Value, out: &mut Vec<Document>) {
    let is_list = value.get("kind").and_then(Value::as_str) == Some("List") && value.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Some(Value::Array(items)) = value.get("items").cloned() {
            for (i, item) in items.into_iter().enumerate() {
                let place = format!("{source} (document {index}, item {})", i + 1);
                out.push(Document {
                    source: source.into(),
                    index,
                    outcome: outcome(&place, item),
                });
            }
        }
        return;
    }
    let place = format!("{source} (document {index})");
    apply_serving_settings(&value);
    out.push(Document {
        source: source.into(),
        index,
        outcome: outcome(&place, value),
    });
}

/// A document that is one of Serving's settings ConfigMaps applies to the documents after it,
/// as when they are applied in order to an API server.
fn apply_serving_settings(value: &Value) {
    let is_configmap = value["apiVersion"] == "v1" && value["kind"] == "ConfigMap";
    let namespace = value["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    if is_configmap && namespace == crate::serving::SETTINGS_NAMESPACE && crate::serving::SETTINGS.contains(&name) {
        crate::serving::apply_settings(name, Some(value));
    }
}

/// Decodes, defaults and validates one manifest object. `status` is ignored, as the API server
/// ignores it when an object is created or applied.
fn outcome(place: &str, mut value: Value) -> DocumentOutcome {
    if !value.is_object() {
        return DocumentOutcome::Error(format!("{place}: expected an object (a map with apiVersion, kind and metadata)"));
    }
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    match KnativeObject::from_value_lenient(value.clone()) {
        Ok((Some(mut obj), decode_errs)) => {
            obj.apply_defaults();
            let mut errs = decode_errs.clone();
            let pruned = |path: &str| {
                decode_errs
                    .iter()
                    .any(|e| path == e.path || path.starts_with(&format!("{}.", e.path)) || path.starts_with(&format!("{}[", e.path)))
            };
            errs.extend(obj.validate().into_iter().filter(|e| !pruned(&e.path)));
            if errs.is_empty() {
                DocumentOutcome::Object(obj)
            } else {
                DocumentOutcome::Error(format!("{place}: {}: {}", obj.label(), join(&errs)))
            }
        }
        Ok((None, errs)) | Err(ObjectError::Invalid(errs)) => {
            DocumentOutcome::Error(format!("{place}: {}: {}", label_of(&value), join(&errs)))
        }
        Err(ObjectError::UnknownKind { api_version, kind }) => {
            let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            DocumentOutcome::Skipped { api_version, kind, name }
        }
    }
}

fn join(errs: &[crate::FieldError]) -> String {
    errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn is_manifest(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        let e = e.to_ascii_lowercase();
        e == "yaml" || e == "yml" || e == "json"
    })
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            collect(&path, files)?;
        } else if is_manifest(&path) {
            files.push(path);
        }
    }
    Ok(())
}

/// Loads manifests from files and directories. Directories are searched recursively for
/// `.yaml`, `.yml` and `.json` files (hidden entries skipped), in sorted order; files named
/// directly are read whatever their extension. Fails only when a file cannot be read.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Document>, std::io::Error> {
    let mut docs = Vec::new();
    for p in paths {
        let mut files = Vec::new();
        if p.is_dir() {
            collect(p, &mut files)?;
            files.sort();
        } else {
            files.push(p.clone());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
            docs.extend(parse_documents(&f.display().to_string(), &text));
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIGGERS: &str = r#"
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: orders
spec:
  broker: default
  filters:
    - exact: {type: a}
    - exact: {type: a}
      prefix: {source: b}
  subscriber:
    uri: http://example.com/
---
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: team
"#;

    #[test]
    fn documents_and_errors() {
        let docs = parse_documents("file.yaml", TRIGGERS);
        assert_eq!(docs.len(), 3);
        assert!(matches!(&docs[0].outcome, DocumentOutcome::Object(KnativeObject::Broker(_))));
        assert_eq!(
            docs[1].outcome,
            DocumentOutcome::Error(
                "file.yaml (document 2): trigger default/orders: spec.filters[1]: multiple dialects found (exact, prefix)".into()
            )
        );
        assert_eq!(docs[2].index, 4);
        assert_eq!(
            docs[2].outcome,
            DocumentOutcome::Skipped {
                api_version: "v1".into(),
                kind: "ServiceAccount".into(),
                name: "team".into()
            }
        );
    }

    #[test]
    fn malformed_yaml_names_the_place() {
        let docs = parse_documents(
            "bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkey: [unclosed\n",
        );
        assert_eq!(docs.len(), 2);
        let DocumentOutcome::Error(e) = &docs[1].outcome else {
            panic!("{docs:?}")
        };
        assert_eq!(
            e,
            "bad.yaml (document 2): invalid yaml: did not find expected ',' or ']' at line 6 column 1, while parsing a flow sequence at line 5 column 6"
        );
    }

    #[test]
    fn lists_and_json() {
        let list = r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"k": 1}}
        ]}"#;
        let docs = parse_documents("list.json", list);
        assert_eq!(docs.len(), 2);
        assert!(matches!(docs[0].outcome, DocumentOutcome::Object(KnativeObject::ConfigMap(_))));
        let DocumentOutcome::Error(e) = &docs[1].outcome else { panic!() };
        assert!(
            e.starts_with("list.json (document 1, item 2): configmap default/b: data.k: "),
            "{e}"
        );
    }

    #[test]
    fn malformed_json_names_the_place() {
        let docs = parse_documents(
            "x.json",
            "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\"}}\n{\"bad\": ",
        );
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1].outcome,
            DocumentOutcome::Error("x.json (document 2): invalid json: EOF while parsing a value at line 2 column 8".into())
        );
    }

    #[test]
    fn missing_kind_is_an_error() {
        let docs = parse_documents("x.yaml", "metadata: {name: a}\n");
        let DocumentOutcome::Error(e) = &docs[0].outcome else { panic!() };
        assert_eq!(
            e,
            "x.yaml (document 1): object default/a: apiVersion: missing field(s); kind: missing field(s)"
        );
    }

    #[test]
    fn anchors_and_status() {
        let yaml =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &l {app: x}\n  annotations: *l\nstatus: {anything: 1}\n";
        let docs = parse_documents("a.yaml", yaml);
        let DocumentOutcome::Object(KnativeObject::ConfigMap(cm)) = &docs[0].outcome else {
            panic!("{docs:?}")
        };
        assert_eq!(cm.metadata.annotations.as_ref().unwrap()["app"], "x");
    }
}
