//! The CloudEvents HTTP protocol binding (HTTP-01..04): decoding requests in binary, structured
//! and batch mode, and encoding events in binary or structured mode.
//!
//! The event model and the JSON format come from `cloudevents-sdk`; this module adds what the
//! SDK's HTTP binding leaves out: batch mode, case-insensitive media types, percent-encoding of
//! header values, and the validation Knative applies at ingress.

use base64::Engine;
use bytes::Bytes;
use cloudevents::event::{AttributeValue, ExtensionValue, SpecVersion};
use cloudevents::{AttributesReader, AttributesWriter, Data, Event, EventBuilder};
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
        .map(|v| v.as_bytes().trim_ascii_start())
        .unwrap_or_default();
    let starts_with = |prefix: &str| ct.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()));
    if starts_with("application/cloudevents-batch") {
        Mode::Batch
    } else if starts_with("application/cloudevents") {
        Mode::Structured
    } else {
        Mode::Binary
    }
}

/// Decodes an HTTP message into one event (binary or structured) or several (batch).
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Vec<Event>, BindingError> {
    let events = match detect_mode(headers) {
        Mode::Batch => {
            let values: Vec<serde_json::Value> = serde_json::from_slice(&body).map_err(|e| BindingError::Body {
                mode: "batch",
                reason: e.to_string(),
            })?;
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value::<Event>(normalize_structured(v)).map_err(|e| BindingError::Body {
                        mode: "batch",
                        reason: format!("event [{i}]: {e}"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Mode::Structured => {
            let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| BindingError::Body {
                mode: "structured",
                reason: e.to_string(),
            })?;
            vec![
                serde_json::from_value::<Event>(normalize_structured(value)).map_err(|e| BindingError::Body {
                    mode: "structured",
                    reason: e.to_string(),
                })?,
            ]
        }
        Mode::Binary => vec![decode_binary(headers, body)?],
    };
    for e in &events {
        validate(e)?;
    }
    Ok(events)
}

/// Prepares a JSON-format event for the SDK's decoder: member names are lower-cased, as the
/// Go SDK reads them (an extension written `MyExt` is the attribute `myext`), and inline JSON
/// data whose media type the SDK does not recognise as JSON (`application/x+json;
/// charset=utf-8`, with a parameter) is kept as the same bytes instead of being refused.
fn normalize_structured(value: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(mut map) = value else { return value };
    if map.keys().any(|k| k.bytes().any(|b| b.is_ascii_uppercase())) {
        map = map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    }
    let sdk_reads_as_json = |ct: &str| ct.starts_with("application/json") || ct.starts_with("text/json") || ct.ends_with("+json");
    let inline_non_string = map.get("data").is_some_and(|d| !d.is_string() && !d.is_null());
    if let (true, Some(serde_json::Value::String(ct))) = (inline_non_string, map.get("datacontenttype")) {
        if !sdk_reads_as_json(ct) {
            let data = map.remove("data").unwrap_or_default();
            let bytes = serde_json::to_vec(&data).unwrap_or_default();
            map.insert("data_base64".into(), base64::engine::general_purpose::STANDARD.encode(bytes).into());
        }
    }
    serde_json::Value::Object(map)
}

/// Decodes a binary-mode message (HTTP-02): the `ce-` headers, percent-decoded, become the
/// context attributes and extensions, `Content-Type` the `datacontenttype`, the body the data.
///
/// Attributes are collected from the headers in one pass and handed to the SDK's event builder
/// for the message's spec version. (The SDK's own HTTP deserializer does the same mapping but
/// formats every value through `Display` twice on the way, and it cannot percent-decode.)
fn decode_binary(headers: &HeaderMap, body: Bytes) -> Result<Event, BindingError> {
    let Some(sv) = headers.get("ce-specversion") else {
        return Err(BindingError::NotAnEvent);
    };
    let version = match sv.as_bytes() {
        b"1.0" => SpecVersion::V10,
        b"0.3" => SpecVersion::V03,
        other => return Err(BindingError::SpecVersion(String::from_utf8_lossy(other).into_owned())),
    };
    let mut attrs = BinaryAttributes::default();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else { continue };
        let field = match (attr, &version) {
            ("specversion", _) => continue,
            ("datacontenttype", _) => {
                return Err(BindingError::Attribute {
                    attribute: "datacontenttype".into(),
                    reason: "must be sent as Content-Type, not ce-datacontenttype".into(),
                })
            }
            ("id", _) => &mut attrs.id,
            ("type", _) => &mut attrs.ty,
            ("source", _) => &mut attrs.source,
            ("subject", _) => &mut attrs.subject,
            ("time", _) => &mut attrs.time,
            ("dataschema", SpecVersion::V10) | ("schemaurl", SpecVersion::V03) => &mut attrs.dataschema,
            _ => {
                attrs.extensions.push((attr, header_string(attr, value)?));
                continue;
            }
        };
        // As with the SDK, a repeated header's last value wins.
        *field = Some(header_string(attr, value)?);
    }
    let datacontenttype = match headers.get(CONTENT_TYPE) {
        Some(v) => Some(v.to_str().map_err(|_| BindingError::Attribute {
            attribute: "datacontenttype".into(),
            reason: "Content-Type is not visible ASCII".into(),
        })?),
        None => None,
    };
    let required = |value: Option<String>, attribute: &str| {
        value.ok_or_else(|| BindingError::Attribute {
            attribute: attribute.into(),
            reason: format!("missing (no ce-{attribute} header)"),
        })
    };
    let (id, ty, source) = (
        required(attrs.id, "id")?,
        required(attrs.ty, "type")?,
        required(attrs.source, "source")?,
    );
    let time = match attrs.time {
        Some(t) => Some(parse_time(&t).map_err(|reason| BindingError::Attribute {
            attribute: "time".into(),
            reason,
        })?),
        None => None,
    };
    let dataschema = match attrs.dataschema {
        Some(u) => Some(url::Url::parse(&u).map_err(|e| BindingError::Attribute {
            attribute: if version == SpecVersion::V10 { "dataschema" } else { "schemaurl" }.into(),
            reason: e.to_string(),
        })?),
        None => None,
    };
    let mut event = match version {
        SpecVersion::V10 => cloudevents::EventBuilderV10::new().id(id).ty(ty).source(source).build(),
        SpecVersion::V03 => cloudevents::EventBuilderV03::new().id(id).ty(ty).source(source).build(),
    }
    .map_err(|e| BindingError::Binary(e.to_string()))?;
    event.set_subject(attrs.subject);
    event.set_time(time);
    event.set_dataschema(dataschema);
    event.set_datacontenttype(datacontenttype);
    for (name, value) in attrs.extensions {
        event.set_extension(name, value);
    }
    if !body.is_empty() {
        event.set_data_unchecked(Data::Binary(body.into()));
    }
    Ok(event)
}

/// The binary-mode attributes found in the `ce-` headers, before the event is built.
#[derive(Default)]
struct BinaryAttributes<'h> {
    id: Option<String>,
    ty: Option<String>,
    source: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    /// `dataschema` (1.0) or `schemaurl` (0.3).
    dataschema: Option<String>,
    extensions: Vec<(&'h str, String)>,
}

/// A `ce-` header's value as a string, percent-decoded and unquoted when it needs to be.
fn header_string(attribute: &str, value: &HeaderValue) -> Result<String, BindingError> {
    let raw = value.as_bytes();
    if raw.iter().all(|b| *b != b'%' && *b != b'"' && (0x20..0x7f).contains(b)) {
        // Visible ASCII and spaces only: valid UTF-8 as it is.
        return Ok(String::from_utf8_lossy(raw).into_owned());
    }
    decode_header_value(raw).map_err(|reason| BindingError::Attribute {
        attribute: attribute.to_string(),
        reason,
    })
}

/// Parses an RFC 3339 timestamp into UTC.
fn parse_time(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{value:?} is not an RFC 3339 timestamp: {e}"))
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
    let missing = |a: &str| BindingError::Attribute {
        attribute: a.into(),
        reason: "must not be empty".into(),
    };
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

/// The `ce-` header of an attribute; the names of the context attributes and of the
/// extensions Knative itself adds are static.
fn header_name(name: &str) -> Result<HeaderName, BindingError> {
    let fixed = match name {
        "knativearrivaltime" => "ce-knativearrivaltime",
        "knativeerrordest" => "ce-knativeerrordest",
        "knativeerrorcode" => "ce-knativeerrorcode",
        "knativeerrordata" => "ce-knativeerrordata",
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
            let v = HeaderValue::from_str(&attribute_string(&value)).map_err(|e| BindingError::Encode(format!("datacontenttype: {e}")))?;
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
///
/// The data follows the JSON event format (and the Go SDK's marshalling): a JSON media type
/// (`application/json`, `*/*+json`, or no `datacontenttype`) goes inline as `"data": <json>`,
/// text (`text/*`, XML) as a JSON string, and only other binary data as `data_base64`.
pub fn encode_structured(event: &Event, headers: &mut HeaderMap) -> Result<Bytes, BindingError> {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(STRUCTURED_JSON));
    let mut body = Vec::new();
    write_json_event(event, &mut body)?;
    Ok(Bytes::from(body))
}

/// Encodes events in batched mode (HTTP-01): a JSON array of events, each written as
/// [`encode_structured`] writes one, and sets the content type.
pub fn encode_batch(events: &[Event], headers: &mut HeaderMap) -> Result<Bytes, BindingError> {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(BATCH_JSON));
    // Attributes take about 300 bytes an event; sized once, the body is not copied as it grows.
    let data: usize = events
        .iter()
        .map(|e| match e.data() {
            Some(Data::Binary(b)) => b.len(),
            Some(Data::String(s)) => s.len(),
            _ => 64,
        })
        .sum();
    let mut batch = BatchBody::with_capacity(data + events.len() * 320);
    for event in events {
        batch.push(event)?;
    }
    Ok(batch.finish())
}

/// A batched-mode body (HTTP-01) being written: a JSON array of events in the JSON event
/// format. Events go in as [`Event`]s, or written by the caller straight into the body, which
/// spares a sender of many small events building each one.
#[derive(Debug)]
pub struct BatchBody {
    json: Vec<u8>,
    events: usize,
}

impl BatchBody {
    /// An empty batch with room for about `bytes` of events.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut json = Vec::with_capacity(bytes + 2);
        json.push(b'[');
        Self { json, events: 0 }
    }

    /// Appends `event`, written as [`encode_structured`] writes it.
    pub fn push(&mut self, event: &Event) -> Result<(), BindingError> {
        let start = self.json.len();
        self.separate();
        match write_json_event(event, &mut self.json) {
            Ok(()) => {
                self.events += 1;
                Ok(())
            }
            Err(e) => {
                self.json.truncate(start);
                Err(e)
            }
        }
    }

    /// Appends one event that `write` writes as a JSON object in the JSON event format, or
    /// nothing when `write` returns false (having written nothing). True when it appended one.
    pub fn push_written(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let start = self.json.len();
        self.separate();
        if write(&mut self.json) {
            self.events += 1;
            true
        } else {
            self.json.truncate(start);
            false
        }
    }

    /// The events in the batch.
    pub fn len(&self) -> usize {
        self.events
    }

    /// True when the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The body: the closed JSON array.
    pub fn finish(mut self) -> Bytes {
        self.json.push(b']');
        Bytes::from(self.json)
    }

    fn separate(&mut self) {
        if self.events > 0 {
            self.json.push(b',');
        }
    }
}

/// Appends data bytes of `content_type` to a JSON event being written, as its member
/// (with the leading comma): `"data"` inline for JSON, `"data"` as a string for text, or
/// `"data_base64"`, as the JSON event format says (see [`encode_structured`]).
pub fn write_json_data(content_type: Option<&str>, bytes: &[u8], out: &mut Vec<u8>) {
    match binary_data_form(content_type, bytes) {
        BinaryForm::Json => {
            out.extend_from_slice(br#","data":"#);
            out.extend_from_slice(bytes);
        }
        BinaryForm::Text(text) => {
            out.extend_from_slice(br#","data":"#);
            write_json_string(out, text);
        }
        BinaryForm::Base64 => {
            // The base64 alphabet needs no escaping in a JSON string.
            out.extend_from_slice(br#","data_base64":""#);
            let start = out.len();
            out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or_default(), 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(bytes, &mut out[start..])
                .unwrap_or_default();
            out.truncate(start + written);
            out.push(b'"');
        }
    }
}

/// Appends `text` as a JSON string.
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    write_json_string_of(out, &[text]);
}

/// Appends the concatenation of `parts` as one JSON string.
pub fn write_json_string_of(out: &mut Vec<u8>, parts: &[&str]) {
    let plain = parts.iter().flat_map(|p| p.bytes()).all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        for part in parts {
            out.extend_from_slice(part.as_bytes());
        }
        out.push(b'"');
    } else {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &parts.concat());
    }
}

/// Appends one event in the JSON event format to `out`, with the members in the order the SDK
/// writes them. Version 1.0 events are written here, without copying the event: data that
/// arrived as bytes of a JSON media type is copied in as it is once it parses, instead of
/// being parsed into a tree and printed again. Version 0.3 events go through the SDK.
fn write_json_event(event: &Event, out: &mut Vec<u8>) -> Result<(), BindingError> {
    let encode = |e: serde_json::Error| BindingError::Encode(e.to_string());
    if event.specversion() != SpecVersion::V10 {
        return match structured_data(event) {
            Some(data) => {
                let mut event = event.clone();
                event.set_data_unchecked(data);
                serde_json::to_writer(out, &event).map_err(encode)
            }
            None => serde_json::to_writer(out, event).map_err(encode),
        };
    }
    fn member<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, name: &str, value: &T) -> Result<(), serde_json::Error> {
        out.push(b',');
        serde_json::to_writer(&mut *out, name)?;
        out.push(b':');
        serde_json::to_writer(&mut *out, value)
    }
    out.extend_from_slice(br#"{"specversion":"1.0""#);
    member(out, "id", event.id()).map_err(encode)?;
    member(out, "type", event.ty()).map_err(encode)?;
    member(out, "source", event.source().as_str()).map_err(encode)?;
    if let Some(ct) = event.datacontenttype() {
        member(out, "datacontenttype", ct).map_err(encode)?;
    }
    if let Some(schema) = event.dataschema() {
        member(out, "dataschema", schema.as_str()).map_err(encode)?;
    }
    if let Some(subject) = event.subject() {
        member(out, "subject", subject).map_err(encode)?;
    }
    if let Some(time) = event.time() {
        member(out, "time", time).map_err(encode)?;
    }
    match event.data() {
        None => {}
        Some(Data::Json(json)) => member(out, "data", json).map_err(encode)?,
        Some(Data::String(text)) => member(out, "data", text).map_err(encode)?,
        Some(Data::Binary(bytes)) => write_json_data(event.datacontenttype(), bytes, out),
    }
    for (name, value) in event.iter_extensions() {
        member(out, name, value).map_err(encode)?;
    }
    out.push(b'}');
    Ok(())
}

/// How data bytes are written in the JSON event format.
enum BinaryForm<'a> {
    /// Inline, as they are: a JSON media type (or none) and bytes that parse as JSON.
    Json,
    /// As a JSON string: a text media type and UTF-8 bytes.
    Text(&'a str),
    /// As `data_base64`.
    Base64,
}

/// The form the JSON event format gives data bytes of `content_type`: a JSON media type
/// (`application/json`, `*/*+json`, `text/json`, or none) inline, text (`text/*`, XML) as a
/// string, and anything else, or what does not parse as its media type says, as base64.
fn binary_data_form<'a>(content_type: Option<&str>, bytes: &'a [u8]) -> BinaryForm<'a> {
    let media_type = content_type.map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let is_json = |bytes: &[u8]| serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    match media_type.as_deref() {
        None if is_json(bytes) => BinaryForm::Json,
        Some(mt) if (mt == "application/json" || mt.ends_with("+json") || mt == "text/json") && is_json(bytes) => BinaryForm::Json,
        Some(mt) if mt.starts_with("text/") || mt == "application/xml" || mt.ends_with("+xml") => {
            std::str::from_utf8(bytes).map_or(BinaryForm::Base64, BinaryForm::Text)
        }
        _ => BinaryForm::Base64,
    }
}

/// How binary data (what binary mode and `data_base64` decode into) is written in the JSON
/// format, when not as `data_base64`; `None` keeps the data as it is.
fn structured_data(event: &Event) -> Option<Data> {
    let Some(Data::Binary(bytes)) = event.data() else { return None };
    match binary_data_form(event.datacontenttype(), bytes) {
        BinaryForm::Json => serde_json::from_slice(bytes).ok().map(Data::Json),
        BinaryForm::Text(text) => Some(Data::String(text.to_string())),
        BinaryForm::Base64 => None,
    }
}

/// Reads an integer extension value that may have travelled as a string (e.g. `knativebrokerttl`).
pub fn integer_value(name: &str, value: &ExtensionValue) -> Result<i64, String> {
    match value {
        ExtensionValue::Integer(i) => Ok(*i),
        ExtensionValue::String(s) => s.trim().parse::<i64>().map_err(|_| format!("{name} is not an integer: {s:?}")),
        ExtensionValue::Boolean(b) => Err(format!("{name} is not an integer: {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn binary_mode_attributes_follow_the_spec_version() {
        let base = [
            ("ce-id", "1"),
            ("ce-type", "t"),
            ("ce-source", "/s"),
            ("ce-time", "2024-05-01T10:00:00+02:00"),
        ];
        let with = |extra: &[(&str, &str)]| headers(&[&base[..], extra].concat());

        // 1.0: `dataschema` is an attribute, `schemaurl` just an extension.
        let e = decode(
            &with(&[("ce-specversion", "1.0"), ("ce-dataschema", "https://x/s"), ("ce-schemaurl", "u")]),
            Bytes::new(),
        )
        .unwrap()
        .remove(0);
        assert_eq!(e.dataschema().map(|u| u.as_str()), Some("https://x/s"));
        assert_eq!(e.extension("schemaurl").unwrap().to_string(), "u");
        assert_eq!(e.time().unwrap().to_rfc3339(), "2024-05-01T08:00:00+00:00");
        assert!(e.data().is_none() && e.datacontenttype().is_none());

        // 0.3: the other way round.
        let e = decode(
            &with(&[("ce-specversion", "0.3"), ("ce-schemaurl", "https://x/s"), ("ce-dataschema", "d")]),
            Bytes::new(),
        )
        .unwrap()
        .remove(0);
        assert_eq!(e.specversion(), SpecVersion::V03);
        assert_eq!(e.dataschema().map(|u| u.as_str()), Some("https://x/s"));
        assert_eq!(e.extension("dataschema").unwrap().to_string(), "d");
    }

    #[test]
    fn binary_mode_errors_name_the_attribute() {
        let cases: [(&[(&str, &str)], &str); 4] = [
            (
                &[("ce-specversion", "1.0"), ("ce-type", "t"), ("ce-source", "/s")],
                "invalid attribute id: missing (no ce-id header)",
            ),
            (
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "1"),
                    ("ce-type", "t"),
                    ("ce-source", "/s"),
                    ("ce-time", "yesterday"),
                ],
                "invalid attribute time: \"yesterday\" is not an RFC 3339",
            ),
            (
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "1"),
                    ("ce-type", "t"),
                    ("ce-source", "/s"),
                    ("ce-dataschema", "not a url"),
                ],
                "invalid attribute dataschema",
            ),
            (
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "1"),
                    ("ce-type", "t"),
                    ("ce-source", "/s"),
                    ("ce-x", "%FF"),
                ],
                "invalid attribute x: invalid utf-8",
            ),
        ];
        for (pairs, expected) in cases {
            let err = decode(&headers(pairs), Bytes::new()).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err:?} should start with {expected:?}");
        }
    }

    #[test]
    fn structured_mode_is_case_insensitive() {
        let h = headers(&[("content-type", "Application/CloudEvents+JSON; charset=UTF-8")]);
        let body = br#"{"specversion":"1.0","id":"a","type":"t","source":"/s","data":{"x":1}}"#;
        let events = decode(&h, Bytes::from_static(body)).unwrap();
        assert_eq!(events[0].id(), "a");
    }

    #[test]
    fn structured_attribute_names_are_lower_cased() {
        let h = headers(&[("content-type", STRUCTURED_JSON)]);
        let body = br#"{"specversion":"1.0","id":"a","type":"t","source":"/s","MyExt":"v","data":{"Keep":1}}"#;
        let e = &decode(&h, Bytes::from_static(body)).unwrap()[0];
        assert_eq!(e.extension("myext").unwrap().to_string(), "v");
        assert_eq!(e.data(), Some(&Data::Json(serde_json::json!({"Keep": 1}))));
    }

    /// Structured encoding of data that arrived in binary mode, for each kind of media type.
    #[test]
    fn structured_data_follows_the_json_format() {
        let cases: [(Option<&str>, &[u8], serde_json::Value); 5] = [
            (Some("application/json"), br#"{"a":1}"#, serde_json::json!({"data": {"a": 1}})),
            (
                Some("application/vnd.x+json; charset=utf-8"),
                b"[1,2]",
                serde_json::json!({"data": [1, 2]}),
            ),
            (None, b"42", serde_json::json!({"data": 42})),
            (Some("text/plain"), b"hello", serde_json::json!({"data": "hello"})),
            (
                Some("application/octet-stream"),
                &[0, 159, 146, 150],
                serde_json::json!({"data_base64": "AJ+Slg=="}),
            ),
        ];
        for (content_type, body, expected) in cases {
            let mut h = headers(&[("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-type", "t"), ("ce-source", "/s")]);
            if let Some(ct) = content_type {
                h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            }
            let event = decode(&h, Bytes::copy_from_slice(body)).unwrap().remove(0);
            let mut out = HeaderMap::new();
            let json: serde_json::Value = serde_json::from_slice(&encode_structured(&event, &mut out).unwrap()).unwrap();
            let (key, value) = expected.as_object().unwrap().iter().next().unwrap();
            assert_eq!(&json[key], value, "{content_type:?}: {json}");
            let other = if key == "data" { "data_base64" } else { "data" };
            assert!(json.get(other).is_none(), "{content_type:?}: {json}");
            assert_eq!(json.get("datacontenttype").and_then(|v| v.as_str()), content_type, "{json}");
            // And back: the structured form decodes to the same data bytes.
            let mut sh = HeaderMap::new();
            sh.insert(CONTENT_TYPE, HeaderValue::from_static(STRUCTURED_JSON));
            let again = decode(&sh, Bytes::from(serde_json::to_vec(&json).unwrap())).unwrap().remove(0);
            assert_eq!(data_bytes(&again), data_bytes(&event), "{content_type:?}");
        }
    }

    #[test]
    fn batch_mode_and_v03() {
        let h = headers(&[("content-type", BATCH_JSON)]);
        let body = br#"[{"specversion":"1.0","id":"a","type":"t","source":"/s"},{"specversion":"0.3","id":"b","type":"t","source":"/s"}]"#;
        let events = decode(&h, Bytes::from_static(body)).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].specversion().as_str(), "0.3");
    }

    /// The 1.0 writer gives the JSON the SDK's serializer gives, for every kind of member.
    #[test]
    fn json_events_match_the_sdks_form() {
        use cloudevents::EventBuilderV10;
        let base = || {
            EventBuilderV10::new()
                .id("e\"1")
                .ty("t")
                .source("/s")
                .subject("sub")
                .time(chrono::DateTime::parse_from_rfc3339("2026-12-04T10:11:12.345Z").unwrap().to_utc())
                .extension("text", "v")
                .extension("number", 7i64)
                .extension("flag", true)
        };
        let events = [
            base().build().unwrap(),
            base().data("application/json", serde_json::json!({"a": [1, "x"]})).build().unwrap(),
            base().data("text/plain", "hello \u{e9}").build().unwrap(),
            base()
                .data_with_schema("application/json", "http://example.com/schema", b"{\"n\": 1}\n".to_vec())
                .build()
                .unwrap(),
            base().data("application/vnd.x+json", b"not json".to_vec()).build().unwrap(),
            base().data("application/octet-stream", vec![0u8, 159]).build().unwrap(),
            base().data("application/xml", b"<a/>".to_vec()).build().unwrap(),
        ];
        for event in events {
            let mut ours = Vec::new();
            write_json_event(&event, &mut ours).unwrap();
            let ours: serde_json::Value = serde_json::from_slice(&ours).unwrap();
            let mut sdk_event = event.clone();
            if let Some(data) = structured_data(&event) {
                sdk_event.set_data_unchecked(data);
            }
            assert_eq!(ours, serde_json::to_value(&sdk_event).unwrap(), "{event}");
        }
    }

    /// A batch written by `encode_batch` decodes to the same events, data forms included.
    #[test]
    fn batches_round_trip() {
        let binary = |id: &str, content_type: Option<&str>, body: &'static [u8]| {
            let mut h = headers(&[
                ("ce-specversion", "1.0"),
                ("ce-id", id),
                ("ce-type", "t"),
                ("ce-source", "/s"),
                ("ce-ext", "x"),
            ]);
            if let Some(ct) = content_type {
                h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            }
            decode(&h, Bytes::from_static(body)).unwrap().remove(0)
        };
        let events = vec![
            binary("1", Some("application/json"), br#"{"a":1}"#),
            binary("2", Some("text/plain"), b"hello"),
            binary("3", Some("application/octet-stream"), &[0, 159]),
            binary("4", None, b""),
        ];
        let mut out = HeaderMap::new();
        let body = encode_batch(&events, &mut out).unwrap();
        assert_eq!(detect_mode(&out), Mode::Batch);
        let again = decode(&out, body).unwrap();
        assert_eq!(again.len(), events.len());
        for (a, b) in again.iter().zip(&events) {
            assert_eq!(a.id(), b.id());
            assert_eq!(a.extension("ext"), b.extension("ext"));
            assert_eq!(data_bytes(a), data_bytes(b), "event {}", a.id());
        }
        assert_eq!(encode_batch(&[], &mut out).unwrap().as_ref(), b"[]");
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
