//! `sluice bench broker`: drives 1 KiB events through ingress → trigger → subscriber on
//! loopback and, in the same run, a raw HTTP POST baseline straight to the subscriber.
//!
//! Prints throughput (events/s), the ratio to the baseline, and p50/p99 end-to-end latency at
//! a fixed rate. Everything runs in this process on loopback; nothing is asserted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_brokers::{Acknowledge, BackendKind, DataPlane, HubKey, HubKind, HubSpec, PlaneConfig, ReplyTo, Snapshot, SubscriberConfig};
use sluice_crds::eventing::SubscriptionsApiFilter;
use sluice_delivery::metrics::Metrics;
use sluice_delivery::{RetryPolicy, Target};

/// Which benchmark.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Broker ingress → trigger → subscriber against a raw HTTP baseline.
    Broker(BrokerBench),
    /// Brokers and Triggers created through the API: time until Ready and delivering, and RSS.
    Control(super::bench_control::ControlBench),
    /// Knative Services: cold-start and warm overhead against the app reached directly.
    Serving(super::bench_serving::ServingBench),
    /// Kafka, RabbitMQ and SQS through source adapters, against plain consumers.
    Sources(super::bench_sources::SourcesBench),
}

/// Options of `sluice bench broker`.
#[derive(clap::Args, Debug)]
pub struct BrokerBench {
    /// Events per throughput run.
    #[arg(long, default_value_t = 100_000, value_name = "COUNT")]
    events: u64,
    /// Concurrent senders in throughput runs.
    #[arg(long, default_value_t = 64, value_name = "SENDERS")]
    concurrency: usize,
    /// Event data size in bytes.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    size: usize,
    /// Rate of the latency runs, events/s.
    #[arg(long, default_value_t = 2000, value_name = "EVENTS_PER_S")]
    rate: u64,
    /// Duration of each latency run, seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    latency_seconds: u64,
    /// Throughput rounds (a baseline run then a sluice run; medians are reported).
    #[arg(long, default_value_t = 3, value_name = "ROUNDS")]
    rounds: usize,
    /// Run only one path (for profiling): 0 baseline, 1 forwarder, 2 sluice.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2), value_name = "PATH")]
    only: Option<u8>,
    /// The trigger's in-flight limit (concurrent deliveries to the subscriber).
    #[arg(long, default_value_t = 100, value_name = "LIMIT")]
    max_in_flight: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Process-wide time base: senders stamp microseconds since it, the subscriber subtracts.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The subscriber: counts events and records latency from the `ce-benchsent` header.
#[derive(Default)]
struct Subscriber {
    received: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    recording: std::sync::atomic::AtomicBool,
}

async fn start_subscriber(sub: Arc<Subscriber>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let sub = sub.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let sub = sub.clone();
                    async move {
                        let sent = req.headers().get("ce-benchsent").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                        let _ = req.into_body().collect().await;
                        if let (Some(sent), true) = (sent, sub.recording.load(Ordering::Relaxed)) {
                            let now = base().elapsed().as_micros() as u64;
                            sub.latencies_us.lock().expect("latency lock").push(now.saturating_sub(sent));
                        }
                        sub.received.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(202)
                                .body(Empty::<Bytes>::new())
                                .expect("static response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// The reference hop: a bare hyper server that answers 202 and forwards each request's
/// headers and body to the subscriber from a spawned task, with no parsing, storage, filtering
/// or retries. Any broker that puts one HTTP hop in front of the subscriber costs at least this.
async fn start_forwarder(subscriber_url: String) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let forward = client();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let (forward, subscriber_url) = (forward.clone(), subscriber_url.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (forward, subscriber_url) = (forward.clone(), subscriber_url.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let mut out = Request::post(subscriber_url.as_str()).body(Full::new(body)).expect("valid request");
                        *out.headers_mut() = parts.headers;
                        tokio::spawn(async move {
                            if let Ok(resp) = forward.request(out).await {
                                let _ = resp.into_body().collect().await;
                            }
                        });
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(202)
                                .body(Empty::<Bytes>::new())
                                .expect("static response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(c)
}

fn event_request(url: &str, data: &Bytes, seq: u64) -> Request<Full<Bytes>> {
    Request::post(url)
        .header("ce-specversion", "1.0")
        .header("ce-id", seq.to_string())
        .header("ce-type", "dev.sluice.bench")
        .header("ce-source", "/bench")
        .header("ce-benchsent", (base().elapsed().as_micros() as u64).to_string())
        .header("content-type", "application/octet-stream")
        .body(Full::new(data.clone()))
        .expect("valid request")
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // Linux reports these in USER_HZ, which is 100 on every supported architecture.
    Duration::from_millis(ticks * 10)
}

/// Sends `events` events with `concurrency` senders; returns events/s measured at the subscriber.
/// What one throughput run measured.
struct Throughput {
    /// Events per second, counted at the subscriber.
    events_per_second: f64,
    /// Process CPU time (all threads, user + system) per event, microseconds.
    cpu_us_per_event: f64,
}

async fn throughput(url: &str, sub: &Subscriber, events: u64, concurrency: usize, data: &Bytes) -> anyhow::Result<Throughput> {
    let start_count = sub.received.load(Ordering::Relaxed);
    let next = Arc::new(AtomicU64::new(0));
    let client = client();
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, url, data) = (client.clone(), next.clone(), url.to_string(), data.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= events {
                    return Ok::<_, anyhow::Error>(());
                }
                let resp = client.request(event_request(&url, &data, seq)).await.context("posting event")?;
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                anyhow::ensure!(status.is_success(), "{url} answered {status}");
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sub.received.load(Ordering::Relaxed) - start_count < events {
        anyhow::ensure!(Instant::now() < deadline, "events not delivered within 60 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    Ok(Throughput {
        events_per_second: events as f64 / elapsed.as_secs_f64(),
        cpu_us_per_event: cpu.as_secs_f64() * 1e6 / events as f64,
    })
}

/// Sends at a fixed rate for `seconds`; returns (p50, p99, max) end-to-end latency in ms.
async fn latency(url: &str, sub: &Subscriber, rate: u64, seconds: u64, data: &Bytes) -> anyhow::Result<(f64, f64, f64)> {
    sub.latencies_us.lock().expect("latency lock").clear();
    sub.recording.store(true, Ordering::Relaxed);
    let start_count = sub.received.load(Ordering::Relaxed);
    let total = rate * seconds;
    let client = client();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..total {
        let due = started + Duration::from_secs_f64(seq as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, data) = (client.clone(), url.to_string(), data.clone());
        tasks.spawn(async move {
            let resp = client.request(event_request(&url, &data, seq)).await?;
            let _ = resp.into_body().collect().await;
            Ok::<_, hyper_util::client::legacy::Error>(())
        });
        while let Some(r) = tasks.try_join_next() {
            r?.context("posting event")?;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r?.context("posting event")?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while sub.received.load(Ordering::Relaxed) - start_count < total {
        anyhow::ensure!(Instant::now() < deadline, "events not delivered within 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sub.recording.store(false, Ordering::Relaxed);
    let mut l = std::mem::take(&mut *sub.latencies_us.lock().expect("latency lock"));
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    Ok((pct(0.50), pct(0.99), l.last().copied().unwrap_or(0) as f64 / 1000.0))
}

/// Runs the benchmark and prints its report.
pub async fn bench(which: BenchCommand) -> anyhow::Result<ExitCode> {
    let opts = match which {
        BenchCommand::Broker(opts) => opts,
        BenchCommand::Control(opts) => return super::bench_control::bench(opts).await,
        BenchCommand::Serving(opts) => return super::bench_serving::bench(opts).await,
        BenchCommand::Sources(opts) => return super::bench_sources::bench(opts).await,
    };
    base();
    let sub = Arc::new(Subscriber::default());
    let sub_addr = start_subscriber(sub.clone()).await?;
    let sub_url = format!("http://{sub_addr}/");

    let metrics = Arc::new(Metrics::new());
    let config = PlaneConfig {
        gateway_url: "http://127.0.0.1:0".into(),
        max_body_bytes: sluice_brokers::plane::DEFAULT_MAX_BODY_BYTES,
        timeouts: Default::default(),
    };
    let plane = DataPlane::new(metrics, config);
    let filter = SubscriptionsApiFilter {
        exact: Some(BTreeMap::from([("type".to_string(), "dev.sluice.bench".to_string())])),
        ..Default::default()
    };
    let key = HubKey {
        kind: HubKind::Broker,
        namespace: "bench".into(),
        name: "default".into(),
    };
    plane
        .apply(Snapshot {
            hubs: vec![HubSpec {
                key: key.clone(),
                backend: BackendKind::Memory,
                acknowledge: Acknowledge::WhenStored,
                subscribers: vec![std::sync::Arc::new(SubscriberConfig {
                    id: "bench/trigger/1".into(),
                    kind: "trigger",
                    namespace: "bench".into(),
                    name: "trigger".into(),
                    filter: Some(sluice_triggers::compile(None, Some(&[filter])).map_err(|e| anyhow::anyhow!("{e}"))?),
                    subscriber: Target::parse(&sub_url).map_err(anyhow::Error::msg)?,
                    reply: ReplyTo::SameBroker,
                    policy: RetryPolicy::default(),
                    dead_letter: None,
                    max_in_flight: opts.max_in_flight,
                    generation: 1,
                })],
            }],
        })
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gw = listener.local_addr()?;
    tokio::spawn(sluice_brokers::ingress::serve(listener, plane));
    let broker_url = format!("http://{gw}/bench/default");
    let forwarder_url = format!("http://{}/", start_forwarder(sub_url.clone()).await?);
    let data = Bytes::from(vec![b'x'; opts.size]);

    outln!(
        "sluice bench broker: {} events of {} bytes, {} senders; latency at {} events/s for {} s",
        opts.events,
        opts.size,
        opts.concurrency,
        opts.rate,
        opts.latency_seconds
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    outln!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let paths = [
        Path {
            label: "baseline: raw HTTP POST to subscriber",
            url: sub_url,
        },
        Path {
            label: "forwarder: bare hyper hop (reference)",
            url: forwarder_url,
        },
        Path {
            label: "sluice: ingress -> trigger -> subscriber",
            url: broker_url,
        },
    ];
    let selected: Vec<&Path> = paths
        .iter()
        .enumerate()
        .filter(|(i, _)| opts.only.is_none_or(|o| o as usize == *i))
        .map(|(_, p)| p)
        .collect();
    // Warm up connection pools on every path.
    for p in &selected {
        throughput(&p.url, &sub, 2000, opts.concurrency, &data).await?;
    }

    let rounds = opts.rounds.max(1);
    let mut runs: Vec<Vec<Throughput>> = selected.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (p, runs) in selected.iter().zip(runs.iter_mut()) {
            let t = throughput(&p.url, &sub, opts.events, opts.concurrency, &data).await?;
            line.push_str(&format!(
                " {} {:.0} events/s ({:.1} µs CPU/event);",
                p.label.split(':').next().unwrap_or(""),
                t.events_per_second,
                t.cpu_us_per_event
            ));
            runs.push(t);
        }
        outln!("{}", line.trim_end_matches(';'));
    }
    let mut latencies = Vec::new();
    for p in &selected {
        latencies.push(latency(&p.url, &sub, opts.rate, opts.latency_seconds, &data).await?);
    }

    outln!();
    outln!(
        "{:<44} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "path",
        "events/s",
        "µs CPU/ev",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    for ((p, runs), (p50, p99, max)) in selected.iter().zip(&runs).zip(&latencies) {
        let rate = median(runs.iter().map(|t| t.events_per_second).collect());
        let cpu = median(runs.iter().map(|t| t.cpu_us_per_event).collect());
        outln!(
            "{:<44} {:>12.0} {:>12.1} {:>10.3} {:>10.3} {:>10.3}",
            p.label,
            rate,
            cpu,
            p50,
            p99,
            max
        );
    }
    if selected.len() == paths.len() {
        outln!();
        // Each round runs the paths back to back, so the median of the per-round ratios is less
        // exposed to load drifting on a shared machine than a ratio of medians. Both paths keep
        // the cores busy, so CPU time per event is the second view of the same ratio.
        let ratio =
            |i: usize, j: usize, f: fn(&Throughput) -> f64| median(runs[i].iter().zip(&runs[j]).map(|(a, b)| f(a) / f(b)).collect());
        let rate = |t: &Throughput| t.events_per_second;
        let inverse_cpu = |t: &Throughput| 1.0 / t.cpu_us_per_event;
        outln!(
            "sluice / baseline:  throughput ratio {:.2}, CPU-per-event ratio {:.2} (median of {rounds} paired rounds)",
            ratio(2, 0, rate),
            ratio(2, 0, inverse_cpu)
        );
        outln!(
            "forwarder / baseline: throughput ratio {:.2}, CPU-per-event ratio {:.2}",
            ratio(1, 0, rate),
            ratio(1, 0, inverse_cpu)
        );
        outln!(
            "sluice / forwarder: throughput ratio {:.2}, CPU-per-event ratio {:.2}",
            ratio(2, 1, rate),
            ratio(2, 1, inverse_cpu)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One measured path.
struct Path {
    label: &'static str,
    url: String,
}
