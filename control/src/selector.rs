//! Label and field selectors of list requests (`?labelSelector=`, `?fieldSelector=`), as the
//! Kubernetes API server reads them: label terms `k=v`, `k==v`, `k!=v`, `k`, `!k`,
//! `k in (a,b)`, `k notin (a,b)`; field terms with `=`, `==` or `!=` on `metadata.name` and
//! `metadata.namespace` (the only fields the API server supports for custom resources) and on
//! the fields it supports for some built-in kinds ([`fields_of`]): an Event's
//! `involvedObject.*` (core) or `regarding.*` (`events.k8s.io`), `reason`, `type` and source,
//! a Namespace's `status.phase`, a Secret's `type`.

use serde_json::Value;
use sluice_crds::registry::KindInfo;

/// The fields every kind can be selected on.
const META_FIELDS: &[(&str, &str)] = &[("metadata.name", "metadata.name"), ("metadata.namespace", "metadata.namespace")];

const CORE_EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    ("involvedObject.resourceVersion", "involvedObject.resourceVersion"),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source.component"),
    ("type", "type"),
];

const EVENTS_V1_FIELDS: &[(&str, &str)] = &[
    ("regarding.kind", "regarding.kind"),
    ("regarding.namespace", "regarding.namespace"),
    ("regarding.name", "regarding.name"),
    ("regarding.uid", "regarding.uid"),
    ("regarding.apiVersion", "regarding.apiVersion"),
    ("regarding.resourceVersion", "regarding.resourceVersion"),
    ("regarding.fieldPath", "regarding.fieldPath"),
    ("reason", "reason"),
    ("reportingController", "reportingController"),
    ("type", "type"),
];

/// The field selector labels a kind supports beyond `metadata.name` and `metadata.namespace`,
/// each with the path of the field it reads (`source` of a core Event is `source.component`).
pub fn fields_of(info: &KindInfo) -> &'static [(&'static str, &'static str)] {
    match (info.group, info.kind) {
        ("", "Event") => CORE_EVENT_FIELDS,
        ("events.k8s.io", "Event") => EVENTS_V1_FIELDS,
        ("", "Namespace") => &[("status.phase", "status.phase")],
        ("", "Secret") => &[("type", "type")],
        _ => &[],
    }
}

/// Whether some kind supports `label` in field selectors.
fn known_field(label: &str) -> bool {
    [META_FIELDS, CORE_EVENT_FIELDS, EVENTS_V1_FIELDS, &[("status.phase", "")]]
        .iter()
        .any(|fields| fields.iter().any(|(l, _)| *l == label))
}

/// Why a selector could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text is not a selector.
    #[error("unable to parse requirement: {0:?}")]
    Syntax(String),
    /// A field selector names a field that cannot be selected on.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
    /// A field selector names a field that this kind cannot be selected on.
    #[error("\"{field}\" is not a known field selector for {kind}: only \"metadata.name\", \"metadata.namespace\"{others}")]
    UnsupportedFieldForKind {
        /// The field label.
        field: String,
        /// The kind.
        kind: String,
        /// The kind's other supported labels, listed.
        others: String,
    },
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
            if !known_field(&f.key) {
                return Err(SelectorError::UnsupportedField(f.key.clone()));
            }
        }
        Ok(Self { labels, fields })
    }

    /// The selector for objects of kind `info`: every field label must be one the kind
    /// supports, and is replaced by the path of the field it reads.
    pub fn for_kind(mut self, info: &KindInfo) -> Result<Self, SelectorError> {
        let fields = fields_of(info);
        for f in &mut self.fields {
            let Some((_, path)) = META_FIELDS.iter().chain(fields).find(|(label, _)| *label == f.key) else {
                return Err(SelectorError::UnsupportedFieldForKind {
                    field: f.key.clone(),
                    kind: info.kind.to_string(),
                    others: fields.iter().map(|(l, _)| format!(", {l:?}")).collect(),
                });
            };
            f.key = path.to_string();
        }
        Ok(self)
    }

    /// Whether it selects everything (no label or field requirement).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether `obj` is selected. Field terms compare the text at their dotted path (a missing
    /// field is the empty string).
    pub fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        self.labels.iter().all(|r| r.matches(meta["labels"][&r.key].as_str()))
            && self.fields.iter().all(|r| {
                let value = r.key.split('.').fold(obj, |v, step| &v[step]);
                r.matches(Some(value.as_str().unwrap_or("")))
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

    #[test]
    fn event_fields() {
        let core = sluice_crds::registry::find_by_type("v1", "Event").unwrap();
        let event = json!({"metadata": {"name": "b.1", "namespace": "default"}, "reason": "Ready",
            "source": {"component": "sluice"},
            "involvedObject": {"kind": "Broker", "name": "b", "namespace": "default", "uid": "u1"}});
        let sel = |f: &str| {
            Selector::parse(None, Some(f))
                .and_then(|s| s.for_kind(core))
                .unwrap()
                .matches(&event)
        };
        assert!(sel(
            "involvedObject.name=b,involvedObject.namespace=default,involvedObject.kind=Broker,involvedObject.uid=u1"
        ));
        assert!(!sel("involvedObject.name=b,involvedObject.uid=u2"));
        assert!(sel("reason=Ready,source=sluice,type="));
        assert!(sel("metadata.name=b.1"));
        let broker = sluice_crds::registry::find_kind("broker").unwrap();
        let err = Selector::parse(None, Some("involvedObject.name=b"))
            .unwrap()
            .for_kind(broker)
            .unwrap_err();
        assert!(err.to_string().contains("not a known field selector for Broker"), "{err}");
        let v1 = sluice_crds::registry::find_by_type("events.k8s.io/v1", "Event").unwrap();
        let event = json!({"metadata": {"name": "e"}, "regarding": {"name": "b"}});
        assert!(Selector::parse(None, Some("regarding.name=b"))
            .unwrap()
            .for_kind(v1)
            .unwrap()
            .matches(&event));
        assert!(Selector::parse(None, Some("involvedObject.name=b")).unwrap().for_kind(v1).is_err());
    }
}
