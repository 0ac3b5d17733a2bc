//! Request bodies in the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! decoded into the JSON form the store keeps.
//!
//! client-go's typed clients send built-in kinds this way: `kubectl create namespace`,
//! `kubectl create configmap` and `kubectl create secret` post protobuf whatever the server
//! advertises. The body is the 4-byte magic `k8s\0` and then a `runtime.Unknown` message
//! (`typeMeta` = 1, `raw` = 2, `contentEncoding` = 3, `contentType` = 4), whose `raw` is the
//! object's own message.
//!
//! Only the kinds those commands write are decoded: `Namespace`, `ConfigMap` and `Secret`,
//! with the whole `ObjectMeta` but `managedFields` (which Sluice does not track). Field numbers
//! are those of Kubernetes' `generated.proto`. Any other kind in protobuf is refused with 415 by
//! the caller, naming the kinds that are taken. Unknown fields are skipped, as protobuf readers do.

use base64::Engine;
use serde_json::{Map, Value};

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every protobuf-encoded Kubernetes object.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The bytes are not a well-formed Kubernetes protobuf envelope or message.
    #[error("malformed protobuf body: {0}")]
    Malformed(String),
    /// The envelope names a kind this server does not decode from protobuf.
    #[error("{api_version} {kind} is not accepted in protobuf (only v1 Namespace, ConfigMap and Secret are): send it as application/json")]
    UnsupportedKind {
        /// `apiVersion` from the envelope.
        api_version: String,
        /// `kind` from the envelope.
        kind: String,
    },
}

/// Decodes a protobuf request body into the object's JSON form, with `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("the body does not start with the magic bytes k8s\\0"))?;
    let (mut api_version, mut kind, mut raw, mut encoding) = (String::new(), String::new(), &[][..], String::new());
    for field in Fields(envelope) {
        match field? {
            (1, Wire::Bytes(type_meta)) => {
                for f in Fields(type_meta) {
                    match f? {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(b)) => encoding = text(b)?,
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(malformed(&format!("content encoding {encoding:?} is not supported")));
    }
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        _ => return Err(ProtoError::UnsupportedKind { api_version, kind }),
    };
    let mut object = message(raw, schema)?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), Value::String(api_version));
        map.insert("kind".into(), Value::String(kind));
    }
    Ok(object)
}

fn malformed(what: &str) -> ProtoError {
    ProtoError::Malformed(what.to_string())
}

fn text(b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("a string field is not UTF-8"))
}

/// One field's value as it is on the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of one message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or_else(|| malformed("a varint is cut short"))?;
            self.0 = rest;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(malformed("a varint is longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ProtoError> {
        if len > self.0.len() {
            return Err(malformed("a length-delimited field runs past the end of its message"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let key = self.varint()?;
            let number = u32::try_from(key >> 3).map_err(|_| malformed("a field number is too large"))?;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => Wire::Bytes(self.take(8)?),
                2 => {
                    let len = usize::try_from(self.varint()?).map_err(|_| malformed("a length is too large"))?;
                    Wire::Bytes(self.take(len)?)
                }
                5 => Wire::Bytes(self.take(4)?),
                other => return Err(malformed(&format!("wire type {other} is not used by Kubernetes objects"))),
            };
            Ok((number, wire))
        })();
        if field.is_err() {
            self.0 = &[];
        }
        Some(field)
    }
}

/// How one field of a message becomes JSON.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    Int,
    Bool,
    /// `metav1.Time`: seconds and nanos, written as RFC 3339.
    Time,
    Message(&'static [Field]),
    /// `map<string, string>`.
    TextMap,
    /// `map<string, bytes>`, written base64 as JSON carries bytes.
    BytesMap,
    RepeatedText,
    RepeatedMessage(&'static [Field]),
}

/// A field of a message: number, JSON name and shape.
type Field = (u32, &'static str, Shape);

const OWNER_REFERENCE: &[Field] = &[
    (5, "apiVersion", Shape::Text),
    (1, "kind", Shape::Text),
    (3, "name", Shape::Text),
    (4, "uid", Shape::Text),
    (6, "controller", Shape::Bool),
    (7, "blockOwnerDeletion", Shape::Bool),
];

const OBJECT_META: &[Field] = &[
    (1, "name", Shape::Text),
    (2, "generateName", Shape::Text),
    (3, "namespace", Shape::Text),
    (4, "selfLink", Shape::Text),
    (5, "uid", Shape::Text),
    (6, "resourceVersion", Shape::Text),
    (7, "generation", Shape::Int),
    (8, "creationTimestamp", Shape::Time),
    (9, "deletionTimestamp", Shape::Time),
    (10, "deletionGracePeriodSeconds", Shape::Int),
    (11, "labels", Shape::TextMap),
    (12, "annotations", Shape::TextMap),
    (13, "ownerReferences", Shape::RepeatedMessage(OWNER_REFERENCE)),
    (14, "finalizers", Shape::RepeatedText),
];

const NAMESPACE: &[Field] = &[
    (1, "metadata", Shape::Message(OBJECT_META)),
    (2, "spec", Shape::Message(&[(1, "finalizers", Shape::RepeatedText)])),
];

const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Shape::Message(OBJECT_META)),
    (2, "data", Shape::TextMap),
    (3, "binaryData", Shape::BytesMap),
    (4, "immutable", Shape::Bool),
];

const SECRET: &[Field] = &[
    (1, "metadata", Shape::Message(OBJECT_META)),
    (2, "data", Shape::BytesMap),
    (3, "type", Shape::Text),
    (4, "stringData", Shape::TextMap),
    (5, "immutable", Shape::Bool),
];

/// Decodes a message of `schema` into a JSON object; fields left at their zero value in proto3
/// style (empty strings, absent messages) are left out, as the JSON form omits them.
fn message(bytes: &[u8], schema: &[Field]) -> Result<Value, ProtoError> {
    let mut out = Map::new();
    for field in Fields(bytes) {
        let (number, wire) = field?;
        let Some(&(_, name, shape)) = schema.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let wrong = || malformed(&format!("field {name} has the wrong wire type"));
        match (shape, wire) {
            (Shape::Text, Wire::Bytes(b)) => {
                let s = text(b)?;
                if !s.is_empty() {
                    out.insert(name.into(), Value::String(s));
                }
            }
            (Shape::Int, Wire::Varint(n)) => {
                out.insert(name.into(), Value::from(n as i64));
            }
            (Shape::Bool, Wire::Varint(n)) => {
                out.insert(name.into(), Value::Bool(n != 0));
            }
            (Shape::Time, Wire::Bytes(b)) => {
                if let Some(time) = time(b)? {
                    out.insert(name.into(), Value::String(time));
                }
            }
            (Shape::Message(inner), Wire::Bytes(b)) => {
                out.insert(name.into(), message(b, inner)?);
            }
            (Shape::TextMap | Shape::BytesMap, Wire::Bytes(b)) => {
                let (key, value) = map_entry(b)?;
                let value = match shape {
                    Shape::BytesMap => base64::engine::general_purpose::STANDARD.encode(value),
                    _ => text(value)?,
                };
                let entries = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entries {
                    m.insert(key, Value::String(value));
                }
            }
            (Shape::RepeatedText, Wire::Bytes(b)) => push(&mut out, name, Value::String(text(b)?)),
            (Shape::RepeatedMessage(inner), Wire::Bytes(b)) => push(&mut out, name, message(b, inner)?),
            _ => return Err(wrong()),
        }
    }
    Ok(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, name: &str, item: Value) {
    if let Value::Array(items) = out.entry(name).or_insert_with(|| Value::Array(vec![])) {
        items.push(item);
    }
}

/// A map entry: key = 1 (string), value = 2.
fn map_entry(bytes: &[u8]) -> Result<(String, &[u8]), ProtoError> {
    let (mut key, mut value) = (String::new(), &[][..]);
    for field in Fields(bytes) {
        match field? {
            (1, Wire::Bytes(b)) => key = text(b)?,
            (2, Wire::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((key, value))
}

/// `metav1.Time` (`seconds` = 1, `nanos` = 2) as the API writes it, to the second; the zero
/// time is absent.
fn time(bytes: &[u8]) -> Result<Option<String>, ProtoError> {
    let mut seconds = 0i64;
    for field in Fields(bytes) {
        if let (1, Wire::Varint(n)) = field? {
            seconds = n as i64;
        }
    }
    if seconds == 0 {
        return Ok(None);
    }
    let at = chrono::DateTime::from_timestamp(seconds, 0).ok_or_else(|| malformed("a timestamp is out of range"))?;
    Ok(Some(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A protobuf writer for the tests.
    #[derive(Default)]
    struct W(Vec<u8>);

    impl W {
        fn varint(mut self, mut n: u64) -> Self {
            while n >= 0x80 {
                self.0.push((n as u8) | 0x80);
                n >>= 7;
            }
            self.0.push(n as u8);
            self
        }
        fn bytes(self, field: u32, b: &[u8]) -> Self {
            let mut w = self.varint(u64::from(field) << 3 | 2).varint(b.len() as u64);
            w.0.extend_from_slice(b);
            w
        }
        fn int(self, field: u32, n: u64) -> Self {
            self.varint(u64::from(field) << 3).varint(n)
        }
        fn entry(self, field: u32, k: &str, v: &[u8]) -> Self {
            self.bytes(field, &W::default().bytes(1, k.as_bytes()).bytes(2, v).0)
        }
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = W::default().bytes(1, api_version.as_bytes()).bytes(2, kind.as_bytes());
        let unknown = W::default().bytes(1, &type_meta.0).bytes(2, raw).bytes(3, b"").bytes(4, b"");
        [MAGIC, &unknown.0].concat()
    }

    #[test]
    fn decodes_the_kinds_kubectl_create_sends() {
        let meta = W::default()
            .bytes(1, b"team-a")
            .entry(11, "env", b"dev")
            .bytes(8, &W::default().int(1, 1_700_000_000).0)
            .bytes(
                13,
                &W::default().bytes(5, b"v1").bytes(1, b"Namespace").bytes(3, b"root").int(6, 1).0,
            )
            .bytes(14, b"a/b");
        let ns = W::default().bytes(1, &meta.0).bytes(2, &W::default().bytes(1, b"kubernetes").0);
        assert_eq!(
            decode(&envelope("v1", "Namespace", &ns.0)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": "team-a", "labels": {"env": "dev"}, "creationTimestamp": "2023-11-14T22:13:20Z",
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "root", "controller": true}],
                    "finalizers": ["a/b"],
                },
                "spec": {"finalizers": ["kubernetes"]},
            })
        );

        let meta = W::default().bytes(1, b"settings").bytes(3, b"default");
        let cm = W::default().bytes(1, &meta.0).entry(2, "k", b"v").entry(3, "bin", &[0, 1, 2]);
        assert_eq!(
            decode(&envelope("v1", "ConfigMap", &cm.0)).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"},
                   "data": {"k": "v"}, "binaryData": {"bin": "AAEC"}})
        );

        let secret = W::default()
            .bytes(1, &W::default().bytes(1, b"token").0)
            .entry(2, "t", b"s3cret")
            .bytes(3, b"Opaque");
        assert_eq!(
            decode(&envelope("v1", "Secret", &secret.0)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "data": {"t": "czNjcmV0"}, "type": "Opaque"})
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(decode(b"{\"kind\":\"Namespace\"}"), Err(ProtoError::Malformed(_))));
        let err = decode(&envelope("apps/v1", "Deployment", &[])).unwrap_err();
        assert!(err.to_string().contains("apps/v1 Deployment is not accepted in protobuf"), "{err}");
        // A length that runs past the end of the message.
        let mut cut = envelope("v1", "Namespace", &W::default().bytes(1, b"abc").0);
        cut.truncate(cut.len() - 2);
        assert!(matches!(decode(&cut), Err(ProtoError::Malformed(_))));
    }
}
