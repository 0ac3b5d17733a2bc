//! The shared vocabulary of Sluice's event path.
//!
//! - [`binding`]: the CloudEvents HTTP binding (binary, structured, batch);
//! - [`sink::EventSink`]: anything that accepts events;
//! - [`policy::RetryPolicy`]: Knative's DeliverySpec as a validated runtime policy;
//! - [`dispatcher::Dispatcher`]: the one delivery implementation (retries, backoff, timeouts,
//!   replies, dead letters) reused by triggers, subscriptions and sources — Knative's
//!   `kncloudevents` dispatcher;
//! - [`pool`]: keep-alive HTTP/1.1 connections driven by the delivering task;
//! - [`trace`]: W3C trace context propagation; [`metrics`]: Prometheus metrics of the path.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binding;
pub mod dispatcher;
pub mod headers;
pub mod metrics;
pub mod policy;
pub mod pool;
pub mod sink;
pub mod trace;

pub use cloudevents;
pub use dispatcher::{Batch, Delivery, Dispatcher, HttpSink, Outcome, ReplyMode, Target, Timeouts};
pub use policy::RetryPolicy;
pub use sink::{EventSink, SinkError};
pub use trace::TraceContext;
