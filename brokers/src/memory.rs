//! The memory backend: a bounded queue per cursor. Nothing survives a restart.
//!
//! `append` waits for room in every subscriber's queue, so a slow subscriber slows ingress down
//! instead of making memory grow without bound. If a queue stays full for [`APPEND_TIMEOUT`] the
//! append fails as unavailable (ingress answers 503, a reply delivery is retried) rather than
//! waiting forever: a reply appended into the queue its own trigger is draining must not deadlock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::backend::{Acker, Backend, BackendError, Cursor, Envelope, StoredEvent};

/// Default capacity of each subscriber's queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// How long `append` waits for room in a full queue.
pub const APPEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// In-memory storage of one broker or channel.
pub struct MemoryBackend {
    capacity: usize,
    next_offset: AtomicU64,
    queues: Mutex<HashMap<String, mpsc::Sender<Envelope>>>,
}

impl MemoryBackend {
    /// A backend whose per-subscriber queues hold `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next_offset: AtomicU64::new(0),
            queues: Mutex::new(HashMap::new()),
        }
    }

    fn senders(&self) -> Vec<mpsc::Sender<Envelope>> {
        self.queues.lock().expect("queue map poisoned").values().cloned().collect()
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn append(&self, events: Vec<Arc<StoredEvent>>) -> Result<(), BackendError> {
        let senders = self.senders();
        for stored in events {
            let offset = self.next_offset.fetch_add(1, Ordering::Relaxed);
            for tx in &senders {
                let envelope = Envelope {
                    stored: stored.clone(),
                    offset,
                };
                match tx.try_send(envelope) {
                    Ok(()) => {}
                    // A closed queue belongs to a subscriber removed meanwhile: nothing to deliver.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                    Err(mpsc::error::TrySendError::Full(envelope)) => match tokio::time::timeout(APPEND_TIMEOUT, tx.send(envelope)).await {
                        Ok(_) => {}
                        Err(_) => {
                            return Err(BackendError::Unavailable(format!(
                                "a subscriber queue stayed full for {APPEND_TIMEOUT:?}"
                            )))
                        }
                    },
                }
            }
        }
        Ok(())
    }

    async fn open_cursor(&self, id: &str) -> Result<Box<dyn Cursor>, BackendError> {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.queues.lock().expect("queue map poisoned").insert(id.to_string(), tx);
        Ok(Box::new(MemoryCursor { rx }))
    }

    async fn remove_cursor(&self, id: &str) {
        self.queues.lock().expect("queue map poisoned").remove(id);
    }

    fn queued(&self) -> usize {
        self.senders().iter().map(|tx| tx.max_capacity() - tx.capacity()).sum()
    }
}

struct MemoryCursor {
    rx: mpsc::Receiver<Envelope>,
}

#[async_trait]
impl Cursor for MemoryCursor {
    async fn next(&mut self) -> Option<Envelope> {
        self.rx.recv().await
    }

    fn acker(&self) -> Arc<dyn Acker> {
        Arc::new(NothingToAck)
    }
}

/// Memory queues forget an event once it is handed out: nothing to record.
struct NothingToAck;

impl Acker for NothingToAck {
    fn ack(&self, _offset: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::EventBuilder;
    use sluice_delivery::TraceContext;
    use std::time::Instant;

    fn stored(id: &str) -> Arc<StoredEvent> {
        let event = cloudevents::EventBuilderV10::new().id(id).ty("t").source("/s").build().unwrap();
        Arc::new(StoredEvent {
            event,
            ttl: None,
            headers: Default::default(),
            trace: TraceContext::new_root(),
            arrival: Instant::now(),
            fan_out: None,
        })
    }

    #[tokio::test]
    async fn every_cursor_sees_every_event_in_order() {
        let b = MemoryBackend::new(10);
        let mut c1 = b.open_cursor("a").await.unwrap();
        let mut c2 = b.open_cursor("b").await.unwrap();
        b.append(vec![stored("1"), stored("2")]).await.unwrap();
        for c in [&mut c1, &mut c2] {
            assert_eq!(c.next().await.unwrap().offset, 0);
            assert_eq!(c.next().await.unwrap().offset, 1);
        }
    }

    // Paused time: the blocked append runs until it waits for room before the clock moves on,
    // and the 50 ms pass without a real wait, well inside its append timeout.
    #[tokio::test(start_paused = true)]
    async fn full_queue_applies_backpressure() {
        let b = Arc::new(MemoryBackend::new(1));
        let mut c = b.open_cursor("a").await.unwrap();
        b.append(vec![stored("1")]).await.unwrap();
        let b2 = b.clone();
        let blocked = tokio::spawn(async move { b2.append(vec![stored("2")]).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!blocked.is_finished(), "append must wait while the queue is full");
        c.next().await.unwrap();
        blocked.await.unwrap().unwrap();
        assert_eq!(c.next().await.unwrap().offset, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_full_for_the_append_timeout_makes_append_unavailable() {
        let b = MemoryBackend::new(1);
        let _c = b.open_cursor("a").await.unwrap();
        b.append(vec![stored("1")]).await.unwrap();
        let started = tokio::time::Instant::now();
        let err = b.append(vec![stored("2")]).await.unwrap_err();
        assert!(matches!(err, BackendError::Unavailable(_)), "{err}");
        assert_eq!(started.elapsed(), APPEND_TIMEOUT, "waited the append timeout, then gave up");
    }

    #[tokio::test]
    async fn removed_cursor_no_longer_blocks() {
        let b = MemoryBackend::new(1);
        let _c = b.open_cursor("a").await.unwrap();
        b.remove_cursor("a").await;
        b.append(vec![stored("1"), stored("2")]).await.unwrap();
    }
}
