//! Attribute lookup by name as Knative's filters see an event (TRG-05).

use chrono::{DateTime, SecondsFormat, Utc};
use cloudevents::{AttributesReader, Event};

/// The string form of the attribute `name` of `event`, or `None` when the event does not have
/// it.
///
/// Context attributes come first: `specversion`, `id`, `type`, `source`, `subject`, `time`
/// (RFC 3339, UTC), `dataschema` (also as its CloudEvents 0.3 name `schemaurl`),
/// `datacontenttype`, and `datamediatype` (the media type of `datacontenttype`, without
/// parameters). Any other name is an extension, in its string form (`42`, `true`).
pub fn attribute_value(event: &Event, name: &str) -> Option<String> {
    match name {
        "specversion" => Some(event.specversion().to_string()),
        "id" => Some(event.id().to_string()),
        "type" => Some(event.ty().to_string()),
        "source" => Some(event.source().to_string()),
        "subject" => event.subject().map(str::to_string),
        "time" => event.time().map(format_time),
        "dataschema" | "schemaurl" => event.dataschema().map(|url| url.to_string()),
        "datacontenttype" => event.datacontenttype().map(str::to_string),
        "datamediatype" => event.datacontenttype().map(media_type),
        _ => event.extension(name).map(|value| value.to_string()),
    }
}

/// A timestamp as RFC 3339 text in UTC, with as many fractional digits as it has.
pub(crate) fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The media type of a content type: `application/json; charset=utf-8` → `application/json`.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use cloudevents::{EventBuilder, EventBuilderV03, EventBuilderV10};

    use super::attribute_value;

    #[test]
    fn context_attributes_aliases_and_extensions() {
        let event = EventBuilderV10::new()
            .id("1")
            .ty("com.example")
            .source("/src")
            .subject("sub")
            .time("2018-04-26T14:48:09+02:00")
            .data_with_schema("Application/JSON; charset=utf-8", "http://schema.example/v1", "{}")
            .extension("count", 42i64)
            .extension("flag", false)
            .build()
            .expect("valid event");
        let value = |name| attribute_value(&event, name);
        assert_eq!(value("specversion").as_deref(), Some("1.0"));
        assert_eq!(value("time").as_deref(), Some("2018-04-26T12:48:09Z"));
        assert_eq!(value("dataschema").as_deref(), Some("http://schema.example/v1"));
        assert_eq!(value("schemaurl"), value("dataschema"));
        assert_eq!(value("datacontenttype").as_deref(), Some("Application/JSON; charset=utf-8"));
        assert_eq!(value("datamediatype").as_deref(), Some("application/json"));
        assert_eq!(value("count").as_deref(), Some("42"));
        assert_eq!(value("flag").as_deref(), Some("false"));
        assert_eq!(value("missing"), None);
    }

    #[test]
    fn optional_attributes_can_be_absent() {
        let event = EventBuilderV03::new().id("1").ty("t").source("/s").build().expect("valid event");
        assert_eq!(attribute_value(&event, "specversion").as_deref(), Some("0.3"));
        for name in ["subject", "time", "dataschema", "schemaurl", "datacontenttype", "datamediatype"] {
            assert_eq!(attribute_value(&event, name), None, "{name}");
        }
    }
}
