//! End-to-end: the resource API and CLI against the real binary — live apply and delete,
//! restart restoring objects, kubectl-like errors, all-or-nothing apply.

mod common;

use common::{send_binary, write, Recorder, Sluice};

const BROKER_YAML: &str = "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n";

fn trigger_yaml(name: &str, ty: &str, uri: &str) -> String {
    trigger_with(name, "", ty, uri)
}

/// A trigger whose deliveries go one at a time, in the order its events arrived: once an event
/// sent later (a sentinel) reaches its subscriber, every earlier event was judged.
fn ordered_trigger_yaml(name: &str, ty: &str, uri: &str) -> String {
    trigger_with(name, "  annotations:\n    sluice.dev/max-in-flight: \"1\"\n", ty, uri)
}

fn trigger_with(name: &str, annotations: &str, ty: &str, uri: &str) -> String {
    format!("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: {name}\n{annotations}spec:\n  broker: default\n  filter:\n    attributes:\n      type: {ty}\n  subscriber:\n    uri: {uri}\n")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_apply_change_and_delete_take_effect() {
    let sub = Recorder::accept().await;
    // `witness` delivers the sentinel of the deletion check below to the same subscriber.
    let sluice = Sluice::start(&format!(
        "{BROKER_YAML}---\n{}",
        ordered_trigger_yaml("witness", "sentinel", &sub.url)
    ))
    .await;
    let url = format!("{}/default/default", sluice.gateway);

    let t = write(sluice.dir.path(), "t.yaml", &ordered_trigger_yaml("live", "a", &sub.url));
    let out = sluice.cli(&["apply", "-f", t.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("trigger.eventing.knative.dev/live created"),
        "{}",
        stdout(&out)
    );
    // `sluice apply` answers once the controllers have reconciled what it applied, and in
    // `sluice run` a Trigger is reconciled (Ready) once the data plane runs it: the next event
    // reaches it, without waiting.
    let live = sluice
        .get_json("/apis/eventing.knative.dev/v1/namespaces/default/triggers/live")
        .await;
    assert_eq!(live["status"]["observedGeneration"], 1, "{live:#}");
    assert_eq!(send_binary(&url, "1", "a", &[], "{}").await, 202);
    sub.wait_for(1).await;

    // Change the filter: the next event is judged by the new one.
    let t = write(sluice.dir.path(), "t.yaml", &ordered_trigger_yaml("live", "b", &sub.url));
    let out = sluice.cli(&["apply", "-f", t.to_str().unwrap()]);
    assert!(stdout(&out).contains("configured"), "{}", stdout(&out));
    let obj = sluice
        .get_json("/apis/eventing.knative.dev/v1/namespaces/default/triggers/live")
        .await;
    assert_eq!(obj["metadata"]["generation"], 2);
    assert_eq!(send_binary(&url, "2", "a", &[], "{}").await, 202);
    assert_eq!(send_binary(&url, "3", "b", &[], "{}").await, 202);
    // `live` delivers in arrival order: had 2 passed the new filter, it would arrive before 3.
    sub.wait_for_id("3").await;
    assert_eq!(sub.ids(), ["1", "3"]);

    // Delete: no more deliveries.
    let uid = obj["metadata"]["uid"].as_str().expect("uid").to_string();
    let out = sluice.cli(&["delete", "trigger", "live"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"live\" deleted"));
    // The data plane learns of the delete by watching, a moment after it is answered; once it
    // has stopped `live` and dropped its queue (its log says so), event 4 can be queued only
    // for `witness`, which delivers in arrival order: once the sentinel is in, 4 was judged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = sluice.log();
        let stopped = log
            .lines()
            .any(|l| l.contains("subscriber stopped") && l.contains(&format!("default/live/{uid}")));
        if stopped {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`live` still running after its delete:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(send_binary(&url, "4", "b", &[], "{}").await, 202);
    assert_eq!(send_binary(&url, "sentinel", "sentinel", &[], "{}").await, 202);
    sub.wait_for_id("sentinel").await;
    assert_eq!(sub.ids(), ["1", "3", "sentinel"]);

    // Not found: exit 1 with a message, as kubectl does.
    for args in [vec!["get", "trigger", "live"], vec!["delete", "trigger", "live"]] {
        let out = sluice.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("NotFound"), "{}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_apply_applies_nothing_and_names_every_error() {
    let sluice = Sluice::start(BROKER_YAML).await;
    let bad = "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: good\nspec:\n  broker: default\n  subscriber:\n    uri: http://127.0.0.1:1/\n---\n\
apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: orders\nspec:\n  broker: default\n  filters:\n  - exact:\n      type: a\n  - exact:\n      type: b\n    prefix:\n      type: c\n  subscriber:\n    uri: http://127.0.0.1:1/\n---\n\
apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: typo\nspec:\n  broker: default\n  subscriberr:\n    uri: http://127.0.0.1:1/\n";
    let f = write(sluice.dir.path(), "bad.yaml", bad);
    let out = sluice.cli(&["apply", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("trigger default/orders: spec.filters[1]: multiple dialects found (exact, prefix)"),
        "{err}"
    );
    assert!(err.contains("subscriberr"), "{err}");
    assert!(err.contains("bad.yaml"), "{err}");
    let out = sluice.cli(&["get", "trigger", "good"]);
    assert_eq!(out.status.code(), Some(1), "nothing from the failed request was applied");

    // The same through the API: 422 with every cause, nothing applied.
    let resp = reqwest::Client::new()
        .post(format!("{}/sluice/v1/apply", sluice.api))
        .json(&serde_json::json!({"objects": [
            {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "second"}},
            {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "x"}, "spec": {"broker": "default", "subscriber": {}}},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
    assert!(body["message"].as_str().unwrap().contains("spec.subscriber"), "{body}");
    assert_eq!(sluice.cli(&["get", "broker", "second"]).status.code(), Some(1));

    // Broker class is immutable.
    let f = write(sluice.dir.path(), "class.yaml", "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n  annotations:\n    eventing.knative.dev/broker.class: Kafka\n");
    let out = sluice.cli(&["apply", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Immutable"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_objects_and_cli_reads_them() {
    let sub = Recorder::accept().await;
    let mut sluice = Sluice::start(&format!("{BROKER_YAML}---\n{}", trigger_yaml("keep", "a", &sub.url))).await;
    sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/keep")
        .await;
    let before = sluice
        .get_json("/apis/eventing.knative.dev/v1/namespaces/default/triggers/keep")
        .await;
    sluice.restart_without_manifests().await;
    let after = sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/keep")
        .await;
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(
        send_binary(&format!("{}/default/default", sluice.gateway), "1", "a", &[], "{}").await,
        202
    );
    sub.wait_for(1).await;

    let table = sluice.cli(&["get", "brokers"]);
    let text = stdout(&table);
    let mut rows = text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>());
    assert_eq!(rows.next().unwrap(), ["NAME", "READY", "REASON", "URL", "AGE"], "{text}");
    let row = rows.next().unwrap();
    // REASON is empty for a ready broker.
    assert_eq!(
        row[..3],
        ["default", "True", &format!("{}/default/default", sluice.gateway)],
        "{text}"
    );
    assert!(row[3].ends_with('s') || row[3].ends_with('m'), "age {:?} in {text}", row[3]);
    // `-o json` is the object exactly as the API returns it; `-o yaml` the same in YAML.
    let api = sluice
        .get_json("/apis/eventing.knative.dev/v1/namespaces/default/triggers/keep")
        .await;
    let json = sluice.cli(&["get", "trigger", "keep", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v, api);
    assert_eq!(v["status"]["subscriberUri"].as_str(), Some(sub.url.as_str()));
    let yaml = sluice.cli(&["get", "triggers", "keep", "-n", "default", "-o", "yaml"]);
    assert!(yaml.status.success(), "{}", stderr(&yaml));
    let y: serde_json::Value = serde_yaml::from_slice(&yaml.stdout).unwrap();
    assert_eq!(y, api);
    let describe = sluice.cli(&["describe", "trigger", "keep"]);
    assert!(stdout(&describe).contains("SubscriberResolved"), "{}", stdout(&describe));
    let unknown = sluice.cli(&["get", "gizmo"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("unknown kind"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_command_posts_binary_and_structured_events() {
    let sub = Recorder::accept().await;
    let sluice = Sluice::start(&format!("{BROKER_YAML}---\n{}", trigger_yaml("t", "dev.example.cli", &sub.url))).await;
    sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/t")
        .await;
    let out = sluice.cli(&[
        "send",
        "--broker",
        "default",
        "--type",
        "dev.example.cli",
        "--id",
        "cli-1",
        "--extension",
        "region=eu",
        "--data",
        r#"{"x":1}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let url = format!("{}/default/default", sluice.gateway);
    let out = sluice.cli(&[
        "send",
        "--to",
        &url,
        "--type",
        "dev.example.cli",
        "--id",
        "cli-2",
        "--mode",
        "structured",
        "--data",
        "hello",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = sub.wait_for(2).await;
    let first = got.iter().find(|r| r.header("ce-id").as_deref() == Some("cli-1")).unwrap();
    assert_eq!(first.header("ce-region").as_deref(), Some("eu"));
    assert_eq!(first.body.as_ref(), br#"{"x":1}"#);
    let second = got.iter().find(|r| r.header("ce-id").as_deref() == Some("cli-2")).unwrap();
    assert_eq!(second.body.as_ref(), b"hello");
    let bad = sluice.cli(&["send", "--to", &format!("{}/default/nope", sluice.gateway), "--type", "x"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_is_filled_in_on_create_and_refused_by_apply() {
    let sluice = Sluice::start(BROKER_YAML).await;
    let brokers = format!("{}/apis/eventing.knative.dev/v1/namespaces/default/brokers", sluice.api);
    let body = serde_json::json!({"metadata": {"generateName": "events-"}});
    let c = reqwest::Client::new();
    let mut names = Vec::new();
    for _ in 0..2 {
        let resp = c.post(&brokers).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        let created: serde_json::Value = resp.json().await.unwrap();
        let name = created["metadata"]["name"].as_str().unwrap().to_string();
        assert!(name.starts_with("events-") && name.len() == "events-".len() + 5, "{name}");
        sluice
            .wait_ready(&format!("/apis/eventing.knative.dev/v1/namespaces/default/brokers/{name}"))
            .await;
        names.push(name);
    }
    assert_ne!(names[0], names[1], "each create gets its own name");
    // `sluice apply`, like `kubectl apply`, needs a name: re-applying would create another object.
    let f = write(
        sluice.dir.path(),
        "generated.yaml",
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  generateName: events-\n",
    );
    let out = sluice.cli(&["apply", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("metadata.name: required to apply"), "{}", stderr(&out));
    let list = sluice.get_json("/apis/eventing.knative.dev/v1/namespaces/default/brokers").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3, "default and the two created ones");
}
