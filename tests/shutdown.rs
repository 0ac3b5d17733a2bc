//! End-to-end: on SIGTERM `sluice run` stops taking events (503 on connections still open)
//! and delivers every event it already accepted before it exits, within `--shutdown-grace`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::Sluice;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_accepted_events_before_exiting() {
    // A subscriber that takes 300 ms per event; the trigger delivers one at a time, so the
    // four events below are still queued or in flight when SIGTERM comes.
    let delivered = Arc::new(AtomicUsize::new(0));
    let counter = delivered.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            counter.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let subscriber = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let manifests = format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: slow\n  annotations:\n    sluice.dev/max-in-flight: \"1\"\nspec:\n  broker: default\n  subscriber:\n    uri: {subscriber}\n"
    );
    let mut sluice = Sluice::start_with_args(&manifests, &["--shutdown-grace", "10s"]).await;
    let broker = format!("{}/default/default", sluice.gateway);
    // One client, so later requests reuse the open connection.
    let client = reqwest::Client::new();
    let send = |id: String| {
        client
            .post(&broker)
            .header("ce-specversion", "1.0")
            .header("ce-id", id)
            .header("ce-type", "t")
            .header("ce-source", "/test")
            .body("x")
            .send()
    };
    for i in 0..4 {
        assert_eq!(send(format!("e{i}")).await.unwrap().status(), 202);
    }

    let terminating = tokio::task::spawn_blocking(move || {
        let status = sluice.terminate(Duration::from_secs(20));
        (status, sluice)
    });
    // While it drains, an event on the open connection is refused (or the connection is).
    let mut refused = false;
    let mut accepted_late = 0;
    for i in 0..100 {
        match send(format!("late{i}")).await {
            Ok(r) if r.status() == 503 => {
                refused = true;
                break;
            }
            Ok(r) => {
                assert_eq!(r.status(), 202, "before the signal lands");
                accepted_late += 1;
            }
            Err(_) => {
                refused = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "new events are refused once shutting down");
    let (status, sluice) = terminating.await.unwrap();
    assert!(status.success(), "{status}");
    // Every accepted event was delivered: the four, and any late one answered 202 before the
    // signal landed.
    assert_eq!(delivered.load(Ordering::SeqCst), 4 + accepted_late);
    assert!(sluice.log().contains("every accepted event was delivered"), "{}", sluice.log());
}
