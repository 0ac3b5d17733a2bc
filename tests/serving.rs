//! End-to-end: a Knative Service applied to `sluice run` gets its Configuration and Route, and
//! the Configuration a Revision per template change, named and owned as Knative does; the
//! Service reports its URL on the gateway. (Revisions are not run yet: nothing is Ready.)

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
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = sluice.get_json(path).await;
        if v["kind"] != "Status" && check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let rev = wait_until(&sluice, &format!("{NS}/revisions/hello-00001"), |r| {
        r["status"]["conditions"].is_array()
    })
    .await;
    assert!(rev["status"]["conditions"].to_string().contains("NotServedYet"), "{rev:#}");

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
