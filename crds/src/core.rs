//! Core `v1` ConfigMap and Secret, which Knative objects reference (broker configuration,
//! credentials). The types are k8s-openapi's; this module adds the API server's defaults and
//! checks.

pub use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::ByteString;

use crate::meta::{validate_object_meta, NameRule};
use crate::{key, Admission, FieldError};

/// Checks a ConfigMap or Secret key: at most 253 characters of `[-._a-zA-Z0-9]`, not `.` or `..`.
pub fn check_config_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.len() > 253 {
        return Err("a valid config key must be 1 to 253 characters".into());
    }
    if k == "." || k == ".." {
        return Err(format!("must not be {k:?}"));
    }
    if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
        return Err("a valid config key must consist of alphanumeric characters, '-', '_' or '.'".into());
    }
    Ok(())
}

fn validate_keys<'a>(keys: impl Iterator<Item = &'a String>, path: &str) -> Vec<FieldError> {
    keys.filter_map(|k| {
        check_config_key(k)
            .err()
            .map(|e| FieldError::new(key(path, k), format!("invalid key: {e}")))
    })
    .collect()
}

impl Admission for ConfigMap {
    fn set_defaults(&mut self) {}

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(validate_keys(self.data.iter().flat_map(|d| d.keys()), "data"));
        errs.extend(validate_keys(self.binary_data.iter().flat_map(|d| d.keys()), "binaryData"));
        if let (Some(d), Some(b)) = (&self.data, &self.binary_data) {
            for k in d.keys().filter(|k| b.contains_key(*k)) {
                errs.push(FieldError::new(key("data", k), "duplicate of key present in binaryData"));
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        if old.immutable == Some(true) && (self.data != old.data || self.binary_data != old.binary_data) {
            vec![FieldError::new("data", "field is immutable when `immutable` is set")]
        } else {
            Vec::new()
        }
    }
}

impl Admission for Secret {
    /// Merges `stringData` into `data` (as the API server does) and defaults `type` to `Opaque`.
    fn set_defaults(&mut self) {
        if let Some(sd) = self.string_data.take() {
            let data = self.data.get_or_insert_with(Default::default);
            for (k, v) in sd {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
        if self.type_.as_deref().unwrap_or("").is_empty() {
            self.type_ = Some("Opaque".into());
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        errs.extend(validate_keys(self.data.iter().flat_map(|d| d.keys()), "data"));
        errs.extend(validate_keys(self.string_data.iter().flat_map(|d| d.keys()), "stringData"));
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if old.immutable == Some(true) && self.data != old.data {
            errs.push(FieldError::new("data", "field is immutable when `immutable` is set"));
        }
        if old.type_ != self.type_ {
            errs.push(FieldError::new("type", "field is immutable"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_is_merged() {
        let mut s: Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"token": "abc"}
        }))
        .unwrap();
        s.set_defaults();
        assert_eq!(s.data.as_ref().unwrap()["token"].0, b"abc");
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert!(s.validate().is_empty());
    }

    #[test]
    fn config_keys() {
        assert!(check_config_key("default.topic.partitions").is_ok());
        assert!(check_config_key("a b").is_err());
        assert!(check_config_key("..").is_err());
    }
}
