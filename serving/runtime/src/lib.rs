//! What runs a Revision on one machine: each instance is a child process.
//!
//! - [`workload`]: what a Revision runs, read from its spec with the ConfigMaps and Secrets
//!   its env names (pure, tested with tables);
//! - [`expand`]: Kubernetes' `$(VAR)` expansion of `command` and `args`;
//! - [`probe`]: the readiness probe (`httpGet`, `tcpSocket`, or a TCP connect to `PORT`);
//! - [`process`]: the [`ProcessRuntime`], which keeps the wanted number of instances of each
//!   workload running, restarts crashed ones with backoff, keeps their logs and stops them with
//!   SIGTERM and then SIGKILL.
//!
//! The `image` of a container is recorded, never pulled: a Revision runs its `command` on this
//! machine. On a cluster, [`deployment::DeploymentRuntime`] scales each Revision's Deployment
//! instead.

pub mod deployment;
pub mod expand;
pub mod probe;
pub mod process;
pub mod workload;

pub use process::{Failure, InstanceState, ProcessRuntime, RevisionState, RuntimeOptions};
pub use workload::{RevisionKey, Workload};

use std::sync::Arc;

/// What makes a Revision's instances exist: child processes here (`ProcessRuntime`), a
/// Deployment per Revision on a cluster. The Revision controller and the autoscaler decide how
/// many; a runtime makes that many run and says which are ready.
pub trait Runtime: Send + Sync {
    /// Sets what a Revision runs (see [`ProcessRuntime::set_workload`]).
    fn set_workload(self: Arc<Self>, workload: Workload);
    /// Makes `replicas` instances of `key` exist.
    fn scale(self: Arc<Self>, key: &RevisionKey, replicas: u32);
    /// Stops every instance of `key` and forgets it.
    fn remove(&self, key: &RevisionKey);
    /// What `key` has now.
    fn state(&self, key: &RevisionKey) -> RevisionState;
    /// Every revision the runtime knows.
    fn revisions(&self) -> Vec<RevisionKey>;
    /// Sees a new value after every change of state.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

impl Runtime for ProcessRuntime {
    fn set_workload(self: Arc<Self>, workload: Workload) {
        ProcessRuntime::set_workload(&self, workload)
    }
    fn scale(self: Arc<Self>, key: &RevisionKey, replicas: u32) {
        ProcessRuntime::scale(&self, key, replicas)
    }
    fn remove(&self, key: &RevisionKey) {
        ProcessRuntime::remove(self, key)
    }
    fn state(&self, key: &RevisionKey) -> RevisionState {
        ProcessRuntime::state(self, key)
    }
    fn revisions(&self) -> Vec<RevisionKey> {
        ProcessRuntime::revisions(self)
    }
    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        ProcessRuntime::changes(self)
    }
}
