//! W3C Trace Context (`traceparent`, `tracestate`) carried with an event through deliveries.

use http::{HeaderMap, HeaderName, HeaderValue};
use rand::Rng;

/// The trace an event belongs to, and the span that handed it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The 128-bit trace id (never zero).
    pub trace_id: u128,
    /// The 64-bit id of the span of the hop that produced this context (never zero).
    pub span_id: u64,
    /// Trace flags (bit 0 = sampled).
    pub flags: u8,
    /// The `tracestate` header, passed on unchanged.
    pub state: Option<String>,
}

impl TraceContext {
    /// Starts a new trace (sampled).
    pub fn new_root() -> Self {
        Self {
            trace_id: random_nonzero_u128(),
            span_id: random_nonzero_u64(),
            flags: 1,
            state: None,
        }
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
        let trace_id = u128::from_str_radix(parts[1], 16).ok().filter(|t| *t != 0)?;
        let span_id = u64::from_str_radix(parts[2], 16).ok().filter(|s| *s != 0)?;
        Some(Self {
            trace_id,
            span_id,
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
        Self {
            span_id: random_nonzero_u64(),
            ..self.clone()
        }
    }

    /// The `traceparent` header value.
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// Writes `traceparent` (and `tracestate`) for an outgoing request in a new child span.
    pub fn inject_child(&self, headers: &mut HeaderMap) {
        let child = self.child();
        // `00-{trace id:032x}-{span id:016x}-{flags:02x}`, written without a formatter: this
        // runs once per delivery attempt.
        let mut value = [0u8; 55];
        value[..3].copy_from_slice(b"00-");
        write_hex(&mut value[3..35], child.trace_id);
        value[35] = b'-';
        write_hex(&mut value[36..52], u128::from(child.span_id));
        value[52] = b'-';
        write_hex(&mut value[53..55], u128::from(child.flags));
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.insert(TRACEPARENT, v);
        }
        if let Some(state) = self.state.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert(TRACESTATE, state);
        }
    }
}

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Writes the low `out.len() * 4` bits of `n` as lower-case hex, most significant first.
fn write_hex(out: &mut [u8], mut n: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
}

fn random_nonzero_u64() -> u64 {
    rand::rng().random::<u64>().max(1)
}

fn random_nonzero_u128() -> u128 {
    rand::rng().random::<u128>().max(1)
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
        let tp = h["traceparent"].to_str().unwrap();
        assert_eq!(tp, child.traceparent(), "buffer encoding matches the formatter");
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    #[test]
    fn rejects_malformed() {
        assert!(TraceContext::parse("00-xyz-00f067aa0ba902b7-01").is_none());
        assert!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    }
}
