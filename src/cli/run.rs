//! `sluice run`: the embedded Kubernetes API (store and resource API), the kube-rs controllers
//! and the data plane (gateway with broker and channel ingress) in one process. Controllers and
//! data plane learn what to do by watching the API, as they do on a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_brokers::plane::DEFAULT_MAX_BODY_BYTES;
use sluice_brokers::{DataPlane, PlaneConfig};
use sluice_control::store::Store;
use sluice_control::ControlPlane;
use sluice_controllers::mirror::Mirror;
use sluice_delivery::metrics::Metrics;
use sluice_delivery::Timeouts;
use sluice_reconcile::Environment;

use super::manifests;

/// Arguments of `sluice run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Manifest files or directories to apply at start.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Directory where objects are persisted and restored from on restart, and where a
    /// `kubeconfig` for kubectl is written. Without it nothing is persisted (objects live in
    /// memory and are gone when the process stops) and no kubeconfig is written.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the gateway (broker and channel ingress).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    gateway: SocketAddr,
    /// Address of the resource API and /metrics.
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
    api: SocketAddr,
    /// Largest accepted request body on the gateway, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Time limit of one delivery attempt when its `delivery.timeout` is not set (e.g. `30s`,
    /// `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    delivery_timeout: Duration,
    /// On SIGTERM or Ctrl-C: how long to wait for accepted events to be delivered (ingress
    /// answers 503 meanwhile) before exiting.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Time limit for opening a connection to a subscriber.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// How long a Revision's instance has to pass its readiness probe before it is reported
    /// (`ReadinessProbeFailed`) and restarted.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    revision_startup_timeout: Duration,
    /// Serve the API and the gateway without running the controllers, as a cluster's API server
    /// runs none: `sluice controller` pointed at this API (its kubeconfig) reconciles instead.
    #[arg(long)]
    no_controllers: bool,
    /// How GitHub reaches this machine's gateway (e.g. `https://hooks.example.com`, a tunnel
    /// to `--gateway`): the base of GitHubSources' webhook URLs, in their status and in the
    /// hooks registered with GitHub. Default: the gateway's own URL.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub(crate) public_url: Option<String>,
}

/// Checks `--public-url`: an absolute http(s) URL; kept without a trailing slash.
pub(crate) fn parse_public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http or https URL"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// Parses `500ms`, `30s` or `2m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len()));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 30s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?} is not a duration such as 500ms, 30s or 2m (units: ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} must be greater than zero"))
}

/// The URL clients use to reach a listening address (unspecified IPs become loopback).
pub fn public_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        "127.0.0.1".parse().expect("valid ip")
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The API's bearer token, kept in the data dir (`token`, readable by its owner only) so it
/// survives restarts; made on first start.
fn api_token(dir: &std::path::Path) -> anyhow::Result<String> {
    let path = dir.join("token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_string());
        }
    }
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let tmp = dir.join(".token.tmp");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::io::Write::write_all(&mut file, token.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// A kubeconfig for kubectl and kube-rs: one cluster at `api_url` (plain HTTP) with the API's
/// bearer token, context `sluice` with namespace `default`.
fn kubeconfig(api_url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sluice
  cluster:
    server: {api_url}
users:
- name: sluice
  user:
    token: {token}
contexts:
- name: sluice
  context:
    cluster: sluice
    user: sluice
    namespace: default
current-context: sluice
preferences: {{}}
"
    )
}

/// Writes `kubeconfig` into the data directory (through a temporary file, so a reader never sees
/// half of it) and returns its path.
fn write_kubeconfig(dir: &std::path::Path, api_url: &str, token: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("kubeconfig");
    let tmp = dir.join(".kubeconfig.tmp");
    std::fs::write(&tmp, kubeconfig(api_url, token)).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// How long `sluice run` waits at start for stored objects to be reconciled.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts everything and serves until interrupted.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let loaded = manifests::load(&args.files)?;
    for s in &loaded.skipped {
        tracing::warn!("{s}");
    }
    if !loaded.errors.is_empty() {
        for e in &loaded.errors {
            eprintln!("error: {e}");
        }
        anyhow::bail!("{} invalid document(s) in the manifests; nothing was started", loaded.errors.len());
    }
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    }
    let store = Store::open(args.data_dir.clone())?;
    let metrics = Arc::new(Metrics::new());
    // Bound before the control plane starts so that addresses in status (`status.address.url`)
    // carry the real port, also when `--gateway` asks for port 0.
    let gateway = tokio::net::TcpListener::bind(args.gateway)
        .await
        .with_context(|| format!("binding gateway {}", args.gateway))?;
    let gateway_url = public_url(gateway.local_addr()?);
    let timeouts = Timeouts {
        connect: args.connect_timeout,
        attempt: args.delivery_timeout,
    };
    let plane = DataPlane::new(
        metrics.clone(),
        PlaneConfig {
            gateway_url: gateway_url.clone(),
            max_body_bytes: args.max_body_bytes,
            timeouts,
        },
    );
    let cp = ControlPlane::start(store.clone(), metrics.clone());
    let objects: Vec<serde_json::Value> = loaded.objects.iter().map(|(_, o)| o.to_value()).collect();
    if !objects.is_empty() {
        let applied = cp.apply(objects, false).await.context("applying manifests")?;
        tracing::info!(count = applied.len(), "manifests applied");
    }

    let api = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("binding api {}", args.api))?;
    let api_url = public_url(api.local_addr()?);
    // On loopback the API is open, as a laptop's own processes are trusted; anywhere else it
    // needs the bearer token of the kubeconfig in the data dir.
    let loopback = api.local_addr()?.ip().is_loopback();
    let token = match &args.data_dir {
        Some(dir) => Some(api_token(dir)?),
        None if loopback => None,
        None => anyhow::bail!(
            "--api {} is not a loopback address: give --data-dir, where the kubeconfig with the API's bearer token is written",
            args.api
        ),
    };
    let kubeconfig_path = match (&args.data_dir, &token) {
        (Some(dir), Some(token)) => Some(write_kubeconfig(dir, &api_url, token)?),
        _ => None,
    };
    // The kube-rs controllers and the data plane talk to this process's own API, as they
    // would to a cluster's.
    let mut kube_config = kube::Config::new(api_url.parse().context("the API URL")?);
    if let (Some(token), false) = (&token, loopback) {
        let bearer = http::HeaderValue::from_str(&format!("Bearer {token}")).context("the API token")?;
        kube_config.headers.push((http::header::AUTHORIZATION, bearer));
    }
    let kube_client = kube::Client::try_from(kube_config).context("a client of the own API")?;
    let api_app = match token {
        Some(token) if !loopback => sluice_control::api::router_with_token(cp.clone(), token),
        _ => sluice_control::api::router(cp.clone()),
    };
    // Made a service once: served as a plain Router, axum rebuilds its route table for every
    // connection (`with_state` per accepted stream), some 20 KB each.
    let ap = tokio::spawn(async move { axum::serve(api, api_app.into_make_service()).await });
    let mirror = Mirror::start(kube_client.clone());
    let env = Environment {
        gateway_url: gateway_url.clone(),
        public_url: args.public_url.clone(),
    };
    let (fed, mut fed_rx) = tokio::sync::watch::channel(false);
    let feeder = tokio::spawn(super::dataplane::feed(mirror.clone(), plane.clone(), env.clone(), fed));
    // The serving core: Revisions as child processes behind the gateway's Route hosts.
    let runtime = sluice_runtime::ProcessRuntime::new(sluice_runtime::RuntimeOptions {
        startup_timeout: args.revision_startup_timeout,
        ..sluice_runtime::RuntimeOptions::new(super::serving::logs_dir(args.data_dir.as_deref()))
    });
    let serving = sluice_router::ServingPlane::new(runtime.clone(), sluice_router::PlaneSettings::default(), metrics.clone());
    let autoscaler = tokio::spawn(serving.clone().run_autoscaler());
    let serving_for_controllers = serving.clone();
    // Sources: one adapter per source object, delivering to its sink.
    let api_access = sluice_sources::apiserver::ApiAccess {
        client: kube_client.clone(),
        url: api_url.clone(),
        // The embedded API has no RBAC to narrow the watches by.
        impersonation: None,
    };
    let sources = sluice_sources::SourcePlane::new(sluice_delivery::Dispatcher::new(timeouts), metrics.clone(), Some(api_access));
    let sources_feed = tokio::spawn(super::sources::feed(
        kube_client.clone(),
        mirror.clone(),
        sources.clone(),
        env.clone(),
    ));
    let processes = super::serving::Processes {
        runtime: runtime.clone(),
        sources: sources.clone(),
    };
    let serving_feed = tokio::spawn(super::serving::feed(kube_client.clone(), serving.clone(), Some(processes)));
    let sources_for_controllers = sources.clone();
    let (gateway_url_for_controllers, plane_for_controllers) = (gateway_url.clone(), plane.clone());
    let run_controllers = !args.no_controllers;
    let controllers = async move {
        if !run_controllers {
            return std::future::pending().await;
        }
        let settings = sluice_controllers::Settings {
            gateway_url: gateway_url_for_controllers,
            public_url: args.public_url.clone(),
            data_plane: Some(plane_for_controllers),
            mirror: Some(mirror),
            serving: Some(serving_for_controllers),
            sources: Some(sources_for_controllers),
            // The adapters run in this process: nothing reports through the API.
            dataplane_namespace: String::new(),
        };
        sluice_controllers::run(kube_client, settings).await
    };
    tokio::pin!(controllers);
    // Running means serving: the data plane has what is stored, and every stored object has
    // the status of its spec (a Trigger's Ready is written once it receives events).
    let settled = async {
        let _ = fed_rx.wait_for(|fed| *fed).await;
        if run_controllers {
            let stored: Vec<_> = store.with_all(|objects| objects.keys().cloned().collect());
            let pending = cp.wait_reconciled(&stored, SETTLE_TIMEOUT).await;
            if !pending.is_empty() {
                let names: Vec<String> = pending.iter().map(|k| format!("{} {}/{}", k.plural, k.namespace, k.name)).collect();
                tracing::warn!(objects = %names.join(", "), "not reconciled yet; serving anyway");
            }
        }
    };
    tokio::select! {
        () = settled => {}
        () = &mut controllers => anyhow::bail!("the controllers stopped"),
    }
    match &kubeconfig_path {
        Some(path) => tracing::info!(gateway = %gateway_url, api = %api_url, kubeconfig = %path.display(), "sluice is running"),
        None => tracing::info!(gateway = %gateway_url, api = %api_url, "sluice is running"),
    }
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminated => {},
        }
        tracing::info!("shutting down");
    };
    let hosts: Arc<dyn sluice_brokers::ingress::HostRouter> = Arc::new(super::gateway::GatewayRoutes {
        serving: serving.clone(),
        sources: sources.clone(),
    });
    let gw = sluice_brokers::ingress::serve_with(gateway, plane.clone(), Some(hosts));
    tokio::select! {
        r = gw => r.context("gateway server")?,
        r = ap => r.context("api server task")?.context("api server")?,
        () = &mut controllers => anyhow::bail!("the controllers stopped"),
        _ = feeder => anyhow::bail!("the data plane's feed stopped"),
        _ = serving_feed => anyhow::bail!("the serving plane's feed stopped"),
        _ = sources_feed => anyhow::bail!("the sources' feed stopped"),
        _ = autoscaler => anyhow::bail!("the autoscaler stopped"),
        _ = shutdown => {},
    }
    // Sources stop taking messages; what they took is delivered and acknowledged first.
    sources.stop_all(args.shutdown_grace).await;
    // Revision instances get SIGTERM, and SIGKILL after their grace period.
    runtime.shutdown().await;
    // The listeners are closed; connections still open get 503 for new events while what was
    // accepted is delivered, within the grace period.
    let left = plane.drain(args.shutdown_grace).await;
    if left == 0 {
        tracing::info!("every accepted event was delivered; exiting");
    } else {
        tracing::warn!(
            events = left,
            grace_ms = args.shutdown_grace.as_millis() as u64,
            "shutdown grace period over with events undelivered; they are lost (memory backend)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_points_at_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let token = api_token(dir.path()).unwrap();
        assert_eq!(api_token(dir.path()).unwrap(), token, "the token survives restarts");
        assert_eq!(token.len(), 64);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(dir.path().join("token")).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let path = write_kubeconfig(dir.path(), "http://127.0.0.1:8090", &token).unwrap();
        let config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(config["users"][0]["user"]["token"].as_str(), Some(token.as_str()));
        assert_eq!(config["current-context"], "sluice");
        assert_eq!(config["clusters"][0]["cluster"]["server"], "http://127.0.0.1:8090");
        assert_eq!(config["contexts"][0]["context"]["namespace"], "default");
        assert_eq!(config["contexts"][0]["context"]["cluster"], "sluice");
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("30").unwrap_err().contains("units"));
        assert!(parse_duration("0s").unwrap_err().contains("greater than zero"));
    }
}
