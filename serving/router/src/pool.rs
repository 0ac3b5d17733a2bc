//! The instances of one revision as the data path sees them: the activator's hold while none
//! is ready (ACT-01), and the `containerConcurrency` breaker (QP-01): at most `cc` requests in
//! flight per instance, a queue of 10 × `cc` per ready instance, 503 beyond it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_runtime::{RevisionKey, Runtime};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How many requests the activator holds for a revision with no ready instance (ACT-01).
pub const ACTIVATOR_QUEUE: usize = 10_000;

/// Queue depth per ready instance, as a multiple of `containerConcurrency` (QP-01).
pub const QUEUE_FACTOR: usize = 10;

/// Why a request could not be given an instance: answered 503 with this as the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The hold or breaker queue is full.
    #[error("revision {revision}: {queued} requests are already queued (the limit)")]
    QueueFull {
        /// The revision.
        revision: String,
        /// Requests waiting.
        queued: usize,
    },
    /// The revision's instances fail to start (crash, missing command, readiness never
    /// passed): answered at once instead of holding the request.
    #[error("revision {revision} is failing: {reason}")]
    Failing {
        /// The revision.
        revision: String,
        /// The runtime's report of the last failure.
        reason: String,
    },
    /// No instance became ready (or free) in time.
    #[error("revision {revision}: no instance was ready within {waited:?}")]
    Timeout {
        /// The revision.
        revision: String,
        /// How long the request was held.
        waited: Duration,
    },
}

/// The requests of one revision: in flight, waiting, and the per-instance breaker slots.
pub struct RevisionPool {
    key: RevisionKey,
    /// `containerConcurrency` (0: unlimited, no breaker).
    concurrency: u32,
    /// One breaker per instance: its address and, for an address listed more than once (a
    /// cluster Service in front of several pods), which of them.
    slots: Mutex<HashMap<(SocketAddr, usize), Arc<Semaphore>>>,
    freed: Notify,
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
    arrived: AtomicU64,
    next: AtomicUsize,
}

/// An instance given to one request; dropping it frees the instance's slot.
pub struct Slot {
    /// Where the instance listens.
    pub addr: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<RevisionPool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.pool.freed.notify_one();
        }
    }
}

/// Counts a request in flight from arrival until it is dropped (the response sent).
pub struct InFlight(Arc<RevisionPool>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RevisionPool {
    /// The pool of `key`, whose instances take `concurrency` requests each (0: unlimited).
    pub fn new(key: RevisionKey, concurrency: u32) -> Arc<Self> {
        Arc::new(Self {
            key,
            concurrency,
            slots: Mutex::new(HashMap::new()),
            freed: Notify::new(),
            waiting: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            arrived: AtomicU64::new(0),
            next: AtomicUsize::new(0),
        })
    }

    /// The revision.
    pub fn key(&self) -> &RevisionKey {
        &self.key
    }

    /// `containerConcurrency`.
    pub fn concurrency(&self) -> u32 {
        self.concurrency
    }

    /// Requests held or proxied now (the autoscaler's concurrency).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests that have arrived since the pool was made (for requests per second).
    pub fn arrived(&self) -> u64 {
        self.arrived.load(Ordering::Relaxed)
    }

    /// Counts a request that arrived.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.arrived.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// An instance for one request: a ready one with a free slot, waiting (until `deadline`)
    /// for one to become ready or free. `at_zero` is called when no instance is ready, so the
    /// autoscaler can scale from zero at once.
    pub async fn acquire(self: &Arc<Self>, runtime: &dyn Runtime, deadline: Instant, at_zero: impl Fn()) -> Result<Slot, Unavailable> {
        let started = Instant::now();
        let mut changes = runtime.changes();
        loop {
            let state = runtime.state(&self.key);
            let ready = state.ready;
            if ready.is_empty() {
                if let Some(failure) = state.failure {
                    // Start it again if it was scaled away; this request is not held for it.
                    at_zero();
                    return Err(Unavailable::Failing {
                        revision: self.key.to_string(),
                        reason: failure.message,
                    });
                }
            }
            if !ready.is_empty() {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                if self.concurrency == 0 {
                    return Ok(Slot {
                        addr: ready[start % ready.len()],
                        permit: None,
                        pool: self.clone(),
                    });
                }
                for i in 0..ready.len() {
                    let at = (start + i) % ready.len();
                    let addr = ready[at];
                    let nth = ready[..at].iter().filter(|a| **a == addr).count();
                    let slot = {
                        let mut slots = self.slots.lock().expect("slots lock");
                        slots.retain(|(a, n), _| ready.iter().filter(|r| *r == a).count() > *n);
                        slots
                            .entry((addr, nth))
                            .or_insert_with(|| Arc::new(Semaphore::new(self.concurrency as usize)))
                            .clone()
                    };
                    if let Ok(permit) = slot.try_acquire_owned() {
                        return Ok(Slot {
                            addr,
                            permit: Some(permit),
                            pool: self.clone(),
                        });
                    }
                }
            } else {
                at_zero();
            }
            let limit = if ready.is_empty() {
                ACTIVATOR_QUEUE
            } else {
                QUEUE_FACTOR * self.concurrency as usize * ready.len()
            };
            let queued = self.waiting.fetch_add(1, Ordering::Relaxed);
            if queued >= limit {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(Unavailable::QueueFull {
                    revision: self.key.to_string(),
                    queued,
                });
            }
            let woke = tokio::time::timeout_at(deadline.into(), async {
                tokio::select! {
                    _ = self.freed.notified() => {}
                    _ = changes.changed() => {}
                }
            })
            .await;
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            if woke.is_err() {
                return Err(Unavailable::Timeout {
                    revision: self.key.to_string(),
                    waited: started.elapsed(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::{RevisionState, Workload};
    use tokio::sync::watch;

    /// A runtime whose ready instances the test sets.
    struct Fixed {
        ready: Mutex<Vec<SocketAddr>>,
        changed: watch::Sender<u64>,
    }

    impl Runtime for Fixed {
        fn set_workload(self: Arc<Self>, _: Workload) {}
        fn scale(self: Arc<Self>, _: &RevisionKey, _: u32) {}
        fn remove(&self, _: &RevisionKey) {}
        fn state(&self, _: &RevisionKey) -> RevisionState {
            RevisionState {
                ready: self.ready.lock().unwrap().clone(),
                ..Default::default()
            }
        }
        fn revisions(&self) -> Vec<RevisionKey> {
            vec![]
        }
        fn changes(&self) -> watch::Receiver<u64> {
            self.changed.subscribe()
        }
    }

    fn key() -> RevisionKey {
        RevisionKey {
            namespace: "default".into(),
            name: "r-00001".into(),
        }
    }

    #[tokio::test]
    async fn holds_until_an_instance_is_ready_and_pokes_at_zero() {
        let runtime = Arc::new(Fixed {
            ready: Mutex::new(vec![]),
            changed: watch::channel(0).0,
        });
        let pool = RevisionPool::new(key(), 0);
        let pokes = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (runtime, pool, pokes) = (runtime.clone(), pool.clone(), pokes.clone());
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(5);
                pool.acquire(runtime.as_ref(), deadline, || {
                    pokes.fetch_add(1, Ordering::Relaxed);
                })
                .await
                .map(|s| s.addr)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pokes.load(Ordering::Relaxed) >= 1, "the autoscaler was not told");
        let addr: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        runtime.ready.lock().unwrap().push(addr);
        runtime.changed.send_modify(|n| *n += 1);
        assert_eq!(waiter.await.unwrap(), Ok(addr));

        // Nothing ready before the deadline: a timeout naming the revision.
        runtime.ready.lock().unwrap().clear();
        let err = pool
            .acquire(runtime.as_ref(), Instant::now() + Duration::from_millis(50), || {})
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Unavailable::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("default/r-00001"), "{err}");
    }

    #[tokio::test]
    async fn the_breaker_limits_each_instance_and_bounds_its_queue() {
        let addr: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let runtime = Arc::new(Fixed {
            ready: Mutex::new(vec![addr]),
            changed: watch::channel(0).0,
        });
        let pool = RevisionPool::new(key(), 1);
        let far = || Instant::now() + Duration::from_secs(5);
        let first = pool.acquire(runtime.as_ref(), far(), || {}).await.unwrap();
        // cc = 1: the next ten wait, the eleventh is refused.
        let mut waiters = Vec::new();
        for _ in 0..QUEUE_FACTOR {
            let (runtime, pool) = (runtime.clone(), pool.clone());
            waiters.push(tokio::spawn(async move {
                let slot = pool.acquire(runtime.as_ref(), far(), || {}).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
                drop(slot);
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = pool.acquire(runtime.as_ref(), far(), || {}).await.err().unwrap();
        assert!(matches!(refused, Unavailable::QueueFull { queued: 10, .. }), "{refused}");
        drop(first);
        for w in waiters {
            w.await.unwrap();
        }
    }
}
