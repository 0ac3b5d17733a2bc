//! End-to-end: the real `sluice run` binary, real HTTP subscribers on loopback.
//! Broker ingress modes and status codes, trigger filters, retries, dead letters, replies.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine;
use common::{metric, send_binary, Recorder, Sluice};

const BROKER: &str = "/apis/eventing.knative.dev/v1/namespaces/default/brokers/default";

fn trigger(name: &str, filter_yaml: &str, subscriber: &str, delivery_yaml: &str) -> String {
    trigger_with(name, "", filter_yaml, subscriber, delivery_yaml)
}

/// A trigger whose deliveries go one at a time, in the order its events arrived: once an event
/// sent later (a sentinel) reaches its subscriber, every earlier event was judged and its
/// delivery, retries and dead letter included, is over.
fn ordered_trigger(name: &str, filter_yaml: &str, subscriber: &str, delivery_yaml: &str) -> String {
    trigger_with(
        name,
        "  annotations:\n    sluice.dev/max-in-flight: \"1\"\n",
        filter_yaml,
        subscriber,
        delivery_yaml,
    )
}

fn trigger_with(name: &str, annotations: &str, filter_yaml: &str, subscriber: &str, delivery_yaml: &str) -> String {
    format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: {name}\n{annotations}spec:\n  broker: default\n{filter_yaml}  subscriber:\n    uri: {subscriber}\n{delivery_yaml}---\n"
    )
}

fn broker() -> &'static str {
    "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_every_mode_reach_only_matching_triggers() {
    let orders = Recorder::accept().await;
    let prefixed = Recorder::accept().await;
    let cesql = Recorder::accept().await;
    let legacy = Recorder::accept().await;
    let manifests = [
        broker().to_string(),
        ordered_trigger("orders", "  filters:\n  - exact:\n      type: com.example.order\n", &orders.url, ""),
        ordered_trigger(
            "prefixed",
            "  filters:\n  - prefix:\n      type: com.example.pay\n",
            &prefixed.url,
            "",
        ),
        ordered_trigger(
            "cesql",
            "  filters:\n  - cesql: \"region = 'eu' AND INT(amount) > 10\"\n",
            &cesql.url,
            "",
        ),
        ordered_trigger(
            "legacy",
            "  filter:\n    attributes:\n      type: com.example.order\n      region: \"\"\n",
            &legacy.url,
            "",
        ),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    let broker = sluice.wait_ready(BROKER).await;
    let url = broker["status"]["address"]["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/default/default", sluice.gateway));
    for t in ["orders", "prefixed", "cesql", "legacy"] {
        sluice
            .wait_ready(&format!("/apis/eventing.knative.dev/v1/namespaces/default/triggers/{t}"))
            .await;
    }

    // Binary mode with a trace: matches `orders` only (no region extension for legacy).
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(
        send_binary(&url, "b1", "com.example.order", &[("traceparent", tp)], r#"{"n":1}"#).await,
        202
    );
    // Structured mode: matches `prefixed`.
    let structured = r#"{"specversion":"1.0","id":"s1","type":"com.example.payment","source":"/test","data":{"n":2}}"#;
    let status = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/cloudevents+json; charset=utf-8")
        .body(structured)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    // Batch mode: one matching cesql (and legacy + orders), one matching nothing.
    let batch = r#"[{"specversion":"1.0","id":"c1","type":"com.example.order","source":"/test","region":"eu","amount":"42"},
                    {"specversion":"1.0","id":"n1","type":"other","source":"/test","region":"us","amount":"1"}]"#;
    let status = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/cloudevents-batch+json")
        .body(batch)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);

    let got = orders.wait_for(2).await;
    let ids: Vec<_> = got.iter().map(|r| r.header("ce-id").unwrap()).collect();
    assert!(ids.contains(&"b1".to_string()) && ids.contains(&"c1".to_string()), "{ids:?}");
    let b1 = got.iter().find(|r| r.header("ce-id").as_deref() == Some("b1")).unwrap();
    assert_eq!(b1.body.as_ref(), br#"{"n":1}"#);
    assert_eq!(b1.header("prefer").as_deref(), Some("reply"));
    assert_eq!(b1.header("kn-namespace").as_deref(), Some("default"));
    assert!(b1.header("ce-knativearrivaltime").is_some(), "arrival time stamped");
    assert!(b1.header("ce-knativebrokerttl").is_none(), "ttl stripped before delivery");
    let tp_out = b1.header("traceparent").expect("traceparent propagated");
    assert!(tp_out.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "same trace id: {tp_out}");

    let p = prefixed.wait_for(1).await;
    assert_eq!(p[0].header("ce-id").as_deref(), Some("s1"));
    let c = cesql.wait_for(1).await;
    assert_eq!(c[0].header("ce-id").as_deref(), Some("c1"));
    let l = legacy.wait_for(1).await;
    assert_eq!(l[0].header("ce-id").as_deref(), Some("c1"));

    // Sentinels: one matching `orders`, `cesql` and `legacy`, one matching `prefixed`. Each
    // trigger delivers one at a time in arrival order, so once its sentinel is in, every event
    // above was judged and anything wrongly let through has arrived before it.
    let order_sentinel = [("ce-region", "eu"), ("ce-amount", "42")];
    assert_eq!(
        send_binary(&url, "sentinel-order", "com.example.order", &order_sentinel, "{}").await,
        202
    );
    assert_eq!(send_binary(&url, "sentinel-payment", "com.example.payment", &[], "{}").await, 202);
    for (name, rec, expected) in [
        ("orders", &orders, ["b1", "c1", "sentinel-order"].as_slice()),
        ("prefixed", &prefixed, ["s1", "sentinel-payment"].as_slice()),
        ("cesql", &cesql, ["c1", "sentinel-order"].as_slice()),
        ("legacy", &legacy, ["c1", "sentinel-order"].as_slice()),
    ] {
        rec.wait_for_id(expected.last().unwrap()).await;
        assert_eq!(rec.ids(), expected, "{name}");
    }

    let metrics = sluice.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "sluice_events_accepted_total{namespace=\"default\",kind=\"broker\",name=\"default\"}"
        ),
        Some(6.0),
        "{metrics}"
    );
    sluice
        .wait_metric(
            "sluice_events_delivered_total{namespace=\"default\",kind=\"trigger\",name=\"orders\"}",
            3.0,
        )
        .await;
}

/// Announces a 5 MiB body (over the 4 MiB default limit) and reads the status line the gateway
/// answers with before the body is sent: a raw socket, since HTTP clients that are still
/// writing the body may see the connection close first.
async fn oversized_post(gw: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /default/default HTTP/1.1\r\nHost: {addr}\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-type: t\r\nce-source: /s\r\nContent-Length: {}\r\n\r\nxxxx",
        5 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_status_codes() {
    let sluice = Sluice::start(broker()).await;
    sluice.wait_ready(BROKER).await;
    let gw = &sluice.gateway;
    let c = reqwest::Client::new();
    assert_eq!(send_binary(&format!("{gw}/default/default"), "1", "t", &[], "{}").await, 202);
    assert_eq!(send_binary(&format!("{gw}/default/missing"), "1", "t", &[], "{}").await, 404);
    let bad = c
        .post(format!("{gw}/default/default"))
        .header("ce-specversion", "9000.1")
        .header("ce-id", "1")
        .header("ce-type", "t")
        .header("ce-source", "/s")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("specversion"));
    let no_event = c
        .post(format!("{gw}/default/default"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_event.status(), 400);
    let get = c.get(format!("{gw}/default/default")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST, OPTIONS");
    let opts = c
        .request(reqwest::Method::OPTIONS, format!("{gw}/default/default"))
        .send()
        .await
        .unwrap();
    assert_eq!(opts.status(), 200);
    assert_eq!(opts.headers()["webhook-allowed-origin"], "*");
    assert_eq!(c.post(format!("{gw}/")).send().await.unwrap().status(), 404);
    assert_eq!(c.post(format!("{gw}/a/b/c")).send().await.unwrap().status(), 400);
    assert_eq!(oversized_post(gw).await, 413);
    // Ingress takes one off an incoming TTL and refuses the event when none is left (BRK-09).
    for spent in ["0", "1"] {
        let ttl = send_binary(&format!("{gw}/default/default"), "1", "t", &[("ce-knativebrokerttl", spent)], "{}").await;
        assert_eq!(ttl, 400, "knativebrokerttl {spent}");
    }
    // v0.3 is accepted too.
    let v03 = c
        .post(format!("{gw}/default/default"))
        .header("ce-specversion", "0.3")
        .header("ce-id", "1")
        .header("ce-type", "t")
        .header("ce-source", "/s")
        .send()
        .await
        .unwrap();
    assert_eq!(v03.status(), 202);
    // The process is still serving after all of that.
    assert_eq!(send_binary(&format!("{gw}/default/default"), "2", "t", &[], "{}").await, 202);
    // Every refusal of an existing broker is counted with its reason.
    let metrics = reqwest::get(format!("{}/metrics", sluice.api)).await.unwrap().text().await.unwrap();
    for (reason, n) in [("invalid", 2), ("method", 1), ("too_large", 1), ("ttl", 2)] {
        let line =
            format!("sluice_events_rejected_total{{namespace=\"default\",kind=\"broker\",name=\"default\",reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_backoff_formula_then_succeed() {
    let flaky = Recorder::scripted(Arc::new(|n, _| {
        if n < 3 {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let expo = Recorder::scripted(Arc::new(|n, _| {
        if n < 3 {
            StatusCode::TOO_MANY_REQUESTS.into_response()
        } else {
            StatusCode::ACCEPTED.into_response()
        }
    }))
    .await;
    let manifests = [
        broker().to_string(),
        ordered_trigger(
            "linear",
            "  filters:\n  - exact:\n      type: linear\n",
            &flaky.url,
            "  delivery:\n    retry: 5\n    backoffPolicy: linear\n    backoffDelay: PT0.2S\n",
        ),
        ordered_trigger(
            "expo",
            "  filters:\n  - exact:\n      type: expo\n",
            &expo.url,
            "  delivery:\n    retry: 5\n    backoffPolicy: exponential\n    backoffDelay: PT0.1S\n",
        ),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/linear")
        .await;
    sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/expo")
        .await;
    let url = format!("{}/default/default", sluice.gateway);
    assert_eq!(send_binary(&url, "l1", "linear", &[], "{}").await, 202);
    assert_eq!(send_binary(&url, "e1", "expo", &[], "{}").await, 202);

    // Retry k waits backoffDelay × k (linear) and backoffDelay × 2^(k−1) (exponential).
    for (rec, ty, id, expected_ms) in [
        (&flaky, "linear", "l1", [200u128, 400, 600]),
        (&expo, "expo", "e1", [100, 200, 400]),
    ] {
        let got = rec.wait_for(4).await;
        for k in 0..3 {
            let gap = got[k + 1].at.duration_since(got[k].at).as_millis();
            let want = expected_ms[k];
            assert!(
                gap + 15 >= want && gap < want + 250,
                "retry {} waited {gap} ms, expected about {want} ms",
                k + 1
            );
        }
        // One delivery at a time: the sentinel's delivery starts only once the first event's has
        // ended, so an attempt after the success would arrive before it.
        let sentinel = format!("{ty}-sentinel");
        assert_eq!(send_binary(&url, &sentinel, ty, &[], "{}").await, 202);
        rec.wait_for_id(&sentinel).await;
        assert_eq!(rec.ids(), [id, id, id, id, sentinel.as_str()]);
    }
    let metrics = reqwest::get(format!("{}/metrics", sluice.api)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("sluice_delivery_retries_total{namespace=\"default\",kind=\"trigger\",name=\"linear\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_events_go_to_the_dead_letter_sink_with_error_extensions() {
    let failing = Recorder::scripted(Arc::new(|_, _| (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response())).await;
    let rejecting = Recorder::scripted(Arc::new(|_, _| (StatusCode::BAD_REQUEST, "no thanks").into_response())).await;
    let dls = Recorder::accept().await;
    let delivery = format!(
        "  delivery:\n    retry: 2\n    backoffDelay: PT0.05S\n    deadLetterSink:\n      uri: {}\n",
        dls.url
    );
    let manifests = [
        broker().to_string(),
        trigger("failing", "  filters:\n  - exact:\n      type: fail\n", &failing.url, &delivery),
        trigger(
            "rejecting",
            "  filters:\n  - exact:\n      type: reject\n",
            &rejecting.url,
            &delivery,
        ),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    let t = sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/failing")
        .await;
    assert_eq!(t["status"]["deadLetterSinkUri"].as_str(), Some(dls.url.as_str()));
    sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/rejecting")
        .await;
    let url = format!("{}/default/default", sluice.gateway);
    assert_eq!(send_binary(&url, "f1", "fail", &[], r#"{"a":1}"#).await, 202);
    let dead = dls.wait_for(1).await;
    assert_eq!(failing.received().len(), 3, "first attempt + 2 retries");
    let d = &dead[0];
    assert_eq!(d.header("ce-id").as_deref(), Some("f1"));
    assert_eq!(d.header("ce-knativeerrordest").as_deref(), Some(failing.url.as_str()));
    assert_eq!(d.header("ce-knativeerrorcode").as_deref(), Some("500"));
    let data = base64::engine::general_purpose::STANDARD
        .decode(d.header("ce-knativeerrordata").unwrap())
        .unwrap();
    assert_eq!(data, b"boom");
    assert_eq!(d.body.as_ref(), br#"{"a":1}"#);

    // 400 is not retried (DUCK-07): straight to the dead-letter sink.
    assert_eq!(send_binary(&url, "r1", "reject", &[], "{}").await, 202);
    let dead = dls.wait_for(2).await;
    assert_eq!(rejecting.received().len(), 1);
    assert_eq!(dead[1].header("ce-knativeerrorcode").as_deref(), Some("400"));

    // The dead-letter sink sees an event a moment before its delivery ends and is counted.
    for t in ["failing", "rejecting"] {
        sluice
            .wait_metric(
                &format!("sluice_events_dead_lettered_total{{namespace=\"default\",kind=\"trigger\",name=\"{t}\"}}"),
                1.0,
            )
            .await;
    }
    let metrics = sluice.metrics().await;
    let value = |family: &str, trigger: &str| {
        metric(
            &metrics,
            &format!("{family}{{namespace=\"default\",kind=\"trigger\",name=\"{trigger}\"}}"),
        )
    };
    for t in ["failing", "rejecting"] {
        assert_eq!(
            value("sluice_events_failed_total", t),
            Some(1.0),
            "{t}: one event failed every attempt\n{metrics}"
        );
        assert_eq!(
            value("sluice_events_dead_lettered_total", t),
            Some(1.0),
            "{t}: and was dead-lettered"
        );
        assert_eq!(value("sluice_events_delivered_total", t), Some(0.0), "{t}: nothing was delivered");
        // Attempts to the subscriber and the dead-letter sink are timed; the end-to-end latency
        // is only observed for events the subscriber took.
        let subscriber_attempts = if t == "failing" { 3.0 } else { 1.0 };
        let timed = value("sluice_delivery_attempt_duration_seconds_count", t);
        assert_eq!(
            timed,
            Some(subscriber_attempts + 1.0),
            "{t}: subscriber attempts and the dead-letter sink's\n{metrics}"
        );
        assert_eq!(
            value("sluice_event_latency_seconds_count", t),
            Some(0.0),
            "{t}: no delivered event, no latency"
        );
    }
    assert_eq!(value("sluice_delivery_retries_total", "failing"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_routed_back_through_the_broker() {
    let responder = Recorder::scripted(Arc::new(|_, r| {
        let id = format!("reply-to-{}", r.header("ce-id").unwrap_or_default());
        (
            StatusCode::OK,
            [
                ("ce-specversion", "1.0"),
                ("ce-id", id.as_str()),
                ("ce-type", "com.example.response"),
                ("ce-source", "/responder"),
                ("content-type", "text/plain"),
            ],
            "pong",
        )
            .into_response()
    }))
    .await;
    let downstream = Recorder::accept().await;
    let dls = Recorder::accept().await;
    let looping = Recorder::scripted(Arc::new(|_, r| {
        if r.header("ce-id").as_deref() == Some("loop-sentinel") {
            return StatusCode::OK.into_response();
        }
        // Replies with the same type: the TTL loop guard must stop this.
        (
            StatusCode::OK,
            [
                ("ce-specversion", "1.0"),
                ("ce-id", "again"),
                ("ce-type", "com.example.loop"),
                ("ce-source", "/loop"),
            ],
            r.body.clone(),
        )
            .into_response()
    }))
    .await;
    let chatty = Recorder::scripted(Arc::new(|_, _| {
        (StatusCode::OK, [("content-type", "text/plain")], "just text, no event").into_response()
    }))
    .await;
    let manifests = [
        broker().to_string(),
        trigger(
            "chatty",
            "  filters:\n  - exact:\n      type: com.example.chat\n",
            &chatty.url,
            &format!(
                "  delivery:\n    retry: 1\n    backoffDelay: PT0.05S\n    deadLetterSink:\n      uri: {}\n",
                dls.url
            ),
        ),
        trigger(
            "requests",
            "  filters:\n  - exact:\n      type: com.example.request\n",
            &responder.url,
            "",
        ),
        trigger(
            "responses",
            "  filters:\n  - exact:\n      type: com.example.response\n",
            &downstream.url,
            "",
        ),
        ordered_trigger(
            "loop",
            "  filters:\n  - exact:\n      type: com.example.loop\n",
            &looping.url,
            &format!("  delivery:\n    deadLetterSink:\n      uri: {}\n", dls.url),
        ),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    for t in ["requests", "responses", "loop", "chatty"] {
        sluice
            .wait_ready(&format!("/apis/eventing.knative.dev/v1/namespaces/default/triggers/{t}"))
            .await;
    }
    let url = format!("{}/default/default", sluice.gateway);
    assert_eq!(send_binary(&url, "q1", "com.example.request", &[], "ping").await, 202);
    let got = downstream.wait_for(1).await;
    assert_eq!(got[0].header("ce-id").as_deref(), Some("reply-to-q1"));
    assert_eq!(got[0].body.as_ref(), b"pong");
    assert!(got[0].header("ce-knativebrokerttl").is_none());

    // A reply loop ends at the TTL (BRK-09): sent with 5, ingress leaves 4, and each reply comes
    // back through ingress carrying its event's TTL: 3, 2, 1, then the fourth reply has none
    // left. Ingress refuses it (400), which fails that delivery for good: dead-lettered.
    assert_eq!(
        send_binary(&url, "loop1", "com.example.loop", &[("ce-knativebrokerttl", "5")], "x").await,
        202
    );
    looping.wait_for(4).await;
    let dead = dls.wait_for(1).await;
    assert_eq!(dead[0].header("ce-knativeerrorcode").as_deref(), Some("400"));
    // Each delivery of `loop` stores its reply before it ends and the dead letter ended the
    // fourth, so the sentinel (answered without a reply) is queued behind every reply the loop
    // made, and `loop` delivers one at a time in order: a fifth round would arrive first.
    assert_eq!(send_binary(&url, "loop-sentinel", "com.example.loop", &[], "x").await, 202);
    looping.wait_for_id("loop-sentinel").await;
    assert_eq!(looping.ids(), ["loop1", "again", "again", "again", "loop-sentinel"]);
    assert_eq!(dls.ids(), ["again"]);

    // A 2xx whose body is not a CloudEvent is a failed delivery (the broker filter's 502). The
    // subscriber did answer, so it is not called again: dead-lettered at once with that body.
    assert_eq!(send_binary(&url, "chat1", "com.example.chat", &[], "hello").await, 202);
    let dead = dls.wait_for(2).await;
    assert_eq!(chatty.received().len(), 1, "no retry for an invalid reply");
    assert_eq!(dead[1].header("ce-id").as_deref(), Some("chat1"));
    assert_eq!(dead[1].header("ce-knativeerrorcode").as_deref(), Some("502"));
    assert_eq!(dead[1].header("ce-knativeerrordest").as_deref(), Some(chatty.url.as_str()));
    let data = base64::engine::general_purpose::STANDARD
        .decode(dead[1].header("ce-knativeerrordata").unwrap())
        .unwrap();
    assert_eq!(data, b"just text, no event");
}

/// A subscriber that answers after `delay` and records how many requests it had open at once.
struct SlowSubscriber {
    url: String,
    /// Requests received (counted on arrival, also when the sender gives up waiting).
    started: Arc<std::sync::atomic::AtomicUsize>,
    open: Arc<std::sync::atomic::AtomicUsize>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowSubscriber {
    async fn start(delay: Duration) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (open, peak, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let started = Arc::new(AtomicUsize::new(0));
        let (s, o, p, d) = (started.clone(), open.clone(), peak.clone(), done.clone());
        let app = axum::Router::new().fallback(move || {
            let (s, o, p, d) = (s.clone(), o.clone(), p.clone(), d.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                o.fetch_sub(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            started,
            open,
            peak,
            done,
        }
    }

    fn get(counter: &std::sync::atomic::AtomicUsize) -> usize {
        counter.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `counter` reaches `n` (10 s at most).
    async fn wait_until(&self, what: &str, counter: &std::sync::atomic::AtomicUsize, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Self::get(counter) < n {
            assert!(std::time::Instant::now() < deadline, "{what}: only {} of {n}", Self::get(counter));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn limited_trigger(name: &str, ty: &str, max_in_flight: Option<&str>, url: &str) -> String {
    let annotations = max_in_flight
        .map(|m| format!("  annotations:\n    sluice.dev/max-in-flight: \"{m}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: {name}\n{annotations}spec:\n  broker: default\n  filter:\n    attributes:\n      type: {ty}\n  subscriber:\n    uri: {url}\n---\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_limit_caps_concurrent_deliveries_per_trigger() {
    let narrow = SlowSubscriber::start(Duration::from_millis(200)).await;
    let wide = SlowSubscriber::start(Duration::from_millis(1000)).await;
    let manifests = format!(
        "{}{}{}",
        broker(),
        limited_trigger("limited", "narrow", Some("2"), &narrow.url),
        limited_trigger("wide", "wide", None, &wide.url)
    );
    let sluice = Sluice::start(&manifests).await;
    for t in ["limited", "wide"] {
        sluice
            .wait_ready(&format!("/apis/eventing.knative.dev/v1/namespaces/default/triggers/{t}"))
            .await;
    }
    let ingress = format!("{}/default/default", sluice.gateway);

    // The annotation's limit.
    for i in 0..6 {
        assert_eq!(send_binary(&ingress, &format!("n{i}"), "narrow", &[], "{}").await, 202);
    }
    narrow.wait_until("narrow deliveries", &narrow.done, 6).await;
    assert_eq!(
        SlowSubscriber::get(&narrow.peak),
        2,
        "at most two deliveries in flight for this trigger"
    );

    // The default limit: 100.
    for i in 0..120 {
        assert_eq!(send_binary(&ingress, &format!("w{i}"), "wide", &[], "{}").await, 202);
    }
    wide.wait_until("wide deliveries open at once", &wide.open, 100).await;
    // Lowering the limit while all 100 are in flight: the 20 waiting events go 5 at a time.
    let lowered = sluice.manifests().join("lowered.yaml");
    std::fs::write(&lowered, limited_trigger("wide", "wide", Some("5"), &wide.url)).unwrap();
    let out = sluice.cli(&["apply", "-f", lowered.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        SlowSubscriber::get(&wide.done),
        0,
        "the first 100 were still in flight when the limit changed"
    );
    assert_eq!(SlowSubscriber::get(&wide.peak), 100, "default in-flight limit");
    wide.wait_until("first wide deliveries", &wide.done, 100).await;
    wide.peak
        .store(SlowSubscriber::get(&wide.open), std::sync::atomic::Ordering::SeqCst);
    wide.wait_until("all wide deliveries", &wide.done, 120).await;
    let peak = SlowSubscriber::get(&wide.peak);
    assert!(peak <= 5, "after lowering the limit to 5, {peak} deliveries were in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_and_attempt_timeout_apply_end_to_end() {
    // 429 asking for 5 s: honoured up to retryAfterMax (1 s), not the 50 ms backoff.
    let busy = Recorder::scripted(Arc::new(|n, _| {
        if n == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "5")]).into_response()
        } else {
            StatusCode::ACCEPTED.into_response()
        }
    }))
    .await;
    // A subscriber slower than the attempt timeout: both attempts time out, then dead letter.
    let slow = SlowSubscriber::start(Duration::from_secs(2)).await;
    let dls = Recorder::accept().await;
    let manifests = [
        broker().to_string(),
        ordered_trigger(
            "patient",
            "  filters:\n  - exact:\n      type: busy\n",
            &busy.url,
            "  delivery:\n    retry: 2\n    backoffDelay: PT0.05S\n    retryAfterMax: PT1S\n",
        ),
        trigger(
            "hasty",
            "  filters:\n  - exact:\n      type: slow\n",
            &slow.url,
            &format!(
                "  delivery:\n    retry: 1\n    backoffDelay: PT0.05S\n    timeout: PT0.2S\n    deadLetterSink:\n      uri: {}\n",
                dls.url
            ),
        ),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    for t in ["patient", "hasty"] {
        sluice
            .wait_ready(&format!("/apis/eventing.knative.dev/v1/namespaces/default/triggers/{t}"))
            .await;
    }
    let url = format!("{}/default/default", sluice.gateway);
    assert_eq!(send_binary(&url, "b1", "busy", &[], "{}").await, 202);
    let sent = std::time::Instant::now();
    assert_eq!(send_binary(&url, "s1", "slow", &[], "{}").await, 202);

    let got = busy.wait_for(2).await;
    let gap = got[1].at.duration_since(got[0].at).as_millis();
    assert!(
        (990..1500).contains(&gap),
        "waited {gap} ms after Retry-After: 5 with retryAfterMax PT1S"
    );
    // `patient` delivers one at a time: the sentinel reaches `busy` only after b1's delivery has
    // ended, so a third attempt of b1 would arrive before it.
    assert_eq!(send_binary(&url, "busy-sentinel", "busy", &[], "{}").await, 202);
    busy.wait_for_id("busy-sentinel").await;
    assert_eq!(busy.ids(), ["b1", "b1", "busy-sentinel"]);

    let dead = dls.wait_for(1).await;
    assert_eq!(dead[0].header("ce-id").as_deref(), Some("s1"));
    // No answer at all: a transport error, reported as 500 (DLV-05).
    assert_eq!(dead[0].header("ce-knativeerrorcode").as_deref(), Some("500"));
    let data = base64::engine::general_purpose::STANDARD
        .decode(dead[0].header("ce-knativeerrordata").unwrap())
        .unwrap();
    assert!(
        String::from_utf8_lossy(&data).contains("no response within 200 ms"),
        "{}",
        String::from_utf8_lossy(&data)
    );
    assert_eq!(SlowSubscriber::get(&slow.started), 2, "the first attempt and one retry");
    // Dead-lettered before the subscriber could have answered even the first attempt.
    assert!(
        dead[0].at.duration_since(sent) < Duration::from_millis(1900),
        "attempts did not time out"
    );
}
