//! `sluice dataplane`: the gateway and the dispatch loops alone, learning what to serve by
//! watching a Kubernetes API (a cluster's, or a `sluice run`'s) instead of sharing a process
//! with the store. The objects it serves are mirrored by `kube::runtime::watcher`s
//! ([`Mirror`]); after each batch of changes the snapshot is computed from them with the same
//! decisions the controllers write as status, and applied to the running hubs, which never
//! restart. `sluice run` feeds its own data plane the same way ([`feed`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_brokers::plane::DEFAULT_MAX_BODY_BYTES;
use sluice_brokers::{DataPlane, PlaneConfig};
use sluice_controllers::mirror::Mirror;
use sluice_delivery::metrics::Metrics;
use sluice_delivery::Timeouts;
use sluice_reconcile::Environment;
use tokio::sync::{broadcast, watch};

use super::run::{init_logging, parse_duration, public_url};

/// Arguments of `sluice dataplane`.
#[derive(clap::Args, Debug)]
pub struct DataplaneArgs {
    /// Kubeconfig of the API to watch (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Address of the gateway (broker and channel ingress).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    gateway: SocketAddr,
    /// Time limit of one delivery attempt when its `delivery.timeout` is not set.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    delivery_timeout: Duration,
    /// On SIGTERM or Ctrl-C: how long to wait for accepted events to be delivered.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Namespace the data plane runs in: it reports its source adapters' health there, in the
    /// ConfigMap `sluice-source-health`, for `sluice controller` to write into their status.
    #[arg(long, default_value = "sluice-system", value_name = "NAMESPACE")]
    namespace: String,
}

/// Keeps `plane` in line with the objects of `mirror`: a snapshot once the mirror has listed
/// everything, then one after every batch of changes that are not only statuses. `fed` turns
/// true after the first snapshot is applied.
pub(crate) async fn feed(mirror: Arc<Mirror>, plane: Arc<DataPlane>, env: Environment, fed: watch::Sender<bool>) {
    let mut changes = mirror.changes();
    let mut snapshotter = sluice_reconcile::snapshot::Snapshotter::new(env);
    mirror.ready().await;
    loop {
        // Under the mirror's read lock: the snapshotter decides again only what changed, so
        // this is a pass of lookups, shorter than copying the map would be.
        let snapshot = mirror.with_objects(|objects| snapshotter.snapshot(objects));
        plane.apply(snapshot).await;
        fed.send_replace(true);
        loop {
            match changes.recv().await {
                Ok(change) if change.status_only => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
        // Whatever else has queued meanwhile is in the next snapshot.
        while !matches!(
            changes.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
    }
}

/// Serves the gateway and keeps its hubs in line with the watched objects.
pub async fn dataplane(args: DataplaneArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = super::controller::kube_config(args.kubeconfig.as_deref()).await?;
    // The URL ApiServerSources name as their events' source.
    let api_url = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let client = kube::Client::try_from(config.clone()).context("a Kubernetes client")?;
    let gateway = tokio::net::TcpListener::bind(args.gateway)
        .await
        .with_context(|| format!("binding gateway {}", args.gateway))?;
    let gateway_url = public_url(gateway.local_addr()?);
    let metrics = Arc::new(Metrics::new());
    let timeouts = Timeouts {
        attempt: args.delivery_timeout,
        ..Timeouts::default()
    };
    let plane = DataPlane::new(
        metrics.clone(),
        PlaneConfig {
            gateway_url: gateway_url.clone(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            timeouts,
        },
    );

    let mirror = Mirror::start(client.clone());
    let env = Environment {
        gateway_url: gateway_url.clone(),
        public_url: None,
    };
    let applier = tokio::spawn(feed(mirror.clone(), plane.clone(), env.clone(), watch::Sender::new(false)));
    // Sources: one adapter per source object, delivering to its sink.
    let api_access = sluice_sources::apiserver::ApiAccess {
        client: client.clone(),
        url: api_url,
        // ApiServerSources watch as their service accounts (the data plane may impersonate).
        impersonation: Some(config),
    };
    let sources = sluice_sources::SourcePlane::new(sluice_delivery::Dispatcher::new(timeouts), metrics.clone(), Some(api_access));
    let sources_feed = tokio::spawn(super::sources::feed(client.clone(), mirror, sources.clone(), env));
    // The adapters' health, for the controllers that write the sources' status.
    let health_report = tokio::spawn(sluice_sources::report::publish(
        client.clone(),
        args.namespace.clone(),
        sources.clone(),
    ));
    // Knative Services: Route hosts to each Revision's Service, its Deployment scaled by the KPA.
    let runtime = sluice_runtime::deployment::DeploymentRuntime::start(client.clone());
    let serving = sluice_router::ServingPlane::new(runtime, sluice_router::PlaneSettings::default(), metrics.clone());
    let serving_feed = tokio::spawn(super::serving::feed(client.clone(), serving.clone(), None));
    let autoscaler = tokio::spawn(serving.clone().run_autoscaler());
    let hosts: Arc<dyn sluice_brokers::ingress::HostRouter> = Arc::new(super::gateway::GatewayRoutes {
        serving,
        sources: sources.clone(),
    });
    tracing::info!(gateway = %gateway_url, "sluice dataplane is running");
    tokio::select! {
        r = sluice_brokers::ingress::serve_with(gateway, plane.clone(), Some(hosts)) => r.context("gateway server")?,
        _ = applier => anyhow::bail!("the snapshot applier stopped"),
        _ = serving_feed => anyhow::bail!("the serving plane's feed stopped"),
        _ = sources_feed => anyhow::bail!("the sources' feed stopped"),
        _ = health_report => anyhow::bail!("the sources' health report stopped"),
        _ = autoscaler => anyhow::bail!("the autoscaler stopped"),
        _ = tokio::signal::ctrl_c() => {}
    }
    sources.stop_all(args.shutdown_grace).await;
    let left = plane.drain(args.shutdown_grace).await;
    tracing::info!(undelivered = left, "sluice dataplane stopped");
    Ok(ExitCode::SUCCESS)
}
