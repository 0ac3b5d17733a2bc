//! `sluice dataplane`: the gateway and the dispatch loops alone, learning what to serve by
//! watching a Kubernetes API (a cluster's, or a `sluice run`'s) instead of sharing a process
//! with the store. Every object kind the data plane reads is watched (`kube::runtime::watcher`)
//! into one map; after each batch of changes the snapshot is computed from it with the same
//! pure function `sluice run` uses and applied to the running hubs, which never restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::Value;
use sluice_brokers::plane::DEFAULT_MAX_BODY_BYTES;
use sluice_brokers::{DataPlane, PlaneConfig};
use sluice_control::reconcile::{reconcile, Environment};
use sluice_control::store::ObjectKey;
use sluice_delivery::metrics::Metrics;
use sluice_delivery::Timeouts;
use tokio::sync::{mpsc, Mutex};

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
}

/// The kinds the data plane's snapshot is computed from: what it serves and what destinations
/// can name.
const WATCHED: [(&str, &str, &str, &str); 7] = [
    ("eventing.knative.dev", "v1", "Broker", "brokers"),
    ("eventing.knative.dev", "v1", "Trigger", "triggers"),
    ("messaging.knative.dev", "v1", "Channel", "channels"),
    ("messaging.knative.dev", "v1", "InMemoryChannel", "inmemorychannels"),
    ("messaging.knative.dev", "v1", "Subscription", "subscriptions"),
    ("flows.knative.dev", "v1", "Sequence", "sequences"),
    ("flows.knative.dev", "v1", "Parallel", "parallels"),
];

/// Serves the gateway and keeps its hubs in line with the watched objects.
pub async fn dataplane(args: DataplaneArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let client = super::controller::kube_client(args.kubeconfig.as_deref()).await?;
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
        metrics,
        PlaneConfig {
            gateway_url: gateway_url.clone(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            timeouts,
        },
    );

    // Every watcher writes into one map and nudges the applier, which coalesces nudges.
    let objects: Arc<Mutex<BTreeMap<ObjectKey, Value>>> = Default::default();
    let (changed, mut nudges) = mpsc::channel::<()>(1);
    for (group, version, kind, plural) in WATCHED {
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let (objects, changed) = (objects.clone(), changed.clone());
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            let key = |o: &DynamicObject| ObjectKey {
                group: group.to_string(),
                plural: plural.to_string(),
                namespace: o.metadata.namespace.clone().unwrap_or_default(),
                name: o.metadata.name.clone().unwrap_or_default(),
            };
            let mut init: Option<BTreeMap<ObjectKey, Value>> = None;
            while let Some(event) = events.next().await {
                let mut map = objects.lock().await;
                match event {
                    Ok(watcher::Event::Init) => init = Some(BTreeMap::new()),
                    Ok(watcher::Event::InitApply(o)) => {
                        if let (Some(init), Ok(v)) = (init.as_mut(), serde_json::to_value(&o)) {
                            init.insert(key(&o), v);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        // A (re)list replaces what this kind had.
                        map.retain(|k, _| !(k.group == group && k.plural == plural));
                        map.extend(init.take().unwrap_or_default());
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        if let Ok(v) = serde_json::to_value(&o) {
                            map.insert(key(&o), v);
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        map.remove(&key(&o));
                    }
                    Err(error) => {
                        tracing::warn!(kind, %error, "watch failed; retrying");
                        drop(map);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
                drop(map);
                let _ = changed.try_send(());
            }
        });
    }
    let applier = {
        let (plane, objects) = (plane.clone(), objects.clone());
        let env = Environment {
            gateway_url: gateway_url.clone(),
        };
        tokio::spawn(async move {
            while nudges.recv().await.is_some() {
                let snapshot = reconcile(&*objects.lock().await, &env).snapshot;
                plane.apply(snapshot).await;
            }
        })
    };
    tracing::info!(gateway = %gateway_url, "sluice dataplane is running");
    tokio::select! {
        r = sluice_brokers::ingress::serve(gateway, plane.clone()) => r.context("gateway server")?,
        _ = applier => anyhow::bail!("the snapshot applier stopped"),
        _ = tokio::signal::ctrl_c() => {}
    }
    let left = plane.drain(args.shutdown_grace).await;
    tracing::info!(undelivered = left, "sluice dataplane stopped");
    Ok(ExitCode::SUCCESS)
}
