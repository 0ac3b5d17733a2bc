//! The dispatcher against real HTTP servers on loopback: timeouts, Retry-After, replies,
//! malformed replies and dead letters.
//!
//! Tests of the waits between attempts run on paused tokio time. A paused clock moves only when
//! the runtime finds no task and no I/O event ready; then it jumps to the next timer. Every
//! attempt has a timer (the default attempt timeout, 30 s), but client and server share this
//! runtime on loopback, where a write makes the peer readable within the same syscall: while an
//! exchange runs there is always an I/O event ready, so the clock moves only at the
//! dispatcher's backoff sleeps, which is what these tests measure. The attempt-timeout test keeps
//! real time, since there the server sleeps on a timer during the exchange.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};
use sluice_crds::duck::BackoffPolicy;
use sluice_delivery::metrics::DeliveryMetrics;
use sluice_delivery::{Delivery, Dispatcher, EventSink, Outcome, ReplyMode, RetryPolicy, SinkError, Target, TraceContext};
use tokio::time::Instant;

type Handler = Arc<dyn Fn(usize, &HeaderMap) -> Response + Send + Sync>;

/// A loopback server answering request n with `handler(n)`; returns its URL and arrival times.
async fn server(handler: Handler) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let count = Arc::new(AtomicUsize::new(0));
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let (handler, count, t) = (handler.clone(), count.clone(), t.clone());
        async move {
            t.lock().unwrap().push(Instant::now());
            let n = count.fetch_add(1, Ordering::SeqCst);
            handler(n, &headers)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), times)
}

fn event() -> Event {
    EventBuilderV10::new()
        .id("e1")
        .ty("t")
        .source("/s")
        .data("text/plain", "hi")
        .build()
        .unwrap()
}

#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

#[async_trait]
impl EventSink for Collect {
    async fn send(&self, event: Event, _: http::HeaderMap, _: &TraceContext) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(event);
        Ok(())
    }
}

async fn deliver(url: &str, policy: &RetryPolicy, dls: Option<&Target>, reply: ReplyMode<'_>) -> Outcome {
    let target = Target::parse(url).unwrap();
    let metrics = DeliveryMetrics::detached();
    Dispatcher::default()
        .deliver(Delivery {
            label: "test",
            event: &event(),
            headers: &Default::default(),
            subscriber: &target,
            policy,
            dead_letter: dls,
            reply,
            namespace: "ns",
            trace: &TraceContext::new_root(),
            metrics,
            arrival: None,
        })
        .await
}

#[tokio::test]
async fn timeout_fails_the_attempt_and_is_retried() {
    // The first request is answered only after 300 ms (an async sleep, so the server does not
    // block the runtime the dispatcher's timer runs on); the second at once.
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let policy = RetryPolicy {
        retries: 1,
        timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let started = Instant::now();
    assert_eq!(deliver(&url, &policy, None, ReplyMode::Discard).await, Outcome::Delivered);
    assert_eq!(count.load(Ordering::SeqCst), 2, "the timed-out attempt is retried");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the retry did not wait for the slow answer"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_up_to_retry_after_max() {
    let (url, times) = server(Arc::new(|n, _| {
        if n == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let policy = RetryPolicy {
        retries: 1,
        backoff: Some((BackoffPolicy::Linear, Duration::from_millis(10))),
        retry_after_max: Some(Duration::from_millis(400)),
        ..Default::default()
    };
    assert_eq!(deliver(&url, &policy, None, ReplyMode::Discard).await, Outcome::Delivered);
    let t = times.lock().unwrap().clone();
    assert_eq!(t[1] - t[0], Duration::from_millis(400), "Retry-After: 1 capped at retryAfterMax");
}

#[tokio::test(start_paused = true)]
async fn retries_wait_the_backoff_of_their_policy() {
    // Retry k waits delay × k (linear) or delay × 2^(k−1) (exponential).
    for (backoff, expected_ms) in [
        (BackoffPolicy::Linear, [200, 400, 600]),
        (BackoffPolicy::Exponential, [200, 400, 800]),
    ] {
        let (url, times) = server(Arc::new(|n, _| {
            if n < 3 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }.into_response()
        }))
        .await;
        let policy = RetryPolicy {
            retries: 5,
            backoff: Some((backoff, Duration::from_millis(200))),
            ..Default::default()
        };
        assert_eq!(deliver(&url, &policy, None, ReplyMode::Discard).await, Outcome::Delivered);
        let t = times.lock().unwrap().clone();
        let gaps: Vec<u128> = t.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert_eq!(
            gaps, expected_ms,
            "{backoff:?}: three failed attempts, each retried after its backoff, then success"
        );
    }
}

#[tokio::test]
async fn replies_go_to_the_reply_sink_and_malformed_replies_fail() {
    let (url, _) = server(Arc::new(|_, _| {
        (
            StatusCode::OK,
            [
                ("ce-specversion", "1.0"),
                ("ce-id", "r1"),
                ("ce-type", "reply"),
                ("ce-source", "/x"),
            ],
            "pong",
        )
            .into_response()
    }))
    .await;
    let sink = Collect::default();
    let policy = RetryPolicy::default();
    assert_eq!(
        deliver(&url, &policy, None, ReplyMode::To { sink: &sink, strict: true }).await,
        Outcome::Delivered
    );
    assert_eq!(sink.0.lock().unwrap()[0].id(), "r1");

    let (bad, times) = server(Arc::new(|_, _| {
        (StatusCode::OK, [("ce-specversion", "1.0"), ("ce-id", "r1")], "x").into_response()
    }))
    .await;
    let policy = RetryPolicy {
        retries: 2,
        ..Default::default()
    };
    let out = deliver(&bad, &policy, None, ReplyMode::To { sink: &sink, strict: true }).await;
    // Refused by the reply's destination (400, as the broker's ingress would answer); the
    // subscriber is not called again.
    assert!(matches!(out, Outcome::Failed { status: Some(400), .. }), "{out:?}");
    assert_eq!(times.lock().unwrap().len(), 1, "an invalid reply is not retried");

    let (text, _) = server(Arc::new(|_, _| (StatusCode::OK, "ok").into_response())).await;
    let out = deliver(&text, &RetryPolicy::default(), None, ReplyMode::To { sink: &sink, strict: true }).await;
    assert!(matches!(out, Outcome::Failed { .. }), "strict: a non-event body fails");
    let out = deliver(
        &text,
        &RetryPolicy::default(),
        None,
        ReplyMode::To {
            sink: &sink,
            strict: false,
        },
    )
    .await;
    assert_eq!(out, Outcome::Delivered, "lenient: a non-event body is ignored");
}

/// A dead-letter sink answering 202; returns its URL and the headers of what it received.
async fn dead_letter_sink() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let dead = Arc::new(Mutex::new(Vec::<HeaderMap>::new()));
    let d = dead.clone();
    let (url, _) = server(Arc::new(move |_, h| {
        d.lock().unwrap().push(h.clone());
        StatusCode::ACCEPTED.into_response()
    }))
    .await;
    (url, dead)
}

#[tokio::test]
async fn network_errors_are_retried_then_dead_lettered_with_code_500() {
    let (dls_url, dead) = dead_letter_sink().await;
    // A port nothing listens on.
    let closed = format!(
        "http://127.0.0.1:{}/",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let policy = RetryPolicy {
        retries: 1,
        ..Default::default()
    };
    let dls = Target::parse(&dls_url).unwrap();
    let out = deliver(&closed, &policy, Some(&dls), ReplyMode::Discard).await;
    assert_eq!(out, Outcome::DeadLettered { status: None });
    let h = dead.lock().unwrap()[0].clone();
    assert_eq!(h["ce-knativeerrorcode"], "500");
    assert_eq!(h["ce-knativeerrordest"], closed.as_str());
    assert!(h.contains_key("ce-knativeerrordata"));
    assert!(h.contains_key("traceparent"));
    assert!(!h.contains_key("prefer"), "Prefer: reply goes to subscribers only");
}

#[tokio::test]
async fn a_reply_destination_that_fails_is_named_in_knativeerrordest() {
    let (subscriber, _) = server(Arc::new(|_, _| {
        (
            StatusCode::OK,
            [
                ("ce-specversion", "1.0"),
                ("ce-id", "r1"),
                ("ce-type", "reply"),
                ("ce-source", "/x"),
            ],
            "pong",
        )
            .into_response()
    }))
    .await;
    let (reply_url, reply_times) = server(Arc::new(|_, _| StatusCode::SERVICE_UNAVAILABLE.into_response())).await;
    let (dls_url, dead) = dead_letter_sink().await;
    let reply = sluice_delivery::HttpSink {
        dispatcher: Dispatcher::default(),
        target: Target::parse(&reply_url).unwrap(),
        namespace: "ns".into(),
    };
    let policy = RetryPolicy {
        retries: 1,
        ..Default::default()
    };
    let dls = Target::parse(&dls_url).unwrap();
    let out = deliver(
        &subscriber,
        &policy,
        Some(&dls),
        ReplyMode::To {
            sink: &reply,
            strict: false,
        },
    )
    .await;
    assert_eq!(out, Outcome::DeadLettered { status: Some(503) });
    assert_eq!(
        reply_times.lock().unwrap().len(),
        2,
        "the whole delivery is retried when the reply cannot be stored (SUB-02)"
    );
    let h = dead.lock().unwrap()[0].clone();
    assert_eq!(
        h["ce-knativeerrordest"],
        reply_url.as_str(),
        "the reply destination failed, not the subscriber"
    );
    assert_eq!(h["ce-knativeerrorcode"], "503");
    assert_eq!(h["ce-id"], "e1", "the dead-letter sink gets the original event");
}

/// How the raw test server treats a connection after answering a request.
#[derive(Clone, Copy)]
enum AfterResponse {
    /// Keeps it open for the next request.
    KeepOpen,
    /// Says `Connection: close` and closes it.
    SayCloseAndClose,
    /// Closes it without saying so (an idle timeout on the server's side).
    CloseSilently,
}

/// A minimal HTTP/1.1 server over a raw socket, so the test controls exactly when connections
/// close. Returns its URL and the number of connections accepted and requests answered.
async fn raw_server(after: AfterResponse) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Read one request: headers, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + length);
                    r.fetch_add(1, Ordering::SeqCst);
                    let response: &[u8] = match after {
                        AfterResponse::SayCloseAndClose => b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        _ => b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n",
                    };
                    stream.write_all(response).await.unwrap();
                    if !matches!(after, AfterResponse::KeepOpen) {
                        return;
                    }
                }
            });
        }
    });
    (url, connections, requests)
}

/// Three deliveries in a row through one dispatcher; returns (connections, requests) seen.
async fn three_deliveries(after: AfterResponse) -> (usize, usize) {
    let (url, connections, requests) = raw_server(after).await;
    let target = Target::parse(&url).unwrap();
    // No retries: every delivery must succeed on its first attempt.
    let policy = RetryPolicy::default();
    let dispatcher = Dispatcher::default();
    for _ in 0..3 {
        let outcome = dispatcher
            .deliver(Delivery {
                label: "test",
                event: &event(),
                headers: &Default::default(),
                subscriber: &target,
                policy: &policy,
                dead_letter: None,
                reply: ReplyMode::Discard,
                namespace: "ns",
                trace: &TraceContext::new_root(),
                metrics: DeliveryMetrics::detached(),
                arrival: None,
            })
            .await;
        assert_eq!(outcome, Outcome::Delivered);
        // Let the runtime see a close the server made after answering.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (connections.load(Ordering::SeqCst), requests.load(Ordering::SeqCst))
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    assert_eq!(three_deliveries(AfterResponse::KeepOpen).await, (1, 3));
}

#[tokio::test]
async fn connection_close_responses_are_not_reused() {
    assert_eq!(three_deliveries(AfterResponse::SayCloseAndClose).await, (3, 3));
}

#[tokio::test]
async fn connections_the_server_closed_while_idle_are_replaced() {
    assert_eq!(three_deliveries(AfterResponse::CloseSilently).await, (3, 3));
}
