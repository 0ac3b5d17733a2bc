//! The CloudEvents HTTP protocol binding (HTTP-01..04): decoding requests in binary, structured
//! and batch mode, and encoding events in binary or structured mode.
//!
//! The event model and the JSON format come from `cloudevents-sdk`; this module adds what the
//! SDK's HTTP binding leaves out: batch mode, case-insensitive media types, percent-encoding of
//! header values, and the validation Knative applies at ingress.

use bytes::Bytes;
use cloudevents::event::{AttributeValue, ExtensionValue, SpecVersion};
use cloudevents::{AttributesReader, AttributesWriter, Data, Event};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

/// Media type of a structured-mode JSON event.
pub const STRUCTURED_JSON: &str = "application/cloudevents+json";
/// Media type of a batch of JSON events.
pub const BATCH_JSON: &str = "application/cloudevents-batch+json";

/// Why an HTTP message is not a valid CloudEvent.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// Neither a structured content type nor a `ce-specversion` header.
    #[error("not a cloudevent: no ce-specversion header and content-type is not application/cloudevents")]
    NotAnEvent,
    /// The `ce-specversion` header names an unknown version.
    #[error("unsupported specversion {0:?} (supported: 1.0, 0.3)")]
    SpecVersion(String),
    /// A header value or attribute could not be decoded.
    #[error("invalid attribute {attribute}: {reason}")]
    Attribute {
        /// The attribute name.
        attribute: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The structured or batch body is not valid JSON for a CloudEvent.
    #[error("invalid {mode} event body: {reason}")]
    Body {
        /// `structured` or `batch`.
        mode: &'static str,
        /// The JSON or format error.
        reason: String,
    },
    /// The SDK rejected the binary-mode message.
    #[error("invalid binary-mode event: {0}")]
    Binary(String),
    /// An event could not be encoded.
    #[error("cannot encode event: {0}")]
    Encode(String),
}

/// The content mode of an incoming message (HTTP-01).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Attributes in `ce-` headers, data in the body.
    Binary,
    /// One JSON event in the body.
    Structured,
    /// A JSON array of events in the body.
    Batch,
}

/// Detects the content mode from the `Content-Type` header (case-insensitive).
pub fn detect_mode(headers: &HeaderMap) -> Mode {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start()
        .to_ascii_lowercase();
    if ct.starts_with("application/cloudevents-batch") {
        Mode::Batch
    } else if ct.starts_with("application/cloudevents") {
        Mode::Structured
    } else {
        Mode::Binary
    }
}

/// Decodes an HTTP message into one event (binary or structured) or several (batch).
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Vec<Event>, BindingError> {
    let events = match detect_mode(headers) {
        Mode::Batch => {
            let values: Vec<serde_json::Value> = serde_json::from_slice(&body)
                .map_err(|e| BindingError::Body { mode: "batch", reason: e.to_string() })?;
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value::<Event>(v).map_err(|e| BindingError::Body {
                        mode: "batch",
                        reason: format!("event [{i}]: {e}"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Mode::Structured => vec![serde_json::from_slice::<Event>(&body)
            .map_err(|e| BindingError::Body { mode: "structured", reason: e.to_string() })?],
        Mode::Binary => vec![decode_binary(headers, body)?],
    };
    for e in &events {
        validate(e)?;
    }
    Ok(events)
}

/// Decodes a binary-mode message, percent-decoding header values as HTTP-02 requires.
fn decode_binary(headers: &HeaderMap, body: Bytes) -> Result<Event, BindingError> {
    let Some(sv) = headers.get("ce-specversion") else {
        return Err(BindingError::NotAnEvent);
    };
    let sv = sv.to_str().unwrap_or("");
    if sv != "1.0" && sv != "0.3" {
        return Err(BindingError::SpecVersion(sv.to_string()));
    }
    if headers.contains_key("ce-datacontenttype") {
        return Err(BindingError::Attribute {
            attribute: "datacontenttype".into(),
            reason: "must be sent as Content-Type, not ce-datacontenttype".into(),
        });
    }
    let needs_decoding = |v: &HeaderValue| v.as_bytes().iter().any(|b| *b == b'%' || *b == b'"' || !(0x20..0x7f).contains(b));
    if !headers.iter().any(|(k, v)| k.as_str().starts_with("ce-") && needs_decoding(v)) {
        return cloudevents::binding::http::to_event(headers, body.to_vec()).map_err(|e| BindingError::Binary(e.to_string()));
    }
    // Values that need decoding cannot go through the SDK as they are: pass a plain stand-in
    // and patch the decoded value afterwards.
    let mut plain = HeaderMap::with_capacity(headers.len());
    let mut encoded: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let key = name.as_str();
        if let Some(attr) = key.strip_prefix("ce-") {
            if needs_decoding(value) {
                let decoded = decode_header_value(value.as_bytes()).map_err(|reason| BindingError::Attribute {
                    attribute: attr.to_string(),
                    reason,
                })?;
                encoded.push((attr.to_string(), decoded));
                plain.append(name.clone(), HeaderValue::from_static("x"));
                continue;
            }
        }
        if key == CONTENT_TYPE.as_str() || key.starts_with("ce-") {
            plain.append(name.clone(), value.clone());
        }
    }
    let mut event = cloudevents::binding::http::to_event(&plain, body.to_vec())
        .map_err(|e| BindingError::Binary(e.to_string()))?;
    for (attr, value) in encoded {
        set_attribute(&mut event, &attr, value)?;
    }
    Ok(event)
}

/// Sets a context attribute or extension from its string form.
fn set_attribute(event: &mut Event, name: &str, value: String) -> Result<(), BindingError> {
    let bad = |reason: String| BindingError::Attribute { attribute: name.to_string(), reason };
    match name {
        "id" => {
            event.set_id(value);
        }
        "type" => {
            event.set_type(value);
        }
        "source" => {
            event.set_source(value);
        }
        "subject" => {
            event.set_subject(Some(value));
        }
        "time" => {
            let t = chrono::DateTime::parse_from_rfc3339(&value).map_err(|e| bad(e.to_string()))?;
            event.set_time(Some(t.with_timezone(&chrono::Utc)));
        }
        "dataschema" | "schemaurl" => {
            let u = url::Url::parse(&value).map_err(|e| bad(e.to_string()))?;
            event.set_dataschema(Some(u));
        }
        _ => event.set_extension(name, value),
    }
    Ok(())
}

/// Undoes RFC 7230 quoting and one round of percent-encoding, rejecting invalid UTF-8.
fn decode_header_value(raw: &[u8]) -> Result<String, String> {
    let unquoted: Vec<u8> = if raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 1;
        while i < raw.len() - 1 {
            if raw[i] == b'\\' && i + 1 < raw.len() - 1 {
                i += 1;
            }
            out.push(raw[i]);
            i += 1;
        }
        out
    } else {
        raw.to_vec()
    };
    let mut out = Vec::with_capacity(unquoted.len());
    let mut i = 0;
    while i < unquoted.len() {
        if unquoted[i] == b'%' && i + 2 < unquoted.len() {
            let hex = std::str::from_utf8(&unquoted[i + 1..i + 3]).map_err(|_| "bad percent-encoding")?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| format!("bad percent-encoding %{hex}"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(unquoted[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "invalid utf-8 after percent-decoding".to_string())
}

/// Percent-encodes a header value per HTTP-02 (space, `"`, `%` and anything outside printable ASCII).
pub fn encode_header_value(value: &str) -> std::borrow::Cow<'_, str> {
    if value.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'%') {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Checks what Knative's `event.Validate()` checks beyond the SDK: non-empty required
/// attributes and well-formed extension names.
pub fn validate(event: &Event) -> Result<(), BindingError> {
    let missing = |a: &str| BindingError::Attribute { attribute: a.into(), reason: "must not be empty".into() };
    if event.id().is_empty() {
        return Err(missing("id"));
    }
    if event.ty().is_empty() {
        return Err(missing("type"));
    }
    if event.source().is_empty() {
        return Err(missing("source"));
    }
    for (name, _) in event.iter_extensions() {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(BindingError::Attribute {
                attribute: name.to_string(),
                reason: "extension names must be lower-case letters and digits".into(),
            });
        }
    }
    Ok(())
}

/// The string form of an attribute value as it goes into a header.
pub fn attribute_string<'a>(value: &AttributeValue<'a>) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow;
    match value {
        AttributeValue::String(s) => Cow::Borrowed(s),
        AttributeValue::URIRef(u) => Cow::Borrowed(u.as_str()),
        AttributeValue::URI(u) => Cow::Borrowed(u.as_str()),
        AttributeValue::SpecVersion(v) => Cow::Owned(v.as_str().to_string()),
        AttributeValue::Time(t) => Cow::Owned(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        other => Cow::Owned(other.to_string()),
    }
}

/// The data of an event as bytes.
pub fn data_bytes(event: &Event) -> Bytes {
    match event.data() {
        None => Bytes::new(),
        Some(Data::Binary(b)) => Bytes::copy_from_slice(b),
        Some(Data::String(s)) => Bytes::copy_from_slice(s.as_bytes()),
        Some(Data::Json(v)) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    }
}

/// The `ce-` header of an attribute; the context attributes' names are static.
fn header_name(name: &str) -> Result<HeaderName, BindingError> {
    let fixed = match name {
        "specversion" => "ce-specversion",
        "id" => "ce-id",
        "type" => "ce-type",
        "source" => "ce-source",
        "subject" => "ce-subject",
        "time" => "ce-time",
        "dataschema" => "ce-dataschema",
        "schemaurl" => "ce-schemaurl",
        _ => {
            // `ce-` + the extension name, assembled on the stack (extension names are at most
            // 20 characters by the spec; longer ones take the allocating path).
            let invalid = |e: http::header::InvalidHeaderName| BindingError::Encode(format!("{name}: {e}"));
            let mut buf = [0u8; 64];
            let Some(slot) = buf.get_mut(3..3 + name.len()) else {
                return HeaderName::from_bytes(format!("ce-{name}").as_bytes()).map_err(invalid);
            };
            slot.copy_from_slice(name.as_bytes());
            buf[..3].copy_from_slice(b"ce-");
            return HeaderName::from_bytes(&buf[..3 + name.len()]).map_err(invalid);
        }
    };
    Ok(HeaderName::from_static(fixed))
}

/// Encodes an event in binary mode: `ce-` headers plus the data as body.
pub fn encode_binary(event: &Event, headers: &mut HeaderMap) -> Result<Bytes, BindingError> {
    for (name, value) in event.iter() {
        if name == "datacontenttype" {
            let v = HeaderValue::from_str(&attribute_string(&value))
                .map_err(|e| BindingError::Encode(format!("datacontenttype: {e}")))?;
            headers.insert(CONTENT_TYPE, v);
            continue;
        }
        let header = header_name(name)?;
        if let AttributeValue::SpecVersion(v) = value {
            let v = if v == SpecVersion::V03 { "0.3" } else { "1.0" };
            headers.insert(header, HeaderValue::from_static(v));
            continue;
        }
        let v = HeaderValue::from_str(&encode_header_value(&attribute_string(&value)))
            .map_err(|e| BindingError::Encode(format!("{name}: {e}")))?;
        headers.insert(header, v);
    }
    Ok(data_bytes(event))
}

/// Encodes an event in structured JSON mode, setting the content type.
pub fn encode_structured(event: &Event, headers: &mut HeaderMap) -> Result<Bytes, BindingError> {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(STRUCTURED_JSON));
    serde_json::to_vec(event).map(Bytes::from).map_err(|e| BindingError::Encode(e.to_string()))
}

/// Reads an integer extension that may have travelled as a string (e.g. `knativebrokerttl`).
pub fn integer_extension(event: &Event, name: &str) -> Option<Result<i64, String>> {
    event.extension(name).map(|v| match v {
        ExtensionValue::Integer(i) => Ok(*i),
        ExtensionValue::String(s) => s.trim().parse::<i64>().map_err(|_| format!("{name} is not an integer: {s:?}")),
        ExtensionValue::Boolean(b) => Err(format!("{name} is not an integer: {b}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::EventBuilder;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn binary_mode_with_percent_encoding() {
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-type", "t"),
            ("ce-source", "/s"),
            ("ce-subject", "caf%C3%A9 au lait"),
            ("ce-myext", "\"quoted%20value\""),
            ("content-type", "text/plain"),
        ]);
        let events = decode(&h, Bytes::from_static(b"hello")).unwrap();
        let e = &events[0];
        assert_eq!(e.subject(), Some("café au lait"));
        assert_eq!(e.extension("myext").unwrap().to_string(), "quoted value");
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        assert_eq!(data_bytes(e), Bytes::from_static(b"hello"));
    }

    #[test]
    fn structured_mode_is_case_insensitive() {
        let h = headers(&[("content-type", "Application/CloudEvents+JSON; charset=UTF-8")]);
        let body = br#"{"specversion":"1.0","id":"a","type":"t","source":"/s","data":{"x":1}}"#;
        let events = decode(&h, Bytes::from_static(body)).unwrap();
        assert_eq!(events[0].id(), "a");
    }

    #[test]
    fn batch_mode_and_v03() {
        let h = headers(&[("content-type", BATCH_JSON)]);
        let body = br#"[{"specversion":"1.0","id":"a","type":"t","source":"/s"},{"specversion":"0.3","id":"b","type":"t","source":"/s"}]"#;
        let events = decode(&h, Bytes::from_static(body)).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].specversion().as_str(), "0.3");
    }

    #[test]
    fn rejects_bad_specversion_and_missing_fields() {
        let h = headers(&[("ce-specversion", "9000.1"), ("ce-id", "1"), ("ce-type", "t"), ("ce-source", "/s")]);
        assert!(matches!(decode(&h, Bytes::new()), Err(BindingError::SpecVersion(_))));
        let h = headers(&[("content-type", "application/json")]);
        assert!(matches!(decode(&h, Bytes::new()), Err(BindingError::NotAnEvent)));
        let h = headers(&[("content-type", STRUCTURED_JSON)]);
        let err = decode(&h, Bytes::from_static(br#"{"specversion":"1.0","id":"a"}"#)).unwrap_err();
        assert!(err.to_string().contains("structured"), "{err}");
    }

    #[test]
    fn binary_round_trip_encodes_non_ascii() {
        let e = cloudevents::EventBuilderV10::new()
            .id("1")
            .ty("t")
            .source("/s")
            .subject("café")
            .extension("count", 3i64)
            .data("application/json", serde_json::json!({"a": 1}))
            .build()
            .unwrap();
        let mut h = HeaderMap::new();
        let body = encode_binary(&e, &mut h).unwrap();
        assert_eq!(h["ce-subject"], "caf%C3%A9");
        assert_eq!(h["content-type"], "application/json");
        let back = decode(&h, body).unwrap().remove(0);
        assert_eq!(back.subject(), Some("café"));
        assert_eq!(back.extension("count").unwrap().to_string(), "3");
    }
}
