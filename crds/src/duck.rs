//! Duck types shared by many kinds (knative.dev/pkg `duck/v1` and eventing `duck/v1`):
//! Destination, KReference, DeliverySpec, Conditions and the Addressable status.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FieldError;

/// A reference to another object, possibly in another namespace (DUCK-02).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KReference {
    /// API version of the referent, e.g. `eventing.knative.dev/v1`.
    #[serde(default)]
    pub api_version: String,
    /// Kind of the referent, e.g. `Broker`.
    #[serde(default)]
    pub kind: String,
    /// Name of the referent.
    #[serde(default)]
    pub name: String,
    /// Namespace of the referent; defaults to the referring object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// API group, an alternative to the group part of `apiVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Address name, selecting one of the referent's `status.addresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl KReference {
    /// Checks the required fields, reporting errors under `path`.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.api_version.is_empty() && self.group.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::new(format!("{path}.apiVersion"), "missing field(s)"));
        }
        if self.kind.is_empty() {
            errs.push(FieldError::new(format!("{path}.kind"), "missing field(s)"));
        }
        if self.name.is_empty() {
            errs.push(FieldError::new(format!("{path}.name"), "missing field(s)"));
        }
        errs
    }

    /// The API group part of `apiVersion` (empty for the core group).
    pub fn api_group(&self) -> &str {
        if let Some(g) = self.group.as_deref() {
            return g;
        }
        match self.api_version.split_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }
}

/// Where events go: an object reference, a URI, or a URI relative to the reference (DUCK-03).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Reference to an Addressable object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<KReference>,
    /// Absolute URI, or a URI relative to `ref`'s address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// PEM CA certificates to trust for this destination.
    #[serde(default, rename = "CACerts", skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<String>,
    /// OIDC audience of the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

impl Destination {
    /// Knative's Destination rules: at least one of ref/uri; ref with an absolute uri is rejected;
    /// a uri alone must be absolute with a host.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match (&self.r#ref, &self.uri) {
            (None, None) => errs.push(FieldError::new(
                path.to_string(),
                "expected at least one, got none: ref, uri",
            )),
            (Some(r), Some(uri)) => {
                errs.extend(r.validate(&format!("{path}.ref")));
                if let Ok(u) = url::Url::parse(uri) {
                    if u.has_host() {
                        errs.push(FieldError::new(
                            format!("{path}.uri"),
                            format!("absolute URI is not allowed when Ref or [apiVersion, kind, name] is present: {uri}"),
                        ));
                    }
                }
            }
            (Some(r), None) => errs.extend(r.validate(&format!("{path}.ref"))),
            (None, Some(uri)) => match url::Url::parse(uri) {
                Ok(u) if u.has_host() && !u.host_str().unwrap_or("").is_empty() => {}
                _ => errs.push(FieldError::new(
                    format!("{path}.uri"),
                    format!("relative URI is not allowed when Ref and [apiVersion, kind, name] is absent: {uri:?}"),
                )),
            },
        }
        errs
    }
}

/// How retries are spaced (DUCK-04).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackoffPolicy {
    /// Retry k waits `backoffDelay × k`.
    Linear,
    /// Retry k waits `backoffDelay × 2^(k−1)`.
    Exponential,
}

/// Delivery options: retries, backoff, timeout and dead-letter sink (DUCK-04).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliverySpec {
    /// Where events go once every retry failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink: Option<Destination>,
    /// Number of retries after the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i32>,
    /// `linear` or `exponential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_policy: Option<BackoffPolicy>,
    /// ISO-8601 base delay between retries, e.g. `PT0.2S`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_delay: Option<String>,
    /// ISO-8601 per-attempt timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// ISO-8601 cap on an honoured `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_max: Option<String>,
    /// `json` forces structured mode, `binary` forces binary mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

impl DeliverySpec {
    /// True when any delivery option is set (a Trigger's delivery then replaces the Broker's).
    pub fn is_set(&self) -> bool {
        self.dead_letter_sink.is_some()
            || self.retry.is_some()
            || self.backoff_policy.is_some()
            || self.backoff_delay.is_some()
            || self.timeout.is_some()
            || self.retry_after_max.is_some()
            || self.format.is_some()
    }

    /// Validates durations, retry and format, reporting errors under `path`.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(dls) = &self.dead_letter_sink {
            errs.extend(dls.validate(&format!("{path}.deadLetterSink")));
        }
        if let Some(r) = self.retry {
            if r < 0 {
                errs.push(FieldError::new(format!("{path}.retry"), format!("invalid value: {r}, must be >= 0")));
            }
        }
        for (name, value, allow_zero) in [
            ("backoffDelay", &self.backoff_delay, true),
            ("timeout", &self.timeout, false),
            ("retryAfterMax", &self.retry_after_max, true),
        ] {
            if let Some(v) = value {
                match parse_iso8601_duration(v) {
                    Ok(d) if !allow_zero && d.is_zero() => errs.push(FieldError::new(
                        format!("{path}.{name}"),
                        format!("invalid value: {v}, must be greater than zero"),
                    )),
                    Ok(_) => {}
                    Err(e) => errs.push(FieldError::new(format!("{path}.{name}"), format!("invalid value: {v}: {e}"))),
                }
            }
        }
        if let Some(f) = &self.format {
            if f != "json" && f != "binary" {
                errs.push(FieldError::new(format!("{path}.format"), format!("invalid value: {f}, expected json or binary")));
            }
        }
        errs
    }
}

/// Parses an ISO-8601 duration such as `PT0.2S`, `PT1M30S`, `P1D` or `P1W`.
///
/// Years and months are approximated as 365 and 30 days, as Knative's period library does.
pub fn parse_iso8601_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let rest = s
        .strip_prefix('P')
        .or_else(|| s.strip_prefix('p'))
        .ok_or_else(|| "not an ISO-8601 duration (must start with P)".to_string())?;
    if rest.is_empty() {
        return Err("not an ISO-8601 duration (no components)".into());
    }
    let mut seconds = 0f64;
    let mut in_time = false;
    let mut number = String::new();
    let mut components = 0;
    for c in rest.chars() {
        match c {
            'T' | 't' if !in_time && number.is_empty() => in_time = true,
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                if number.is_empty() {
                    return Err(format!("not an ISO-8601 duration (unit {unit} without a number)"));
                }
                let n: f64 = number
                    .parse()
                    .map_err(|_| format!("not an ISO-8601 duration (bad number {number:?})"))?;
                let factor = match (in_time, unit.to_ascii_uppercase()) {
                    (false, 'Y') => 365.0 * 86400.0,
                    (false, 'M') => 30.0 * 86400.0,
                    (false, 'W') => 7.0 * 86400.0,
                    (false, 'D') => 86400.0,
                    (true, 'H') => 3600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err(format!("not an ISO-8601 duration (unexpected {unit:?})")),
                };
                seconds += n * factor;
                number.clear();
                components += 1;
            }
        }
    }
    if !number.is_empty() || components == 0 {
        return Err("not an ISO-8601 duration (trailing number without a unit)".into());
    }
    if !seconds.is_finite() || seconds < 0.0 {
        return Err("not an ISO-8601 duration (out of range)".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A status condition (DUCK-08).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One-word CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `""` (Error), `Warning` or `Info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// RFC 3339 time of the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// An address events can be sent to (DUCK-01).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Addressable {
    /// Address name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PEM CA certificates.
    #[serde(default, rename = "CACerts", skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<String>,
    /// OIDC audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_iso8601_duration("PT0.2S").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_iso8601_duration("PT1M30S").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_iso8601_duration("P1D").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_iso8601_duration("PT168H").unwrap(), Duration::from_secs(168 * 3600));
        assert!(parse_iso8601_duration("0.2s").is_err());
        assert!(parse_iso8601_duration("PT").is_err());
        assert!(parse_iso8601_duration("PT5").is_err());
    }
}
