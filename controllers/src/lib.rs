//! Sluice's controllers, written with kube-rs: each watches its kind through a Kubernetes API
//! (the one `sluice run` serves, or a cluster's), reconciles one object at a time, owns the
//! children it creates through `ownerReferences`, and writes status through `/status`.
//!
//! One module per kind: [`broker`], [`trigger`], [`channel`] (Channel and InMemoryChannel),
//! [`subscription`], [`flows`] (Sequence and Parallel), [`serving`], [`sources`] and [`unserved`] (the kinds stored but
//! not run). What each decides is a pure function of `sluice-reconcile`; [`core`] is the
//! kube-rs `Controller` they share, and [`mirror`] the objects their decisions read.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod channel;
pub mod children;
pub mod core;
pub mod flows;
pub mod github;
pub mod leader;
pub mod mirror;
pub mod serving;
pub mod sources;
pub mod status;
mod subjects;
pub mod subscription;
pub mod trigger;
pub mod unserved;

use std::sync::Arc;

use sluice_brokers::DataPlane;
use sluice_crds::eventing::{Broker, Trigger};
use sluice_crds::messaging::{Channel, InMemoryChannel, Subscription};

/// What every controller needs besides the API client.
#[derive(Clone)]
pub struct Settings {
    /// Base URL of the gateway that serves brokers and channels, e.g. `http://127.0.0.1:8080`
    /// (addresses in status).
    pub gateway_url: String,
    /// How GitHub reaches the gateway, when not at `gateway_url` (`--public-url`): the base of
    /// GitHubSources' webhook addresses.
    pub public_url: Option<String>,
    /// The data plane of this process (`sluice run`): statuses wait until it serves what they
    /// report. `None` on a cluster, where the data plane runs apart.
    pub data_plane: Option<Arc<DataPlane>>,
    /// A mirror to share with the data plane; `None` starts one.
    pub mirror: Option<Arc<mirror::Mirror>>,
    /// The serving plane of this process (`sluice run`), which runs Revisions as child
    /// processes: their status reports its instances. `None` on a cluster, where each Revision
    /// gets a Deployment and a Service.
    pub serving: Option<Arc<sluice_router::ServingPlane>>,
    /// The source adapters of this process (`sluice run`): a source's `Deployed` is its
    /// adapter's health. `None` on a cluster, where `sluice dataplane` runs them.
    pub sources: Option<Arc<sluice_sources::SourcePlane>>,
    /// Where `sluice dataplane` reports its source adapters' health (when `sources` is
    /// `None`): the namespace of its ConfigMap `sluice-source-health`.
    pub dataplane_namespace: String,
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
    /// The data plane of this process did not start serving what was decided in time.
    #[error("the data plane does not serve {0} yet")]
    NotServed(String),
}

/// Runs every controller until the API streams end. The Knative-kind controllers start once
/// the mirror has listed every kind, so that no first decision misses an existing object.
pub async fn run(client: kube::Client, settings: Settings) {
    let mirror = settings.mirror.clone().unwrap_or_else(|| mirror::Mirror::start(client.clone()));
    mirror.ready().await;
    let env = sluice_reconcile::Environment {
        gateway_url: settings.gateway_url.clone(),
        public_url: settings.public_url.clone(),
    };
    let ctx = core::Context::new(client.clone(), env.clone(), mirror.clone(), settings.data_plane.clone());
    tokio::join!(
        core::run::<Broker>(ctx.clone()),
        core::run::<Trigger>(ctx.clone()),
        core::run::<Channel>(ctx.clone()),
        core::run::<InMemoryChannel>(ctx.clone()),
        core::run::<Subscription>(ctx),
        flows::run(client.clone(), settings.clone()),
        sources::run(
            client.clone(),
            env.clone(),
            mirror.clone(),
            settings.sources.clone(),
            settings.dataplane_namespace.clone(),
        ),
        github::run(client.clone(), env, mirror),
        serving::run(client.clone(), settings),
        unserved::run(client),
    );
}
