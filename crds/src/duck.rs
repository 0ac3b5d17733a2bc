//! Duck types shared by many kinds (knative.dev/pkg `duck/v1` and eventing `duck/v1`):
//! Destination, KReference, DeliverySpec, Conditions, the Addressable status, the source duck
//! (sink, CloudEvent overrides) and the channel duck (subscribers).

use std::collections::BTreeMap;
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

    /// Sets the namespace to `namespace` when it is not set (Knative's `KReference.SetDefaults`).
    pub fn set_default_namespace(&mut self, namespace: &str) {
        if self.namespace.as_deref().unwrap_or("").is_empty() {
            self.namespace = Some(namespace.to_string());
        }
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
    /// True when neither `ref` nor `uri` (nor anything else) is set.
    pub fn is_empty(&self) -> bool {
        self == &Destination::default()
    }

    /// Defaults `ref.namespace` to `namespace` (Knative's `Destination.SetDefaults`).
    pub fn set_default_namespace(&mut self, namespace: &str) {
        if let Some(r) = &mut self.r#ref {
            r.set_default_namespace(namespace);
        }
    }

    /// Knative's Destination rules: at least one of ref/uri; ref with an absolute uri is rejected;
    /// a uri alone must be absolute with a host.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match (&self.r#ref, &self.uri) {
            (None, None) => errs.push(FieldError::new(path.to_string(), "expected at least one, got none: ref, uri")),
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
    /// Defaults the dead-letter sink's `ref.namespace` to `namespace`.
    pub fn set_default_namespace(&mut self, namespace: &str) {
        if let Some(dls) = &mut self.dead_letter_sink {
            dls.set_default_namespace(namespace);
        }
    }

    /// Validates durations, retry and format, reporting errors under `path`: the errors of
    /// [`DeliverySpec::parse`], the one parser admission and the dispatcher share.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        self.parse(path).err().unwrap_or_default()
    }

    /// Parses the retry group and format into values, or every error with its field path under
    /// `path`. Admission calls it to validate and the dispatcher to build its retry policy, so
    /// whatever is accepted runs with exactly the values parsed here.
    pub fn parse(&self, path: &str) -> Result<DeliveryOptions, Vec<FieldError>> {
        let mut errs = Vec::new();
        if let Some(dls) = &self.dead_letter_sink {
            errs.extend(dls.validate(&format!("{path}.deadLetterSink")));
        }
        let retries = match self.retry {
            Some(r) if r < 0 => {
                errs.push(FieldError::new(
                    format!("{path}.retry"),
                    format!("invalid value: {r}, must be >= 0"),
                ));
                0
            }
            Some(r) => r as u32,
            None => 0,
        };
        let mut duration = |name: &str, value: &Option<String>, allow_zero: bool| -> Option<Duration> {
            let v = value.as_deref()?;
            match parse_iso8601_duration(v) {
                Ok(d) if !allow_zero && d.is_zero() => {
                    errs.push(FieldError::new(
                        format!("{path}.{name}"),
                        format!("invalid value: {v}, must be greater than zero"),
                    ));
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    errs.push(FieldError::new(format!("{path}.{name}"), format!("invalid value: {v}: {e}")));
                    None
                }
            }
        };
        let backoff_delay = duration("backoffDelay", &self.backoff_delay, true);
        let timeout = duration("timeout", &self.timeout, false);
        let retry_after_max = duration("retryAfterMax", &self.retry_after_max, true);
        let json_format = match self.format.as_deref() {
            None | Some("binary") => false,
            Some("json") => true,
            Some(f) => {
                errs.push(FieldError::new(
                    format!("{path}.format"),
                    format!("invalid value: {f}, expected json or binary"),
                ));
                false
            }
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        // A delay without a policy backs off exponentially (Knative's default policy).
        let backoff = backoff_delay.map(|d| (self.backoff_policy.unwrap_or(BackoffPolicy::Exponential), d));
        Ok(DeliveryOptions {
            retries,
            backoff,
            timeout,
            retry_after_max: retry_after_max.filter(|d| !d.is_zero()),
            json_format,
        })
    }
}

/// The values of a valid [`DeliverySpec`] (without its dead-letter sink, resolved elsewhere).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Backoff policy and base delay; `None` retries at once.
    pub backoff: Option<(BackoffPolicy, Duration)>,
    /// Per-attempt timeout, when set.
    pub timeout: Option<Duration>,
    /// Cap on an honoured `Retry-After`; `None` (or zero) ignores the header.
    pub retry_after_max: Option<Duration>,
    /// `format: json`: structured mode.
    pub json_format: bool,
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
    Duration::try_from_secs_f64(seconds).map_err(|_| "not an ISO-8601 duration (out of range)".into())
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

/// The fields every Knative status carries (knative.dev/pkg `duck/v1.Status`).
///
/// Kinds' status structs embed these fields at their top level, as Knative does.
pub trait HasConditions {
    /// The conditions, `Ready` (or `Succeeded`) among them.
    fn conditions(&self) -> &[Condition];
    /// The conditions, mutably.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// The generation the status was computed for.
    fn observed_generation(&self) -> Option<i64>;
    /// Sets the generation the status was computed for.
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

/// The fields every Knative status starts with (knative.dev/pkg `duck/v1.Status`); kinds'
/// status structs flatten it in, as Knative's Go types embed it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Generation this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (or `Succeeded`) and the kind's own conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Extra status annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Implements [`HasConditions`] for a status struct that flattens a [`Status`] as `base`.
macro_rules! impl_has_conditions {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::duck::HasConditions for $t {
            fn conditions(&self) -> &[$crate::duck::Condition] {
                &self.base.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<$crate::duck::Condition> {
                &mut self.base.conditions
            }
            fn observed_generation(&self) -> Option<i64> {
                self.base.observed_generation
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.base.observed_generation = generation;
            }
        }
    )*};
}
pub(crate) use impl_has_conditions;

/// The status every channel implementation carries (eventing `duck/v1.ChannelableStatus`):
/// conditions, address, subscribers' readiness and the dead-letter sink.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelableStatus {
    /// Conditions (`Ready` plus the implementation's own conditions (`Addressable`, `DeadLetterSinkResolved`, ...)), observed generation and annotations.
    #[serde(flatten)]
    pub base: crate::duck::Status,
    /// Where to send events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    /// All addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Addressable>,
    /// Readiness of each subscriber.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberStatus>,
    /// Resolved dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
    /// CA certificates of the dead-letter sink.
    #[serde(default, rename = "deadLetterSinkCACerts", skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_ca_certs: Option<String>,
    /// OIDC audience of the dead-letter sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_audience: Option<String>,
    /// EventPolicies applied to the channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppliedEventPolicy>,
}

impl_has_conditions!(ChannelableStatus);

/// The identity a component acts as when OIDC is enabled (`status.auth`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatus {
    /// The service account the object's requests are made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Several service accounts, when the object sends as more than one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_account_names: Vec<String>,
}

/// An EventPolicy applied to an addressable object (`status.policies[]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedEventPolicy {
    /// API version of the EventPolicy.
    #[serde(default)]
    pub api_version: String,
    /// Name of the EventPolicy.
    #[serde(default)]
    pub name: String,
}

/// Attributes added to every event a source emits (`spec.ceOverrides`, SRC-01).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudEventOverrides {
    /// Extension attributes to add (or override) on each event.
    #[serde(default)]
    pub extensions: BTreeMap<String, String>,
}

impl CloudEventOverrides {
    /// Extension names must be valid CloudEvents attribute names (`[a-z0-9]+`).
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for name in self.extensions.keys() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                errs.push(FieldError::new(
                    crate::key(&crate::field(path, "extensions"), name),
                    "invalid key name: CloudEvents extension names must consist of lower-case letters and digits",
                ));
            }
        }
        errs
    }
}

/// The type and source of events a source emits (`status.ceAttributes[]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CloudEventAttributes {
    /// The CloudEvents `type`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// The CloudEvents `source`.
    #[serde(default)]
    pub source: String,
}

/// A key of a Secret in the object's namespace (core `SecretKeySelector`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[serde(default)]
    pub name: String,
    /// Key within the Secret's data.
    #[serde(default)]
    pub key: String,
    /// Whether a missing Secret or key is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

impl SecretKeySelector {
    /// Name and key are required.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.name.is_empty() {
            errs.push(FieldError::missing(crate::field(path, "name")));
        }
        if self.key.is_empty() {
            errs.push(FieldError::missing(crate::field(path, "key")));
        }
        errs
    }
}

/// A value read from a Secret (`{secretKeyRef: {name, key}}`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretValueFromSource {
    /// The Secret key holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// A reference to any object (core `ObjectReference`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Kind of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// UID of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Resource version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// A path within the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
}

/// A label query (core `LabelSelector`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must all be present with these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Set-based requirements, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based requirement of a [`LabelSelector`].
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default)]
    pub operator: String,
    /// Values for `In` and `NotIn`; empty for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Keys must be qualified names; operators one of the four; values present exactly for
    /// `In`/`NotIn`.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = crate::meta::validate_labels(self.match_labels.as_ref(), &crate::field(path, "matchLabels"));
        for (i, req) in self.match_expressions.iter().enumerate() {
            let p = crate::index(&crate::field(path, "matchExpressions"), i);
            if let Err(e) = crate::meta::check_qualified_name(&req.key) {
                errs.push(FieldError::new(
                    crate::field(&p, "key"),
                    format!("invalid value {:?}: {e}", req.key),
                ));
            }
            match req.operator.as_str() {
                "In" | "NotIn" if req.values.is_empty() => errs.push(FieldError::new(
                    crate::field(&p, "values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                )),
                "Exists" | "DoesNotExist" if !req.values.is_empty() => errs.push(FieldError::new(
                    crate::field(&p, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => errs.push(FieldError::new(
                    crate::field(&p, "operator"),
                    format!("invalid value {other:?}: expected one of In, NotIn, Exists, DoesNotExist"),
                )),
            }
        }
        errs
    }

    /// True when the selector matches `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let by_label = self.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
        by_label
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator.as_str() {
                    "In" => value.is_some_and(|v| req.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !req.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// Which channel kind backs a Channel, Sequence or Parallel (`channelTemplate`, CH-01).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelTemplateSpec {
    /// API version of the channel kind, e.g. `messaging.knative.dev/v1`.
    #[serde(default)]
    pub api_version: String,
    /// The channel kind, e.g. `InMemoryChannel`.
    #[serde(default)]
    pub kind: String,
    /// The spec given to the backing channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub spec: Option<serde_json::Value>,
}

impl ChannelTemplateSpec {
    /// The default channel: an `InMemoryChannel` (Knative's `default-ch-webhook` default).
    pub fn in_memory() -> Self {
        Self {
            api_version: "messaging.knative.dev/v1".into(),
            kind: "InMemoryChannel".into(),
            spec: None,
        }
    }

    /// Kind and apiVersion are required.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.kind.is_empty() {
            errs.push(FieldError::missing(crate::field(path, "kind")));
        }
        if self.api_version.is_empty() {
            errs.push(FieldError::missing(crate::field(path, "apiVersion")));
        }
        if let Some(spec) = &self.spec {
            if !spec.is_object() {
                errs.push(FieldError::new(crate::field(path, "spec"), "expected an object"));
            }
        }
        errs
    }
}

/// One subscriber of a channel, written by the Subscription controller (CH-02).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriberSpec {
    /// Name of the Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// UID of the Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Generation of the Subscription this entry reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Resolved subscriber URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_uri: Option<String>,
    /// CA certificates of the subscriber.
    #[serde(default, rename = "subscriberCACerts", skip_serializing_if = "Option::is_none")]
    pub subscriber_ca_certs: Option<String>,
    /// OIDC audience of the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_audience: Option<String>,
    /// Resolved reply URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_uri: Option<String>,
    /// CA certificates of the reply destination.
    #[serde(default, rename = "replyCACerts", skip_serializing_if = "Option::is_none")]
    pub reply_ca_certs: Option<String>,
    /// OIDC audience of the reply destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_audience: Option<String>,
    /// Delivery options for this subscriber (dead-letter sink as a URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    /// The identity deliveries are made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

/// The channel's view of one subscriber (CH-02).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberStatus {
    /// UID of the Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Generation of the Subscription the channel acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `True`, `False` or `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Why the subscriber is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The identity deliveries are made as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

impl SubscriberSpec {
    /// A subscriber needs a subscriber or a reply URI.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.subscriber_uri.is_none() && self.reply_uri.is_none() {
            errs.push(FieldError::new(
                path.to_string(),
                "expected at least one of, got none: replyUri, subscriberUri",
            ));
        }
        if let Some(d) = &self.delivery {
            errs.extend(d.validate(&crate::field(path, "delivery")));
        }
        errs
    }
}

/// One condition of a Knative status being computed: `Ok` is True, `Err((reason, message))`
/// is False, or Unknown when `unknown` is set (not decided yet: waiting for something).
#[derive(Clone, Debug)]
pub struct ConditionCheck {
    /// The condition's type, e.g. `ChannelsReady`.
    pub type_: &'static str,
    /// Its outcome.
    pub outcome: Result<(), (String, String)>,
    /// Whether a failed outcome is `Unknown` rather than `False`.
    pub unknown: bool,
}

impl ConditionCheck {
    /// A condition that holds.
    pub fn ok(type_: &'static str) -> Self {
        Self {
            type_,
            outcome: Ok(()),
            unknown: false,
        }
    }

    /// A condition that does not hold, with the reason and a message.
    pub fn fail(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            outcome: Err((reason.to_string(), message.into())),
            unknown: false,
        }
    }

    /// A condition not known yet, with the reason and a message.
    pub fn unknown(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            unknown: true,
            ..Self::fail(type_, reason, message)
        }
    }
}

/// A Knative `conditions` array: the `checks` plus a summary `Ready` (unless given; False with
/// the first failure's reason), sorted by type, each keeping its `lastTransitionTime` from
/// `previous` while its status is unchanged, else stamped `now` (RFC 3339).
pub fn conditions(previous: &serde_json::Value, checks: Vec<ConditionCheck>, now: &str) -> serde_json::Value {
    use serde_json::{json, Value};
    // Ready is False with the first failure, else Unknown with the first unknown, else True.
    let first = |unknown: bool| {
        checks
            .iter()
            .filter(|c| c.unknown == unknown)
            .find_map(|c| c.outcome.as_ref().err().cloned())
    };
    let summary = match (first(false), first(true)) {
        (Some(failure), _) => ConditionCheck {
            type_: "Ready",
            outcome: Err(failure),
            unknown: false,
        },
        (None, Some(pending)) => ConditionCheck {
            type_: "Ready",
            outcome: Err(pending),
            unknown: true,
        },
        (None, None) => ConditionCheck::ok("Ready"),
    };
    let mut all = checks;
    if !all.iter().any(|c| c.type_ == "Ready") {
        all.push(summary);
    }
    let mut out: Vec<Value> = all
        .into_iter()
        .map(|c| {
            let (status, failure) = match c.outcome {
                Ok(()) => ("True", None),
                Err(failure) if c.unknown => ("Unknown", Some(failure)),
                Err(failure) => ("False", Some(failure)),
            };
            let before = previous.as_array().into_iter().flatten().find(|p| p["type"] == c.type_);
            let since = match before {
                Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
                _ => json!(now),
            };
            let mut v = json!({"type": c.type_, "status": status, "lastTransitionTime": since});
            if let Some((reason, message)) = failure {
                v["reason"] = json!(reason);
                v["message"] = json!(message);
            }
            v
        })
        .collect();
    out.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_follows_the_first_failure_and_times_move_only_on_change() {
        let previous = serde_json::json!([{"type": "ChannelsReady", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]);
        let out = conditions(
            &previous,
            vec![
                ConditionCheck::ok("ChannelsReady"),
                ConditionCheck::fail("SubscriptionsReady", "NotReady", "sub x"),
            ],
            "2026-12-02T00:00:00Z",
        );
        let types: Vec<_> = out.as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["ChannelsReady", "Ready", "SubscriptionsReady"]);
        assert_eq!(out[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(
            (out[1]["status"].as_str(), out[1]["reason"].as_str()),
            (Some("False"), Some("NotReady"))
        );
        assert_eq!(out[2]["lastTransitionTime"], "2026-12-02T00:00:00Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_iso8601_duration("PT0.2S").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_iso8601_duration("PT1M30S").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_iso8601_duration("P1D").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_iso8601_duration("PT168H").unwrap(), Duration::from_secs(168 * 3600));
        assert!(parse_iso8601_duration("0.2s").is_err());
        assert!(parse_iso8601_duration("PT").is_err());
        assert!(parse_iso8601_duration("PT5").is_err());
        // Too large for a Duration: an error, not a panic.
        assert_eq!(
            parse_iso8601_duration("P99999999999999999999Y").unwrap_err(),
            "not an ISO-8601 duration (out of range)"
        );
    }
}
