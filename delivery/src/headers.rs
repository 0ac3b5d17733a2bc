//! Pass-through headers (DLV-06): the HTTP headers that travel with an event from ingress to
//! every delivery of it, its dead-letter copy and, from a subscriber's response, its reply.
//!
//! Knative passes `x-request-id`, `retry-after` and every header starting with `knative-` or
//! `x-b3-` (its `PassThroughHeaders`); other headers, and the `ce-` headers (which are the
//! event's attributes), are not passed on.

use http::header::{HeaderMap, HeaderName};

/// Headers passed through whole, by name.
const NAMES: [&str; 2] = ["x-request-id", "retry-after"];
/// Headers passed through by prefix.
const PREFIXES: [&str; 2] = ["knative-", "x-b3-"];

/// Whether `name` (lower-case, as [`HeaderName`] keeps it) travels with the event.
pub fn is_pass_through(name: &HeaderName) -> bool {
    let name = name.as_str();
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The pass-through headers of `from`, every value kept; an empty map (no allocation) when
/// there are none.
pub fn pass_through(from: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for (name, value) in from {
        if is_pass_through(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_knatives_pass_through_headers_only() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-request-id", "r1"),
            ("retry-after", "5"),
            ("knative-foo", "a"),
            ("x-b3-traceid", "t"),
            ("x-foo", "dropped"),
            ("ce-id", "dropped"),
            ("content-type", "dropped"),
        ] {
            h.append(HeaderName::from_static(k), v.parse().unwrap());
        }
        h.append("knative-foo", "b".parse().unwrap());
        let kept = pass_through(&h);
        let names: Vec<_> = kept.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-request-id", "retry-after", "knative-foo", "x-b3-traceid"]);
        assert_eq!(kept.get_all("knative-foo").iter().count(), 2);
    }
}
