//! End-to-end: a Knative Service applied to `sluice run` gets its Configuration and Route, and
//! the Configuration a Revision per template change, named and owned as Knative does; the
//! Service reports its URL on the gateway. Revisions run as child processes behind the
//! gateway: they scale from zero on the first request and back to zero when idle.

mod common;

use std::time::{Duration, Instant};

use common::Sluice;
use serde_json::{json, Value};

const NS: &str = "/apis/serving.knative.dev/v1/namespaces/default";

const KSVC: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          env:
            - name: TARGET
              value: World
";

/// Waits until `check` holds for the object at `path` (404 counts as not yet).
async fn wait_until(sluice: &Sluice, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_until_for(sluice, path, Duration::from_secs(15), check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_makes_its_configuration_route_and_revisions() {
    let sluice = Sluice::start(KSVC).await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    let svc = wait_until(&sluice, &format!("{NS}/services/hello"), |s| {
        s["status"]["url"].is_string() && s["status"]["latestCreatedRevisionName"].is_string()
    })
    .await;
    assert_eq!(svc["status"]["url"], format!("http://hello.default.localhost:{port}"));
    assert_eq!(svc["status"]["latestCreatedRevisionName"], "hello-00001");
    let ready = common::condition(&svc, "Ready");
    assert_ne!(ready["status"], "True", "no revision runs yet: {svc:#}");

    let cfg = sluice.get_json(&format!("{NS}/configurations/hello")).await;
    assert_eq!(cfg["metadata"]["ownerReferences"][0]["uid"], svc["metadata"]["uid"]);
    assert_eq!(cfg["metadata"]["labels"]["serving.knative.dev/service"], "hello");
    let route = sluice.get_json(&format!("{NS}/routes/hello")).await;
    assert_eq!(route["spec"]["traffic"][0]["configurationName"], "hello");
    let rev = sluice.get_json(&format!("{NS}/revisions/hello-00001")).await;
    assert_eq!(rev["spec"]["containers"][0]["env"][0]["value"], "World");
    assert_eq!(rev["metadata"]["labels"]["serving.knative.dev/configuration"], "hello");
    assert_eq!(rev["metadata"]["ownerReferences"][0]["uid"], cfg["metadata"]["uid"]);
    // No command: images are not pulled, so the Revision cannot run, and says why.
    let rev = wait_until(&sluice, &format!("{NS}/revisions/hello-00001"), |r| {
        r["status"]["conditions"].to_string().contains("InvalidContainer")
    })
    .await;
    assert!(
        rev["status"]["conditions"].to_string().contains("spec.containers[0].command"),
        "{rev:#}"
    );

    // A template change stamps the next revision; the first one stays.
    let client = reqwest::Client::new();
    let change = json!({"spec": {"template": {"spec": {"containers": [
        {"image": "ghcr.io/knative/helloworld-go:latest", "env": [{"name": "TARGET", "value": "Sluice"}]}]}}}});
    let patched = client
        .patch(format!("{}{NS}/services/hello", sluice.api))
        .header("content-type", "application/merge-patch+json")
        .body(change.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let svc = wait_until(&sluice, &format!("{NS}/services/hello"), |s| {
        s["status"]["latestCreatedRevisionName"] == "hello-00002"
    })
    .await;
    let route = sluice.get_json(&format!("{NS}/routes/hello")).await;
    assert_eq!(
        svc["status"]["url"],
        format!("http://hello.default.localhost:{port}"),
        "{svc:#}\n{route:#}"
    );
    let rev2 = sluice.get_json(&format!("{NS}/revisions/hello-00002")).await;
    assert_eq!(rev2["spec"]["containers"][0]["env"][0]["value"], "Sluice");
    assert_eq!(
        sluice.get_json(&format!("{NS}/revisions/hello-00001")).await["metadata"]["name"],
        "hello-00001"
    );

    // The domain comes from Knative's config-domain, applied like any object and watched.
    let config_domain = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "config-domain", "namespace": "knative-serving"}, "data": {"example.org": ""}});
    let created = client
        .post(format!("{}/api/v1/namespaces/knative-serving/configmaps", sluice.api))
        .json(&config_domain)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let svc = wait_until(&sluice, &format!("{NS}/services/hello"), |s| {
        s["status"]["url"] == format!("http://hello.default.example.org:{port}").as_str()
    })
    .await;
    assert_eq!(svc["status"]["address"]["url"], svc["status"]["url"]);

    // Deleting the Service takes everything it owns, down to the revisions.
    let deleted = client.delete(format!("{}{NS}/services/hello", sluice.api)).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    for path in [
        "configurations/hello",
        "routes/hello",
        "revisions/hello-00001",
        "revisions/hello-00002",
    ] {
        let deadline = Instant::now() + Duration::from_secs(15);
        while sluice.get_json(&format!("{NS}/{path}")).await["code"] != 404 {
            assert!(Instant::now() < deadline, "{path} outlived its Service");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A Knative-style app on the Python standard library: answers `Hello {TARGET}!` on `$PORT`,
/// and echoes the forwarding headers it got on `/headers`.
const APP: &str = r#"
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
lock = threading.Lock()
state = {"now": 0, "max": 0}
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, body):
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/headers":
            self.reply(json.dumps({k.lower(): v for k, v in self.headers.items()}).encode())
        elif self.path == "/slow":
            # Counts the requests this instance serves at once.
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.2)
            with lock:
                state["now"] -= 1
            self.reply(b"slow")
        elif self.path == "/env":
            names = ["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "TARGET"]
            self.reply(json.dumps({n: os.environ.get(n) for n in names}).encode())
        elif self.path == "/max":
            self.reply(str(state["max"]).encode())
        elif self.path == "/sleep":
            time.sleep(2.5)
            self.reply(b"late")
        elif self.path == "/stream":
            # The first byte at once, the rest after the revision's timeout.
            self.send_response(200)
            self.send_header("content-length", "10")
            self.end_headers()
            self.wfile.write(b"first")
            self.wfile.flush()
            time.sleep(2.5)
            self.wfile.write(b"-last")
        else:
            self.reply(("Hello %s! from %s" % (os.environ.get("TARGET", "World"), os.environ["K_REVISION"])).encode())
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        print("event", self.headers.get("ce-id"), flush=True)
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// Scale to zero quickly: the shortest stable window Knative allows, a 1 s grace period.
const FAST_AUTOSCALER: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  stable-window: 6s
  scale-to-zero-grace-period: 1s
";

fn python() -> String {
    std::env::var("SLUICE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// GET `path` on the gateway with the Host of `host`.
async fn get_host(sluice: &Sluice, host: &str, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", sluice.gateway))
        .header("host", host)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_scales_from_zero_on_a_request_and_back_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::write(dir.path(), "app.py", APP);
    let ksvc = format!("{FAST_AUTOSCALER}---\n{}", app_service(&app, "hello", "", "Sluice"));
    let sluice = Sluice::start(&ksvc).await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    let host = format!("hello.default.localhost:{port}");
    let svc = sluice.wait_ready(&format!("{NS}/services/hello")).await;
    assert_eq!(svc["status"]["latestReadyRevisionName"], "hello-00001", "{svc:#}");
    assert_eq!(svc["status"]["url"], format!("http://{host}"));

    // It serves by Host, with the forwarding headers of the runtime contract.
    let (code, body) = get_host(&sluice, &host, "/").await;
    assert_eq!((code, body.as_str()), (200, "Hello Sluice! from hello-00001"));
    let (_, headers) = get_host(&sluice, &host, "/headers").await;
    let headers: Value = serde_json::from_str(&headers).unwrap();
    assert_eq!(headers["host"], host.as_str());
    assert!(headers["forwarded"].as_str().unwrap().contains("for=127.0.0.1"), "{headers}");
    assert_eq!(headers["x-forwarded-proto"], "http");
    // The runtime contract's env (RT-01).
    let (_, env) = get_host(&sluice, &host, "/env").await;
    let env: Value = serde_json::from_str(&env).unwrap();
    assert_eq!(env["K_SERVICE"], "hello");
    assert_eq!(env["K_CONFIGURATION"], "hello");
    assert_eq!(env["K_REVISION"], "hello-00001");
    assert_eq!(env["TARGET"], "Sluice");
    assert!(env["PORT"].as_str().unwrap().parse::<u16>().is_ok(), "{env}");

    // Idle: back to zero after the stable window and the grace period.
    let idle = wait_until_for(&sluice, &format!("{NS}/revisions/hello-00001"), Duration::from_secs(40), |r| {
        r["status"]["actualReplicas"] == 0 && r["status"]["desiredReplicas"] == 0
    })
    .await;
    assert!(idle["status"]["conditions"].to_string().contains("NoTraffic"), "{idle:#}");

    // The first request wakes it: held by the activator, answered once an instance is ready.
    let woke = Instant::now();
    let (code, body) = get_host(&sluice, &host, "/").await;
    assert_eq!(
        (code, body.as_str()),
        (200, "Hello Sluice! from hello-00001"),
        "after {:?}",
        woke.elapsed()
    );
    assert!(sluice.log().contains("scaled from zero"), "{}", sluice.log());
    let metrics = sluice.metrics().await;
    let series = |name: &str| format!("{name}{{namespace=\"default\",revision=\"hello-00001\"}}");
    assert_eq!(
        common::metric(&metrics, &series("sluice_revision_cold_start_seconds_count")),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        common::metric(&metrics, &series("sluice_revision_requests_total")).unwrap_or(0.0) >= 3.0,
        "{metrics}"
    );
    let rev = wait_until(&sluice, &format!("{NS}/revisions/hello-00001"), |r| {
        r["status"]["actualReplicas"] == 1
    })
    .await;
    assert_eq!(rev["status"]["desiredReplicas"], 1);

    // Unknown hosts are not Routes: the gateway's broker ingress answers as before.
    let (code, _) = get_host(&sluice, &format!("nope.default.localhost:{port}"), "/").await;
    assert_eq!(code, 404);
}

/// Waits up to `limit` until `check` holds for the object at `path` (404 counts as not yet).
async fn wait_until_for(sluice: &Sluice, path: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = sluice.get_json(path).await;
        if v["kind"] != "Status" && check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path}: {v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_wakes_a_service_at_zero_and_is_delivered_on_the_first_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::write(dir.path(), "app.py", APP);
    let manifests = format!(
        "{FAST_AUTOSCALER}---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
{display}---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: to-display
spec:
  broker: default
  delivery:
    retry: 3
    backoffPolicy: linear
    backoffDelay: PT1S
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: display
",
        display = app_service(&app, "display", "", "World")
    );
    let sluice = Sluice::start(&manifests).await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    let trigger = sluice
        .wait_ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers/to-display")
        .await;
    assert_eq!(
        trigger["status"]["subscriberUri"],
        format!("http://display.default.localhost:{port}")
    );
    wait_until_for(&sluice, &format!("{NS}/revisions/display-00001"), Duration::from_secs(40), |r| {
        r["status"]["actualReplicas"] == 0 && r["status"]["desiredReplicas"] == 0
    })
    .await;

    // Held until the instance is ready: delivered on the first attempt.
    let code = common::send_binary(
        &format!("{}/default/default", sluice.gateway),
        "wake-1",
        "dev.example.wake",
        &[],
        "{}",
    )
    .await;
    assert_eq!(code, 202);
    let logs_dir = sluice.dir.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["logs", "ksvc", "display", "--data-dir"])
            .arg(&logs_dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("event wake-1") {
            // Exactly once, and no retry counted.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["logs", "ksvc", "display", "--data-dir"])
                .arg(&logs_dir)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert_eq!(text.matches("event wake-1").count(), 1, "{text}");
            let metrics = sluice.metrics().await;
            let retries = common::metric(
                &metrics,
                "sluice_delivery_retries_total{namespace=\"default\",kind=\"trigger\",name=\"to-display\"}",
            );
            assert_eq!(retries.unwrap_or(0.0), 0.0, "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {text}\n{}", sluice.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sluice.log().contains("scaled from zero"), "{}", sluice.log());
}

/// A Service of [`APP`] named `name`, with `spec` lines added to its template's spec (indented
/// for it) and `traffic` to its spec.
fn app_service(app: &std::path::Path, name: &str, spec: &str, target: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    spec:
{spec}      containers:
        - image: example.com/app
          command: [{python:?}, {app:?}]
          env:
            - name: TARGET
              value: {target}
",
        python = python(),
        app = app.display().to_string()
    )
}

async fn patch_json(sluice: &Sluice, path: &str, patch: Value) {
    let response = reqwest::Client::new()
        .patch(format!("{}{path}", sluice.api))
        .header("content-type", "application/merge-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_splits_by_percent_and_tags_name_one_revision() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::write(dir.path(), "app.py", APP);
    let sluice = Sluice::start(&app_service(&app, "split", "", "one")).await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    sluice.wait_ready(&format!("{NS}/services/split")).await;
    // A second revision, and half the traffic to each; the new one also under a tag.
    patch_json(
        &sluice,
        &format!("{NS}/services/split"),
        json!({"spec": {
        "template": {"spec": {"containers": [{"image": "example.com/app", "command": [python(), app.display().to_string()],
            "env": [{"name": "TARGET", "value": "two"}]}]}},
        "traffic": [
            {"revisionName": "split-00001", "percent": 50},
            {"latestRevision": true, "percent": 50, "tag": "candidate"},
        ]}}),
    )
    .await;
    wait_until(&sluice, &format!("{NS}/services/split"), |s| {
        s["status"]["traffic"].as_array().is_some_and(|t| t.len() == 2) && s["status"]["latestReadyRevisionName"] == "split-00002"
    })
    .await;
    let host = format!("split.default.localhost:{port}");
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..200 {
        let (code, body) = get_host(&sluice, &host, "/").await;
        assert_eq!(code, 200, "{body}");
        *counts.entry(body).or_default() += 1;
    }
    let one = counts.get("Hello one! from split-00001").copied().unwrap_or(0);
    let two = counts.get("Hello two! from split-00002").copied().unwrap_or(0);
    assert_eq!(one + two, 200, "{counts:?}");
    // 50/50 over 200 requests: outside 60..140 is a one-in-a-million draw.
    assert!((60..=140).contains(&one), "{counts:?}");
    for _ in 0..20 {
        let (_, body) = get_host(&sluice, &format!("candidate-split.default.localhost:{port}"), "/").await;
        assert_eq!(body, "Hello two! from split-00002");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_concurrency_is_a_hard_limit_and_timeout_seconds_answers_504() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::write(dir.path(), "app.py", APP);
    let single = app_service(&app, "single", "      containerConcurrency: 1\n", "one");
    let hasty = app_service(&app, "hasty", "      timeoutSeconds: 1\n", "two");
    let sluice = Sluice::start(&format!("{single}---\n{hasty}")).await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    sluice.wait_ready(&format!("{NS}/services/single")).await;
    sluice.wait_ready(&format!("{NS}/services/hasty")).await;
    let host = format!("single.default.localhost:{port}");
    // Eight at once: each instance serves one at a time (TestSingleConcurrency).
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (gateway, host) = (sluice.gateway.clone(), host.clone());
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .get(format!("{gateway}/slow"))
                    .header("host", host)
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    // The autoscaler may have started more instances meanwhile: ask each one that answers.
    for _ in 0..10 {
        let (_, max) = get_host(&sluice, &host, "/max").await;
        assert!(
            max == "0" || max == "1",
            "an instance served {max} requests at once, over containerConcurrency"
        );
    }

    // No response within timeoutSeconds: 504; a response started in time streams to the end.
    let host = format!("hasty.default.localhost:{port}");
    let (code, body) = get_host(&sluice, &host, "/sleep").await;
    assert_eq!(code, 504, "{body}");
    let (code, body) = get_host(&sluice, &host, "/stream").await;
    assert_eq!((code, body.as_str()), (200, "first-last"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_is_reported_with_its_exit_message() {
    let manifest = format!(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: crash
spec:
  template:
    spec:
      containers:
        - image: example.com/crash
          command: [{python:?}, \"-c\", \"import sys; print('cannot reach the database'); sys.exit(2)\"]
",
        python = python()
    );
    let sluice = Sluice::start(&manifest).await;
    let rev = wait_until(&sluice, &format!("{NS}/revisions/crash-00001"), |r| {
        r["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "ContainerHealthy" && c["status"] == "False"))
    })
    .await;
    let healthy = common::condition(&rev, "ContainerHealthy");
    assert_eq!(healthy["reason"], "ExitCode2", "{rev:#}");
    assert!(
        healthy["message"].as_str().unwrap().contains("cannot reach the database"),
        "{rev:#}"
    );
    // The Service says why it is not Ready.
    wait_until(&sluice, &format!("{NS}/services/crash"), |s| {
        s["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "ConfigurationsReady"
                    && c["status"] == "False"
                    && c["message"].as_str().is_some_and(|m| m.contains("cannot reach the database"))
            })
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_defaults_sets_what_revisions_get_when_they_say_nothing() {
    let sluice = Sluice::start("").await;
    let client = reqwest::Client::new();
    let configmaps = format!("{}/api/v1/namespaces/knative-serving/configmaps", sluice.api);
    // Checked like Knative's webhook checks it: the key of the bad value is named.
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config-defaults", "namespace": "knative-serving"},
        "data": {"container-concurrency": "many"}});
    let refused = client.post(&configmaps).json(&bad).send().await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("data.container-concurrency"));
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config-defaults", "namespace": "knative-serving"},
        "data": {"revision-timeout-seconds": "45", "container-concurrency": "3", "container-concurrency-max-limit": "10"}});
    assert_eq!(client.post(&configmaps).json(&good).send().await.unwrap().status(), 201);

    let svc = |name: &str, cc: Option<u32>| {
        let mut spec = json!({"containers": [{"image": "example.com/app", "command": ["true"]}]});
        if let Some(cc) = cc {
            spec["containerConcurrency"] = json!(cc);
        }
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name}, "spec": {"template": {"spec": spec}}})
    };
    let services = format!("{}{NS}/services", sluice.api);
    assert_eq!(client.post(&services).json(&svc("plain", None)).send().await.unwrap().status(), 201);
    let rev = wait_until(&sluice, &format!("{NS}/revisions/plain-00001"), |_| true).await;
    assert_eq!(rev["spec"]["timeoutSeconds"], 45, "{rev:#}");
    assert_eq!(rev["spec"]["containerConcurrency"], 3, "{rev:#}");
    // The limit comes from it too.
    let over = client.post(&services).json(&svc("greedy", Some(11))).send().await.unwrap();
    assert_eq!(over.status(), 422);
    assert!(over.text().await.unwrap().contains("containerConcurrency"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_that_cannot_start_say_why_and_answer_503_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::write(dir.path(), "app.py", APP);
    let bad = |name: &str, command: &str| {
        format!(
            "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - image: example.com/{name}
          command: {command}
"
        )
    };
    let python = python();
    let manifests = [
        bad("nocmd", "[\"/no/such/program\"]"),
        bad(
            "quits",
            &format!("[{python:?}, \"-c\", \"import sys; print('no config'); sys.exit(1)\"]"),
        ),
        bad("mute", &format!("[{python:?}, \"-c\", \"import time; time.sleep(600)\"]")),
        app_service(&app, "good", "", "fine"),
    ]
    .join("---\n");
    let sluice = Sluice::start_with_args(&manifests, &["--revision-startup-timeout", "1s"]).await;
    let port = sluice.gateway.rsplit(':').next().unwrap().to_string();
    for (name, reason, text) in [
        ("nocmd", "ExecFailed", "/no/such/program"),
        ("quits", "ExitCode1", "no config"),
        ("mute", "ReadinessProbeFailed", "readiness probe"),
    ] {
        let rev = wait_until(&sluice, &format!("{NS}/revisions/{name}-00001"), |r| {
            r["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "ContainerHealthy" && c["status"] == "False" && c["reason"] == reason)
            })
        })
        .await;
        let ready = common::condition(&rev, "Ready");
        assert_eq!(ready["status"], "False", "{rev:#}");
        assert!(ready["message"].as_str().unwrap().contains(text), "{rev:#}");
        // Requests are answered at once, with the reason.
        let host = format!("{name}.default.localhost:{port}");
        let started = Instant::now();
        let body = wait_for_body(&sluice, &host, text).await;
        assert!(started.elapsed() < Duration::from_secs(10), "{body}");
    }
    sluice.wait_ready(&format!("{NS}/services/good")).await;
    let (code, body) = get_host(&sluice, &format!("good.default.localhost:{port}"), "/").await;
    assert_eq!((code, body.as_str()), (200, "Hello fine! from good-00001"));
}

/// GETs `/` on `host` until the 503 it answers names `text` (the route learns of the failure
/// from the revision's status); returns that body.
async fn wait_for_body(sluice: &Sluice, host: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let asked = Instant::now();
        let (code, body) = get_host(sluice, host, "/").await;
        assert!(asked.elapsed() < Duration::from_secs(5), "a request for {host} hung: {body}");
        if code == 503 && body.contains(text) {
            return body;
        }
        assert!(Instant::now() < deadline, "{host}: {code} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
