//! `sluice bench control`: how fast the control plane takes many objects. Starts `sluice run`
//! as a child process, creates Brokers and Triggers one request at a time through the resource
//! API (as kubectl or a controller would), and times until every Trigger is Ready and until
//! every Trigger has delivered an event to its subscriber; then reports the child's resident
//! memory with those objects (the workload measured: Brokers and Triggers). Against a baseline
//! measured in the same run, after the memory: the same number of plain ConfigMap creates,
//! which go through the same API and store without reconciling anything.

use std::collections::HashSet;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// Options of `sluice bench control`.
#[derive(clap::Args, Debug)]
pub struct ControlBench {
    /// Brokers to create.
    #[arg(long, default_value_t = 10, value_name = "COUNT")]
    brokers: usize,
    /// Triggers to create, spread over the brokers.
    #[arg(long, default_value_t = 1000, value_name = "COUNT")]
    triggers: usize,
    /// Create requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "REQUESTS")]
    concurrency: usize,
}

/// A `sluice run` child on free loopback ports, killed on drop.
pub(super) struct Child {
    pub(super) process: std::process::Child,
    pub(super) gateway: String,
    pub(super) api: String,
    /// Its log file.
    pub(super) log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn start_sluice() -> anyhow::Result<Child> {
    start_sluice_with("").await
}

/// Starts `sluice run` with `manifests` applied at start (none when empty).
pub(super) async fn start_sluice_with(manifests: &str) -> anyhow::Result<Child> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("sluice.log");
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args(["run", "--gateway", "127.0.0.1:0", "--api", "127.0.0.1:0"]);
    if !manifests.is_empty() {
        let file = dir.path().join("manifests.yaml");
        std::fs::write(&file, manifests)?;
        command.arg("-f").arg(file);
    }
    let process = command
        .env("RUST_LOG", "warn,sluice::cli::run=info,sluice_runtime=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting sluice run")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("sluice is running")) {
            let field = |name: &str| line.split_whitespace().find_map(|w| w.strip_prefix(name)).map(str::to_string);
            if let (Some(gateway), Some(api)) = (field("gateway="), field("api=")) {
                return Ok(Child {
                    process,
                    gateway,
                    api,
                    log,
                    _dir: dir,
                });
            }
        }
        if Instant::now() > deadline {
            bail!("sluice run did not start; log:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Resident memory of a process, from `/proc/{pid}/status`, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// POSTs `bodies` to `url` with `concurrency` requests in flight; fails on any non-201.
async fn create_all(client: &reqwest::Client, url: &str, bodies: Vec<Value>, concurrency: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(bodies));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, queue) = (client.clone(), url.to_string(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().expect("queue poisoned").pop() else {
                    return Ok(());
                };
                let response = client.post(&url).json(&body).send().await?;
                if response.status() != 201 {
                    bail!(
                        "create answered {}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(started.elapsed())
}

/// Runs the benchmark and prints its figures.
pub async fn bench(opts: ControlBench) -> anyhow::Result<ExitCode> {
    // One subscriber for every trigger; each trigger has its own path, so the paths that
    // arrived say which triggers deliver.
    let arrived: Arc<Mutex<HashSet<String>>> = Default::default();
    let seen = arrived.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("set poisoned").insert(uri.path().to_string());
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let subscriber = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sluice = start_sluice().await?;
    let client = reqwest::Client::new();
    let ns = format!("{}/apis/eventing.knative.dev/v1/namespaces/default", sluice.api);
    outln!(
        "sluice bench control: {} brokers, {} triggers, {} requests in flight; machine: {} cores",
        opts.brokers,
        opts.triggers,
        opts.concurrency,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let rss_before = rss_mib(sluice.process.id()).unwrap_or(0.0);
    let started = Instant::now();
    let brokers: Vec<Value> = (0..opts.brokers)
        .map(|b| json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": format!("b{b}")}}))
        .collect();
    create_all(&client, &format!("{ns}/brokers"), brokers, opts.concurrency).await?;
    let triggers: Vec<Value> = (0..opts.triggers)
        .map(|t| {
            json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": format!("t{t}")},
                "spec": {"broker": format!("b{}", t % opts.brokers.max(1)), "subscriber": {"uri": format!("{subscriber}/t{t}")}}})
        })
        .collect();
    let created = create_all(&client, &format!("{ns}/triggers"), triggers, opts.concurrency).await?;
    let creates_done = started.elapsed();

    // Until every Trigger reports Ready=True.
    loop {
        let list: Value = client.get(format!("{ns}/triggers")).send().await?.json().await?;
        let ready = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                t["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        if ready == opts.triggers {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("only {ready} of {} triggers Ready after 300 s", opts.triggers);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_ready = started.elapsed();

    // Until every Trigger has delivered: one event per broker reaches all of its triggers.
    for b in 0..opts.brokers {
        let status = client
            .post(format!("{}/default/b{b}", sluice.gateway))
            .header("ce-specversion", "1.0")
            .header("ce-id", format!("bench-{b}"))
            .header("ce-type", "dev.sluice.bench")
            .header("ce-source", "/bench")
            .body("{}")
            .send()
            .await?
            .status();
        if status != 202 {
            bail!("broker b{b} answered {status}");
        }
    }
    loop {
        let n = arrived.lock().expect("set poisoned").len();
        if n == opts.triggers {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("only {n} of {} triggers delivered after 300 s", opts.triggers);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_delivering = started.elapsed();
    let rss_after = rss_mib(sluice.process.id()).unwrap_or(0.0);

    // Baseline: as many ConfigMaps, through the same API and store, nothing to reconcile.
    // Measured after the memory, which is that of the Brokers and Triggers alone.
    let configmaps: Vec<Value> = (0..opts.triggers)
        .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}}))
        .collect();
    let baseline = create_all(
        &client,
        &format!("{}/api/v1/namespaces/default/configmaps", sluice.api),
        configmaps,
        opts.concurrency,
    )
    .await?;
    let rss_with_baseline = rss_mib(sluice.process.id()).unwrap_or(0.0);

    let per = |d: Duration, n: usize| d.as_secs_f64() * 1000.0 / n.max(1) as f64;
    outln!(
        "baseline: {} ConfigMap creates in {:.2} s ({:.2} ms each)",
        opts.triggers,
        baseline.as_secs_f64(),
        per(baseline, opts.triggers)
    );
    outln!(
        "triggers: {} creates in {:.2} s ({:.2} ms each, {:.1}x the ConfigMap baseline)",
        opts.triggers,
        created.as_secs_f64(),
        per(created, opts.triggers),
        created.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
    );
    outln!(
        "from the first create: all created {:.2} s, all Ready {:.2} s, all delivering {:.2} s",
        creates_done.as_secs_f64(),
        all_ready.as_secs_f64(),
        all_delivering.as_secs_f64()
    );
    outln!(
        "sluice run RSS: {rss_before:.1} MiB at start, {rss_after:.1} MiB with the brokers and triggers and a delivered event per trigger (goal: <= 80 MiB); {rss_with_baseline:.1} MiB with the baseline's ConfigMaps too"
    );
    Ok(ExitCode::SUCCESS)
}
