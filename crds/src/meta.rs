//! Object metadata rules of the Kubernetes API server and Knative: object names, label and
//! annotation keys and values, and the keys `metadata` may hold.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{field, key, FieldError};

/// The keys of Kubernetes `ObjectMeta` (anything else under `metadata` is an unknown field).
pub const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Which rule an object's name follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// The Kubernetes default: a DNS-1123 subdomain (lower-case, dots allowed, ≤ 253).
    Dns1123Subdomain,
    /// A DNS-1123 label (no dots, ≤ 63), e.g. namespaces.
    Dns1123Label,
    /// A DNS-1035 label (starts with a letter, ≤ 63): Knative Serving objects, whose names
    /// become host names.
    Dns1035Label,
}

/// Checks `name` against `rule`, returning a lower-case reason when it does not match.
pub fn check_name(name: &str, rule: NameRule) -> Result<(), String> {
    match rule {
        NameRule::Dns1123Subdomain => check_dns1123_subdomain(name),
        NameRule::Dns1123Label => check_dns1123_label(name),
        NameRule::Dns1035Label => check_dns1035_label(name),
    }
}

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn label_shape_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| is_alnum_lower(c) || c == '-') && s.starts_with(is_alnum_lower) && s.ends_with(is_alnum_lower)
}

/// A DNS-1123 label: at most 63 lower-case alphanumerics or `-`, alphanumeric at both ends.
pub fn check_dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("must be no more than 63 characters (got {})", s.len()));
    }
    if !label_shape_ok(s) {
        return Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!("must be no more than 253 characters (got {})", s.len()));
    }
    if s.is_empty() || !s.split('.').all(label_shape_ok) {
        return Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// A DNS-1035 label: at most 63 lower-case alphanumerics or `-`, starting with a letter and
/// ending with an alphanumeric.
pub fn check_dns1035_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("must be no more than 63 characters (got {})", s.len()));
    }
    if !label_shape_ok(s) || !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character".into());
    }
    Ok(())
}

fn qualified_name_part_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A qualified name (label and annotation keys): an optional DNS-1123 subdomain prefix and
/// `/`, then at most 63 alphanumerics, `-`, `_` or `.`, alphanumeric at both ends.
pub fn check_qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        check_dns1123_subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    if !qualified_name_part_ok(name) {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)".into());
    }
    Ok(())
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_` or `.`, alphanumeric at both ends.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() || qualified_name_part_ok(s) {
        Ok(())
    } else {
        Err("a valid label value must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)".into())
    }
}

/// Validates an object's metadata as the API server does: a name (or `generateName`) that
/// follows `rule`, a DNS-1123 label namespace, and well-formed labels and annotations.
pub fn validate_object_meta(meta: &ObjectMeta, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (meta.name.as_deref(), meta.generate_name.as_deref()) {
        (Some(name), _) if !name.is_empty() => {
            if let Err(e) = check_name(name, rule) {
                errs.push(FieldError::new("metadata.name", format!("invalid value {name:?}: {e}")));
            }
        }
        (_, Some(gen)) if !gen.is_empty() => {
            let probe = format!("{gen}a");
            if let Err(e) = check_name(&probe, rule) {
                errs.push(FieldError::new("metadata.generateName", format!("invalid value {gen:?}: {e}")));
            }
        }
        _ => errs.push(FieldError::missing("metadata.name")),
    }
    if let Some(ns) = meta.namespace.as_deref() {
        if let Err(e) = check_dns1123_label(ns) {
            errs.push(FieldError::new("metadata.namespace", format!("invalid value {ns:?}: {e}")));
        }
    }
    errs.extend(validate_labels(meta.labels.as_ref(), "metadata.labels"));
    errs.extend(validate_annotations(meta.annotations.as_ref(), "metadata.annotations"));
    errs
}

/// Checks label keys and values.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        if let Err(e) = check_qualified_name(k) {
            errs.push(FieldError::new(key(path, k), format!("invalid key: {e}")));
        }
        if let Err(e) = check_label_value(v) {
            errs.push(FieldError::new(key(path, k), format!("invalid value {v:?}: {e}")));
        }
    }
    errs
}

/// Checks annotation keys and the total size limit (256 KiB).
pub fn validate_annotations(annotations: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        total += k.len() + v.len();
        if let Err(e) = check_qualified_name(&k.to_ascii_lowercase()) {
            errs.push(FieldError::new(key(path, k), format!("invalid key: {e}")));
        }
    }
    if total > 256 * 1024 {
        errs.push(FieldError::new(
            path.to_string(),
            format!("annotations are too long: {total} bytes, at most 262144"),
        ));
    }
    errs
}

/// The object's annotation `name`, if set.
pub fn annotation<'a>(meta: &'a ObjectMeta, name: &str) -> Option<&'a str> {
    meta.annotations.as_ref().and_then(|a| a.get(name)).map(String::as_str)
}

/// Sets annotation `name` to `value` unless it is already present.
pub fn default_annotation(meta: &mut ObjectMeta, name: &str, value: &str) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .entry(name.to_string())
        .or_insert_with(|| value.to_string());
}

/// A path under `metadata.annotations` for annotation `name`.
pub fn annotation_path(name: &str) -> String {
    key(&field("metadata", "annotations"), name)
}

/// Sluice's annotation limiting a Trigger's or Subscription's deliveries in flight.
pub const MAX_IN_FLIGHT_ANNOTATION: &str = "sluice.dev/max-in-flight";

/// Checks [`MAX_IN_FLIGHT_ANNOTATION`], when set, is a positive integer.
pub fn validate_max_in_flight(meta: &ObjectMeta) -> Vec<FieldError> {
    match annotation(meta, MAX_IN_FLIGHT_ANNOTATION) {
        Some(v) if v.parse::<u32>().map_or(true, |n| n == 0) => vec![FieldError::new(
            annotation_path(MAX_IN_FLIGHT_ANNOTATION),
            format!("invalid value {v:?}: must be a positive integer (at most {})", u32::MAX),
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_in_flight_must_be_a_positive_integer() {
        let meta = |v: &str| ObjectMeta {
            annotations: Some([(MAX_IN_FLIGHT_ANNOTATION.to_string(), v.to_string())].into()),
            ..Default::default()
        };
        assert!(validate_max_in_flight(&meta("1")).is_empty());
        assert!(validate_max_in_flight(&ObjectMeta::default()).is_empty());
        for bad in ["0", "-1", "abc", "", "1.5"] {
            let errs = validate_max_in_flight(&meta(bad));
            assert_eq!(errs.len(), 1, "{bad:?}");
            assert!(
                errs[0].to_string().contains("metadata.annotations[sluice.dev/max-in-flight]"),
                "{}",
                errs[0]
            );
        }
    }

    #[test]
    fn names() {
        assert!(check_dns1123_subdomain("my.broker-1").is_ok());
        assert!(check_dns1123_subdomain("My").is_err());
        assert!(check_dns1123_subdomain("-a").is_err());
        assert!(check_dns1123_subdomain("a..b").is_err());
        assert!(check_dns1123_label("a.b").is_err());
        assert!(check_dns1035_label("1abc").is_err());
        assert!(check_dns1035_label("abc-1").is_ok());
        assert!(check_dns1035_label(&"a".repeat(64)).is_err());
        assert!(check_dns1123_subdomain("<service_name>").is_err());
    }

    #[test]
    fn qualified_names() {
        assert!(check_qualified_name("eventing.knative.dev/broker.class").is_ok());
        assert!(check_qualified_name("app").is_ok());
        assert!(check_qualified_name("/app").is_err());
        assert!(check_qualified_name("Foo.bar/x").is_err());
        assert!(check_qualified_name("a/b/c").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_x").is_ok());
        assert!(check_label_value("-x").is_err());
    }

    #[test]
    fn object_meta() {
        let meta = ObjectMeta {
            name: Some("Bad_Name".into()),
            ..Default::default()
        };
        let errs = validate_object_meta(&meta, NameRule::Dns1123Subdomain);
        assert_eq!(errs[0].path, "metadata.name");
        let errs = validate_object_meta(&ObjectMeta::default(), NameRule::Dns1123Subdomain);
        assert_eq!(errs, vec![FieldError::missing("metadata.name")]);
        let meta = ObjectMeta {
            generate_name: Some("hello-".into()),
            ..Default::default()
        };
        assert!(validate_object_meta(&meta, NameRule::Dns1035Label).is_empty());
    }
}
