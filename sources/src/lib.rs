//! Source adapters: each turns the messages of one outside system into the CloudEvents Knative
//! emits for them, delivers every event to the source's sink through the shared dispatcher
//! (retries, backoff, dead-letter sink), and acknowledges upstream only after the sink accepted
//! the event (or it was dead-lettered).
//!
//! Every adapter has the same four parts, in one module per kind:
//! - its **config**, built from the source's spec and the Secrets it names
//!   (`Config::from_source`), with errors that name the field;
//! - a pure **conversion** from one upstream message to a CloudEvent, tested with tables;
//! - a **consume loop** ([`Adapter::run`]) that reports its [`Health`] and retries faults with
//!   backoff ([`Backoff`]);
//! - an **acknowledgement** upstream after [`Emitter::emit`] answered.
//!
//! [`plane::SourcePlane`] runs one adapter per source object and restarts it when its config
//! or sink changes; the controllers read each adapter's health into the source's conditions.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apiserver;
pub mod convert;
pub mod emit;
pub mod github;
pub mod kafka;
pub mod ping;
pub mod plane;
pub mod rabbitmq;
pub mod report;
pub mod sqs;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use emit::{EmitError, Emitter, SinkPlan};
pub use plane::{SourceInput, SourceKey, SourcePlane};

/// How an adapter is doing, as the source's conditions report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Connecting, or not yet consuming.
    Starting,
    /// Consuming messages.
    Running,
    /// Cannot consume; it keeps retrying with backoff.
    Failing {
        /// A CamelCase reason, e.g. `ConnectionFailed`.
        reason: String,
        /// What went wrong, in words a user can act on.
        message: String,
    },
}

impl Health {
    /// A failing health with this reason and message.
    pub fn failing(reason: &str, message: impl Into<String>) -> Self {
        Health::Failing {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What a running adapter gets: where to send events, where to report health, when to stop.
pub struct AdapterContext {
    /// Delivers events to the sink.
    pub emitter: Emitter,
    /// The adapter's current health; the plane tells the controllers of each change.
    pub health: watch::Sender<Health>,
    /// Cancelled when the adapter should stop taking messages; events in flight are finished.
    pub stop: CancellationToken,
}

impl AdapterContext {
    /// Reports a health, logging transitions into and out of failure.
    pub fn report(&self, health: Health) {
        let label = self.emitter.label();
        match &health {
            Health::Failing { reason, message } => tracing::warn!(source = label, %reason, %message, "source adapter failing; retrying"),
            Health::Running if matches!(*self.health.borrow(), Health::Failing { .. }) => {
                tracing::info!(source = label, "source adapter recovered")
            }
            _ => {}
        }
        self.health.send_if_modified(|h| {
            if *h == health {
                false
            } else {
                *h = health;
                true
            }
        });
    }
}

/// A source's consume loop.
#[async_trait::async_trait]
pub trait Adapter: Send + 'static {
    /// Consumes until `ctx.stop` is cancelled: takes messages, converts each to a CloudEvent,
    /// emits it and acknowledges it upstream after the sink's answer. Faults (an unreachable
    /// endpoint, a refused login) are reported through `ctx.health` and retried with
    /// [`Backoff`]; the loop returns only when stopped.
    async fn run(self: Box<Self>, ctx: AdapterContext);
}

/// A source's spec or its Secrets do not make a working config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The field at fault, e.g. `spec.rabbitmqClusterReference.connectionSecret`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
    /// A CamelCase reason for the condition, e.g. `SecretNotFound`.
    pub reason: &'static str,
}

impl ConfigError {
    /// An error of `field`.
    pub fn new(field: impl Into<String>, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            reason,
        }
    }
}

/// The Secrets a config may read: `data` by key, decoded.
pub trait SecretLookup {
    /// The data of Secret `namespace/name`, or `None` when there is no such Secret.
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
}

impl SecretLookup for BTreeMap<(String, String), BTreeMap<String, Vec<u8>>> {
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.get(&(namespace.to_string(), name.to_string())).cloned()
    }
}

/// Reads key `key` of Secret `namespace/name` as UTF-8 text; `field` names the reference in
/// errors.
pub fn secret_text(secrets: &dyn SecretLookup, field: &str, namespace: &str, name: &str, key: &str) -> Result<String, ConfigError> {
    let data = secrets
        .secret(namespace, name)
        .ok_or_else(|| ConfigError::new(field, "SecretNotFound", format!("secret {namespace}/{name} not found")))?;
    let value = data
        .get(key)
        .ok_or_else(|| ConfigError::new(field, "SecretKeyNotFound", format!("secret {namespace}/{name} has no key {key:?}")))?;
    String::from_utf8(value.clone()).map_err(|_| {
        ConfigError::new(
            field,
            "SecretInvalid",
            format!("key {key:?} of secret {namespace}/{name} is not UTF-8 text"),
        )
    })
}

/// Reconnect delays of a failing adapter: 100 ms, doubling up to 30 s; reset after a success.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The first delay.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// The longest delay.
    pub const LONGEST: Duration = Duration::from_secs(30);

    /// Counts a failure and returns how long to wait before retrying.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        Self::FIRST
            .saturating_mul(1 << self.failures.saturating_sub(1).min(16))
            .min(Self::LONGEST)
    }

    /// Forgets the failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Waits out the next delay; false when `stop` was cancelled meanwhile.
    pub async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stop.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_from_100_ms_doubling_to_30_s() {
        let mut b = Backoff::default();
        let delays: Vec<u128> = (0..11).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn secret_errors_name_the_field_the_secret_and_the_key() {
        let mut secrets = BTreeMap::new();
        secrets.insert(
            ("default".to_string(), "creds".to_string()),
            BTreeMap::from([("user".to_string(), b"guest".to_vec())]),
        );
        assert_eq!(secret_text(&secrets, "spec.x", "default", "creds", "user").unwrap(), "guest");
        let missing = secret_text(&secrets, "spec.x", "default", "nope", "user").unwrap_err();
        assert_eq!(missing.to_string(), "spec.x: secret default/nope not found");
        assert_eq!(missing.reason, "SecretNotFound");
        let no_key = secret_text(&secrets, "spec.x", "default", "creds", "password").unwrap_err();
        assert_eq!(no_key.to_string(), "spec.x: secret default/creds has no key \"password\"");
    }
}
