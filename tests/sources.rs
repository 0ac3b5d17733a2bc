//! Sources end to end: `sluice run` with a PingSource ticking into a Broker, and RabbitmqSources
//! consuming the RabbitMQ server of this machine (127.0.0.1:5672, guest/guest) while `pika`
//! publishes. Without RabbitMQ the RabbitMQ tests fail, naming it: they never skip.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::kafka::Kafka;
use common::{metric, python, unique, Recorder, Sluice};
use serde_json::{json, Value};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2F";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_source_ticks_into_a_broker_with_its_overrides() {
    let recorder = Recorder::accept().await;
    let sluice = Sluice::start(&format!(
        "apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: pings
spec:
  broker: default
  filter:
    attributes:
      type: dev.knative.sources.ping
  subscriber:
    uri: {}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: every-second
spec:
  schedule: '* * * * * *'
  contentType: application/json
  data: '{{\"message\": \"Hello world!\"}}'
  ceOverrides:
    extensions:
      team: blue
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
",
        recorder.url
    ))
    .await;
    let source = sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/pingsources/every-second")
        .await;
    assert_eq!(source["status"]["sinkUri"], format!("{}/default/default", sluice.gateway));
    assert_eq!(source["status"]["ceAttributes"][0]["type"], "dev.knative.sources.ping");
    let conditions = source["status"]["conditions"].to_string();
    assert!(
        conditions.contains("SinkProvided") && conditions.contains("Deployed"),
        "{conditions}"
    );

    let pings = recorder.wait_for(2).await;
    for ping in &pings {
        assert_eq!(ping.header("ce-type").as_deref(), Some("dev.knative.sources.ping"));
        assert_eq!(
            ping.header("ce-source").as_deref(),
            Some("/apis/v1/namespaces/default/pingsources/every-second")
        );
        assert_eq!(ping.header("ce-team").as_deref(), Some("blue"));
        assert_eq!(ping.header("content-type").as_deref(), Some("application/json"));
        assert!(ping.header("ce-time").is_some());
        assert_eq!(ping.body.as_ref(), b"{\"message\": \"Hello world!\"}");
    }
    assert_ne!(pings[0].header("ce-id"), pings[1].header("ce-id"), "a new id per tick");
    let metrics = sluice.metrics().await;
    let received = metric(
        &metrics,
        "sluice_source_messages_received_total{namespace=\"default\",kind=\"pingsource\",name=\"every-second\"}",
    );
    assert!(received.is_some_and(|n| n >= 2.0), "{metrics}");
}

/// Runs `tests/python/amqp.py` and returns its output.
fn amqp(args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/amqp.py");
    let out = Command::new(python()).arg(script).arg(AMQP_URL).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "amqp.py {args:?} failed (is RabbitMQ running on 127.0.0.1:5672 with guest/guest?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Ready messages in `queue`.
fn queue_depth(queue: &str) -> u64 {
    amqp(&["count", queue]).trim().parse().unwrap()
}

/// A Secret as the RabbitMQ topology operator's `connectionSecret` holds it.
fn connection_secret(name: &str, password: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: {name}
stringData:
  uri: http://127.0.0.1:15672
  username: guest
  password: {password}
  port: \"5672\"
"
    )
}

fn rabbitmq_source(name: &str, secret: &str, queue: &str, exchange: &str, sink: &str, extra: &str) -> String {
    format!(
        "apiVersion: sources.knative.dev/v1alpha1
kind: RabbitmqSource
metadata:
  name: {name}
spec:
  rabbitmqClusterReference:
    connectionSecret:
      name: {secret}
  rabbitmqResourcesConfig:
    queueName: {queue}
    exchangeName: {exchange}
  sink:
    uri: {sink}
{extra}"
    )
}

/// Waits until the source's condition `ty` has `status`, returning the source.
async fn wait_condition(sluice: &Sluice, name: &str, ty: &str, status: &str) -> Value {
    sluice
        .wait_condition(
            &format!("/apis/sources.knative.dev/v1alpha1/namespaces/default/rabbitmqsources/{name}"),
            ty,
            status,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_source_turns_messages_into_cloudevents_and_acks_after_the_sink() {
    let recorder = Recorder::accept().await;
    let (queue, exchange) = (unique("sluice-orders"), unique("sluice-x"));
    let sluice = Sluice::start(&format!(
        "{}---\n{}",
        connection_secret("rabbit", "guest"),
        rabbitmq_source("orders", "rabbit", &queue, &exchange, &recorder.url, "")
    ))
    .await;
    let source = wait_condition(&sluice, "orders", "Ready", "True").await;
    assert_eq!(source["status"]["sinkUri"], recorder.url.as_str());

    let messages = json!([
        {"body": "{\"n\": 1}", "message_id": "m-1", "content_type": "application/json", "timestamp": 1764756000,
         "headers": {"x-origin": "shop"}},
        {"body": "hello", "content_type": "text/plain",
         "headers": {"cloudEvents_specversion": "1.0", "cloudEvents_id": "ce-1", "cloudEvents_type": "com.example.greeting",
                     "cloudEvents_source": "/greeter", "cloudEvents_tenant": "acme"}},
        // A CloudEvent without a type: rejected, not delivered, and not requeued.
        {"body": "broken", "headers": {"cloudEvents_specversion": "1.0", "cloudEvents_id": "broken-1"}},
        {"body": "last", "message_id": "m-2"}
    ]);
    amqp(&["publish", &exchange, &messages.to_string()]);
    let received = recorder.wait_for(3).await;
    let plain = &received[0];
    assert_eq!(plain.header("ce-type").as_deref(), Some("dev.knative.rabbitmq.event"));
    assert_eq!(plain.header("ce-id").as_deref(), Some("m-1"));
    assert_eq!(plain.header("ce-subject").as_deref(), Some("m-1"));
    assert_eq!(
        plain.header("ce-source"),
        Some(format!("/apis/v1/namespaces/default/rabbitmqsources/orders#{queue}"))
    );
    assert_eq!(plain.header("ce-time").as_deref(), Some("2025-12-03T10:00:00Z"));
    assert_eq!(plain.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(plain.body.as_ref(), b"{\"n\": 1}");
    let event = &received[1];
    assert_eq!(event.header("ce-id").as_deref(), Some("ce-1"));
    assert_eq!(event.header("ce-type").as_deref(), Some("com.example.greeting"));
    assert_eq!(event.header("ce-source").as_deref(), Some("/greeter"));
    assert_eq!(event.header("ce-tenant").as_deref(), Some("acme"));
    assert_eq!(event.body.as_ref(), b"hello");
    assert_eq!(received[2].header("ce-id").as_deref(), Some("m-2"));
    // Acknowledged (or rejected) once answered: nothing is left in the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorder.received().len(), 3, "the broken message was not delivered");
    assert_eq!(queue_depth(&queue), 0);
    let labels = "{namespace=\"default\",kind=\"rabbitmqsource\",name=\"orders\"}";
    sluice
        .wait_metric(&format!("sluice_source_messages_acknowledged_total{labels}"), 3.0)
        .await;
    sluice
        .wait_metric(&format!("sluice_source_messages_rejected_total{labels}"), 1.0)
        .await;
    sluice
        .wait_metric(&format!("sluice_source_messages_received_total{labels}"), 4.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_message_the_sink_refuses_is_retried_then_rejected_without_requeue() {
    let failing = Recorder::scripted(std::sync::Arc::new(|_, _| StatusCode::SERVICE_UNAVAILABLE.into_response())).await;
    let (queue, exchange) = (unique("sluice-refused"), unique("sluice-x"));
    let sluice = Sluice::start(&format!(
        "{}---\n{}",
        connection_secret("rabbit", "guest"),
        rabbitmq_source(
            "refused",
            "rabbit",
            &queue,
            &exchange,
            &failing.url,
            "  delivery:\n    retry: 2\n    backoffPolicy: linear\n    backoffDelay: PT0.05S\n"
        )
    ))
    .await;
    wait_condition(&sluice, "refused", "Ready", "True").await;
    amqp(&["publish", &exchange, &json!([{"body": "x", "message_id": "r-1"}]).to_string()]);
    let attempts = failing.wait_for(3).await;
    assert!(attempts.iter().all(|a| a.header("ce-id").as_deref() == Some("r-1")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        failing.received().len(),
        3,
        "one attempt and two retries, then nack without requeue"
    );
    assert_eq!(queue_depth(&queue), 0);
    let labels = "{namespace=\"default\",kind=\"rabbitmqsource\",name=\"refused\"}";
    sluice.wait_metric(&format!("sluice_events_failed_total{labels}"), 1.0).await;
    let metrics = sluice.metrics().await;
    assert_eq!(
        metric(&metrics, &format!("sluice_source_messages_acknowledged_total{labels}")),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_makes_the_source_not_ready_until_the_secret_is_fixed() {
    let recorder = Recorder::accept().await;
    let (queue, exchange) = (unique("sluice-login"), unique("sluice-x"));
    let sluice = Sluice::start(
        &(format!(
            "{}---\n{}",
            connection_secret("rabbit", "not-the-password"),
            rabbitmq_source("login", "rabbit", &queue, &exchange, &recorder.url, "")
        ) + "---\n"
            + &rabbitmq_source("absent", "nowhere", &queue, &exchange, &recorder.url, "")),
    )
    .await;
    let source = wait_condition(&sluice, "login", "Ready", "False").await;
    let deployed = common::condition(&source, "Deployed");
    assert_eq!(deployed["reason"], "ConnectionFailed", "{deployed:#}");
    assert!(deployed["message"].as_str().unwrap().contains("127.0.0.1:5672"), "{deployed:#}");
    assert!(
        !deployed["message"].as_str().unwrap().contains("not-the-password"),
        "the password is not shown"
    );

    // A Secret that does not exist is named, with the field that refers to it.
    let absent = wait_condition(&sluice, "absent", "Ready", "False").await;
    let text = absent["status"]["conditions"].to_string();
    assert!(text.contains("SecretNotFound"), "{text}");
    assert!(
        text.contains("spec.rabbitmqClusterReference.connectionSecret: secret default/nowhere not found"),
        "{text}"
    );

    // Fixing the Secret restarts the adapter, which connects.
    let path = sluice.dir.path().join("fixed.yaml");
    std::fs::write(&path, connection_secret("rabbit", "guest")).unwrap();
    let out = sluice.cli(&["apply", "-f", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_condition(&sluice, "login", "Ready", "True").await;
    amqp(&["publish", &exchange, &json!([{"body": "after", "message_id": "a-1"}]).to_string()]);
    assert_eq!(recorder.wait_for(1).await[0].header("ce-id").as_deref(), Some("a-1"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while queue_depth(&queue) != 0 {
        assert!(Instant::now() < deadline, "the message was not acknowledged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kafka_source(name: &str, kafka: &Kafka, topic: &str, group: &str, sink: &str, extra: &str) -> String {
    format!(
        "apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata:
  name: {name}
spec:
  consumerGroup: {group}
  bootstrapServers: [\"{}\"]
  topics: [{topic}]
  initialOffset: earliest
  sink:
    uri: {sink}
{extra}",
        kafka.bootstrap
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_source_turns_records_into_cloudevents_and_commits_after_the_sink() {
    let kafka = Kafka::start().await;
    let recorder = Recorder::accept().await;
    let (topic, group) = (kafka.topic(1), unique("sluice-group"));
    let sluice = Sluice::start(&kafka_source("orders", &kafka, &topic, &group, &recorder.url, "")).await;
    let source = sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/kafkasources/orders")
        .await;
    assert_eq!(source["status"]["sinkUri"], recorder.url.as_str());
    assert_eq!(
        source["status"]["ceAttributes"][0]["source"],
        format!("/apis/v1/namespaces/default/kafkasources/orders#{topic}")
    );
    let records = json!([
        {"value": "{\"n\": 1}", "key": "customer-7", "headers": {"content-type": "application/json", "X-Request-Id": "r-1"}},
        {"value": "hello", "headers": {"ce_specversion": "1.0", "ce_id": "ce-1", "ce_type": "com.example.greeting",
                                       "ce_source": "/greeter", "content-type": "text/plain"}},
        // A CloudEvent without a type: skipped with a log line, never blocking the partition.
        {"value": "broken", "headers": {"ce_specversion": "1.0", "ce_id": "broken-1"}},
        {"value": "last"}
    ]);
    kafka.tool(&["produce", &topic, &records.to_string()]);
    let received = recorder.wait_for(3).await;
    let plain = &received[0];
    assert_eq!(plain.header("ce-type").as_deref(), Some("dev.knative.kafka.event"));
    assert_eq!(plain.header("ce-id").as_deref(), Some("partition:0/offset:0"));
    assert_eq!(plain.header("ce-subject").as_deref(), Some("partition:0#0"));
    assert_eq!(
        plain.header("ce-source"),
        Some(format!("/apis/v1/namespaces/default/kafkasources/orders#{topic}"))
    );
    assert_eq!(plain.header("ce-key").as_deref(), Some("customer-7"));
    assert_eq!(plain.header("ce-partitionkey").as_deref(), Some("customer-7"));
    assert_eq!(plain.header("ce-kafkaheaderxrequestid").as_deref(), Some("r-1"));
    assert_eq!(plain.header("content-type").as_deref(), Some("application/json"));
    assert!(plain.header("ce-time").is_some());
    assert_eq!(plain.body.as_ref(), b"{\"n\": 1}");
    let event = &received[1];
    assert_eq!(event.header("ce-id").as_deref(), Some("ce-1"));
    assert_eq!(event.header("ce-type").as_deref(), Some("com.example.greeting"));
    assert_eq!(event.header("ce-source").as_deref(), Some("/greeter"));
    assert_eq!(event.body.as_ref(), b"hello");
    assert_eq!(received[2].header("ce-id").as_deref(), Some("partition:0/offset:3"));
    kafka.wait_committed(&group, &format!("{topic}/0"), 4).await;
    let labels = "{namespace=\"default\",kind=\"kafkasource\",name=\"orders\"}";
    sluice
        .wait_metric(&format!("sluice_source_messages_received_total{labels}"), 4.0)
        .await;
    sluice
        .wait_metric(&format!("sluice_source_messages_rejected_total{labels}"), 1.0)
        .await;
    sluice.wait_metric(&format!("sluice_source_lag{labels}"), 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latest_kafka_source_commits_its_initial_offsets_before_it_is_ready() {
    let kafka = Kafka::start().await;
    let recorder = Recorder::accept().await;
    let (topic, group) = (kafka.topic(2), unique("sluice-group"));
    // Records from before the source: `latest` starts after them.
    let before = json!([{"value": "old-0", "partition": 0}, {"value": "old-1", "partition": 0}, {"value": "old-2", "partition": 1}]);
    kafka.tool(&["produce", &topic, &before.to_string()]);
    let manifest =
        kafka_source("fresh", &kafka, &topic, &group, &recorder.url, "").replace("initialOffset: earliest", "initialOffset: latest");
    let sluice = Sluice::start(&manifest).await;
    let source = sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/kafkasources/fresh")
        .await;
    let offsets = common::condition(&source, "InitialOffsetsCommitted");
    assert_eq!(offsets["status"], "True", "{offsets:#}");
    // Ready means the group has an offset on every partition, at its end.
    let committed = kafka.committed(&group);
    assert_eq!(committed[format!("{topic}/0")], 2, "{committed}");
    assert_eq!(committed[format!("{topic}/1")], 1, "{committed}");
    kafka.tool(&["produce", &topic, &json!([{"value": "new", "partition": 1}]).to_string()]);
    let received = recorder.wait_for(1).await;
    assert_eq!(received[0].body.as_ref(), b"new");
    assert_eq!(received[0].header("ce-id").as_deref(), Some("partition:1/offset:1"));
    kafka.wait_committed(&group, &format!("{topic}/1"), 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorder.received().len(), 1, "records from before the source stay unread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_record_the_sink_refuses_holds_its_offset_until_delivered() {
    let kafka = Kafka::start().await;
    // The sink refuses everything until the test opens it.
    let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = open.clone();
    let sink = Recorder::scripted(std::sync::Arc::new(move |_, _| {
        if gate.load(std::sync::atomic::Ordering::SeqCst) {
            StatusCode::OK.into_response()
        } else {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }))
    .await;
    let (topic, group) = (kafka.topic(1), unique("sluice-group"));
    let sluice = Sluice::start(&kafka_source(
        "held",
        &kafka,
        &topic,
        &group,
        &sink.url,
        "  delivery:\n    retry: 1\n    backoffPolicy: linear\n    backoffDelay: PT0.05S\n",
    ))
    .await;
    sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/kafkasources/held")
        .await;
    kafka.tool(&["produce", &topic, &json!([{"value": "first"}, {"value": "second"}]).to_string()]);
    // Two deliveries of one attempt and one retry each, then more after backoff.
    sink.wait_for(4).await;
    // While the first record is refused its offset is not passed (the initial commit is 0).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let committed = kafka.committed(&group);
    assert!(
        committed.get(format!("{topic}/0")).is_none_or(|o| o.as_i64() <= Some(0)),
        "{committed}"
    );
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    kafka.wait_committed(&group, &format!("{topic}/0"), 2).await;
    let ids: Vec<String> = sink.received().iter().filter_map(|r| r.header("ce-id")).collect();
    let first_of_second = ids
        .iter()
        .position(|i| i == "partition:0/offset:1")
        .expect("the second record arrived");
    assert!(first_of_second >= 5, "{ids:?}");
    assert!(
        ids[..first_of_second].iter().all(|i| i == "partition:0/offset:0"),
        "order is kept: {ids:?}"
    );
    assert!(ids[first_of_second..].iter().all(|i| i == "partition:0/offset:1"), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unordered_kafka_source_delivers_every_partition_and_commits_all() {
    let kafka = Kafka::start().await;
    let recorder = Recorder::accept().await;
    let (topic, group) = (kafka.topic(3), unique("sluice-group"));
    let sluice = Sluice::start(&kafka_source(
        "fanout",
        &kafka,
        &topic,
        &group,
        &recorder.url,
        "  ordering: unordered\n  consumers: 2\n",
    ))
    .await;
    sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/kafkasources/fanout")
        .await;
    let records: Vec<Value> = (0..30).map(|i| json!({"value": format!("r{i}"), "partition": i % 3})).collect();
    kafka.tool(&["produce", &topic, &Value::Array(records).to_string()]);
    let received = recorder.wait_for(30).await;
    let mut bodies: Vec<String> = received.iter().map(|r| String::from_utf8(r.body.to_vec()).unwrap()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 30, "every record arrived");
    for p in 0..3 {
        kafka.wait_committed(&group, &format!("{topic}/{p}"), 10).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_source_whose_brokers_do_not_answer_is_not_ready_with_the_reason() {
    let recorder = Recorder::accept().await;
    // Nothing listens on port 1.
    let sluice = Sluice::start(&format!(
        "apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata:
  name: nowhere
spec:
  bootstrapServers: [\"127.0.0.1:1\"]
  topics: [orders]
  sink:
    uri: {}
",
        recorder.url
    ))
    .await;
    let source = sluice
        .wait_condition(
            "/apis/sources.knative.dev/v1/namespaces/default/kafkasources/nowhere",
            "Ready",
            "False",
        )
        .await;
    let connection = common::condition(&source, "ConnectionEstablished");
    assert_eq!(connection["status"], "False", "{connection:#}");
    assert_eq!(connection["reason"], "ConnectionFailed", "{connection:#}");
    assert!(connection["message"].as_str().unwrap().contains("127.0.0.1:1"), "{connection:#}");
}

/// moto_server on a port of this test (from `.venv-aws`, or `SLUICE_AWS_PYTHON`'s venv).
struct Moto {
    port: u16,
    endpoint: String,
    server: Option<common::ChildGuard>,
}

fn aws_python() -> PathBuf {
    let python = std::env::var_os("SLUICE_AWS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-aws/bin/python"));
    let probe = Command::new(&python).args(["-c", "import boto3, moto"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "moto and boto3 are not installed for {} (scripts/test installs them into .venv-aws; or set SLUICE_AWS_PYTHON)",
        python.display()
    );
    python
}

impl Moto {
    async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut moto = Moto {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            server: None,
        };
        moto.restart().await;
        moto
    }

    /// (Re)starts the server on its port; a restart starts empty.
    async fn restart(&mut self) {
        let server = aws_python().with_file_name("moto_server");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        self.server = Some(common::ChildGuard(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on {}", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        self.server = None;
    }

    fn tool(&self, args: &[&str]) -> String {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sqs_tool.py");
        let out = Command::new(aws_python())
            .arg(script)
            .arg(&self.endpoint)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sqs_tool.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Waits until the queue holds `visible` and `in_flight` messages.
    async fn wait_count(&self, queue_url: &str, visible: u64, in_flight: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let count: Value = serde_json::from_str(&self.tool(&["count", queue_url])).unwrap();
            if count["visible"] == visible && count["in_flight"] == in_flight {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{queue_url}: {count}, expected {visible} visible and {in_flight} in flight"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// An AWS shared-credentials file in a Secret, as Knative mounts `awsCredsSecret`.
const AWS_CREDENTIALS: &str = "apiVersion: v1
kind: Secret
metadata:
  name: aws
stringData:
  credentials: |
    [default]
    aws_access_key_id = testing
    aws_secret_access_key = testing
";

/// The AWS credentials, Broker `default` with Trigger `sqs` to `subscriber`, and an
/// AwsSqsSource `name` of `queue_url` into the Broker.
fn sqs_behind_broker(name: &str, queue_url: &str, subscriber: &str) -> String {
    format!(
        "{AWS_CREDENTIALS}---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: sqs
spec:
  broker: default
  subscriber:
    uri: {subscriber}
---
{}",
        sqs_source(name, queue_url, "Broker", "eventing.knative.dev/v1", "default")
    )
}

/// The AWS credentials, InMemoryChannel `channel` with a Subscription of its name to
/// `subscriber`, and an AwsSqsSource `name` of `queue_url` into the channel.
fn sqs_behind_channel(name: &str, queue_url: &str, channel: &str, subscriber: &str) -> String {
    format!(
        "{AWS_CREDENTIALS}---
apiVersion: messaging.knative.dev/v1
kind: InMemoryChannel
metadata:
  name: {channel}
---
apiVersion: messaging.knative.dev/v1
kind: Subscription
metadata:
  name: {channel}
spec:
  channel:
    apiVersion: messaging.knative.dev/v1
    kind: InMemoryChannel
    name: {channel}
  subscriber:
    uri: {subscriber}
---
{}",
        sqs_source(name, queue_url, "InMemoryChannel", "messaging.knative.dev/v1", channel)
    )
}

fn sqs_source(name: &str, queue_url: &str, sink_kind: &str, sink_api: &str, sink_name: &str) -> String {
    format!(
        "apiVersion: sources.knative.dev/v1alpha1
kind: AwsSqsSource
metadata:
  name: {name}
spec:
  queueUrl: {queue_url}
  awsCredsSecret: {{name: aws, key: credentials}}
  sink:
    apiVersion: {sink_api}
    kind: {sink_kind}
    name: {sink_name}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_source_delivers_messages_with_their_attributes_and_deletes_them() {
    let moto = Moto::start().await;
    let queue = moto.tool(&["create", &unique("orders")]);
    let recorder = Recorder::accept().await;
    let sluice = Sluice::start(&sqs_behind_broker("orders", &queue, &recorder.url)).await;
    let source = sluice
        .wait_ready("/apis/sources.knative.dev/v1alpha1/namespaces/default/awssqssources/orders")
        .await;
    assert_eq!(source["status"]["sinkUri"], format!("{}/default/default", sluice.gateway));
    moto.tool(&[
        "send",
        &queue,
        &json!([{"body": "first", "attributes": {"color": "blue"}}, {"body": "second"}]).to_string(),
    ]);
    let received = recorder.wait_for(2).await;
    let mut bodies = Vec::new();
    for r in &received {
        assert_eq!(r.header("ce-type").as_deref(), Some("aws.sqs.message"));
        assert_eq!(r.header("ce-source").as_deref(), Some(queue.as_str()));
        assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
        let data: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.header("ce-id").as_deref(), data["MessageId"].as_str(), "id is the MessageId");
        assert!(
            data["ReceiptHandle"].is_string() && data["Attributes"]["SentTimestamp"].is_string(),
            "{data}"
        );
        if data["Body"] == "first" {
            assert_eq!(data["MessageAttributes"]["color"]["StringValue"], "blue", "{data}");
        }
        bodies.push(data["Body"].as_str().unwrap().to_string());
    }
    bodies.sort();
    assert_eq!(bodies, ["first", "second"]);
    moto.wait_count(&queue, 0, 0).await;
    let labels = "{namespace=\"default\",kind=\"awssqssource\",name=\"orders\"}";
    sluice
        .wait_metric(&format!("sluice_source_messages_acknowledged_total{labels}"), 2.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_message_the_sink_refuses_stays_and_the_redrive_policy_moves_it_to_the_dlq() {
    let moto = Moto::start().await;
    let dlq_name = unique("orders-dlq");
    let queue = moto.tool(&["create", &unique("orders"), &dlq_name, "2"]);
    let dlq = queue.rsplit_once('/').map(|(base, _)| format!("{base}/{dlq_name}")).unwrap();
    // The sink: a channel whose only subscriber refuses, so the channel answers 500.
    let refusing = Recorder::scripted(std::sync::Arc::new(|_, _| StatusCode::INTERNAL_SERVER_ERROR.into_response())).await;
    let sluice = Sluice::start(&sqs_behind_channel("refused", &queue, "refusing", &refusing.url)).await;
    sluice
        .wait_ready("/apis/sources.knative.dev/v1alpha1/namespaces/default/awssqssources/refused")
        .await;
    moto.tool(&["send", &queue, &json!([{"body": "unwanted"}]).to_string()]);
    // Received twice (maxReceiveCount 2, visibility 1 s), never deleted, then in the DLQ.
    refusing.wait_for(2).await;
    moto.wait_count(&dlq, 1, 0).await;
    moto.wait_count(&queue, 0, 0).await;
    let labels = "{namespace=\"default\",kind=\"awssqssource\",name=\"refused\"}";
    let metrics = sluice.metrics().await;
    assert_eq!(
        metric(&metrics, &format!("sluice_source_messages_acknowledged_total{labels}")),
        Some(0.0),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_source_recovers_after_the_endpoint_restarts() {
    let mut moto = Moto::start().await;
    let name = unique("orders");
    let queue = moto.tool(&["create", &name]);
    let recorder = Recorder::accept().await;
    let sluice = Sluice::start(&sqs_behind_channel("orders", &queue, "orders", &recorder.url)).await;
    let path = "/apis/sources.knative.dev/v1alpha1/namespaces/default/awssqssources/orders";
    sluice.wait_ready(path).await;
    moto.stop();
    let down = sluice.wait_condition(path, "Ready", "False").await;
    assert!(down["status"]["conditions"].to_string().contains("ReceiveFailed"), "{down:#}");
    moto.restart().await;
    assert_eq!(moto.tool(&["create", &name]), queue, "the queue comes back at its URL");
    sluice.wait_ready(path).await;
    moto.tool(&["send", &queue, &json!([{"body": "after the restart"}]).to_string()]);
    let got = recorder.wait_for(1).await;
    let data: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(data["Body"], "after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_source_sends_the_changes_of_the_objects_it_watches() {
    let refs = Recorder::accept().await;
    let resources = Recorder::accept().await;
    let sluice = Sluice::start(&format!(
        "apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata:
  name: refs
spec:
  mode: Reference
  resources:
    - apiVersion: v1
      kind: ConfigMap
      selector:
        matchLabels: {{app: watched}}
  sink:
    uri: {}
---
apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata:
  name: resources
spec:
  mode: Resource
  resources:
    - apiVersion: eventing.knative.dev/v1
      kind: Broker
  filters:
    - exact: {{type: dev.knative.apiserver.resource.add}}
  sink:
    uri: {}
",
        refs.url, resources.url
    ))
    .await;
    for name in ["refs", "resources"] {
        sluice
            .wait_ready(&format!("/apis/sources.knative.dev/v1/namespaces/default/apiserversources/{name}"))
            .await;
    }
    let client = reqwest::Client::new();
    let cms = format!("{}/api/v1/namespaces/default/configmaps", sluice.api);
    let create = |name: &str, app: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}, "data": {"k": "1"}});
    for (name, app) in [("seen", "watched"), ("ignored", "other")] {
        assert_eq!(client.post(&cms).json(&create(name, app)).send().await.unwrap().status(), 201);
    }
    let patched = client
        .patch(format!("{cms}/seen"))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"data": {"k": "2"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert!(client.delete(format!("{cms}/seen")).send().await.unwrap().status().is_success());
    let got = refs.wait_for(3).await;
    let types: Vec<String> = got.iter().map(|r| r.header("ce-type").unwrap()).collect();
    assert_eq!(
        types,
        [
            "dev.knative.apiserver.ref.add",
            "dev.knative.apiserver.ref.update",
            "dev.knative.apiserver.ref.delete"
        ]
    );
    for r in &got {
        assert_eq!(r.header("ce-source").as_deref(), Some(sluice.api.as_str()));
        assert_eq!(
            r.header("ce-subject").as_deref(),
            Some("/apis/v1/namespaces/default/configmaps/seen")
        );
        assert_eq!(r.header("ce-kind").as_deref(), Some("ConfigMap"));
        assert_eq!(r.header("ce-name").as_deref(), Some("seen"));
        let data: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            data,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "seen", "namespace": "default"})
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(refs.received().len(), 3, "the label selector leaves out the other ConfigMap");

    // Resource mode sends the whole object; the filter keeps adds only.
    let brokers = format!("{}/apis/eventing.knative.dev/v1/namespaces/default/brokers", sluice.api);
    let broker = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "watched"}});
    assert_eq!(client.post(&brokers).json(&broker).send().await.unwrap().status(), 201);
    let got = resources.wait_for(1).await;
    assert_eq!(got[0].header("ce-type").as_deref(), Some("dev.knative.apiserver.resource.add"));
    let data: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(data["metadata"]["name"], "watched");
    assert_eq!(data["kind"], "Broker");
    assert!(data["spec"].is_object() || data["metadata"]["uid"].is_string(), "{data}");
    // Its status updates are updates, filtered out.
    sluice.wait_ready(&format!("{brokers}/watched").replace(&sluice.api, "")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(resources.received().len(), 1, "only the add passes the filter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_source_runs_its_process_with_the_sink_in_its_environment() {
    let recorder = Recorder::accept().await;
    let python = python();
    // A process that sends one CloudEvent to $K_SINK with the extensions of $K_CE_OVERRIDES.
    let script = "import json, os, time, urllib.request\n\
ext = json.loads(os.environ['K_CE_OVERRIDES'])['extensions']\n\
headers = {'ce-specversion': '1.0', 'ce-id': 'c-1', 'ce-type': 'dev.example.heartbeat', 'ce-source': '/heart', 'content-type': 'text/plain'}\n\
headers.update({'ce-' + k: v for k, v in ext.items()})\n\
urllib.request.urlopen(urllib.request.Request(os.environ['K_SINK'], data=b'beat', headers=headers, method='POST'))\n\
time.sleep(3600)\n";
    let sluice = Sluice::start(&format!(
        "apiVersion: sources.knative.dev/v1
kind: ContainerSource
metadata:
  name: heartbeat
spec:
  template:
    spec:
      containers:
        - image: example.com/heartbeat
          command: [{:?}, \"-c\", {:?}]
  ceOverrides:
    extensions:
      team: blue
  sink:
    uri: {}
",
        python.display().to_string(),
        script,
        recorder.url
    ))
    .await;
    let source = sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/containersources/heartbeat")
        .await;
    let conditions = source["status"]["conditions"].to_string();
    assert!(
        conditions.contains("ReceiveAdapterReady") && conditions.contains("SinkBindingReady"),
        "{conditions}"
    );
    let got = recorder.wait_for(1).await;
    assert_eq!(got[0].header("ce-type").as_deref(), Some("dev.example.heartbeat"));
    assert_eq!(
        got[0].header("ce-team").as_deref(),
        Some("blue"),
        "K_CE_OVERRIDES reached the process"
    );
    assert_eq!(got[0].body.as_ref(), b"beat");
}

/// An app answering its `K_SINK` and `K_CE_OVERRIDES` as JSON.
const ENV_APP: &str = r#"import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k: os.environ.get(k) for k in ["K_SINK", "K_CE_OVERRIDES"]}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_binding_puts_the_sink_into_its_services_instances() {
    let recorder = Recorder::accept().await;
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let app = common::write(dir.path(), "app.py", ENV_APP);
    let sluice = Sluice::start(&format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  allow-zero-initial-scale: \"true\"
---
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata:
  name: bind
spec:
  subject:
    apiVersion: serving.knative.dev/v1
    kind: Service
    name: emitter
  ceOverrides:
    extensions:
      origin: bound
  sink:
    uri: {}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: emitter
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: \"0\"
    spec:
      containers:
        - image: example.com/emitter
          command: [{:?}, {:?}]
",
        recorder.url,
        python.display().to_string(),
        app.display().to_string()
    ))
    .await;
    let binding = sluice
        .wait_ready("/apis/sources.knative.dev/v1/namespaces/default/sinkbindings/bind")
        .await;
    assert_eq!(binding["status"]["sinkUri"], recorder.url.as_str());
    assert!(
        binding["status"]["conditions"].to_string().contains("SinkBindingAvailable"),
        "{binding:#}"
    );
    sluice
        .wait_ready("/apis/serving.knative.dev/v1/namespaces/default/services/emitter")
        .await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    let env: Value = reqwest::Client::new()
        .get(format!("{}/", sluice.gateway))
        .header("host", format!("emitter.default.localhost:{port}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(env["K_SINK"], recorder.url.as_str(), "{env}");
    let overrides: Value = serde_json::from_str(env["K_CE_OVERRIDES"].as_str().unwrap()).unwrap();
    assert_eq!(overrides, json!({"extensions": {"origin": "bound"}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_message_too_large_for_the_sink_goes_to_the_dlq_with_a_log_line_and_blocks_nothing() {
    let moto = Moto::start().await;
    let dlq_name = unique("orders-dlq");
    let queue = moto.tool(&["create", &unique("orders"), &dlq_name, "2"]);
    let dlq = queue.rsplit_once('/').map(|(base, _)| format!("{base}/{dlq_name}")).unwrap();
    let recorder = Recorder::accept().await;
    // The broker takes bodies up to 64 KiB; the large message's event is bigger.
    let sluice = Sluice::start_with_args(&sqs_behind_broker("orders", &queue, &recorder.url), &["--max-body-bytes", "65536"]).await;
    sluice
        .wait_ready("/apis/sources.knative.dev/v1alpha1/namespaces/default/awssqssources/orders")
        .await;
    let large = "x".repeat(100_000);
    moto.tool(&["send", &queue, &json!([{"body": large}, {"body": "small"}]).to_string()]);
    // The small one is delivered while the large one is refused (413), received twice, and
    // moved to the DLQ by the queue's redrive policy.
    let got = recorder.wait_for(1).await;
    let data: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(data["Body"], "small");
    moto.wait_count(&dlq, 1, 0).await;
    moto.wait_count(&queue, 0, 0).await;
    let log = sluice.log();
    let line = log
        .lines()
        .find(|l| l.contains("sink did not accept the message"))
        .unwrap_or_else(|| panic!("no log line for the refused message:\n{log}"));
    assert!(line.contains(&queue) && line.contains("message_id="), "{line}");
    assert_eq!(recorder.received().len(), 1);
}

/// The events of the requests a sink received, in order: one per binary-mode request, each of
/// a batch.
fn events_of(requests: &[common::Received]) -> Vec<Value> {
    requests
        .iter()
        .flat_map(|r| {
            if r.header("content-type").as_deref() == Some("application/cloudevents-batch+json") {
                serde_json::from_slice::<Vec<Value>>(&r.body).unwrap()
            } else {
                vec![json!({"id": r.header("ce-id"), "data": serde_json::from_slice::<Value>(&r.body).unwrap()})]
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batching_kafka_source_sends_queued_records_in_batches_and_one_at_a_time_where_refused() {
    let kafka = Kafka::start().await;
    let batches = Recorder::accept().await;
    // A sink that reads no batches (415), as most Knative sinks.
    let singles = Recorder::scripted(std::sync::Arc::new(|_, r: &common::Received| {
        if r.header("content-type").as_deref() == Some("application/cloudevents-batch+json") {
            StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let subscriber = Recorder::accept().await;
    let records: Vec<Value> = (0..40).map(|i| json!({"value": format!("{{\"n\": {i}}}")})).collect();
    let mut manifests = Vec::new();
    let mut topics = Vec::new();
    let batched = "  annotations:\n    sluice.dev/max-batch-size: \"16\"\n";
    for (name, sink) in [
        ("batched", batches.url.clone()),
        ("refused", singles.url.clone()),
        ("brokered", String::new()),
    ] {
        let (topic, group) = (kafka.topic(1), unique("sluice-group"));
        // Produced before the source starts, so that records are queued when one is delivered.
        kafka.tool(&["produce", &topic, &Value::Array(records.clone()).to_string()]);
        let mut manifest =
            kafka_source(name, &kafka, &topic, &group, &sink, "").replacen("metadata:\n", &format!("metadata:\n{batched}"), 1);
        if sink.is_empty() {
            manifest = manifest.replace(
                "  sink:\n    uri: \n",
                "  sink:\n    ref:\n      apiVersion: eventing.knative.dev/v1\n      kind: Broker\n      name: default\n",
            );
        }
        manifests.push(manifest);
        topics.push((topic, group));
    }
    manifests.push(format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\n\
         apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: all\nspec:\n  broker: default\n  subscriber:\n    uri: {}\n",
        subscriber.url
    ));
    let sluice = Sluice::start(&manifests.join("---\n")).await;
    for name in ["batched", "refused", "brokered"] {
        sluice
            .wait_ready(&format!("/apis/sources.knative.dev/v1/namespaces/default/kafkasources/{name}"))
            .await;
    }
    let expected: Vec<Value> = (0..40).map(|i| json!({"n": i})).collect();
    let in_order = |events: &[Value]| events.iter().map(|e| e["data"].clone()).collect::<Vec<_>>();

    // Batches of at most 16, in offset order, each event whole.
    let deadline = Instant::now() + Duration::from_secs(20);
    while events_of(&batches.received()).len() < 40 {
        assert!(Instant::now() < deadline, "{:?}", events_of(&batches.received()).len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests = batches.received();
    let events = events_of(&requests);
    assert_eq!(in_order(&events), expected);
    assert!(requests.len() < 40, "{} requests for 40 records", requests.len());
    for request in &requests {
        if request.header("content-type").as_deref() == Some("application/cloudevents-batch+json") {
            let batch: Vec<Value> = serde_json::from_slice(&request.body).unwrap();
            assert!(batch.len() <= 16, "{}", batch.len());
            assert!(request.header("traceparent").is_some());
        }
    }
    assert_eq!(events[3]["type"], "dev.knative.kafka.event");
    assert_eq!(events[3]["id"], "partition:0/offset:3");
    assert_eq!(events[3]["subject"], "partition:0#3");
    assert_eq!(
        events[3]["source"],
        format!("/apis/v1/namespaces/default/kafkasources/batched#{}", topics[0].0)
    );
    kafka.wait_committed(&topics[0].1, &format!("{}/0", topics[0].0), 40).await;

    // Refused batches: every record again on its own, in order, and committed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while singles.received().iter().filter(|r| r.header("ce-id").is_some()).count() < 40 {
        assert!(Instant::now() < deadline, "{:?}", singles.received().len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted: Vec<common::Received> = singles.received().into_iter().filter(|r| r.header("ce-id").is_some()).collect();
    assert_eq!(in_order(&events_of(&accepted)), expected);
    kafka.wait_committed(&topics[1].1, &format!("{}/0", topics[1].0), 40).await;
    assert!(sluice.log().contains("the sink did not accept a batch"), "{}", sluice.log());

    // Through a Broker, which reads batches: every record reaches the Trigger's subscriber.
    let received = subscriber.wait_for(40).await;
    let mut ids: Vec<String> = received.iter().filter_map(|r| r.header("ce-id")).collect();
    ids.sort_by_key(|id| id.rsplit(':').next().unwrap().parse::<u32>().unwrap());
    ids.dedup();
    assert_eq!(ids.len(), 40, "{ids:?}");
    kafka.wait_committed(&topics[2].1, &format!("{}/0", topics[2].0), 40).await;
    let labels = "{namespace=\"default\",kind=\"kafkasource\",name=\"batched\"}";
    sluice
        .wait_metric(&format!("sluice_source_messages_acknowledged_total{labels}"), 40.0)
        .await;
    sluice.wait_metric(&format!("sluice_events_delivered_total{labels}"), 40.0).await;
}
