//! End-to-end: bad input of every kind, sent to one running `sluice run`, gets an error naming
//! what is wrong; the process keeps serving and loses nothing it had accepted.

mod common;

use common::{send_binary, write, Recorder, Sluice};

const TRIGGER: &str = "/apis/eventing.knative.dev/v1/namespaces/default/triggers/kept";

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `sluice apply -f` of `yaml` must fail (exit 1) with an error containing every `needle`.
fn apply_fails(sluice: &Sluice, file: &str, yaml: &str, needles: &[&str]) {
    let path = write(sluice.dir.path(), file, yaml);
    let out = sluice.cli(&["apply", "-f", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "apply of {file} should fail: {}", stderr(&out));
    let err = stderr(&out);
    for needle in needles {
        assert!(err.contains(needle), "error for {file} should name {needle:?}:\n{err}");
    }
}

fn trigger_with(name: &str, annotations: &str, filters: &str) -> String {
    format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: {name}\n{annotations}spec:\n  broker: default\n{filters}  subscriber:\n    uri: http://127.0.0.1:1/\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_and_never_stops_the_process() {
    let sub = Recorder::accept().await;
    let manifests = format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\n\
apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: kept\n  annotations:\n    sluice.dev/max-in-flight: \"1\"\nspec:\n  broker: default\n  filter:\n    attributes:\n      type: kept\n  subscriber:\n    uri: {}\n",
        sub.url
    );
    let sluice = Sluice::start(&manifests).await;
    sluice.wait_ready(TRIGGER).await;
    let ingress = format!("{}/default/default", sluice.gateway);
    // Accepted before any bad input arrives; must still be delivered.
    assert_eq!(send_binary(&ingress, "before", "kept", &[], "{}").await, 202);

    // Manifests: malformed YAML, an unknown kind, CESQL that does not parse, an invalid annotation.
    apply_fails(
        &sluice,
        "broken.yaml",
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: [name: x\n",
        &["broken.yaml"],
    );
    apply_fails(
        &sluice,
        "unknown.yaml",
        "apiVersion: eventing.knative.dev/v1\nkind: Brokerr\nmetadata:\n  name: x\n",
        &["unknown.yaml", "Brokerr"],
    );
    apply_fails(
        &sluice,
        "cesql.yaml",
        &trigger_with("bad-sql", "", "  filters:\n  - cesql: \"type = \"\n"),
        &["cesql.yaml", "trigger default/bad-sql", "spec.filters[0].cesql"],
    );
    apply_fails(
        &sluice,
        "limit.yaml",
        &trigger_with("bad-limit", "  annotations:\n    sluice.dev/max-in-flight: \"lots\"\n", ""),
        &["metadata.annotations[sluice.dev/max-in-flight]", "positive integer"],
    );

    // The resource API: every refusal is a Kubernetes Status naming the problem.
    let c = reqwest::Client::new();
    let api_triggers = format!("{}/apis/eventing.knative.dev/v1/namespaces/default/triggers", sluice.api);
    let resp = c
        .post(&api_triggers)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let status: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("BadRequest")),
        "{status}"
    );
    assert!(status["message"].as_str().unwrap().contains("invalid request body"), "{status}");
    let resp = c
        .post(format!("{}/sluice/v1/apply", sluice.api))
        .json(&serde_json::json!({"objects": [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let status: serde_json::Value = resp.json().await.unwrap();
    assert!(status["message"].as_str().unwrap().contains("Widget"), "{status}");

    // Ingress: malformed structured and batch bodies, a binary event without an id.
    let post = |content_type: &'static str, body: &'static str| c.post(&ingress).header("content-type", content_type).body(body).send();
    let resp = post("application/cloudevents+json", "{\"specversion\": \"1.0\", \"id\": ")
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("invalid cloudevent"));
    let resp = post("application/cloudevents-batch+json", "{\"not\": \"an array\"}").await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = post(
        "application/cloudevents+json",
        "{\"specversion\": \"1.0\", \"type\": \"t\", \"source\": \"/s\"}",
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("id"), "the missing attribute is named");
    let resp = c
        .post(&ingress)
        .header("ce-specversion", "1.0")
        .header("ce-type", "kept")
        .header("ce-source", "/s")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("id"), "the missing attribute is named");

    // Still serving, nothing accepted was lost, nothing half-applied. `kept` delivers one at a
    // time in arrival order, so a refused event wrongly queued would arrive before `after`.
    assert_eq!(send_binary(&ingress, "after", "kept", &[], "{}").await, 202);
    sub.wait_for_id("after").await;
    assert_eq!(sub.ids(), ["before", "after"]);
    let out = sluice.cli(&["get", "triggers", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["kept"]);
    let metrics = reqwest::get(format!("{}/metrics", sluice.api)).await.unwrap().text().await.unwrap();
    let line = "sluice_events_rejected_total{namespace=\"default\",kind=\"broker\",name=\"default\",reason=\"invalid\"} 4";
    assert!(metrics.contains(line), "{line} in\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_events_of_spec_version_0_3_are_delivered_as_0_3() {
    let sub = Recorder::accept().await;
    let manifests = format!(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\n\
apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: kept\nspec:\n  broker: default\n  subscriber:\n    uri: {}\n",
        sub.url
    );
    let sluice = Sluice::start(&manifests).await;
    sluice.wait_ready(TRIGGER).await;
    let event = r#"{"specversion":"0.3","id":"old","type":"legacy","source":"/s","datacontenttype":"application/json","data":{"v":3}}"#;
    let resp = reqwest::Client::new()
        .post(format!("{}/default/default", sluice.gateway))
        .header("content-type", "application/cloudevents+json")
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let got = sub.wait_for(1).await;
    // No specversion upgrade (TestBrokerDataPlaneConsumer).
    assert_eq!(got[0].header("ce-specversion").as_deref(), Some("0.3"));
    assert_eq!(got[0].header("ce-id").as_deref(), Some("old"));
    assert_eq!(got[0].body.as_ref(), br#"{"v":3}"#);
}
