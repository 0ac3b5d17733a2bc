//! `sluice controller`: the kube-rs controllers against a Kubernetes API (a cluster's, or a
//! `sluice run`'s), with leader election on a Lease so that several replicas can run and one
//! leads. (`sluice run` runs the same controllers in its own process, without an election.)

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use sluice_controllers::leader::{self, LeaseConfig};

use super::run::{init_logging, parse_duration};

/// Arguments of `sluice controller`.
#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Kubeconfig of the API to control (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Base URL of the data plane's gateway, for the addresses written into status.
    #[arg(long, value_name = "URL")]
    gateway_url: String,
    /// How GitHub reaches the gateway (an Ingress, a load balancer): the base of
    /// GitHubSources' webhook URLs. Default: `--gateway-url`.
    #[arg(long, value_name = "URL", value_parser = super::run::parse_public_url)]
    public_url: Option<String>,
    /// Namespace of the leader-election Lease.
    #[arg(long, default_value = "sluice-system", value_name = "NAMESPACE")]
    lease_namespace: String,
    /// Namespace of `sluice dataplane` (its `--namespace`): where it reports the health of the
    /// source adapters it runs.
    #[arg(long, default_value = "sluice-system", value_name = "NAMESPACE")]
    dataplane_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "sluice-controller", value_name = "NAME")]
    lease_name: String,
    /// This replica's identity in the Lease (default: host name and process id).
    #[arg(long, value_name = "ID")]
    identity: Option<String>,
    /// How long the Lease stays held without renewal (renewed every third of it).
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    lease_duration: Duration,
}

/// A client of the API in `kubeconfig`, or else of the one `KUBECONFIG`, `~/.kube/config` or
/// the in-cluster service account names.
pub(crate) async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    kube::Client::try_from(kube_config(kubeconfig).await?).context("a Kubernetes client")
}

/// The client config of the API: `kubeconfig`, or else `$KUBECONFIG`, `~/.kube/config` or the
/// in-cluster service account.
pub(crate) async fn kube_config(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Config> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .context("the kubeconfig")?
        }
        None => kube::Config::infer().await.context("finding a kubeconfig or in-cluster config")?,
    };
    Ok(config)
}

/// Waits for leadership, then runs the controllers until leadership is lost (exit 1, so the
/// replica restarts as a follower) or the process is told to stop.
pub async fn controller(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let lease = LeaseConfig {
        namespace: args.lease_namespace,
        name: args.lease_name,
        identity: args.identity.unwrap_or_else(|| format!("{}-{}", host.trim(), std::process::id())),
        duration: args.lease_duration,
    };
    tokio::select! {
        () = leader::acquire(&client, &lease) => {}
        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
    }
    let settings = sluice_controllers::Settings {
        gateway_url: args.gateway_url,
        public_url: args.public_url,
        data_plane: None,
        mirror: None,
        // On a cluster Revisions would run as Deployments: not in this build yet.
        serving: None,
        sources: None,
        dataplane_namespace: args.dataplane_namespace,
    };
    tokio::select! {
        () = sluice_controllers::run(client.clone(), settings) => anyhow::bail!("the controllers stopped"),
        () = leader::keep(&client, &lease) => {
            tracing::error!(identity = %lease.identity, "lost leadership; exiting");
            Ok(ExitCode::from(1))
        }
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
    }
}
