//! Delivering a source's events to its sink: `ceOverrides` added, then the shared dispatcher's
//! retries, backoff and dead-letter sink. An adapter acknowledges upstream only when
//! [`Emitter::emit`] returned `Ok`.

use std::collections::BTreeMap;

use cloudevents::Event;
use http::HeaderMap;
use sluice_delivery::binding::BatchBody;
use sluice_delivery::metrics::SourceMetrics;
use sluice_delivery::{Batch, Delivery, Dispatcher, Outcome, ReplyMode, RetryPolicy, Target, TraceContext};

/// Where a source's events go, as its controller resolved it.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkPlan {
    /// The sink's URL (`status.sinkUri`).
    pub uri: String,
    /// Retries and backoff.
    pub policy: RetryPolicy,
    /// Where events go that every attempt failed to deliver.
    pub dead_letter: Option<String>,
}

/// The sink did not accept an event and there was no dead-letter sink to take it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the sink did not accept the event (status {status:?}): {message}")]
pub struct EmitError {
    /// Status of the last attempt; `None` when no response came.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
}

/// Sends one source's events to its sink.
pub struct Emitter {
    dispatcher: Dispatcher,
    sink: Target,
    dead_letter: Option<Target>,
    policy: RetryPolicy,
    overrides: BTreeMap<String, String>,
    label: String,
    namespace: String,
    metrics: SourceMetrics,
}

impl Emitter {
    /// An emitter for the source `label` (e.g. `pingsource default/ticks`) in `namespace`.
    pub fn new(
        dispatcher: Dispatcher,
        plan: &SinkPlan,
        overrides: BTreeMap<String, String>,
        label: String,
        namespace: String,
        metrics: SourceMetrics,
    ) -> Result<Self, String> {
        let sink = Target::parse(&plan.uri)?;
        let dead_letter = plan.dead_letter.as_deref().map(Target::parse).transpose()?;
        Ok(Self {
            dispatcher,
            sink,
            dead_letter,
            policy: plan.policy.clone(),
            overrides,
            label,
            namespace,
            metrics,
        })
    }

    /// `kind namespace/name` of the source, for logs.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The source's metrics.
    pub fn metrics(&self) -> &SourceMetrics {
        &self.metrics
    }

    /// Adds the `ceOverrides` extensions and delivers `event` with the sink's retries. `Ok` when
    /// the sink accepted it or it went to the dead-letter sink: then it may be acknowledged
    /// upstream. `trace` continues a trace the message carried.
    pub async fn emit(&self, event: Event, trace: Option<TraceContext>) -> Result<(), EmitError> {
        let event = with_overrides(event, &self.overrides);
        let trace = trace.unwrap_or_else(TraceContext::new_root);
        let outcome = self
            .dispatcher
            .deliver(Delivery {
                label: &self.label,
                event: &event,
                headers: &HeaderMap::new(),
                subscriber: &self.sink,
                policy: &self.policy,
                dead_letter: self.dead_letter.as_ref(),
                reply: ReplyMode::NotAsked,
                namespace: &self.namespace,
                trace: &trace,
                metrics: &self.metrics.delivery,
                arrival: None,
            })
            .await;
        match outcome {
            Outcome::Delivered | Outcome::DeadLettered { .. } => Ok(()),
            Outcome::Failed { status, error } => Err(EmitError { status, message: error }),
        }
    }

    /// The `ceOverrides` extensions, which every event of a batch given to
    /// [`Emitter::emit_batch`] must carry.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Sends `events` to the sink in one batched-mode request, once; each event already
    /// carries the [`Emitter::overrides`] (see [`with_overrides`]). `Ok` when the sink accepted
    /// them: then they may all be acknowledged upstream. Otherwise the caller sends them again
    /// one at a time with [`Emitter::emit`], which retries and dead-letters each, so a sink
    /// that does not read batches loses nothing.
    pub async fn emit_batch(&self, events: BatchBody, trace: Option<TraceContext>) -> Result<(), EmitError> {
        let trace = trace.unwrap_or_else(TraceContext::new_root);
        self.dispatcher
            .send_batch(Batch {
                label: &self.label,
                events,
                target: &self.sink,
                policy: &self.policy,
                namespace: &self.namespace,
                trace: &trace,
                metrics: &self.metrics.delivery,
            })
            .await
            .map_err(|e| EmitError {
                status: Some(e.status()),
                message: e.to_string(),
            })
    }
}

/// Sets the `ceOverrides` extensions on an event.
pub fn with_overrides(mut event: Event, overrides: &BTreeMap<String, String>) -> Event {
    for (name, value) in overrides {
        event.set_extension(name, value.as_str());
    }
    event
}
