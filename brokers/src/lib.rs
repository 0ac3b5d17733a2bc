//! Brokers and channels: HTTP ingress, the backend trait with its memory implementation, and
//! the per-trigger / per-subscription dispatch loops.
//!
//! Corresponds to Knative's broker ingress + filter (MT channel-based broker) and the
//! InMemoryChannel dispatcher. Guarantees: an event answered with 202 is stored in the backend
//! for every subscriber that existed at that moment and will be delivered, dead-lettered, or
//! logged as failed — never dropped silently.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod hub;
pub mod ingress;
pub mod memory;
pub mod plane;

pub use hub::{Acknowledge, Hub, HubKey, HubKind, ReplyTo, SubscriberConfig, DEFAULT_MAX_IN_FLIGHT};
pub use plane::{BackendKind, DataPlane, HubSpec, PlaneConfig, Snapshot};
