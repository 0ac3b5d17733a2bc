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
    // Their controller writes their status; the list is taken after that.
    for name in ["a", "b"] {
        sluice.wait_ready(&format!("{BROKERS}/{name}")).await;
    }

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
    // the controller writes, a delete. Objects of another label are not sent.
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
    // (Statuses the controller writes meanwhile come as MODIFIED.)
    let mut names: Vec<String> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "ADDED")
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap().to_string())
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
    assert_eq!(invalid["details"]["causes"][0]["field"], "spec.filters[0].exact.type", "{invalid}");
    assert_eq!(invalid["details"]["causes"][0]["reason"], "FieldValueInvalid");
    let (code, _) = patch(&sluice, &format!("{TRIGGERS}/t"), "application/strategic-merge-patch+json", "{}").await;
    assert_eq!(code, 415);
    let (code, _) = patch(&sluice, &format!("{TRIGGERS}/nope"), "application/merge-patch+json", "{}").await;
    assert_eq!(code, 404);

    // The status subresource writes status only; the object's own writes never do. (The
    // trigger's controller writes its status too: a PUT that lost the race is a 409, and a
    // client reads again and retries, as any Kubernetes client does.)
    let written: Value = loop {
        let mut t = sluice.get_json(&format!("{TRIGGERS}/t")).await;
        t["status"] = json!({"observedGeneration": 99, "note": "from the status subresource"});
        t["spec"]["subscriber"]["uri"] = json!("http://127.0.0.1:11/");
        let response = reqwest::Client::new()
            .put(format!("{}{TRIGGERS}/t/status", sluice.api))
            .json(&t)
            .send()
            .await
            .unwrap();
        if response.status() != 409 {
            break response.json().await.unwrap();
        }
    };
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

/// Deletion as Kubernetes does it: finalizers hold a deleted object (marked with
/// `deletionTimestamp`) until they are removed, and objects it owns through `ownerReferences`
/// are garbage-collected (background), released (`Orphan`) or waited for (`Foreground`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_and_owner_references_on_delete() {
    let sluice = Sluice::start("").await;
    const TRIGGERS: &str = "/apis/eventing.knative.dev/v1/namespaces/default/triggers";
    let client = reqwest::Client::new();
    let mut held = broker("held", "x");
    held["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    assert_eq!(post(&sluice, &held).await.status(), 201);
    let marked: Value = client
        .delete(format!("{}{BROKERS}/held", sluice.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string(), "{marked}");
    assert!(sluice.get_json(&format!("{BROKERS}/held")).await["metadata"]["deletionTimestamp"].is_string());
    let (code, _) = patch(
        &sluice,
        &format!("{BROKERS}/held"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(reqwest::get(format!("{}{BROKERS}/held", sluice.api)).await.unwrap().status(), 404);

    // An owner and its dependents, deleted with each propagation policy.
    let owned = |name: &str, owner: &Value| {
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": name, "ownerReferences": [{"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "blockOwnerDeletion": true}]},
            "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/"}}})
    };
    for (owner, policy) in [("bg", None), ("orphan", Some("Orphan")), ("fg", Some("Foreground"))] {
        let created: Value = post(&sluice, &broker(owner, "x")).await.json().await.unwrap();
        let t = client
            .post(format!("{}{TRIGGERS}", sluice.api))
            .json(&owned(&format!("t-{owner}"), &created))
            .send()
            .await
            .unwrap();
        assert_eq!(t.status(), 201);
        let request = client.delete(format!("{}{BROKERS}/{owner}", sluice.api));
        let request = match policy {
            Some(p) => request.json(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": p})),
            None => request,
        };
        assert_eq!(request.send().await.unwrap().status(), 200);
        assert_eq!(
            reqwest::get(format!("{}{BROKERS}/{owner}", sluice.api)).await.unwrap().status(),
            404,
            "{owner}"
        );
        let dependent = reqwest::get(format!("{}{TRIGGERS}/t-{owner}", sluice.api)).await.unwrap();
        match owner {
            "orphan" => {
                let t: Value = dependent.json().await.unwrap();
                assert!(t["metadata"].get("ownerReferences").is_none(), "released: {t}");
            }
            _ => assert_eq!(dependent.status(), 404, "{owner}: the dependent was collected"),
        }
    }
    let bad = client
        .delete(format!("{}{BROKERS}/x?propagationPolicy=Sideways", sluice.api))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// Bad input gets a Kubernetes `Status` with the right code, naming what is wrong, and
/// changes nothing; YAML bodies are taken as the API server takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_kubernetes_statuses() {
    let sluice = Sluice::start("").await;
    let client = reqwest::Client::new();
    let send = |content_type: &'static str, body: Vec<u8>| {
        client
            .post(format!("{}{BROKERS}", sluice.api))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let yaml = b"apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: from-yaml\n".to_vec();
    assert_eq!(send("application/yaml", yaml).await.unwrap().status(), 201);
    for (content_type, body, code, reason, mentions) in [
        (
            "application/json",
            b"{\"kind\": ".to_vec(),
            400,
            "BadRequest",
            "invalid request body",
        ),
        ("application/yaml", b"kind: [oops\n".to_vec(), 400, "BadRequest", "application/yaml"),
        ("text/plain", b"hello".to_vec(), 415, "UnsupportedMediaType", "text/plain"),
        (
            "application/json",
            vec![b' '; 4 * 1024 * 1024],
            413,
            "RequestEntityTooLarge",
            "larger than",
        ),
    ] {
        let response = send(content_type, body).await.unwrap();
        assert_eq!(response.status().as_u16(), code, "{content_type}");
        let status: Value = response.json().await.unwrap();
        assert_eq!(
            (status["kind"].as_str(), status["reason"].as_str()),
            (Some("Status"), Some(reason)),
            "{status}"
        );
        assert!(status["message"].as_str().unwrap().contains(mentions), "{status}");
    }
    let unknown = reqwest::get(format!("{}/apis/eventing.knative.dev/v9/namespaces/default/brokers", sluice.api))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["kind"], "Status");
    let names: Vec<String> = sluice.get_json(BROKERS).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["from-yaml"], "nothing else was stored");
}

/// On an address other than loopback the API needs the bearer token of the kubeconfig that
/// `sluice run` wrote into its data dir (401 without it); `/healthz` stays open. The test binds
/// every interface and still talks to 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_api_needs_the_kubeconfig_token() {
    let sluice = Sluice::start_with_args("", &["--api", "0.0.0.0:0"]).await;
    let kubeconfig: Value = serde_yaml::from_str(&std::fs::read_to_string(sluice.dir.path().join("data/kubeconfig")).unwrap()).unwrap();
    let token = kubeconfig["users"][0]["user"]["token"].as_str().unwrap().to_string();
    let url = format!("{}{BROKERS}", sluice.api);
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.json::<Value>().await.unwrap()["reason"], "Unauthorized");
    let wrong = reqwest::Client::new().get(&url).bearer_auth("not-the-token").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = reqwest::Client::new().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // The CLI takes the token from SLUICE_TOKEN.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["get", "brokers", "--server", &sluice.api])
        .env("SLUICE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
    assert_eq!(created.json::<Value>().await.unwrap()["metadata"]["name"], "plain");
    // (Read again and retried when the broker's controller wrote its status in between: 409.)
    let replaced = loop {
        let mut current = sluice.get_json(&format!("{BROKERS}/plain")).await;
        current["metadata"]["labels"]["team"] = json!("y");
        let replaced = http
            .put(format!("{}{BROKERS}/plain", sluice.api))
            .body(current.to_string())
            .send()
            .await
            .unwrap();
        if replaced.status() != 409 {
            break replaced;
        }
    };
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

/// Deleting a Namespace deletes what lives in it, as the namespace controller does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_its_objects() {
    let sluice = Sluice::start("").await;
    let client = reqwest::Client::new();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(
        client
            .post(format!("{}/api/v1/namespaces", sluice.api))
            .json(&ns)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let team_brokers = "/apis/eventing.knative.dev/v1/namespaces/team/brokers";
    let created = client
        .post(format!("{}{team_brokers}", sluice.api))
        .json(&broker("inside", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(post(&sluice, &broker("outside", "x")).await.status(), 201);
    let deleted = client
        .delete(format!("{}/api/v1/namespaces/team", sluice.api))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        reqwest::get(format!("{}{team_brokers}/inside", sluice.api)).await.unwrap().status(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{}{BROKERS}/outside", sluice.api)).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{}/api/v1/namespaces/team", sluice.api))
            .await
            .unwrap()
            .status(),
        404
    );
}

/// A Sequence's channels and subscriptions are real objects, made by its kube-rs controller,
/// named as Knative names them and owned by it: a removed step's children go, and deleting the
/// Sequence removes them all (garbage collection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_children_are_owned_objects() {
    let sluice = Sluice::start("").await;
    const SEQUENCES: &str = "/apis/flows.knative.dev/v1/namespaces/default/sequences";
    const SUBSCRIPTIONS: &str = "/apis/messaging.knative.dev/v1/namespaces/default/subscriptions";
    const CHANNELS: &str = "/apis/messaging.knative.dev/v1/namespaces/default/inmemorychannels";
    let step = |path: &str| json!({"uri": format!("http://127.0.0.1:9/{path}")});
    let sequence = |steps: Vec<Value>| json!({"apiVersion": "flows.knative.dev/v1", "kind": "Sequence", "metadata": {"name": "seq"}, "spec": {"steps": steps}});
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}{SEQUENCES}", sluice.api))
        .json(&sequence(vec![step("a"), step("b")]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The controller works after the create is answered: wait until the children are as expected.
    let names_at = |path: &'static str| {
        let sluice = &sluice;
        async move {
            let list = sluice.get_json(path).await;
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let settle = |path: &'static str, expected: Vec<&'static str>| {
        let names_at = &names_at;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let names = names_at(path).await;
                if names == expected {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "{path}: {names:?}, expected {expected:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    settle(SUBSCRIPTIONS, vec!["seq-kn-sequence-0", "seq-kn-sequence-1"]).await;
    settle(CHANNELS, vec!["seq-kn-sequence-0", "seq-kn-sequence-1"]).await;
    let sub = sluice.get_json(&format!("{SUBSCRIPTIONS}/seq-kn-sequence-0")).await;
    assert_eq!(sub["metadata"]["ownerReferences"][0]["uid"], created["metadata"]["uid"]);
    assert_eq!(sub["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(sub["spec"]["reply"]["ref"]["name"], "seq-kn-sequence-1");
    let ready = sluice.wait_ready(&format!("{SEQUENCES}/seq")).await;
    assert_eq!(
        ready["status"]["address"]["url"],
        format!("{}/channels/default/seq-kn-sequence-0", sluice.gateway)
    );
    assert_eq!(ready["status"]["observedGeneration"], 1);

    // One step fewer: the second step's children go.
    // (Read again and retried when the flow's controller wrote its status in between: 409.)
    let replaced = loop {
        let mut current = sluice.get_json(&format!("{SEQUENCES}/seq")).await;
        current["spec"]["steps"] = json!([step("a")]);
        let replaced = client
            .put(format!("{}{SEQUENCES}/seq", sluice.api))
            .json(&current)
            .send()
            .await
            .unwrap();
        if replaced.status() != 409 {
            break replaced;
        }
    };
    assert_eq!(replaced.status(), 200);
    settle(SUBSCRIPTIONS, vec!["seq-kn-sequence-0"]).await;
    settle(CHANNELS, vec!["seq-kn-sequence-0"]).await;

    let deleted = client.delete(format!("{}{SEQUENCES}/seq", sluice.api)).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    settle(SUBSCRIPTIONS, vec![]).await;
    settle(CHANNELS, vec![]).await;
}
