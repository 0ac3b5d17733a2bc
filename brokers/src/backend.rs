//! The broker backend trait: where a broker or channel keeps accepted events until every
//! trigger or subscription has taken them.
//!
//! Shaped like a log with one cursor per subscriber, so the memory backend, the embedded durable
//! log, Kafka and RabbitMQ all fit: `append` returns once the events are safe (acknowledging
//! upstream only then), and a cursor hands events out and is told when each one is done.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use cloudevents::Event;
use sluice_delivery::TraceContext;

/// An accepted event with what travels alongside it.
#[derive(Debug)]
pub struct StoredEvent {
    /// The event as accepted and as subscribers receive it (brokers add `knativearrivaltime`).
    pub event: Event,
    /// The broker loop guard `knativebrokerttl`, kept beside the event because subscribers do
    /// not receive it; replies carry it minus one (BRK-09). `None` for channels.
    pub ttl: Option<i64>,
    /// Pass-through headers that arrived with it (DLV-06): sent with every delivery of it.
    /// A durable backend stores them beside the event.
    pub headers: http::HeaderMap,
    /// The trace it arrived in.
    pub trace: TraceContext,
    /// When ingress accepted it (for latency metrics).
    pub arrival: Instant,
    /// Set when the sender waits until every subscriber has taken the event (a synchronous
    /// channel, CH-04); shared by the events of one request.
    pub fan_out: Option<Arc<FanOut>>,
}

/// Tracks one request's events until every subscriber is done with them.
///
/// Completion is the drop of the last reference: every cursor's copy of each event holds one,
/// and a delivery (or a cursor that is removed) lets go of it when it is done, so a subscriber
/// deleted meanwhile cannot leave the sender waiting. Backends must therefore drop the events
/// they handed out once those are acknowledged.
#[derive(Debug)]
pub struct FanOut {
    failed: std::sync::atomic::AtomicBool,
    done: Option<tokio::sync::oneshot::Sender<bool>>,
}

impl FanOut {
    /// A tracker and the receiver that yields `true` if any delivery failed.
    pub fn new() -> (Arc<Self>, tokio::sync::oneshot::Receiver<bool>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (
            Arc::new(Self {
                failed: Default::default(),
                done: Some(tx),
            }),
            rx,
        )
    }

    /// Records that one subscriber could not take the event (delivery and dead-letter sink
    /// both failed).
    pub fn fail(&self) {
        self.failed.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for FanOut {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(*self.failed.get_mut());
        }
    }
}

/// One event handed out by a cursor, with its position for acknowledgement.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The event.
    pub stored: Arc<StoredEvent>,
    /// Position in the backend (meaningful to the backend only).
    pub offset: u64,
}

/// Why a backend could not take or hand out events.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend is shutting down or its storage failed.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

/// Storage of one broker or channel.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Stores the events; `Ok` means every current cursor will see them.
    async fn append(&self, events: Vec<Arc<StoredEvent>>) -> Result<(), BackendError>;
    /// Opens the cursor of one subscriber (trigger or subscription), identified by `id`.
    async fn open_cursor(&self, id: &str) -> Result<Box<dyn Cursor>, BackendError>;
    /// Forgets a subscriber's cursor (the trigger or subscription was deleted).
    async fn remove_cursor(&self, id: &str);
    /// Events stored but not yet handed out, summed over cursors: what a shutdown would lose
    /// if the backend does not keep them (a durable backend answers 0).
    fn queued(&self) -> usize {
        0
    }
}

/// A subscriber's position in a backend.
#[async_trait]
pub trait Cursor: Send {
    /// The next event, waiting for one; `None` when the cursor was removed.
    async fn next(&mut self) -> Option<Envelope>;
    /// A handle deliveries use to mark events done, from any task.
    fn acker(&self) -> Arc<dyn Acker>;
}

/// Marks events of one cursor as done (delivered, dead-lettered or filtered out), in any
/// order; a durable backend advances its committed position past contiguous done offsets.
pub trait Acker: Send + Sync {
    /// Marks the event at `offset` as done.
    fn ack(&self, offset: u64);
}
