//! `sluice bench serving`: what the serving path adds, against the same app reached directly,
//! measured in one run on this machine.
//!
//! 1. Cold start: a Service created at zero (`initial-scale: 0`) gets one request through the
//!    gateway; the time to its response, minus the time the app itself takes from process start
//!    to its first answer (the same program started directly, right before), is the overhead of
//!    holding, scaling from zero, starting, probing and proxying.
//! 2. Warm: requests at a fixed rate through the gateway (Host routing, activator pool,
//!    proxy) and straight to the instance's port, in alternating rounds of a tenth of a second;
//!    the added latency at p50 and p99.
//!
//! The app is this binary (`sluice bench-app`): an HTTP server on `$PORT` answering "ok", so
//! what is measured is Sluice, not an interpreter's start.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// Options of `sluice bench serving`.
#[derive(clap::Args, Debug)]
pub struct ServingBench {
    /// Cold starts to measure (one new Service each).
    #[arg(long, default_value_t = 10, value_name = "COUNT")]
    cold_starts: usize,
    /// Requests per second of the warm measurement.
    #[arg(long, default_value_t = 1000, value_name = "RATE")]
    rate: u64,
    /// Seconds of each warm measurement (rounds of a tenth of a second, alternating the two
    /// paths).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    seconds: u64,
}

/// The app of the benchmark: answers every request "ok" on `$PORT` (127.0.0.1).
pub async fn app() -> anyhow::Result<ExitCode> {
    let port: u16 = std::env::var("PORT").context("PORT")?.parse().context("PORT is not a port")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app = axum::Router::new().fallback(|| async { "ok" });
    axum::serve(listener, app).await?;
    Ok(ExitCode::SUCCESS)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Starts this binary as the app on a free port and times it until it answers.
async fn direct_start(client: &reqwest::Client) -> anyhow::Result<Duration> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("bench-app")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/");
    loop {
        if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            let took = started.elapsed();
            let _ = child.kill().await;
            return Ok(took);
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("the app did not answer within 10 s");
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Sends `total` requests at `rate` a second to `url` (with `host`), and returns each one's
/// latency, sorted.
async fn fixed_rate(client: &reqwest::Client, url: &str, host: Option<&str>, rate: u64, total: u64) -> anyhow::Result<Vec<Duration>> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticks.tick().await;
        let mut request = client.get(url);
        if let Some(h) = host {
            request = request.header("host", h);
        }
        tasks.spawn(async move {
            let sent = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            anyhow::ensure!(status.is_success(), "a request failed: {status} {}", String::from_utf8_lossy(&body));
            Ok::<_, anyhow::Error>(sent.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    while let Some(done) = tasks.join_next().await {
        latencies.push(done??);
    }
    latencies.sort();
    Ok(latencies)
}

/// Runs the benchmark and prints its figures.
pub async fn bench(opts: ServingBench) -> anyhow::Result<ExitCode> {
    let app = std::env::current_exe()?.display().to_string();
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\n  namespace: knative-serving\ndata:\n  allow-zero-initial-scale: \"true\"\n";
    let sluice = super::bench_control::start_sluice_with(settings).await?;
    let client = reqwest::Client::new();
    let services = format!("{}/apis/serving.knative.dev/v1/namespaces/default/services", sluice.api);
    let port = sluice.gateway.rsplit(':').next().unwrap_or("80").to_string();
    outln!(
        "sluice bench serving: {} cold starts, {} req/s for {} s warm; machine: {} cores",
        opts.cold_starts,
        opts.rate,
        opts.seconds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let service = |name: &str, initial: u32| {
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/initial-scale": initial.to_string()}},
                "spec": {"containers": [{"image": "sluice/bench-app", "command": [app.clone(), "bench-app"]}]}}}})
    };
    let wait_ready = |name: String| {
        let (client, services) = (client.clone(), services.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let svc: Value = client.get(format!("{services}/{name}")).send().await?.json().await?;
                let ready = svc["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                if ready {
                    return Ok::<_, anyhow::Error>(svc);
                }
                if Instant::now() > deadline {
                    bail!("Service {name} is not Ready after 30 s: {svc}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // 1. Cold starts, each paired with a direct start of the same program just before.
    let (mut overheads, mut colds, mut directs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..opts.cold_starts {
        let direct = direct_start(&client).await?;
        let name = format!("cold-{i}");
        let created = client.post(&services).json(&service(&name, 0)).send().await?;
        if created.status() != 201 {
            bail!("creating {name}: {}", created.text().await.unwrap_or_default());
        }
        wait_ready(name.clone()).await?;
        let host = format!("{name}.default.localhost:{port}");
        let sent = Instant::now();
        let response = client.get(format!("{}/", sluice.gateway)).header("host", &host).send().await?;
        let status = response.status();
        let _ = response.bytes().await?;
        let cold = sent.elapsed();
        if !status.is_success() {
            bail!("{name} answered {status}");
        }
        colds.push(cold);
        directs.push(direct);
        overheads.push(cold.saturating_sub(direct));
    }
    overheads.sort();
    colds.sort();
    directs.sort();
    outln!(
        "cold start: first response {:.1} ms p50 ({:.1} ms max); the app alone {:.1} ms p50; overhead {:.1} ms p50, {:.1} ms max (goal: <= 20 ms p50)",
        ms(percentile(&colds, 0.5)),
        ms(percentile(&colds, 1.0)),
        ms(percentile(&directs, 0.5)),
        ms(percentile(&overheads, 0.5)),
        ms(percentile(&overheads, 1.0)),
    );

    // 2. Warm: one instance that stays (min-scale), through the gateway and straight to it.
    let mut warm = service("warm", 1);
    warm["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = json!("1");
    warm["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] = json!("1");
    let created = client.post(&services).json(&warm).send().await?;
    if created.status() != 201 {
        bail!("creating warm: {}", created.text().await.unwrap_or_default());
    }
    wait_ready("warm".into()).await?;
    let host = format!("warm.default.localhost:{port}");
    let gateway_url = format!("{}/", sluice.gateway);
    // The instance's own address: the runtime's log line of the ready instance.
    let direct_url = loop {
        let log = std::fs::read_to_string(&sluice.log).unwrap_or_default();
        let found = log
            .lines()
            .filter(|l| l.contains("instance ready") && l.contains("default/warm-00001"))
            .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("port=")).map(str::to_string));
        if let Some(p) = found {
            break format!("http://127.0.0.1:{p}/");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Warm both paths up (connections, the pool) for a second each, then measure them in
    // alternating rounds of a tenth of a second, so that whatever else the machine does in the
    // meantime (its other services wake up too) falls on both alike.
    fixed_rate(&client, &gateway_url, Some(&host), opts.rate, opts.rate).await?;
    fixed_rate(&client, &direct_url, None, opts.rate, opts.rate).await?;
    let round = (opts.rate / 10).max(1);
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for _ in 0..opts.seconds * 10 {
        direct.extend(fixed_rate(&client, &direct_url, None, opts.rate, round).await?);
        through.extend(fixed_rate(&client, &gateway_url, Some(&host), opts.rate, round).await?);
    }
    direct.sort();
    through.sort();
    let (d50, d99, g50, g99) = (
        percentile(&direct, 0.5),
        percentile(&direct, 0.99),
        percentile(&through, 0.5),
        percentile(&through, 0.99),
    );
    outln!(
        "warm at {} req/s: direct p50 {:.3} ms p99 {:.3} ms; through the gateway p50 {:.3} ms p99 {:.3} ms; added p50 {:.3} ms, p99 {:.3} ms (goals: <= 0.2 ms, <= 1 ms)",
        opts.rate,
        ms(d50),
        ms(d99),
        ms(g50),
        ms(g99),
        ms(g50.saturating_sub(d50)),
        ms(g99.saturating_sub(d99)),
    );
    Ok(ExitCode::SUCCESS)
}
