//! Label and field selectors of list and watch requests, as the Kubernetes API reads them
//! (`?labelSelector=app=web,tier!=db,env in (a,b),!legacy`, `?fieldSelector=metadata.name=x`).

use serde_json::Value;

/// Why a selector could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: {reason}")]
pub struct SelectorError {
    /// `labelSelector` or `fieldSelector`.
    pub what: &'static str,
    /// The selector as given.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; all requirements must hold. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let error = |reason: &str| SelectorError {
            what: "labelSelector",
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let requirement = if let Some(key) = term.strip_prefix('!') {
                Requirement::DoesNotExist(label_key(key.trim()).map_err(|r| error(&r))?)
            } else if let Some((key, values)) = split_set(term, " notin ") {
                Requirement::NotIn(label_key(key).map_err(|r| error(&r))?, set_values(values).map_err(|r| error(&r))?)
            } else if let Some((key, values)) = split_set(term, " in ") {
                Requirement::In(label_key(key).map_err(|r| error(&r))?, set_values(values).map_err(|r| error(&r))?)
            } else if let Some((key, value)) = term.split_once("!=") {
                Requirement::NotEquals(label_key(key.trim()).map_err(|r| error(&r))?, value.trim().to_string())
            } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
                Requirement::Equals(label_key(key.trim()).map_err(|r| error(&r))?, value.trim().to_string())
            } else {
                Requirement::Exists(label_key(term).map_err(|r| error(&r))?)
            };
            requirements.push(requirement);
        }
        Ok(Self { requirements })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        })
    }
}

/// Splits on commas outside parentheses (`env in (a,b),tier=db` is two terms).
fn split_terms(text: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn split_set<'a>(term: &'a str, operator: &str) -> Option<(&'a str, &'a str)> {
    let (key, rest) = term.split_once(operator)?;
    Some((key.trim(), rest.trim()))
}

fn set_values(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or("a set must be written in parentheses")?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

fn label_key(key: &str) -> Result<String, String> {
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && key.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("{key:?} is not a valid label key"))
    }
}

/// A parsed field selector: `metadata.name` and `metadata.namespace`, with `=`, `==` or `!=`,
/// the fields the API server supports for every kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<(&'static str, bool, String)>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let error = |reason: String| SelectorError {
            what: "fieldSelector",
            text: text.to_string(),
            reason,
        };
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = match term.split_once("!=") {
                Some((f, v)) => (f, false, v),
                None => {
                    let (f, v) = term
                        .split_once("==")
                        .or_else(|| term.split_once('='))
                        .ok_or_else(|| error(format!("{term:?} has no operator")))?;
                    (f, true, v)
                }
            };
            let field = match field.trim() {
                "metadata.name" => "name",
                "metadata.namespace" => "namespace",
                other => {
                    return Err(error(format!(
                        "field {other:?} is not supported (only metadata.name and metadata.namespace)"
                    )))
                }
            };
            terms.push((field, equal, value.trim().to_string()));
        }
        Ok(Self { terms })
    }

    /// Whether an object satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|(field, equal, value)| (object["metadata"][*field].as_str().unwrap_or("") == value) == *equal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "b", "namespace": "default", "labels": labels}})
    }

    #[test]
    fn label_selectors_of_every_operator() {
        let obj = labelled(json!({"app": "web", "tier": "front", "env": "prod"}));
        for (selector, expected) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("env in (prod, staging)", true),
            ("env in (dev)", false),
            ("env notin (dev,staging)", true),
            ("env notin (prod)", false),
            ("tier", true),
            ("owner", false),
            ("!owner", true),
            ("!tier", false),
            ("app=web,env in (prod,dev),!owner", true),
            ("app=web,tier=back", false),
            ("missing!=x", true),
        ] {
            assert_eq!(LabelSelector::parse(selector).unwrap().matches(&obj), expected, "{selector}");
        }
        assert!(LabelSelector::parse("env in prod").unwrap_err().to_string().contains("parentheses"));
        assert!(LabelSelector::parse("a b=c")
            .unwrap_err()
            .to_string()
            .contains("not a valid label key"));
        assert!(LabelSelector::parse("app=web").unwrap().matches(&labelled(json!({"app": "web"}))));
        assert!(!LabelSelector::parse("app").unwrap().matches(&json!({"metadata": {"name": "x"}})));
    }

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let obj = labelled(json!({}));
        assert!(FieldSelector::parse("metadata.name=b").unwrap().matches(&obj));
        assert!(!FieldSelector::parse("metadata.name!=b").unwrap().matches(&obj));
        assert!(FieldSelector::parse("metadata.name==b,metadata.namespace=default")
            .unwrap()
            .matches(&obj));
        assert!(!FieldSelector::parse("metadata.namespace=other").unwrap().matches(&obj));
        let err = FieldSelector::parse("spec.broker=x").unwrap_err();
        assert!(err.to_string().contains("spec.broker"), "{err}");
    }
}
