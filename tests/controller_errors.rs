//! End-to-end: one object whose reconcile keeps failing is retried with a growing delay and
//! blocks no other object of its kind, nor of any other.

mod common;

use std::time::{Duration, Instant};

use common::Sluice;
use serde_json::{json, Value};

const SEQUENCES: &str = "/apis/flows.knative.dev/v1/namespaces/default/sequences";

fn sequence(name: &str, template: Option<Value>) -> Value {
    let mut s = json!({"apiVersion": "flows.knative.dev/v1", "kind": "Sequence", "metadata": {"name": name},
        "spec": {"steps": [{"uri": "http://127.0.0.1:9/"}]}});
    if let Some(t) = template {
        s["spec"]["channelTemplate"] = t;
    }
    s
}

/// The `failures=` counts the log reports for `object`, in order.
fn failures(log: &str, object: &str) -> Vec<u32> {
    log.lines()
        .filter(|l| l.contains("reconcile failed") && l.contains(object))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("failures="))?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_object_is_retried_with_backoff_and_blocks_no_other() {
    let sluice = Sluice::start("").await;
    let client = reqwest::Client::new();
    // A channel kind Knative has (NATS JetStream) but this build does not know: the Sequence
    // controller cannot make its channels.
    let broken = sequence(
        "broken",
        Some(json!({"apiVersion": "messaging.knative.dev/v1alpha1", "kind": "NatsJetStreamChannel"})),
    );
    for s in [broken, sequence("fine", None)] {
        let created = client.post(format!("{}{SEQUENCES}", sluice.api)).json(&s).send().await.unwrap();
        assert_eq!(created.status(), 201);
    }
    // The other Sequence, and a Broker created after both, become Ready meanwhile.
    sluice.wait_ready(&format!("{SEQUENCES}/fine")).await;
    let broker = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "default"}});
    let created = client
        .post(format!("{}/apis/eventing.knative.dev/v1/namespaces/default/brokers", sluice.api))
        .json(&broker)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/brokers/default")
        .await;

    // The broken one is retried, each time after a longer wait (100 ms, 200 ms, 400 ms, ...).
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = failures(&sluice.log(), "Sequence default/broken");
        if seen.len() >= 4 {
            break seen;
        }
        assert!(Instant::now() < deadline, "too few retries: {seen:?}\n{}", sluice.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(seen[..4], [1, 2, 3, 4], "{seen:?}");
    let log = sluice.log();
    let delays: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reconcile failed") && l.contains("Sequence default/broken"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("retry_in=")))
        .take(4)
        .collect();
    assert_eq!(delays, ["100ms", "200ms", "400ms", "800ms"], "{log}");
    assert!(log.contains("unknown channel kind NatsJetStreamChannel"), "{log}");
    let broken = sluice.get_json(&format!("{SEQUENCES}/broken")).await;
    assert!(broken["status"].get("conditions").is_none(), "{broken:#}");
}
