//! End-to-end: `sluice dataplane` alone, fed by watching the API of a `sluice run`: a Broker
//! and Trigger created through the API are served on its own gateway, and a changed Trigger
//! takes effect without a restart.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{send_binary, Recorder, Sluice};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataplane_serves_what_the_api_holds() {
    let sluice = Sluice::start("").await;
    let log = sluice.dir.path().join("dataplane.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["dataplane", "--gateway", "127.0.0.1:0"])
        .arg("--kubeconfig")
        .arg(sluice.dir.path().join("data/kubeconfig"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let gateway = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find(|l| l.contains("sluice dataplane is running"))
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("gateway=")))
        {
            break url.to_string();
        }
        assert!(Instant::now() < deadline, "dataplane did not start:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let first = Recorder::accept().await;
    let second = Recorder::accept().await;
    let client = reqwest::Client::new();
    let ns = format!("{}/apis/eventing.knative.dev/v1/namespaces/default", sluice.api);
    let broker = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "default"}});
    assert_eq!(
        client.post(format!("{ns}/brokers")).json(&broker).send().await.unwrap().status(),
        201
    );
    let trigger = |uri: &str| json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"}, "spec": {"broker": "default", "subscriber": {"uri": uri}}});
    assert_eq!(
        client
            .post(format!("{ns}/triggers"))
            .json(&trigger(&first.url))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );

    // The dataplane learns of them by watching: until then its gateway answers 404.
    let url = format!("{gateway}/default/default");
    let deadline = Instant::now() + Duration::from_secs(15);
    for attempt in 0.. {
        match send_binary(&url, &format!("e{attempt}"), "t", &[], "{}").await {
            202 => break,
            404 => {}
            other => panic!("the dataplane answered {other}"),
        }
        assert!(Instant::now() < deadline, "the dataplane never served the broker");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The trigger may reach the dataplane a moment after its broker: events are then taken
    // and not delivered to it, so wait until one is.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    while first.received().is_empty() {
        i += 1;
        assert_eq!(send_binary(&url, &format!("first{i}"), "t", &[], "{}").await, 202);
        assert!(Instant::now() < deadline, "the dataplane never delivered to the trigger");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A changed subscriber applies to later events, the hub untouched.
    // (Read again and retried when the trigger's controller wrote its status in between: 409.)
    loop {
        let mut current = sluice.get_json("/apis/eventing.knative.dev/v1/namespaces/default/triggers/t").await;
        current["spec"]["subscriber"]["uri"] = json!(second.url);
        match client
            .put(format!("{ns}/triggers/t"))
            .json(&current)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
        {
            409 => continue,
            code => {
                assert_eq!(code, 200);
                break;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    while second.received().is_empty() {
        i += 1;
        assert_eq!(send_binary(&url, &format!("later{i}"), "t", &[], "{}").await, 202);
        assert!(Instant::now() < deadline, "the changed trigger never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log_text.matches("hub created").count(),
        1,
        "the hub was never recreated:\n{log_text}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
