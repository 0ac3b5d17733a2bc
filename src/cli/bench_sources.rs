//! `sluice bench sources`: messages per second from Kafka, RabbitMQ and SQS through a source
//! adapter to a local sink, next to a plain client consuming the same amount in the same run
//! (an `rdkafka` consumer that stores offsets, a `lapin` consumer that acks, an `aws-sdk-sqs`
//! loop that deletes) — with the same prefetch, parallelism and acknowledgement per message.
//!
//! Each RabbitMQ and SQS run gets its own queue, filled before the clock starts; the Kafka runs
//! read one topic, filled first, each as a new consumer group, taking turns `--rounds` times
//! and reported by their medians. The adapters run in
//! this process through a [`SourcePlane`], as in `sluice run`; the sink answers 200 at once.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use sluice_delivery::metrics::Metrics;
use sluice_delivery::{Dispatcher, RetryPolicy};
use sluice_sources::plane::AdapterConfig;
use sluice_sources::{kafka, rabbitmq, sqs, SinkPlan, SourceInput, SourceKey, SourcePlane};

/// Options of `sluice bench sources`.
#[derive(clap::Args, Debug)]
pub struct SourcesBench {
    /// Messages per RabbitMQ run.
    #[arg(long, default_value_t = 20_000, value_name = "COUNT")]
    messages: u64,
    /// Records per Kafka run: a plain consumer reads 20,000 in about 30 ms, too short to time.
    #[arg(long, default_value_t = 400_000, value_name = "COUNT")]
    kafka_messages: u64,
    /// Messages per SQS run (a local SQS API is slower).
    #[arg(long, default_value_t = 300, value_name = "COUNT")]
    sqs_messages: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 512, value_name = "BYTES")]
    size: usize,
    /// Kafka bootstrap server (e.g. tansu on loopback); Kafka is skipped without it.
    #[arg(long, env = "SLUICE_KAFKA", value_name = "HOST:PORT")]
    kafka: Option<String>,
    /// Turns the plain Kafka consumer and the Kafka source take; each is reported by its median.
    #[arg(long, default_value_t = 3, value_name = "COUNT")]
    rounds: usize,
    /// Partitions of the Kafka topics.
    #[arg(long, default_value_t = 4, value_name = "COUNT")]
    partitions: i32,
    /// Records per request of the batched Kafka run (the `sluice.dev/max-batch-size`
    /// annotation); 1 skips that run.
    #[arg(long, default_value_t = 500, value_name = "COUNT")]
    kafka_batch: usize,
    /// RabbitMQ URI; RabbitMQ is skipped when nothing answers there.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", value_name = "URI")]
    amqp: String,
    /// Prefetch and deliveries in flight of the RabbitMQ runs (the source's `parallelism`).
    #[arg(long, default_value_t = 50, value_name = "COUNT")]
    amqp_parallelism: u16,
    /// SQS endpoint (e.g. moto_server on loopback); SQS is skipped without it.
    #[arg(long, value_name = "URL")]
    sqs_endpoint: Option<String>,
    /// Receive loops of the SQS runs.
    #[arg(long, default_value_t = 4, value_name = "COUNT")]
    sqs_parallelism: usize,
}

/// The sink: answers 200 and counts events, one per request or each event of a batch (whose
/// JSON array it reads through).
async fn start_sink(count: Arc<AtomicU64>) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(move |headers: http::HeaderMap, body: bytes::Bytes| {
        let count = count.clone();
        async move {
            let events = if sluice_delivery::binding::detect_mode(&headers) == sluice_delivery::binding::Mode::Batch {
                match serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&body) {
                    Ok(events) => events.len() as u64,
                    Err(_) => return http::StatusCode::BAD_REQUEST,
                }
            } else {
                1
            };
            count.fetch_add(events, Ordering::Relaxed);
            http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Waits until `count` reaches `n`; the elapsed time since `started`.
async fn wait_count(count: &AtomicU64, n: u64, started: Instant, what: &str) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(300);
    while count.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!("{what}: {} of {n} after 300 s", count.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(started.elapsed())
}

/// Runs one adapter over the plane until the sink counted `n`; messages per second.
async fn run_source(plane: &SourcePlane, sink: &str, config: AdapterConfig, count: &Arc<AtomicU64>, n: u64) -> anyhow::Result<f64> {
    count.store(0, Ordering::Relaxed);
    let key = SourceKey {
        kind: "benchsource".into(),
        namespace: "bench".into(),
        name: uuid::Uuid::new_v4().simple().to_string(),
    };
    let started = Instant::now();
    plane.apply(vec![SourceInput {
        key,
        sink: Some(SinkPlan {
            uri: sink.to_string(),
            policy: RetryPolicy::default(),
            dead_letter: None,
        }),
        overrides: BTreeMap::new(),
        config: Ok(config),
    }]);
    // Timed from the first delivery, as the plain consumers are timed from their first
    // message: neither counts connecting or joining a consumer group.
    wait_count(count, 1, started, "the source").await?;
    let first = Instant::now();
    let elapsed = wait_count(count, n, first, "the source").await?;
    plane.apply(Vec::new());
    Ok((n - 1) as f64 / elapsed.as_secs_f64())
}

fn payload(size: usize) -> Vec<u8> {
    let mut v = b"{\"data\":\"".to_vec();
    v.resize(size.saturating_sub(2).max(9), b'x');
    v.extend_from_slice(b"\"}");
    v
}

async fn kafka_topic(bootstrap: &str, partitions: i32, n: u64, size: usize) -> anyhow::Result<String> {
    let topic = format!("sluice-bench-{}", uuid::Uuid::new_v4().simple());
    let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    admin
        .create_topics(
            &[NewTopic::new(&topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .context("creating the topic")?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()?;
    let body = payload(size);
    let sends = (0..n).map(|i| {
        let (producer, topic, body) = (&producer, &topic, &body);
        async move {
            let key = i.to_string();
            producer
                .send(FutureRecord::to(topic).key(&key).payload(body), Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
        }
    });
    let results: Vec<_> = futures_util::stream::iter(sends).buffer_unordered(1000).collect().await;
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        bail!("producing: {e}");
    }
    Ok(topic)
}

/// Deletes the bench's topics, so that a broker keeping records in memory gives them back.
async fn delete_kafka_topics(bootstrap: &str, topics: &[String]) {
    let admin: Result<AdminClient<_>, _> = ClientConfig::new().set("bootstrap.servers", bootstrap).create();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let deleted = match admin {
        Ok(admin) => admin.delete_topics(&names, &AdminOptions::new()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "the bench's topics were not deleted");
    }
}

fn kafka_consumer_settings(bootstrap: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("group.id".to_string(), format!("sluice-bench-{}", uuid::Uuid::new_v4().simple())),
        ("auto.offset.reset".to_string(), "earliest".to_string()),
        ("enable.auto.commit".to_string(), "true".to_string()),
        ("enable.auto.offset.store".to_string(), "false".to_string()),
        ("session.timeout.ms".to_string(), "6000".to_string()),
        ("heartbeat.interval.ms".to_string(), "1500".to_string()),
    ])
}

/// The plain rdkafka consumer: receives and stores each offset.
async fn kafka_baseline(bootstrap: &str, topic: &str, n: u64) -> anyhow::Result<f64> {
    let mut config = ClientConfig::new();
    for (k, v) in kafka_consumer_settings(bootstrap) {
        config.set(k, v);
    }
    let consumer: StreamConsumer = config.create()?;
    consumer.subscribe(&[topic])?;
    let mut received = 0;
    let mut started = None;
    while received < n {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("the plain consumer waited 60 s")??;
        started.get_or_insert_with(Instant::now);
        consumer.store_offset(m.topic(), m.partition(), m.offset())?;
        received += 1;
    }
    // Timed from the first record: the group join is not counted.
    Ok((n - 1) as f64 / started.map(|s| s.elapsed()).unwrap_or_default().as_secs_f64())
}

/// A plain bridge, the ceiling of any consumer that makes one HTTP request per record here:
/// the rdkafka consumer POSTs each record's value to its own sink (hyper, keep-alive, up to
/// as many at once as an unordered source) and stores the offset after the answer.
async fn kafka_http_baseline(bootstrap: &str, topic: &str, n: u64) -> anyhow::Result<f64> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let done = Arc::new(AtomicU64::new(0));
    let sink: http::Uri = start_sink(Arc::new(AtomicU64::new(0))).await?.parse()?;
    let mut config = ClientConfig::new();
    for (k, v) in kafka_consumer_settings(bootstrap) {
        config.set(k, v);
    }
    let consumer: Arc<StreamConsumer> = Arc::new(config.create()?);
    consumer.subscribe(&[topic])?;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let slots = Arc::new(tokio::sync::Semaphore::new(kafka::UNORDERED_IN_FLIGHT));
    let mut started = None;
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("the plain bridge waited 60 s")??;
        started.get_or_insert_with(Instant::now);
        let permit = slots.clone().acquire_owned().await?;
        let request = http::Request::post(sink.clone())
            .header("content-type", "application/octet-stream")
            .body(Full::new(bytes::Bytes::copy_from_slice(m.payload().unwrap_or_default())))?;
        let (topic, partition, offset) = (m.topic().to_string(), m.partition(), m.offset());
        let (client, consumer, done) = (client.clone(), consumer.clone(), done.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Ok(response) = client.request(request).await {
                let _ = response.into_body().collect().await;
                let _ = consumer.store_offset(&topic, partition, offset);
            }
            done.fetch_add(1, Ordering::Relaxed);
        });
    }
    let started = started.unwrap_or_else(Instant::now);
    let took = wait_count(&done, n, started, "the plain bridge").await?;
    Ok((n - 1) as f64 / took.as_secs_f64())
}

async fn amqp_queue(connection: &Connection, n: u64, size: usize) -> anyhow::Result<String> {
    let queue = format!("sluice-bench-{}", uuid::Uuid::new_v4().simple());
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                auto_delete: false,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let body = payload(size);
    for _ in 0..n {
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await?;
    }
    // The publishes are on the wire; a passive declare answers after they were routed.
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(queue)
}

/// The plain lapin consumer: the same prefetch, acks each message.
async fn amqp_baseline(connection: &Connection, queue: &str, n: u64, prefetch: u16) -> anyhow::Result<f64> {
    let channel = connection.create_channel().await?;
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(queue.into(), "bench".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    let mut started = None;
    let mut received = 0;
    while received < n {
        let delivery = consumer.next().await.context("the consumer ended")??;
        started.get_or_insert_with(Instant::now);
        delivery.ack(BasicAckOptions::default()).await?;
        received += 1;
    }
    Ok((n - 1) as f64 / started.map(|s| s.elapsed()).unwrap_or_default().as_secs_f64())
}

fn sqs_config(endpoint: &str, queue_url: &str, parallelism: usize) -> sqs::Config {
    sqs::Config {
        queue_url: queue_url.to_string(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint.to_string()),
        credentials: Some(sqs::StaticCredentials {
            access_key_id: "bench".into(),
            secret_access_key: "bench".into(),
            session_token: None,
        }),
        parallelism,
    }
}

async fn sqs_queue(client: &aws_sdk_sqs::Client, n: u64, size: usize) -> anyhow::Result<String> {
    let name = format!("sluice-bench-{}", uuid::Uuid::new_v4().simple());
    let url = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await?
        .queue_url
        .context("no queue URL")?;
    let body = String::from_utf8(payload(size))?;
    let batches = (0..n).collect::<Vec<_>>();
    for chunk in batches.chunks(10) {
        let mut req = client.send_message_batch().queue_url(&url);
        for i in chunk {
            req = req.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&body)
                    .build()?,
            );
        }
        req.send().await?;
    }
    Ok(url)
}

/// The plain SQS consumer: the same receive loops, deletes each message.
async fn sqs_baseline(client: &aws_sdk_sqs::Client, url: &str, n: u64, parallelism: usize) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let loops = (0..parallelism).map(|_| {
        let (client, url, done) = (client.clone(), url.to_string(), done.clone());
        tokio::spawn(async move {
            while done.load(Ordering::Relaxed) < n {
                let out = client
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await?;
                let deletes = out.messages.unwrap_or_default().into_iter().map(|m| {
                    let (client, url) = (client.clone(), url.clone());
                    async move {
                        client
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .send()
                            .await
                    }
                });
                for r in futures_util::future::join_all(deletes).await {
                    r?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, anyhow::Error>(())
        })
    });
    for l in futures_util::future::join_all(loops).await {
        l??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The median of `runs` (the upper one of an even count).
fn median(runs: &mut [f64]) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

fn report(what: &str, baseline: f64, source: f64, goal: Option<f64>) -> anyhow::Result<()> {
    let ratio = source / baseline;
    let verdict = match goal {
        Some(g) if ratio >= g => format!(" (goal ≥ {g}: met)"),
        Some(g) => format!(" (goal ≥ {g}: not met)"),
        None => String::new(),
    };
    outln!("{what:<10} plain client {baseline:>9.0} msg/s   sluice source {source:>9.0} msg/s   ratio {ratio:.2}{verdict}");
    Ok(())
}

/// Runs the benchmark for each system that answers.
pub async fn bench(opts: SourcesBench) -> anyhow::Result<ExitCode> {
    let count = Arc::new(AtomicU64::new(0));
    let sink = start_sink(count.clone()).await?;
    let plane = SourcePlane::new(Dispatcher::default(), Arc::new(Metrics::new()), None);
    outln!(
        "sluice bench sources: {} messages of {} bytes ({} for Kafka, {} for SQS), sink on loopback answering 200; machine: {} cores",
        opts.messages,
        opts.size,
        opts.kafka_messages,
        opts.sqs_messages,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    match &opts.kafka {
        None => outln!("kafka      skipped: no --kafka (or SLUICE_KAFKA) broker"),
        Some(bootstrap) => {
            // One topic, filled before the first clock starts; every run reads all of it as a
            // new consumer group. This VM's throughput drifts by a third from one second to
            // the next, so the plain consumer and the source take turns, `--rounds` times, and
            // each is reported by its median.
            let topics = vec![kafka_topic(bootstrap, opts.partitions, opts.kafka_messages, opts.size).await?];
            let source_config = |ordered: bool, max_batch: usize| kafka::Config {
                client: kafka_consumer_settings(bootstrap),
                topics: topics.clone(),
                consumers: 1,
                ordered,
                key_type: kafka::KeyType::String,
                source: "/apis/v1/namespaces/bench/kafkasources/bench".into(),
                max_batch,
            };
            let (mut baseline, mut single, mut batched) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..opts.rounds.max(1) {
                baseline.push(kafka_baseline(bootstrap, &topics[0], opts.kafka_messages).await?);
                // Knative's delivery: one request per record, unordered so 64 are in flight.
                let config = source_config(false, 1);
                single.push(run_source(&plane, &sink, AdapterConfig::Kafka(config), &count, opts.kafka_messages).await?);
                if opts.kafka_batch > 1 {
                    // Ordered, each partition's queued records in one batched-mode request.
                    let config = source_config(true, opts.kafka_batch);
                    batched.push(run_source(&plane, &sink, AdapterConfig::Kafka(config), &count, opts.kafka_messages).await?);
                }
            }
            let baseline = median(&mut baseline);
            let source = median(&mut single);
            report("kafka", baseline, source, Some(0.7))?;
            if opts.kafka_batch > 1 {
                report(
                    &format!("kafka, batches of ≤ {}", opts.kafka_batch),
                    baseline,
                    median(&mut batched),
                    Some(0.7),
                )?;
            }
            // What one HTTP request per record costs here, apart from the adapter.
            let bridge = kafka_http_baseline(bootstrap, &topics[0], opts.kafka_messages).await?;
            outln!(
                "kafka      plain consumer POSTing each record {bridge:>9.0} msg/s   sluice source / that {:.2}",
                source / bridge
            );
            delete_kafka_topics(bootstrap, &topics).await;
        }
    }
    match Connection::connect(&opts.amqp, ConnectionProperties::default()).await {
        Err(e) => outln!("rabbitmq   skipped: {e}"),
        Ok(connection) => {
            let base_queue = amqp_queue(&connection, opts.messages, opts.size).await?;
            let baseline = amqp_baseline(&connection, &base_queue, opts.messages, opts.amqp_parallelism).await?;
            let queue = amqp_queue(&connection, opts.messages, opts.size).await?;
            let config = rabbitmq::Config {
                uri: opts.amqp.clone(),
                queue: queue.clone(),
                exchange: None,
                predeclared: true,
                parallelism: opts.amqp_parallelism,
                source: format!("/apis/v1/namespaces/bench/rabbitmqsources/bench#{queue}"),
            };
            let source = run_source(&plane, &sink, AdapterConfig::Rabbitmq(config), &count, opts.messages).await?;
            report("rabbitmq", baseline, source, Some(0.7))?;
            let channel = connection.create_channel().await?;
            for q in [base_queue, queue] {
                let _ = channel.queue_delete(q.as_str().into(), Default::default()).await;
            }
        }
    }
    match &opts.sqs_endpoint {
        None => outln!("sqs        skipped: no --sqs-endpoint"),
        Some(endpoint) => {
            let client = sqs::client(&sqs_config(endpoint, "", 1)).await;
            let base_url = sqs_queue(&client, opts.sqs_messages, opts.size).await?;
            let baseline = sqs_baseline(&client, &base_url, opts.sqs_messages, opts.sqs_parallelism).await?;
            let url = sqs_queue(&client, opts.sqs_messages, opts.size).await?;
            let config = sqs_config(endpoint, &url, opts.sqs_parallelism);
            let source = run_source(&plane, &sink, AdapterConfig::Sqs(config), &count, opts.sqs_messages).await?;
            report("sqs", baseline, source, None)?;
        }
    }
    plane.stop_all(Duration::from_secs(5)).await;
    Ok(ExitCode::SUCCESS)
}
