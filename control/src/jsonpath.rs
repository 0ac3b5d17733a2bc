//! A small evaluator for the JSONPath subset that CRD `additionalPrinterColumns` use:
//! `.a.b`, escaped dots in names (`.metadata.annotations.eventing\.knative\.dev/broker\.class`),
//! quoted keys (`.metadata.labels['serving\.knative\.dev/configuration']`), indexes (`[0]`),
//! wildcards (`[*]`) and equality filters (`[?(@.type=="Ready")]`, single or double quotes).
//! Outer braces (`{.status.url}`) are accepted.

use serde_json::Value;

/// Why a JSONPath expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath {path:?}: {reason}")]
pub struct JsonPathError {
    /// The expression.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A field of an object.
    Field(String),
    /// An element of an array.
    Index(usize),
    /// Every element of an array (or every value of an object).
    All,
    /// The elements of an array whose `field` path equals `value`.
    Filter { field: Vec<String>, value: String },
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

/// Reads a name after `.` up to the next unescaped `.` or `[`, turning `\.` into `.`.
fn read_name(chars: &mut std::iter::Peekable<std::str::Chars>) -> String {
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        match c {
            '\\' => {
                chars.next();
                if let Some(escaped) = chars.next() {
                    name.push(escaped);
                }
            }
            '.' | '[' => break,
            _ => {
                name.push(c);
                chars.next();
            }
        }
    }
    name
}

/// Removes one pair of matching quotes, turning `\x` into `x` inside them.
fn unquote(text: &str) -> Option<String> {
    let text = text.trim();
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = text.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

impl JsonPath {
    /// Parses an expression such as `.status.conditions[?(@.type=="Ready")].status`.
    pub fn parse(path: &str) -> Result<Self, JsonPathError> {
        let err = |reason: &str| JsonPathError {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let text = path.trim();
        let text = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(text).trim();
        let text = text.strip_prefix('$').unwrap_or(text);
        let mut steps = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    let name = read_name(&mut chars);
                    if name.is_empty() {
                        if text.len() == 1 {
                            break; // `.` alone: the object itself
                        }
                        return Err(err("empty field name"));
                    }
                    steps.push(if name == "*" { Step::All } else { Step::Field(name) });
                }
                '[' => {
                    let mut inner = String::new();
                    let mut quote = None;
                    let mut depth = 0;
                    loop {
                        let c = chars.next().ok_or_else(|| err("unterminated ["))?;
                        match (c, quote) {
                            ('\\', _) => {
                                inner.push(c);
                                inner.extend(chars.next());
                                continue;
                            }
                            ('\'' | '"', None) => quote = Some(c),
                            (q, Some(open)) if q == open => quote = None,
                            ('(', None) => depth += 1,
                            (')', None) => depth -= 1,
                            (']', None) if depth == 0 => break,
                            _ => {}
                        }
                        inner.push(c);
                    }
                    steps.push(Self::bracket(inner.trim()).ok_or_else(|| err(&format!("unsupported [{inner}]")))?);
                }
                _ => return Err(err(&format!("unexpected {c:?}"))),
            }
        }
        Ok(Self { steps })
    }

    /// Parses the inside of `[...]`.
    fn bracket(inner: &str) -> Option<Step> {
        if inner == "*" {
            return Some(Step::All);
        }
        if let Ok(i) = inner.parse() {
            return Some(Step::Index(i));
        }
        if let Some(key) = unquote(inner) {
            return Some(Step::Field(key));
        }
        let cond = inner.strip_prefix("?(")?.strip_suffix(')')?;
        let (lhs, rhs) = cond.split_once("==")?;
        let field = lhs.trim().strip_prefix("@.")?;
        let field = field.split('.').map(str::to_string).collect();
        let rhs = rhs.trim();
        let value = unquote(rhs).unwrap_or_else(|| rhs.to_string());
        Some(Step::Filter { field, value })
    }

    /// Every value the path selects in `root`, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(name) => next.extend(v.get(name.as_str())),
                    Step::Index(i) => next.extend(v.get(*i)),
                    Step::All => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(o) => next.extend(o.values()),
                        _ => {}
                    },
                    Step::Filter { field, value } => {
                        let matches = |item: &&Value| {
                            let found = field.iter().try_fold(*item, |v, f| v.get(f.as_str()));
                            match found {
                                Some(Value::String(s)) => s == value,
                                Some(Value::Null) | None => false,
                                Some(other) => serde_json::from_str::<Value>(value).is_ok_and(|v| v == *other),
                            }
                        };
                        if let Value::Array(a) = v {
                            next.extend(a.iter().filter(matches));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path).unwrap().find(v).into_iter().cloned().collect()
    }

    #[test]
    fn paths_of_knative_printer_columns() {
        let broker = json!({
            "metadata": {
                "name": "default",
                "creationTimestamp": "2024-01-01T00:00:00Z",
                "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"},
                "labels": {"serving.knative.dev/configuration": "hello"}
            },
            "status": {
                "address": {"url": "http://gw/default/default"},
                "conditions": [
                    {"type": "Addressable", "status": "True"},
                    {"type": "Ready", "status": "False", "reason": "NotServedYet"}
                ]
            }
        });
        assert_eq!(find(".status.address.url", &broker), [json!("http://gw/default/default")]);
        assert_eq!(find(".metadata.creationTimestamp", &broker), [json!("2024-01-01T00:00:00Z")]);
        assert_eq!(find(r#".status.conditions[?(@.type=="Ready")].status"#, &broker), [json!("False")]);
        assert_eq!(
            find(".status.conditions[?(@.type=='Ready')].reason", &broker),
            [json!("NotServedYet")]
        );
        assert_eq!(
            find(r".metadata.annotations.eventing\.knative\.dev/broker\.class", &broker),
            [json!("MTChannelBasedBroker")]
        );
        assert_eq!(
            find(r".metadata.labels['serving\.knative\.dev/configuration']", &broker),
            [json!("hello")]
        );
        assert_eq!(find("{.status.conditions[1].type}", &broker), [json!("Ready")]);
        assert_eq!(find(".status.conditions[*].type", &broker), [json!("Addressable"), json!("Ready")]);
        assert!(find(".status.url", &broker).is_empty());
        assert!(find(r#".status.conditions[?(@.type=="Succeeded")].status"#, &broker).is_empty());
        assert!(find(".metadata.name[0]", &broker).is_empty());
        let numbers = json!({"items": [{"n": 1, "v": "a"}, {"n": 2, "v": "b"}]});
        assert_eq!(find(".items[?(@.n==2)].v", &numbers), [json!("b")]);
    }

    #[test]
    fn bad_paths_are_errors() {
        assert!(JsonPath::parse(".status[").is_err());
        assert!(JsonPath::parse("status").is_err());
        assert!(JsonPath::parse(".a..b").is_err());
        assert!(JsonPath::parse(".a[?(@.x > 1)]").is_err());
        assert!(JsonPath::parse(".").unwrap().find(&json!(1)) == [&json!(1)]);
    }
}
