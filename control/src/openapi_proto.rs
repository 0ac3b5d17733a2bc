//! The protobuf encoding of the OpenAPI v2 document (`openapi.v2.Document` of the gnostic
//! project, media type `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), which is
//! the only encoding client-go reads from `/openapi/v2` (kubectl's client-side validation).
//!
//! Written by hand for the fields Sluice publishes: `swagger`, `info` and `definitions`, and in
//! each schema `$ref`, `format`, `title`, `description`, `default`, the numeric and length
//! limits, `pattern`, `required`, `enum`, `additionalProperties`, `type`, `items`, `allOf`,
//! `properties` and `x-` extensions (values of `default`, `enum` and extensions travel as
//! JSON text in the `yaml` field of gnostic's `Any`, JSON being YAML). `paths` are left out:
//! client-go's v2 consumers read definitions only.

use serde_json::Value;

/// Media type of the protobuf encoding of OpenAPI v2, as clients ask for it in `Accept`.
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The same media type as a `Content-Type` (`.` for `@`, which media type parsers such as Go's
/// refuse in a subtype), as the Kubernetes API server answers.
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn message(&mut self, field: u32, m: Message) {
        self.bytes(field, &m.0);
    }

    fn int(&mut self, field: u32, n: i64) {
        self.key(field, 0);
        self.varint(n as u64);
    }

    fn bool(&mut self, field: u32, b: bool) {
        self.key(field, 0);
        self.varint(u64::from(b));
    }

    fn double(&mut self, field: u32, x: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&x.to_le_bytes());
    }
}

/// gnostic's `Any` holding `value` as JSON text in its `yaml` field (2).
fn any(value: &Value) -> Message {
    let mut m = Message::default();
    m.string(2, &value.to_string());
    m
}

/// A `NamedAny` (name 1, value 2).
fn named_any(name: &str, value: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, name);
    m.message(2, any(value));
    m
}

/// A `NamedSchema` (name 1, value 2).
fn named_schema(name: &str, schema: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, name);
    m.message(2, encode_schema(schema));
    m
}

/// An `openapi.v2.Schema`.
fn encode_schema(s: &Value) -> Message {
    let mut m = Message::default();
    let Some(obj) = s.as_object() else { return m };
    let text = |m: &mut Message, field: u32, key: &str| {
        if let Some(v) = obj.get(key).and_then(Value::as_str) {
            m.string(field, v);
        }
    };
    text(&mut m, 1, "$ref");
    text(&mut m, 2, "format");
    text(&mut m, 3, "title");
    text(&mut m, 4, "description");
    if let Some(d) = obj.get("default") {
        m.message(5, any(d));
    }
    for (field, key) in [(6, "multipleOf"), (7, "maximum"), (9, "minimum")] {
        if let Some(x) = obj.get(key).and_then(Value::as_f64) {
            m.double(field, x);
        }
    }
    for (field, key) in [(8, "exclusiveMaximum"), (10, "exclusiveMinimum"), (16, "uniqueItems")] {
        if let Some(b) = obj.get(key).and_then(Value::as_bool) {
            m.bool(field, b);
        }
    }
    for (field, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        if let Some(n) = obj.get(key).and_then(Value::as_i64) {
            m.int(field, n);
        }
    }
    text(&mut m, 13, "pattern");
    for r in obj.get("required").and_then(Value::as_array).into_iter().flatten() {
        if let Some(r) = r.as_str() {
            m.string(19, r);
        }
    }
    for e in obj.get("enum").and_then(Value::as_array).into_iter().flatten() {
        m.message(20, any(e));
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.bool(2, *b);
            m.message(21, item);
        }
        Some(schema @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, encode_schema(schema));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        let mut item = Message::default();
        item.string(1, t);
        m.message(22, item);
    }
    match obj.get("items") {
        Some(Value::Array(list)) => {
            let mut item = Message::default();
            list.iter().for_each(|s| item.message(1, encode_schema(s)));
            m.message(23, item);
        }
        Some(schema @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, encode_schema(schema));
            m.message(23, item);
        }
        _ => {}
    }
    for s in obj.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        m.message(24, encode_schema(s));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        let mut p = Message::default();
        props.iter().for_each(|(name, s)| p.message(1, named_schema(name, s)));
        m.message(25, p);
    }
    for (name, value) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        m.message(31, named_any(name, value));
    }
    m
}

/// Encodes a Swagger 2.0 document (as JSON) as an `openapi.v2.Document`: `swagger` (1),
/// `info` (2: title 1, version 2) and `definitions` (9).
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    if let Some(s) = doc["swagger"].as_str() {
        m.string(1, s);
    }
    let mut info = Message::default();
    for (field, key) in [(1, "title"), (2, "version")] {
        if let Some(v) = doc["info"][key].as_str() {
            info.string(field, v);
        }
    }
    m.message(2, info);
    let mut definitions = Message::default();
    for (name, schema) in doc["definitions"].as_object().into_iter().flatten() {
        definitions.message(1, named_schema(name, schema));
    }
    m.message(9, definitions);
    m.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wire_format() {
        let mut m = Message::default();
        m.varint(300);
        assert_eq!(m.0, [0xac, 0x02]);
        let mut m = Message::default();
        m.string(1, "2.0");
        assert_eq!(m.0, [0x0a, 3, b'2', b'.', b'0']);
        let mut m = Message::default();
        m.bool(16, true);
        assert_eq!(m.0, [0x80, 0x01, 1]);
    }

    #[test]
    fn schema_fields() {
        let s = json!({"type": "string", "description": "d", "enum": ["a"], "x-k": true});
        let bytes = encode_schema(&s).0;
        // description (4), enum (20) as Any{yaml: "\"a\""}, type (22) as TypeItem{value: "string"}, x-k (31).
        let expected: Vec<u8> = [
            &[0x22, 1, b'd'][..],
            &[0xa2, 0x01, 5, 0x12, 3, b'"', b'a', b'"'],
            &[0xb2, 0x01, 8, 0x0a, 6],
            b"string",
            &[0xfa, 0x01, 13, 0x0a, 3, b'x', b'-', b'k', 0x12, 6, 0x12, 4],
            b"true",
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn document_starts_with_swagger_and_info() {
        let doc = json!({"swagger": "2.0", "info": {"title": "T", "version": "1"}, "definitions": {"a": {"type": "object"}}});
        let bytes = encode_document(&doc);
        assert_eq!(&bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(&bytes[5..13], &[0x12, 6, 0x0a, 1, b'T', 0x12, 1, b'1']);
        assert_eq!(bytes[13], 0x4a, "definitions is field 9");
    }
}
