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
    let ready = svc["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
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
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/headers":
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        else:
            body = ("Hello %s! from %s" % (os.environ.get("TARGET", "World"), os.environ["K_REVISION"])).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
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
    let ksvc = format!(
        "{FAST_AUTOSCALER}---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: example.com/hello
          command: [{python:?}, {app:?}]
          env:
            - name: TARGET
              value: Sluice
",
        python = python(),
        app = app.display().to_string()
    );
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
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: display
spec:
  template:
    spec:
      containers:
        - image: example.com/display
          command: [{python:?}, {app:?}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: to-display
spec:
  broker: default
  delivery:
    retry: 0
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: display
",
        python = python(),
        app = app.display().to_string()
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

    // No retries: only a delivery held until the instance is ready can succeed.
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
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {text}\n{}", sluice.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sluice.log().contains("scaled from zero"), "{}", sluice.log());
}
