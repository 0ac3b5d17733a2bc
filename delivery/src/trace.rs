//! W3C Trace Context (`traceparent`, `tracestate`) carried with an event through deliveries.

use http::HeaderMap;
use rand::Rng;

/// The trace an event belongs to, and the span that handed it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits: the span of the hop that produced this context.
    pub span_id: String,
    /// Trace flags (bit 0 = sampled).
    pub flags: u8,
    /// The `tracestate` header, passed on unchanged.
    pub state: Option<String>,
}

impl TraceContext {
    /// Starts a new trace (sampled).
    pub fn new_root() -> Self {
        Self { trace_id: random_hex(16), span_id: random_hex(8), flags: 1, state: None }
    }

    /// Reads `traceparent`/`tracestate` from request headers; `None` if absent or malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let tp = headers.get("traceparent")?.to_str().ok()?;
        let mut ctx = Self::parse(tp)?;
        ctx.state = headers.get("tracestate").and_then(|v| v.to_str().ok()).map(str::to_string);
        Some(ctx)
    }

    /// Parses a `traceparent` value (version 00).
    pub fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.trim().split('-').collect();
        if parts.len() < 4 || parts[0].len() != 2 || parts[0] == "ff" {
            return None;
        }
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(parts[1], 32) || !hex(parts[2], 16) || !hex(parts[3], 2) {
            return None;
        }
        if parts[1].bytes().all(|b| b == b'0') || parts[2].bytes().all(|b| b == b'0') {
            return None;
        }
        Some(Self {
            trace_id: parts[1].to_ascii_lowercase(),
            span_id: parts[2].to_ascii_lowercase(),
            flags: u8::from_str_radix(parts[3], 16).ok()?,
            state: None,
        })
    }

    /// The context of an incoming request, or a new root trace when it carries none.
    pub fn continue_or_start(headers: &HeaderMap) -> Self {
        Self::from_headers(headers).map(|c| c.child()).unwrap_or_else(Self::new_root)
    }

    /// A child span in the same trace (a new hop).
    pub fn child(&self) -> Self {
        Self { span_id: random_hex(8), ..self.clone() }
    }

    /// The `traceparent` header value.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// Writes `traceparent` (and `tracestate`) for an outgoing request in a new child span.
    pub fn inject_child(&self, headers: &mut HeaderMap) {
        let child = self.child();
        if let Ok(v) = child.traceparent().parse() {
            headers.insert("traceparent", v);
        }
        if let Some(state) = self.state.as_deref().and_then(|s| s.parse().ok()) {
            headers.insert("tracestate", state);
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_keeps_trace_id() {
        let parent = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let mut h = HeaderMap::new();
        parent.inject_child(&mut h);
        let child = TraceContext::from_headers(&h).unwrap();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_eq!(child.flags, 1);
    }

    #[test]
    fn rejects_malformed() {
        assert!(TraceContext::parse("00-xyz-00f067aa0ba902b7-01").is_none());
        assert!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    }
}
