//! End-to-end: where Knative's implementation specifies a behaviour of the eventing core, the
//! real `sluice run` matches it request by request. Every subscriber here records the raw
//! request (headers, body, content type).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine;
use common::{answer_with, send_binary, Recorder, Sluice};

const BROKER: &str = "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\n";

fn trigger(name: &str, ty: &str, subscriber: &str, delivery_yaml: &str) -> String {
    format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: {name}\nspec:\n  broker: default\n  filter:\n    attributes:\n      type: {ty}\n  subscriber:\n    uri: {subscriber}\n{delivery_yaml}---\n"
    )
}

/// The sender's pass-through headers, and one that must not pass.
const SENT_HEADERS: [(&str, &str); 5] = [
    ("x-request-id", "req-1"),
    ("retry-after", "7"),
    ("knative-foo", "bar"),
    ("x-b3-traceid", "abc123"),
    ("x-foo", "dropped"),
];

fn assert_passed_through(r: &common::Received, what: &str) {
    for (name, value) in &SENT_HEADERS[..4] {
        assert_eq!(r.header(name).as_deref(), Some(*value), "{what}: {name}");
    }
    assert!(r.header("x-foo").is_none(), "{what}: x-foo must not pass");
}

/// DLV-06: `x-request-id`, `retry-after`, `knative-*` and `x-b3-*` travel with the event to
/// every subscriber, to the dead-letter sink, and from a reply's response to the reply's
/// subscribers; through a broker and through a channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_headers_reach_subscribers_dead_letter_sinks_and_replies() {
    let ok = Recorder::accept().await;
    let refusing = Recorder::scripted(Arc::new(|_, _| StatusCode::BAD_REQUEST.into_response())).await;
    let dls = Recorder::accept().await;
    let replier = Recorder::scripted(answer_with(
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "answer-1"),
            ("ce-type", "answer"),
            ("ce-source", "/replier"),
            ("knative-hop", "replied"),
            ("x-other", "dropped"),
        ],
        "42",
    ))
    .await;
    let answers = Recorder::accept().await;
    let channel_sub = Recorder::accept().await;
    let manifests = [
        BROKER.to_string(),
        trigger("ok", "ping", &ok.url, ""),
        trigger("refusing", "ping", &refusing.url, &format!("  delivery:\n    deadLetterSink:\n      uri: {}\n", dls.url)),
        trigger("replier", "ask", &replier.url, ""),
        trigger("answers", "answer", &answers.url, ""),
        "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\nmetadata:\n  name: chan\n---\n".to_string(),
        format!("apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata:\n  name: s\nspec:\n  channel:\n    apiVersion: messaging.knative.dev/v1\n    kind: InMemoryChannel\n    name: chan\n  subscriber:\n    uri: {}\n---\n", channel_sub.url),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    sluice
        .wait_ready("/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/s")
        .await;
    let broker = format!("{}/default/default", sluice.gateway);

    assert_eq!(send_binary(&broker, "p1", "ping", &SENT_HEADERS, "{}").await, 202);
    assert_passed_through(&ok.wait_for(1).await[0], "trigger subscriber");
    assert_passed_through(&dls.wait_for(1).await[0], "dead-letter sink");

    // A reply's own pass-through headers go with it; the original request's do not (the reply
    // is a new event, as in Knative).
    assert_eq!(send_binary(&broker, "q1", "ask", &SENT_HEADERS, "{}").await, 202);
    assert_passed_through(&replier.wait_for(1).await[0], "replying subscriber");
    let answer = &answers.wait_for(1).await[0];
    assert_eq!(answer.header("ce-id").as_deref(), Some("answer-1"));
    assert_eq!(answer.header("knative-hop").as_deref(), Some("replied"));
    assert!(
        answer.header("x-other").is_none() && answer.header("x-request-id").is_none(),
        "{:?}",
        answer.headers
    );

    let channel = format!("{}/channels/default/chan", sluice.gateway);
    assert_eq!(send_binary(&channel, "c1", "ping", &SENT_HEADERS, "{}").await, 202);
    assert_passed_through(&channel_sub.wait_for(1).await[0], "channel subscriber");
}

/// BRK-01: a Trigger whose delivery sets only retries keeps the Broker's dead-letter sink, in
/// its status and when delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggers_retries_keep_the_brokers_dead_letter_sink() {
    let failing = Recorder::scripted(Arc::new(|_, _| StatusCode::INTERNAL_SERVER_ERROR.into_response())).await;
    let dls = Recorder::accept().await;
    let broker = format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\nspec:\n  delivery:\n    retry: 5\n    deadLetterSink:\n      uri: {}\n---\n",
        dls.url
    );
    let manifests = broker + &trigger("retries-only", "job", &failing.url, "  delivery:\n    retry: 1\n");
    let sluice = Sluice::start(&manifests).await;
    let t = sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/retries-only")
        .await;
    assert_eq!(t["status"]["deadLetterSinkUri"].as_str(), Some(dls.url.as_str()), "{t:#}");

    assert_eq!(
        send_binary(&format!("{}/default/default", sluice.gateway), "j1", "job", &[], "x").await,
        202
    );
    let dead = dls.wait_for(1).await;
    assert_eq!(dead[0].header("ce-id").as_deref(), Some("j1"));
    assert_eq!(dead[0].header("ce-knativeerrorcode").as_deref(), Some("500"));
    assert_eq!(failing.received().len(), 2, "the trigger's retry: 1, not the broker's 5");
}

/// `delivery.format: json` writes each kind of data as the CloudEvents JSON format says, and
/// the structured event, posted back to a broker, delivers the same data in binary mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_format_writes_json_inline_text_as_a_string_and_binary_as_base64() {
    let structured = Recorder::accept().await;
    let binary = Recorder::accept().await;
    let manifests = [
        BROKER.to_string(),
        trigger("as-json", "data", &structured.url, "  delivery:\n    format: json\n"),
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: again\n---\n".to_string(),
        trigger("as-binary", "data", &binary.url, "").replace("broker: default", "broker: again"),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/as-binary")
        .await;
    let cases: [(&str, &[u8], &str, serde_json::Value); 3] = [
        ("application/json", br#"{"a":1}"#, "data", serde_json::json!({"a": 1})),
        ("text/plain", b"hello", "data", serde_json::json!("hello")),
        (
            "application/octet-stream",
            &[0, 1, 2, 255],
            "data_base64",
            serde_json::json!("AAEC/w=="),
        ),
    ];
    let client = reqwest::Client::new();
    for (i, (content_type, data, key, expected)) in cases.iter().enumerate() {
        let status = client
            .post(format!("{}/default/default", sluice.gateway))
            .header("ce-specversion", "1.0")
            .header("ce-id", format!("d{i}"))
            .header("ce-type", "data")
            .header("ce-source", "/test")
            .header("content-type", *content_type)
            .body(data.to_vec())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
        let got = structured.wait_for(i + 1).await[i].clone();
        assert_eq!(got.header("content-type").as_deref(), Some("application/cloudevents+json"));
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(&json[key], expected, "{content_type}: {json}");
        let other = if *key == "data" { "data_base64" } else { "data" };
        assert!(json.get(other).is_none(), "{content_type}: {json}");
        assert_eq!(json["datacontenttype"], *content_type);

        // Round trip: the structured body back through a broker, out in binary mode.
        let status = client
            .post(format!("{}/default/again", sluice.gateway))
            .header("content-type", "application/cloudevents+json")
            .body(got.body.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
        let back = binary.wait_for(i + 1).await[i].clone();
        assert_eq!(back.header("content-type").as_deref(), Some(*content_type));
        assert_eq!(back.body.as_ref(), *data, "{content_type}");
    }
}

/// A reply the broker refuses fails the delivery as Knative's does: the dead-letter event names
/// the broker's ingress in `knativeerrordest`, with the broker's 400, and the subscriber is not
/// called again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_refused_by_the_broker_are_dead_lettered_naming_its_ingress() {
    // No ce-id: not a valid CloudEvent, which the broker's ingress refuses.
    let no_id = Recorder::scripted(answer_with(
        &[("ce-specversion", "1.0"), ("ce-type", "answer"), ("ce-source", "/x")],
        "x",
    ))
    .await;
    // A valid reply; the event it answers has a TTL of 1 left, so the reply has none.
    let valid = Recorder::scripted(answer_with(
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "r"),
            ("ce-type", "answer"),
            ("ce-source", "/x"),
        ],
        "x",
    ))
    .await;
    let dls = Recorder::accept().await;
    let delivery = format!("  delivery:\n    retry: 2\n    deadLetterSink:\n      uri: {}\n", dls.url);
    let manifests = [
        BROKER.to_string(),
        trigger("no-id", "bad", &no_id.url, &delivery),
        trigger("spent", "last", &valid.url, &delivery),
    ]
    .concat();
    let sluice = Sluice::start(&manifests).await;
    let broker = format!("{}/default/default", sluice.gateway);

    assert_eq!(send_binary(&broker, "b1", "bad", &[], "x").await, 202);
    let dead = dls.wait_for(1).await;
    assert_eq!(dead[0].header("ce-id").as_deref(), Some("b1"));
    assert_eq!(dead[0].header("ce-knativeerrordest").as_deref(), Some(broker.as_str()));
    assert_eq!(dead[0].header("ce-knativeerrorcode").as_deref(), Some("400"));
    assert_eq!(
        no_id.received().len(),
        1,
        "an invalid reply is not the subscriber's failure to retry"
    );

    // Ingress takes one off the 2 it arrives with; the reply carries the 1 left, which is spent.
    assert_eq!(send_binary(&broker, "l1", "last", &[("ce-knativebrokerttl", "2")], "x").await, 202);
    let dead = dls.wait_for(2).await;
    assert_eq!(dead[1].header("ce-id").as_deref(), Some("l1"));
    assert_eq!(dead[1].header("ce-knativeerrordest").as_deref(), Some(broker.as_str()));
    assert_eq!(dead[1].header("ce-knativeerrorcode").as_deref(), Some("400"));
    assert_eq!(valid.received().len(), 1);
}

/// Ingress edge cases as Knative's `ingress_handler.go` answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_edge_cases_follow_knative() {
    let sub = Recorder::accept().await;
    let sluice = Sluice::start(&(BROKER.to_string() + &trigger("all", "edge", &sub.url, ""))).await;
    let broker = format!("{}/default/default", sluice.gateway);

    // A trailing slash names the same broker.
    assert_eq!(send_binary(&format!("{broker}/"), "e1", "edge", &[], "x").await, 202);
    // An unparsable TTL is reset to the default, not refused.
    assert_eq!(
        send_binary(&broker, "e2", "edge", &[("ce-knativebrokerttl", "abc")], "x").await,
        202
    );
    // Upper-case attribute names in a structured event are lower-cased.
    let structured = r#"{"specversion":"1.0","id":"e3","type":"edge","source":"/t","MyExt":"v"}"#;
    let status = reqwest::Client::new()
        .post(&broker)
        .header("content-type", "application/cloudevents+json")
        .body(structured)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let got = sub.wait_for(3).await;
    let mut ids: Vec<_> = got.iter().map(|r| r.header("ce-id").unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    let e3 = got.iter().find(|r| r.header("ce-id").as_deref() == Some("e3")).unwrap();
    assert_eq!(e3.header("ce-myext").as_deref(), Some("v"));

    // The event is validated before the broker is looked up: invalid to an unknown broker is
    // 400, valid to an unknown broker 404.
    let unknown = format!("{}/default/nope", sluice.gateway);
    let invalid = reqwest::Client::new()
        .post(&unknown)
        .header("ce-specversion", "1.0")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(send_binary(&unknown, "e4", "edge", &[], "x").await, 404);
}

/// A subscriber that accepts connections and never answers: with no `delivery.timeout`, each
/// attempt ends at the default attempt timeout (`--delivery-timeout`), every event is retried
/// and then dead-lettered, and another trigger of the same broker keeps delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_answers_ends_in_retries_and_the_dead_letter_sink() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}/", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket); // read nothing, answer nothing, close nothing
        }
    });
    let healthy = Recorder::accept().await;
    let dls = Recorder::accept().await;
    let manifests = [
        BROKER.to_string(),
        trigger(
            "silent",
            "work",
            &silent,
            &format!("  delivery:\n    retry: 1\n    deadLetterSink:\n      uri: {}\n", dls.url),
        ),
        trigger("healthy", "work", &healthy.url, ""),
    ]
    .concat();
    let sluice = Sluice::start_with_args(&manifests, &["--delivery-timeout", "300ms"]).await;
    let broker = format!("{}/default/default", sluice.gateway);
    for i in 0..3 {
        assert_eq!(send_binary(&broker, &format!("w{i}"), "work", &[], "x").await, 202);
    }
    assert_eq!(healthy.wait_for(3).await.len(), 3, "the other trigger keeps delivering");
    let dead = dls.wait_for(3).await;
    let mut ids: Vec<_> = dead.iter().map(|r| r.header("ce-id").unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["w0", "w1", "w2"]);
    for d in &dead {
        assert_eq!(d.header("ce-knativeerrorcode").as_deref(), Some("500"));
        let data = base64::engine::general_purpose::STANDARD
            .decode(d.header("ce-knativeerrordata").unwrap())
            .unwrap();
        assert!(
            String::from_utf8_lossy(&data).contains("no response within 300 ms"),
            "{}",
            String::from_utf8_lossy(&data)
        );
    }
    // Two attempts per event, each on its own connection (a timed-out one is closed).
    assert_eq!(accepted.load(Ordering::SeqCst), 6);
    let log = sluice.log();
    assert!(
        log.lines()
            .any(|l| l.contains("event sent to the dead-letter sink") && l.contains("trigger default/silent") && l.contains("attempts=2")),
        "the dead-letter log line names the trigger and the attempts:\n{log}"
    );
}
