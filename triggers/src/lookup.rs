//! Attribute lookup by name, as Knative's filters see an event (TRG-05): context attributes
//! (with `schemaurl` and `datamediatype` aliases) first, then extensions.

use cloudevents::{AttributesReader, Event};

/// The string form of an attribute or extension, `None` when the event does not have it.
pub fn attribute_value(event: &Event, name: &str) -> Option<String> {
    match name {
        "specversion" => Some(event.specversion().to_string()),
        "id" => Some(event.id().to_string()),
        "type" => Some(event.ty().to_string()),
        "source" => Some(event.source().to_string()),
        "subject" => event.subject().map(str::to_string),
        "time" => event.time().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        "dataschema" | "schemaurl" => event.dataschema().map(|u| u.to_string()),
        "datacontenttype" => event.datacontenttype().map(str::to_string),
        "datamediatype" => event.datacontenttype().map(|c| c.split(';').next().unwrap_or("").trim().to_string()),
        _ => event.extension(name).map(|v| v.to_string()),
    }
}
