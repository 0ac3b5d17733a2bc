//! The [`EventSink`] abstraction: anything that accepts events (a broker's ingress, a channel,
//! an HTTP endpoint). Sources, replies and dead letters all hand events to a sink.

use async_trait::async_trait;
use cloudevents::Event;
use http::HeaderMap;

use crate::trace::TraceContext;

/// Why a sink did not accept an event.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink answered and refused the event (e.g. HTTP 400); retrying will not help.
    #[error("rejected ({status}): {message}")]
    Rejected {
        /// HTTP-like status code.
        status: u16,
        /// Why.
        message: String,
    },
    /// The sink could not take the event now; a retry may succeed.
    #[error("unavailable ({status}): {message}")]
    Unavailable {
        /// HTTP-like status code (500 for transport errors).
        status: u16,
        /// Why.
        message: String,
    },
}

impl SinkError {
    /// The HTTP-like status of the failure.
    pub fn status(&self) -> u16 {
        match self {
            SinkError::Rejected { status, .. } | SinkError::Unavailable { status, .. } => *status,
        }
    }
}

/// Something that durably accepts events; returning `Ok` means the next hop owns the event.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Hands one event to the sink with its pass-through headers ([`crate::headers`]), in the
    /// given trace.
    async fn send(&self, event: Event, headers: HeaderMap, trace: &TraceContext) -> Result<(), SinkError>;

    /// The sink's URL, when it has one: a dead-lettered event whose reply could not be stored
    /// here names it in `knativeerrordest` (DLV-05) instead of the subscriber's.
    fn url(&self) -> Option<&str> {
        None
    }
}
