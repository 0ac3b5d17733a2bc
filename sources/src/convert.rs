//! What the conversions of several adapters share: CloudEvents that arrive already encoded,
//! in structured mode (a JSON body) or binary mode (attributes in the protocol's headers, the
//! body as data), and setting a body as an event's data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cloudevents::{AttributesReader, AttributesWriter, Event, EventBuilder, EventBuilderV10};

/// A message that claims to be a CloudEvent but is not a valid one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConversionError(pub String);

/// Whether a content type is a structured-mode CloudEvent (`application/cloudevents…`).
pub fn is_structured(content_type: &str) -> bool {
    content_type.to_ascii_lowercase().starts_with("application/cloudevents")
}

/// A structured-mode CloudEvent (JSON format); a missing `source` becomes `fallback_source`.
pub fn from_structured(body: &[u8], fallback_source: &str) -> Result<Event, ConversionError> {
    let mut event: Event =
        serde_json::from_slice(body).map_err(|e| ConversionError(format!("structured CloudEvent does not parse: {e}")))?;
    if event.source().to_string().is_empty() {
        event.set_source(fallback_source);
    }
    Ok(event)
}

/// Sets `body` as the event's data, with `content_type` as its `datacontenttype` (none when
/// absent); an empty body leaves the event without data.
pub fn set_data(event: &mut Event, content_type: Option<&str>, body: &[u8]) {
    if body.is_empty() {
        return;
    }
    match content_type {
        Some(ct) => {
            event.set_data(ct.to_string(), body.to_vec());
        }
        None => {
            event.set_data_unchecked(body.to_vec());
        }
    }
}

/// A binary-mode CloudEvent from its attributes (names without the protocol's prefix, in lower
/// case), the protocol's content type and the body. A missing `source` becomes
/// `fallback_source`.
pub fn from_attributes(
    attributes: &BTreeMap<String, String>,
    content_type: Option<&str>,
    body: &[u8],
    fallback_source: &str,
) -> Result<Event, ConversionError> {
    let required = |name: &str| {
        attributes
            .get(name)
            .filter(|v| !v.is_empty())
            .map(String::as_str)
            .ok_or_else(|| ConversionError(format!("CloudEvent attribute {name} is missing")))
    };
    let specversion = required("specversion")?;
    if specversion != "1.0" {
        return Err(ConversionError(format!("unsupported CloudEvents specversion {specversion:?}")));
    }
    let source = attributes
        .get("source")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(fallback_source);
    let mut builder = EventBuilderV10::new().id(required("id")?).ty(required("type")?).source(source);
    for (name, value) in attributes {
        builder = match name.as_str() {
            "specversion" | "id" | "type" | "source" | "datacontenttype" | "dataschema" => builder,
            "subject" => builder.subject(value.as_str()),
            "time" => {
                let t = DateTime::parse_from_rfc3339(value)
                    .map_err(|e| ConversionError(format!("CloudEvent attribute time {value:?}: {e}")))?;
                builder.time(t.with_timezone(&Utc))
            }
            extension => {
                if extension.is_empty() || !extension.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                    return Err(ConversionError(format!("CloudEvent attribute name {extension:?} is not [a-z0-9]+")));
                }
                builder.extension(extension, value.as_str())
            }
        };
    }
    let mut event = builder
        .build()
        .map_err(|e| ConversionError(format!("CloudEvent attributes: {e}")))?;
    if let Some(schema) = attributes.get("dataschema") {
        let url = url::Url::parse(schema).map_err(|e| ConversionError(format!("CloudEvent attribute dataschema {schema:?}: {e}")))?;
        event.set_dataschema(Some(url));
    }
    set_data(&mut event, content_type, body);
    Ok(event)
}

/// An event's data as bytes, whatever form it is held in (for the conversions' tests).
#[cfg(test)]
pub(crate) fn data_bytes(e: &Event) -> Option<Vec<u8>> {
    e.data().map(|d| match d {
        cloudevents::Data::Binary(b) => b.clone(),
        cloudevents::Data::String(s) => s.clone().into_bytes(),
        cloudevents::Data::Json(j) => serde_json::to_vec(j).expect("JSON data serializes"),
    })
}
