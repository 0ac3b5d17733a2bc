//! End-to-end: the resource API of `sluice run` answers list and watch requests as the
//! Kubernetes API server does (resourceVersion, selectors, `WatchEvent` streams, 410 for an
//! expired version, 409 for a stale write), and an answered write survives `kill -9`.

mod common;

use std::time::Duration;

use common::Sluice;
use serde_json::{json, Value};

const BROKERS: &str = "/apis/eventing.knative.dev/v1/namespaces/default/brokers";

fn broker(name: &str, team: &str) -> Value {
    json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": name, "labels": {"team": team}}})
}

async fn post(sluice: &Sluice, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{BROKERS}", sluice.api))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn resource_version(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
}

/// Reads `WatchEvent` lines from a streaming response until `n` arrived.
async fn watch_events(response: reqwest::Response, n: usize) -> Vec<Value> {
    let mut response = response;
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < n {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("watch events in time")
            .unwrap();
        let Some(chunk) = chunk else { break };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            events.push(serde_json::from_slice::<Value>(&line).unwrap());
        }
    }
    events
}

fn summary(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_watch_follow_the_kubernetes_api() {
    let sluice = Sluice::start("").await;
    assert_eq!(post(&sluice, &broker("a", "x")).await.status(), 201);
    assert_eq!(post(&sluice, &broker("b", "y")).await.status(), 201);

    // A list carries the resourceVersion to watch from; selectors filter it.
    let list = sluice.get_json(&format!("{BROKERS}?labelSelector=team%3Dx")).await;
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    let listed_at = resource_version(&list);
    let by_name = sluice.get_json(&format!("{BROKERS}?fieldSelector=metadata.name%3Db")).await;
    assert_eq!(by_name["items"].as_array().unwrap().len(), 1);
    let bad = reqwest::get(format!("{}{BROKERS}?labelSelector=team%20in%20x", sluice.api))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("unable to parse requirement"));

    // A watch from the list's version sees what comes after, in order: a create, the status
    // the reconciler writes, a delete. Objects of another label are not sent.
    let watch = reqwest::get(format!(
        "{}{BROKERS}?watch=true&resourceVersion={listed_at}&labelSelector=team%3Dx",
        sluice.api
    ))
    .await
    .unwrap();
    assert_eq!(watch.status(), 200);
    assert_eq!(post(&sluice, &broker("c", "x")).await.status(), 201);
    assert_eq!(post(&sluice, &broker("d", "y")).await.status(), 201);
    let deleted = reqwest::Client::new()
        .delete(format!("{}{BROKERS}/a", sluice.api))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let events = watch_events(watch, 3).await;
    let seen = summary(&events);
    assert_eq!(seen[0], "ADDED c", "{seen:?}");
    assert!(
        seen.contains(&"MODIFIED c".to_string()) && seen.contains(&"DELETED a".to_string()),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|s| s.ends_with(" d") || s.ends_with(" b")), "{seen:?}");
    let versions: Vec<u64> = events.iter().map(|e| resource_version(&e["object"])).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]) && versions[0] > listed_at, "{versions:?}");

    // Without a version a watch starts with the current objects; timeoutSeconds ends it.
    let watch = reqwest::get(format!("{}{BROKERS}?watch=1&timeoutSeconds=1", sluice.api))
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(5), watch.text())
        .await
        .expect("the watch ends at its timeout")
        .unwrap();
    let mut names: Vec<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["b", "c", "d"]);

    // A write carrying a stale resourceVersion is refused with 409 and changes nothing.
    let c = sluice.get_json(&format!("{BROKERS}/c")).await;
    let mut stale = c.clone();
    stale["metadata"]["resourceVersion"] = json!((resource_version(&c) - 1).to_string());
    stale["metadata"]["labels"]["team"] = json!("z");
    let conflict = reqwest::Client::new()
        .put(format!("{}{BROKERS}/c", sluice.api))
        .json(&stale)
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
    let status: Value = conflict.json().await.unwrap();
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(sluice.get_json(&format!("{BROKERS}/c")).await["metadata"]["labels"]["team"], "x");
}

/// An answered write survives `kill -9`; after the restart resourceVersions carry on above
/// every version answered before, and a watch from before the restart is expired (410).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_writes_survive_kill_9_and_versions_never_go_back() {
    let mut sluice = Sluice::start("").await;
    let created: Value = post(&sluice, &broker("kept", "x")).await.json().await.unwrap();
    let gone: Value = post(&sluice, &broker("gone", "x")).await.json().await.unwrap();
    let deleted = reqwest::Client::new()
        .delete(format!("{}{BROKERS}/gone", sluice.api))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let before = resource_version(&sluice.get_json(BROKERS).await);
    assert!(before > resource_version(&gone));

    sluice.restart_without_manifests().await; // SIGKILL, then start from the data dir
    let kept = sluice.get_json(&format!("{BROKERS}/kept")).await;
    assert_eq!(kept["metadata"]["uid"], created["metadata"]["uid"]);
    let after = resource_version(&sluice.get_json(BROKERS).await);
    assert!(after >= before, "list version {after} after restart, {before} before");
    let new: Value = post(&sluice, &broker("new", "x")).await.json().await.unwrap();
    assert!(resource_version(&new) > before);
    let expired = reqwest::get(format!(
        "{}{BROKERS}?watch=true&resourceVersion={}",
        sluice.api,
        resource_version(&created)
    ))
    .await
    .unwrap();
    let events = watch_events(expired, 1).await;
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
}

async fn patch(sluice: &Sluice, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .patch(format!("{}{path}", sluice.api))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// PATCH in the three formats the API server takes for custom resources, and the `/status`
/// subresource: a status write changes only status, a write to the object never changes
/// status, and `generation` moves with the spec only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_and_the_status_subresource() {
    let sluice = Sluice::start("").await;
    const TRIGGERS: &str = "/apis/eventing.knative.dev/v1/namespaces/default/triggers";
    // Server-side apply creates...
    let applied = "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\nspec:\n  broker: default\n  subscriber:\n    uri: http://127.0.0.1:9/\n";
    let (code, created) = patch(
        &sluice,
        &format!("{TRIGGERS}/t?fieldManager=test"),
        "application/apply-patch+yaml",
        applied,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    // ...and merges into what exists.
    let (code, _) = patch(
        &sluice,
        &format!("{TRIGGERS}/t?fieldManager=test"),
        "application/apply-patch+yaml",
        &applied.replace("9/", "10/"),
    )
    .await;
    assert_eq!(code, 200);
    let t = sluice.get_json(&format!("{TRIGGERS}/t")).await;
    assert_eq!(t["spec"]["subscriber"]["uri"], "http://127.0.0.1:10/");
    assert_eq!(t["metadata"]["generation"], 2, "a spec change moves generation");

    // Merge patch: a label is metadata, not spec.
    let (code, labelled) = patch(
        &sluice,
        &format!("{TRIGGERS}/t"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"x"}}}"#,
    )
    .await;
    assert_eq!(code, 200, "{labelled}");
    assert_eq!(labelled["metadata"]["labels"]["team"], "x");
    assert_eq!(labelled["metadata"]["generation"], 2, "metadata changes leave generation");

    // JSON patch, with a failing test operation (422) and a bad one (400); invalid specs are
    // refused by admission with the field path (422).
    let (code, _) = patch(
        &sluice,
        &format!("{TRIGGERS}/t"),
        "application/json-patch+json",
        r#"[{"op":"replace","path":"/spec/broker","value":"other"}]"#,
    )
    .await;
    assert_eq!(code, 422, "the broker of a trigger is immutable");
    let (code, failed) = patch(
        &sluice,
        &format!("{TRIGGERS}/t"),
        "application/json-patch+json",
        r#"[{"op":"test","path":"/metadata/labels/team","value":"y"}]"#,
    )
    .await;
    assert_eq!((code, failed["reason"].as_str()), (422, Some("Invalid")));
    let (code, _) = patch(&sluice, &format!("{TRIGGERS}/t"), "application/json-patch+json", r#"{"op":"add"}"#).await;
    assert_eq!(code, 400);
    let (code, invalid) = patch(
        &sluice,
        &format!("{TRIGGERS}/t"),
        "application/merge-patch+json",
        r#"{"spec":{"filters":[{"exact":{"type":""}}]}}"#,
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        invalid["message"].as_str().unwrap().contains("spec.filters[0].exact.type"),
        "{invalid}"
    );
    let (code, _) = patch(&sluice, &format!("{TRIGGERS}/t"), "application/strategic-merge-patch+json", "{}").await;
    assert_eq!(code, 415);
    let (code, _) = patch(&sluice, &format!("{TRIGGERS}/nope"), "application/merge-patch+json", "{}").await;
    assert_eq!(code, 404);

    // The status subresource writes status only; the object's own writes never do.
    let mut t = sluice.get_json(&format!("{TRIGGERS}/t")).await;
    t["status"] = json!({"observedGeneration": 99, "note": "from the status subresource"});
    t["spec"]["subscriber"]["uri"] = json!("http://127.0.0.1:11/");
    let written: Value = reqwest::Client::new()
        .put(format!("{}{TRIGGERS}/t/status", sluice.api))
        .json(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(written["status"]["note"], "from the status subresource");
    assert_eq!(
        written["spec"]["subscriber"]["uri"], "http://127.0.0.1:10/",
        "spec is not written through /status"
    );
    let (code, patched) = patch(
        &sluice,
        &format!("{TRIGGERS}/t/status"),
        "application/merge-patch+json",
        r#"{"status":{"note":"patched"}}"#,
    )
    .await;
    assert_eq!((code, patched["status"]["note"].as_str()), (200, Some("patched")));
    let (code, object) = patch(
        &sluice,
        &format!("{TRIGGERS}/t"),
        "application/merge-patch+json",
        r#"{"status":{"note":"ignored"},"metadata":{"labels":{"team":"z"}}}"#,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(object["metadata"]["labels"]["team"], "z");
    assert_ne!(object["status"]["note"], "ignored", "a write to the object never changes status");
    let mut stale = sluice.get_json(&format!("{TRIGGERS}/t")).await;
    stale["metadata"]["resourceVersion"] = json!("1");
    let conflict = reqwest::Client::new()
        .put(format!("{}{TRIGGERS}/t/status", sluice.api))
        .json(&stale)
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
}

/// What the Python client (`kubernetes` on PyPI) revealed: it sends creates and replaces of
/// custom objects without `Content-Type` (the API server reads them as JSON), asks discovery
/// with a trailing slash (`/version/`, `/apis/`, …), and reads a `Status` from any 404. A
/// write asking for a dry run is refused (400) and changes nothing, as Sluice has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_as_the_python_client_sends_them() {
    let sluice = Sluice::start("").await;
    let http = reqwest::Client::new();

    // No Content-Type: read as JSON.
    let body = broker("plain", "x").to_string();
    let created = http.post(format!("{}{BROKERS}", sluice.api)).body(body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let mut created: Value = created.json().await.unwrap();
    created["metadata"]["labels"]["team"] = json!("y");
    let replaced = http
        .put(format!("{}{BROKERS}/plain", sluice.api))
        .body(created.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    assert_eq!(
        sluice.get_json(&format!("{BROKERS}/plain")).await["metadata"]["labels"]["team"],
        "y"
    );
    let malformed = http.post(format!("{}{BROKERS}", sluice.api)).body("{").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.json::<Value>().await.unwrap()["kind"], "Status");

    // Discovery answers the same with and without the trailing slash.
    for path in [
        "/version",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/eventing.knative.dev",
        "/apis/eventing.knative.dev/v1",
    ] {
        let slashed = http.get(format!("{}{path}/", sluice.api)).send().await.unwrap();
        assert_eq!(slashed.status(), 200, "{path}/");
        assert_eq!(slashed.json::<Value>().await.unwrap(), sluice.get_json(path).await, "{path}/");
    }

    // A path the API does not serve is a 404 Status.
    let missing = http.get(format!("{}/api/v1/nodes/x/proxy", sluice.api)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let status: Value = missing.json().await.unwrap();
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("NotFound"))
    );

    // dryRun: refused, nothing written.
    let dry = http
        .post(format!("{}{BROKERS}?dryRun=All", sluice.api))
        .json(&broker("dry", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status(), 400);
    let gone = http.get(format!("{}{BROKERS}/dry", sluice.api)).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    let (code, _) = patch(
        &sluice,
        &format!("{BROKERS}/plain?dryRun=All"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"z"}}}"#,
    )
    .await;
    assert_eq!(code, 400);
    let deleted = http
        .delete(format!("{}{BROKERS}/plain?dryRun=All", sluice.api))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 400);
    assert_eq!(
        sluice.get_json(&format!("{BROKERS}/plain")).await["metadata"]["labels"]["team"],
        "y"
    );
}
