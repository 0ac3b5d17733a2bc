//! The `cesql` dialect: a CloudEvents SQL expression that must evaluate to `true`.

use cloudevents::event::{ExtensionValue, SpecVersion};
use cloudevents::{AttributesReader, Event};
use sluice_cesql::{EventContext, Expression, Value};

use crate::lookup::format_time;
use sluice_crds::FieldError;

use crate::{Filter, FilterError, FilterResult};

/// Passes when the expression evaluates to boolean `true` without any error; any error
/// (a missing attribute, a failed cast, …) or any other value fails (CESQL spec §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CesqlFilter {
    expression: Expression,
}

impl CesqlFilter {
    /// Parses `expression`, found at `path` (used in errors).
    pub fn new(expression: &str, path: &str) -> Result<Self, FilterError> {
        sluice_cesql::parse(expression)
            .map(|expression| Self { expression })
            .map_err(|e| FilterError {
                errors: vec![FieldError::new(path, format!("invalid cesql expression: {e}"))],
            })
    }

    /// The parsed expression.
    pub fn expression(&self) -> &Expression {
        &self.expression
    }
}

impl Filter for CesqlFilter {
    fn filter(&self, event: &Event) -> FilterResult {
        if self.expression.evaluate(&CloudEventContext::new(event)).is_true_without_errors() {
            FilterResult::Pass
        } else {
            FilterResult::Fail
        }
    }
}

/// A CloudEvent as a CESQL expression sees it (CESQL spec §3.2): the context attributes of
/// its spec version as strings (the time in RFC 3339), extensions with their own type
/// (integers outside 32 bits as strings).
#[derive(Clone, Copy, Debug)]
pub struct CloudEventContext<'a> {
    event: &'a Event,
}

impl<'a> CloudEventContext<'a> {
    /// A view of `event`.
    pub fn new(event: &'a Event) -> Self {
        Self { event }
    }
}

impl EventContext for CloudEventContext<'_> {
    fn attribute(&self, name: &str) -> Option<Value> {
        let event = self.event;
        let text = |s: &str| Some(Value::from(s));
        match (name, event.specversion()) {
            ("specversion", version) => text(version.as_str()),
            ("id", _) => text(event.id()),
            ("source", _) => text(event.source()),
            ("type", _) => text(event.ty()),
            ("subject", _) => event.subject().map(Value::from),
            ("time", _) => event.time().map(|time| Value::String(format_time(time))),
            ("datacontenttype", _) => event.datacontenttype().map(Value::from),
            ("dataschema", SpecVersion::V10) | ("schemaurl", SpecVersion::V03) => event.dataschema().map(|url| Value::from(url.as_str())),
            _ => event.extension(name).map(extension_value),
        }
    }
}

fn extension_value(value: &ExtensionValue) -> Value {
    match value {
        ExtensionValue::String(s) => Value::from(s.as_str()),
        ExtensionValue::Boolean(b) => Value::Boolean(*b),
        ExtensionValue::Integer(i) => i32::try_from(*i).map_or_else(|_| Value::String(i.to_string()), Value::Integer),
    }
}

#[cfg(test)]
mod tests {
    use cloudevents::{EventBuilder, EventBuilderV03, EventBuilderV10};
    use sluice_cesql::{EventContext, Value};

    use super::CloudEventContext;

    #[test]
    fn attribute_types() {
        let event = EventBuilderV10::new()
            .id("1")
            .ty("t")
            .source("http://example.com/src")
            .time("2020-01-02T03:04:05.250Z")
            .data_with_schema("text/plain", "http://example.com/schema", "x")
            .extension("small", 7i64)
            .extension("big", 1i64 << 40)
            .extension("flag", true)
            .extension("text", "hi")
            .build()
            .expect("valid event");
        let context = CloudEventContext::new(&event);
        assert_eq!(context.attribute("specversion"), Some(Value::from("1.0")));
        assert_eq!(context.attribute("source"), Some(Value::from("http://example.com/src")));
        assert_eq!(context.attribute("time"), Some(Value::from("2020-01-02T03:04:05.250Z")));
        assert_eq!(context.attribute("dataschema"), Some(Value::from("http://example.com/schema")));
        assert_eq!(context.attribute("schemaurl"), None, "not an attribute of a 1.0 event");
        assert_eq!(context.attribute("datacontenttype"), Some(Value::from("text/plain")));
        assert_eq!(context.attribute("small"), Some(Value::Integer(7)));
        assert_eq!(context.attribute("big"), Some(Value::from("1099511627776")));
        assert_eq!(context.attribute("flag"), Some(Value::Boolean(true)));
        assert_eq!(context.attribute("text"), Some(Value::from("hi")));
        assert_eq!(context.attribute("subject"), None);
    }

    #[test]
    fn version_0_3_names_its_schema_schemaurl() {
        let event = EventBuilderV03::new()
            .id("1")
            .ty("t")
            .source("/s")
            .data_with_schema("text/plain", "http://example.com/schema", "x")
            .build()
            .expect("valid event");
        let context = CloudEventContext::new(&event);
        assert_eq!(context.attribute("schemaurl"), Some(Value::from("http://example.com/schema")));
        assert_eq!(context.attribute("dataschema"), None);
    }
}
