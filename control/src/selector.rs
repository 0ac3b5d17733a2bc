//! Label and field selectors of list requests (`?labelSelector=`, `?fieldSelector=`), as the
//! Kubernetes API server reads them: label terms `k=v`, `k==v`, `k!=v`, `k`, `!k`,
//! `k in (a,b)`, `k notin (a,b)`; field terms `metadata.name` and `metadata.namespace` with
//! `=`, `==` or `!=` (the only fields the API server supports for custom resources).

use serde_json::Value;

/// Why a selector could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text is not a selector.
    #[error("unable to parse requirement: {0:?}")]
    Syntax(String),
    /// A field selector names a field that cannot be selected on.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// One requirement on a label (or, for field selectors, a field path).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.op, value) {
            (Op::Equals(v), Some(x)) => v == x,
            (Op::Equals(_), None) => false,
            (Op::NotEquals(v), x) => x != Some(v.as_str()),
            (Op::In(vs), Some(x)) => vs.iter().any(|v| v == x),
            (Op::In(_), None) => false,
            (Op::NotIn(vs), x) => x.is_none_or(|x| !vs.iter().any(|v| v == x)),
            (Op::Exists, x) => x.is_some(),
            (Op::DoesNotExist, x) => x.is_none(),
        }
    }
}

/// Splits on commas outside parentheses.
fn terms(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter().map(str::trim).filter(|t| !t.is_empty()).collect()
}

fn parse_term(term: &str) -> Result<Requirement, SelectorError> {
    let bad = || SelectorError::Syntax(term.to_string());
    let req = |key: &str, op| {
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(Requirement { key: key.into(), op })
    };
    let set = |values: &str| -> Result<Vec<String>, SelectorError> {
        let inner = values.trim().strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(bad)?;
        Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    if let Some((k, v)) = term.split_once("!=") {
        return req(k, Op::NotEquals(v.trim().into()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return req(k, Op::Equals(v.trim().into()));
    }
    if let Some((k, v)) = term.split_once(" notin ") {
        return req(k, Op::NotIn(set(v)?));
    }
    if let Some((k, v)) = term.split_once(" in ") {
        return req(k, Op::In(set(v)?));
    }
    match term.strip_prefix('!') {
        Some(k) => req(k, Op::DoesNotExist),
        None => req(term, Op::Exists),
    }
}

/// A parsed label and field selector; the empty selector selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selector {
    /// Parses the `labelSelector` and `fieldSelector` query parameters.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, SelectorError> {
        let labels = terms(labels.unwrap_or("")).into_iter().map(parse_term).collect::<Result<_, _>>()?;
        let fields: Vec<Requirement> = terms(fields.unwrap_or("")).into_iter().map(parse_term).collect::<Result<_, _>>()?;
        for f in &fields {
            if !matches!(f.op, Op::Equals(_) | Op::NotEquals(_)) {
                return Err(SelectorError::Syntax(f.key.clone()));
            }
            if f.key != "metadata.name" && f.key != "metadata.namespace" {
                return Err(SelectorError::UnsupportedField(f.key.clone()));
            }
        }
        Ok(Self { labels, fields })
    }

    /// Whether `obj` is selected.
    pub fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        self.labels.iter().all(|r| r.matches(meta["labels"][&r.key].as_str()))
            && self.fields.iter().all(|r| {
                let field = r.key.strip_prefix("metadata.").unwrap_or(&r.key);
                r.matches(Some(meta[field].as_str().unwrap_or("")))
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_terms() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "front"}}});
        let sel = |l: &str| Selector::parse(Some(l), None).unwrap().matches(&obj);
        assert!(sel("app=web"));
        assert!(sel("app==web,tier"));
        assert!(!sel("app!=web"));
        assert!(sel("env!=prod"));
        assert!(sel("!env"));
        assert!(!sel("!app"));
        assert!(sel("tier in (back, front)"));
        assert!(!sel("tier notin (front)"));
        assert!(sel("env notin (prod)"));
        assert!(!sel("env in (prod)"));
        assert!(sel(""));
        assert!(Selector::parse(Some("a b"), None).is_err());
        assert!(Selector::parse(Some("a in b"), None).is_err());
    }

    #[test]
    fn field_terms() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        let sel = |f: &str| Selector::parse(None, Some(f)).unwrap().matches(&obj);
        assert!(sel("metadata.name=a"));
        assert!(!sel("metadata.name=b"));
        assert!(sel("metadata.name!=b,metadata.namespace==ns"));
        assert_eq!(
            Selector::parse(None, Some("spec.broker=x")),
            Err(SelectorError::UnsupportedField("spec.broker".into()))
        );
    }
}
