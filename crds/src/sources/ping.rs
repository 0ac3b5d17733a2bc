//! PingSource (`sources.knative.dev/v1`): emits a fixed event on a cron schedule (PING-01/02).

use base64::Engine;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cron::CronSchedule;
use super::{namespace_of, source_status, validate_source};
use crate::duck::{CloudEventOverrides, Destination};
use crate::meta::{validate_object_meta, NameRule};
use crate::{Admission, FieldError};

/// The schedule of PingSources without one: every minute.
pub const DEFAULT_SCHEDULE: &str = "* * * * *";
/// The CloudEvents type of ping events.
pub const EVENT_TYPE: &str = "dev.knative.sources.ping";

/// The desired state of a PingSource.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sources.knative.dev",
    version = "v1",
    kind = "PingSource",
    doc = "PingSource: a fixed event on a cron schedule.",
    namespaced,
    status = "PingSourceStatus",
    derive = "PartialEq",
    category = "all",
    category = "knative",
    category = "sources",
    label("eventing.knative.dev/source", "true"),
    label("duck.knative.dev/source", "true"),
    annotation("registry.knative.dev/eventTypes", r#"[{"type":"dev.knative.sources.ping"}]"#),
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PingSourceSpec {
    /// Cron schedule, 5 or 6 fields (default `* * * * *`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// IANA time zone the schedule is in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `datacontenttype` of the events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Event data as text (exclusive with `dataBase64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Event data, base64-encoded (exclusive with `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    /// Where events go (required).
    #[serde(default)]
    pub sink: Destination,
    /// Extension attributes added to every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_overrides: Option<CloudEventOverrides>,
}

source_status! {
    /// Status of a PingSource (`SinkProvided`, `Deployed`, `OIDCIdentityCreated`).
    PingSourceStatus {}
}

impl PingSourceSpec {
    /// The parsed schedule (call after validation succeeded).
    pub fn parsed_schedule(&self) -> Result<CronSchedule, super::cron::CronError> {
        let schedule = if self.schedule.is_empty() {
            DEFAULT_SCHEDULE
        } else {
            &self.schedule
        };
        CronSchedule::parse(schedule)
    }

    /// The event data as bytes: `data`, or `dataBase64` decoded.
    pub fn data_bytes(&self) -> Option<Vec<u8>> {
        match (&self.data, &self.data_base64) {
            (Some(d), _) if !d.is_empty() => Some(d.as_bytes().to_vec()),
            (_, Some(b)) if !b.is_empty() => base64::engine::general_purpose::STANDARD.decode(b).ok(),
            _ => None,
        }
    }
}

fn check_json_object(data: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(other) => Err(format!("expected a JSON object, got {}", json_kind(&other))),
        Err(e) => Err(e.to_string()),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Admission for PingSource {
    /// Defaults the schedule to every minute and the sink's namespace.
    fn set_defaults(&mut self) {
        if self.spec.schedule.is_empty() {
            self.spec.schedule = DEFAULT_SCHEDULE.into();
        }
        let ns = namespace_of(&self.metadata);
        self.spec.sink.set_default_namespace(&ns);
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&self.metadata, NameRule::Dns1123Subdomain);
        let spec = &self.spec;
        match spec.parsed_schedule() {
            Err(e) => errs.push(FieldError::new("spec.schedule", format!("invalid value: {e}"))),
            Ok(s) => {
                if let Some(tz) = s.timezone.as_deref() {
                    if let Err(e) = super::cron::time_zone(tz) {
                        errs.push(FieldError::new("spec.schedule", format!("invalid value: {e}")));
                    }
                }
            }
        }
        if let Some(tz) = spec.timezone.as_deref().filter(|t| !t.is_empty()) {
            if let Err(e) = super::cron::time_zone(tz) {
                errs.push(FieldError::new("spec.timezone", format!("invalid value: {e}")));
            }
        }
        errs.extend(validate_source(&spec.sink, spec.ce_overrides.as_ref()));
        let data = spec.data.as_deref().filter(|d| !d.is_empty());
        let data64 = spec.data_base64.as_deref().filter(|d| !d.is_empty());
        let json = spec.content_type.as_deref() == Some("application/json");
        match (data, data64) {
            (Some(_), Some(_)) => errs.push(FieldError::new("spec", "expected exactly one, got both: data, dataBase64")),
            (None, Some(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                Err(e) => errs.push(FieldError::new("spec.dataBase64", format!("invalid value: {e}"))),
                Ok(bytes) if json => {
                    if let Err(e) = check_json_object(&bytes) {
                        errs.push(FieldError::new("spec.dataBase64", format!("invalid value: {e}")));
                    }
                }
                Ok(_) => {}
            },
            (Some(d), None) if json => {
                if let Err(e) = check_json_object(d.as_bytes()) {
                    errs.push(FieldError::new("spec.data", format!("invalid value: {e}")));
                }
            }
            _ => {}
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(spec: &str) -> PingSource {
        let mut p: PingSource = serde_yaml::from_str(&format!(
            "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {{name: p}}\nspec:\n  sink: {{uri: 'http://x/'}}\n{spec}"
        ))
        .unwrap();
        p.set_defaults();
        p
    }

    #[test]
    fn defaults_and_valid() {
        let p = ping("");
        assert_eq!(p.spec.schedule, "* * * * *");
        assert!(p.validate().is_empty());
        assert!(
            ping("  schedule: '*/1 * * * *'\n  timezone: Europe/Paris\n  contentType: application/json\n  data: '{\"a\": 1}'\n")
                .validate()
                .is_empty()
        );
    }

    #[test]
    fn schedule_and_timezone() {
        assert_eq!(ping("  schedule: '@every 1m'\n").validate()[0].path, "spec.schedule");
        assert_eq!(ping("  schedule: '* * *'\n").validate()[0].path, "spec.schedule");
        assert_eq!(ping("  timezone: Mars/Olympus\n").validate()[0].path, "spec.timezone");
    }

    #[test]
    fn data_rules() {
        let both = ping("  data: a\n  dataBase64: YQ==\n").validate();
        assert_eq!(
            both,
            vec![FieldError::new("spec", "expected exactly one, got both: data, dataBase64")]
        );
        assert_eq!(ping("  dataBase64: '!!notbase64'\n").validate()[0].path, "spec.dataBase64");
        assert_eq!(
            ping("  contentType: application/json\n  data: '[1]'\n").validate()[0].path,
            "spec.data"
        );
        assert_eq!(
            ping("  contentType: application/json\n  dataBase64: 'WzFd'\n").validate()[0].path,
            "spec.dataBase64"
        );
        assert!(ping("  contentType: text/plain\n  data: '[1]'\n").validate().is_empty());
    }

    #[test]
    fn sink_required() {
        let mut p = ping("");
        p.spec.sink = Destination::default();
        assert_eq!(p.validate()[0].path, "spec.sink");
    }
}
