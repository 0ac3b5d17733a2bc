//! Sluice's controllers, written with kube-rs: each watches its kind through a Kubernetes API
//! (the one `sluice run` serves, or a cluster's), reconciles one object at a time, owns the
//! children it creates through `ownerReferences`, and writes status through `/status`.
//!
//! One module per kind. Today: [`flows`] (Sequence and Parallel). The other kinds are still
//! reconciled by the embedded control plane's single pass (`sluice-control`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod flows;
pub mod leader;

/// What every controller needs besides the API client.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Base URL of the gateway that serves channels, e.g. `http://127.0.0.1:8080` (addresses
    /// in status).
    pub gateway_url: String,
}

/// Why a reconcile failed; it is retried with backoff and never blocks other objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused or failed a request.
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    /// A flow's `channelTemplate` names a kind Sluice does not know.
    #[error("unknown channel kind {0}")]
    UnknownKind(String),
    /// An object could not be turned into JSON or back.
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Runs every controller until the API stream ends.
pub async fn run(client: kube::Client, settings: Settings) {
    flows::run(client, settings).await;
}
