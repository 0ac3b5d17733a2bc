//! End-to-end in the shape of a cluster: an API server that runs no controllers (`sluice run
//! --no-controllers`), `sluice controller` and `sluice dataplane` as separate processes that
//! know it only through its kubeconfig. Every status comes from the controller process, every
//! delivery from the data-plane process.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{send_binary, Recorder, Sluice};
use serde_json::{json, Value};

/// A `sluice` child process, killed on drop.
struct Process {
    child: Child,
    log: std::path::PathBuf,
}

impl Process {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Process {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .arg("--kubeconfig")
            .arg(dir.join("data/kubeconfig"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Process { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing `marker` and returns its `field=` value.
    async fn wait_log(&self, marker: &str, field: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.log();
            if let Some(value) = text
                .lines()
                .find(|l| l.contains(marker))
                .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix(field)))
            {
                return value.to_string();
            }
            assert!(Instant::now() < deadline, "no {marker:?} in:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_and_dataplane_apart_serve_what_the_api_holds() {
    let sluice = Sluice::start_with_args("", &["--no-controllers"]).await;
    let ns = "/apis/eventing.knative.dev/v1/namespaces/default";
    let client = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let client = client.clone();
        let url = format!("{}{path}", sluice.api);
        async move { client.post(url).json(&body).send().await.unwrap().status().as_u16() }
    };
    let recorder = Recorder::accept().await;
    assert_eq!(
        post(
            format!("{ns}/brokers"),
            json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "default"}})
        )
        .await,
        201
    );
    assert_eq!(
        post(
            format!("{ns}/triggers"),
            json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"},
                "spec": {"broker": "default", "filter": {"attributes": {"type": "wanted"}}, "subscriber": {"uri": recorder.url}}})
        )
        .await,
        201
    );
    let pings = Recorder::accept().await;
    assert_eq!(
        post(
            "/apis/sources.knative.dev/v1/namespaces/default/pingsources".into(),
            json!({"apiVersion": "sources.knative.dev/v1", "kind": "PingSource", "metadata": {"name": "p"},
                "spec": {"schedule": "* * * * * *", "sink": {"uri": pings.url}}})
        )
        .await,
        201
    );
    // Nothing reconciles them yet: the API server runs no controllers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = sluice.get_json(&format!("{ns}/triggers/t")).await;
    assert!(t["status"].get("conditions").is_none(), "{t:#}");

    let controller = Process::start(
        sluice.dir.path(),
        "controller",
        &[
            "controller",
            "--gateway-url",
            "http://gateway.example",
            "--lease-namespace",
            "default",
        ],
    );
    let dataplane = Process::start(sluice.dir.path(), "dataplane", &["dataplane", "--gateway", "127.0.0.1:0"]);
    let gateway = dataplane.wait_log("sluice dataplane is running", "gateway=").await;

    // The controller writes every status, addresses on the gateway it was told of.
    let broker = sluice.wait_condition(&format!("{ns}/brokers/default"), "Ready", "True").await;
    assert_eq!(broker["status"]["address"]["url"], "http://gateway.example/default/default");
    let t = sluice.wait_condition(&format!("{ns}/triggers/t"), "Ready", "True").await;
    assert_eq!(t["status"]["subscriberUri"], recorder.url.as_str());
    assert_eq!(t["status"]["observedGeneration"], 1);
    // A source is Ready once its sink resolves: its adapter runs in the data plane.
    let p = sluice
        .wait_condition("/apis/sources.knative.dev/v1/namespaces/default/pingsources/p", "Ready", "True")
        .await;
    assert_eq!(p["status"]["sinkUri"], pings.url.as_str());
    let ping = &pings.wait_for(1).await[0];
    assert_eq!(ping.header("ce-type").as_deref(), Some("dev.knative.sources.ping"));
    assert_eq!(
        ping.header("ce-source").as_deref(),
        Some("/apis/v1/namespaces/default/pingsources/p")
    );
    // The data plane reports its adapters' health, which the controller writes into status:
    // a refused login makes the source Ready=False with the reason, on a cluster too.
    assert_eq!(
        post(
            "/api/v1/namespaces/default/secrets".into(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rabbit"},
                "stringData": {"uri": "http://127.0.0.1:15672", "username": "guest", "password": "not-the-password", "port": "5672"}})
        )
        .await,
        201
    );
    assert_eq!(
        post(
            "/apis/sources.knative.dev/v1alpha1/namespaces/default/rabbitmqsources".into(),
            json!({"apiVersion": "sources.knative.dev/v1alpha1", "kind": "RabbitmqSource", "metadata": {"name": "login"},
                "spec": {"rabbitmqClusterReference": {"connectionSecret": {"name": "rabbit"}},
                    "rabbitmqResourcesConfig": {"queueName": "sluice-cluster-login", "exchangeName": "sluice-cluster-login"},
                    "sink": {"uri": pings.url}}})
        )
        .await,
        201
    );
    let login = sluice
        .wait_condition(
            "/apis/sources.knative.dev/v1alpha1/namespaces/default/rabbitmqsources/login",
            "Ready",
            "False",
        )
        .await;
    let deployed = common::condition(&login, "Deployed");
    assert_eq!(deployed["reason"], "ConnectionFailed", "{deployed:#}\n{}", dataplane.log());
    let report = sluice
        .get_json("/api/v1/namespaces/sluice-system/configmaps/sluice-source-health")
        .await;
    assert_eq!(report["data"]["pingsource.default.p"], "{\"state\":\"Running\"}", "{report:#}");

    // A SinkBinding writes the sink into its subject Deployment's pod template.
    assert_eq!(
        post(
            "/apis/apps/v1/namespaces/default/deployments".into(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "emitter", "labels": {"app": "emitter"}},
                "spec": {"selector": {"matchLabels": {"app": "emitter"}}, "template": {"metadata": {"labels": {"app": "emitter"}},
                    "spec": {"containers": [{"name": "emitter", "image": "example/emitter", "env": [{"name": "MODE", "value": "loud"}]}]}}}})
        )
        .await,
        201
    );
    assert_eq!(
        post(
            "/apis/sources.knative.dev/v1/namespaces/default/sinkbindings".into(),
            json!({"apiVersion": "sources.knative.dev/v1", "kind": "SinkBinding", "metadata": {"name": "bind"},
                "spec": {"subject": {"apiVersion": "apps/v1", "kind": "Deployment", "selector": {"matchLabels": {"app": "emitter"}}},
                    "sink": {"uri": pings.url}, "ceOverrides": {"extensions": {"team": "a"}}}})
        )
        .await,
        201
    );
    sluice
        .wait_condition("/apis/sources.knative.dev/v1/namespaces/default/sinkbindings/bind", "Ready", "True")
        .await;
    let emitter = sluice.get_json("/apis/apps/v1/namespaces/default/deployments/emitter").await;
    let env = &emitter["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        *env,
        json!([{"name": "MODE", "value": "loud"}, {"name": "K_SINK", "value": pings.url},
               {"name": "K_CE_OVERRIDES", "value": "{\"extensions\":{\"team\":\"a\"}}"}]),
        "{emitter:#}"
    );
    // A subject made later is bound as soon as it is written.
    assert_eq!(
        post(
            "/apis/apps/v1/namespaces/default/deployments".into(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "emitter-2", "labels": {"app": "emitter"}},
                "spec": {"selector": {"matchLabels": {"app": "emitter"}}, "template": {"metadata": {"labels": {"app": "emitter"}},
                    "spec": {"containers": [{"name": "emitter", "image": "example/emitter"}]}}}})
        )
        .await,
        201
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let second = sluice.get_json("/apis/apps/v1/namespaces/default/deployments/emitter-2").await;
        if second["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"] == "K_SINK" {
            break;
        }
        assert!(Instant::now() < deadline, "not bound within 10 s: {second:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Deleting the binding takes the sink out again, behind its finalizer.
    let deleted = reqwest::Client::new()
        .delete(format!(
            "{}/apis/sources.knative.dev/v1/namespaces/default/sinkbindings/bind",
            sluice.api
        ))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let emitter = sluice.get_json("/apis/apps/v1/namespaces/default/deployments/emitter").await;
        let gone = reqwest::get(format!(
            "{}/apis/sources.knative.dev/v1/namespaces/default/sinkbindings/bind",
            sluice.api
        ))
        .await
        .unwrap()
        .status()
            == 404;
        if gone && emitter["spec"]["template"]["spec"]["containers"][0]["env"] == json!([{"name": "MODE", "value": "loud"}]) {
            break;
        }
        assert!(Instant::now() < deadline, "still bound: {emitter:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every kind a binding names is watched: a Knative Service written after its binding is
    // bound as soon as it is written.
    assert_eq!(
        post(
            "/apis/sources.knative.dev/v1/namespaces/default/sinkbindings".into(),
            json!({"apiVersion": "sources.knative.dev/v1", "kind": "SinkBinding", "metadata": {"name": "bind-greeter"},
                "spec": {"subject": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "greeter"},
                    "sink": {"uri": pings.url}}})
        )
        .await,
        201
    );
    sluice
        .wait_condition(
            "/apis/sources.knative.dev/v1/namespaces/default/sinkbindings/bind-greeter",
            "Ready",
            "True",
        )
        .await;
    assert_eq!(
        post(
            "/apis/serving.knative.dev/v1/namespaces/default/services".into(),
            json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "greeter"},
                "spec": {"template": {"spec": {"containers": [{"image": "example/greeter"}]}}}})
        )
        .await,
        201
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let greeter = sluice
            .get_json("/apis/serving.knative.dev/v1/namespaces/default/services/greeter")
            .await;
        if greeter["spec"]["template"]["spec"]["containers"][0]["env"][0] == json!({"name": "K_SINK", "value": pings.url}) {
            break;
        }
        assert!(Instant::now() < deadline, "not bound within 5 s: {greeter:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A ContainerSource is a Deployment of its template with the sink, Ready once a pod is.
    assert_eq!(
        post(
            "/apis/sources.knative.dev/v1/namespaces/default/containersources".into(),
            json!({"apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource", "metadata": {"name": "heartbeats"},
                "spec": {"template": {"spec": {"containers": [{"name": "beat", "image": "example/heartbeats"}]}},
                    "sink": {"uri": pings.url}}})
        )
        .await,
        201
    );
    let heartbeats = "/apis/sources.knative.dev/v1/namespaces/default/containersources/heartbeats";
    sluice.wait_condition(heartbeats, "ReceiveAdapterReady", "Unknown").await;
    let deployment_path = "/apis/apps/v1/namespaces/default/deployments/heartbeats-deployment";
    let deployment = sluice.get_json(deployment_path).await;
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"], "K_SINK",
        "{deployment:#}"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        pings.url.as_str()
    );
    let ready = reqwest::Client::new()
        .patch(format!("{}{deployment_path}/status", sluice.api))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"status": {"replicas": 1, "readyReplicas": 1}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    sluice.wait_condition(heartbeats, "Ready", "True").await;

    // The data plane delivers through its own gateway, filtering as the trigger says. (On a
    // cluster Ready means resolved, not yet served: send until the trigger receives.)
    let url = format!("{gateway}/default/default");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    while recorder.received().is_empty() {
        i += 1;
        assert_eq!(send_binary(&url, &format!("skip{i}"), "unwanted", &[], "{}").await, 202);
        assert_eq!(send_binary(&url, &format!("e{i}"), "wanted", &[], "{}").await, 202);
        assert!(
            Instant::now() < deadline,
            "nothing delivered;\ncontroller:\n{}\ndataplane:\n{}",
            controller.log(),
            dataplane.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids = recorder.ids();
    assert!(ids.iter().all(|id| id.starts_with('e')), "the filter let through {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_revision_gets_a_deployment_and_a_service() {
    let sluice = Sluice::start_with_args(
        "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: \"2\"
    spec:
      containers:
        - image: ghcr.io/knative/helloworld-go:latest
          env:
            - name: TARGET
              value: World
",
        &["--no-controllers"],
    )
    .await;
    // The pods behind the Revision's Service: a local server, at the cluster IP and port the
    // Service is given here before the controller would make it.
    let pods = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pods_port = pods.local_addr().unwrap().port();
    tokio::spawn(async move {
        let app = axum::Router::new()
            .fallback(|headers: axum::http::HeaderMap| async move { format!("from a pod, for {}", headers["host"].to_str().unwrap()) });
        axum::serve(pods, app).await
    });
    let client = reqwest::Client::new();
    let core_service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello-00001",
        "labels": {"serving.knative.dev/revision": "hello-00001"}},
        "spec": {"clusterIP": "127.0.0.1", "ports": [{"name": "http", "port": pods_port, "targetPort": 8080}]}});
    let created = client
        .post(format!("{}/api/v1/namespaces/default/services", sluice.api))
        .json(&core_service)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let _controller = Process::start(
        sluice.dir.path(),
        "controller",
        &[
            "controller",
            "--gateway-url",
            "http://gateway.example",
            "--lease-namespace",
            "default",
        ],
    );
    let dataplane = Process::start(sluice.dir.path(), "dataplane", &["dataplane", "--gateway", "127.0.0.1:0"]);
    let gateway = dataplane.wait_log("sluice dataplane is running", "gateway=").await;
    let revision = "/apis/serving.knative.dev/v1/namespaces/default/revisions/hello-00001";
    let rev = sluice.wait_condition(revision, "ResourcesAvailable", "Unknown").await;
    assert_eq!(rev["status"]["desiredReplicas"], 2, "{rev:#}");
    let deployment_path = "/apis/apps/v1/namespaces/default/deployments/hello-00001-deployment";
    let deployment = sluice.get_json(deployment_path).await;
    assert_eq!(deployment["spec"]["replicas"], 2, "{deployment:#}");
    assert_eq!(deployment["metadata"]["ownerReferences"][0]["uid"], rev["metadata"]["uid"]);
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains("K_REVISION") && env.contains("hello-00001") && env.contains("TARGET"),
        "{env}"
    );

    // A pod that crashes (the kubelet's report, played here through /status): the Revision
    // says why, with the container's termination message, as Knative does.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello-00001-deployment-7d4f-x2x9q",
        "labels": {"serving.knative.dev/revision": "hello-00001"}},
        "spec": {"containers": [{"name": "user-container", "image": "ghcr.io/knative/helloworld-go:latest"}]}});
    let created = client
        .post(format!("{}/api/v1/namespaces/default/pods", sluice.api))
        .json(&pod)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let crashed = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "user-container", "ready": false,
        "restartCount": 2, "image": "ghcr.io/knative/helloworld-go:latest", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "TARGET is not set"}}}]}});
    let patched = client
        .patch(format!(
            "{}/api/v1/namespaces/default/pods/hello-00001-deployment-7d4f-x2x9q/status",
            sluice.api
        ))
        .header("content-type", "application/merge-patch+json")
        .body(crashed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let rev = sluice.wait_condition(revision, "ContainerHealthy", "False").await;
    let healthy = common::condition(&rev, "ContainerHealthy");
    assert_eq!(healthy["reason"], "ExitCode1", "{healthy:#}");
    assert_eq!(healthy["message"], "Container failed with: TARGET is not set", "{healthy:#}");
    // `kubectl get pods` shows what the kubelet said.
    let table: serde_json::Value = client
        .get(format!("{}/api/v1/namespaces/default/pods", sluice.api))
        .header("accept", "application/json;as=Table;g=meta.k8s.io;v=v1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns[..5], ["Name", "Ready", "Status", "Restarts", "Age"], "{table:#}");
    assert_eq!(
        table["rows"][0]["cells"].as_array().unwrap()[1..4],
        [json!("0/1"), json!("CrashLoopBackOff"), json!(2)],
        "{table:#}"
    );

    // The pods come up (the kubelet's part, played here through /status): the Revision, and
    // with it the Configuration, becomes Ready.
    let patched = client
        .patch(format!("{}{deployment_path}/status", sluice.api))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"status": {"replicas": 2, "readyReplicas": 2}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let rev = sluice.wait_condition(revision, "Ready", "True").await;
    assert_eq!(rev["status"]["actualReplicas"], 2);
    let cfg = sluice
        .wait_condition(
            "/apis/serving.knative.dev/v1/namespaces/default/configurations/hello",
            "Ready",
            "True",
        )
        .await;
    assert_eq!(cfg["status"]["latestReadyRevisionName"], "hello-00001");

    // `sluice dataplane` routes the Knative Service's host to the Revision's Service.
    let svc = sluice
        .wait_condition("/apis/serving.knative.dev/v1/namespaces/default/services/hello", "Ready", "True")
        .await;
    assert_eq!(svc["status"]["url"], "http://hello.default.localhost");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = client
            .get(format!("{gateway}/"))
            .header("host", "hello.default.localhost")
            .send()
            .await
            .unwrap();
        let (code, body) = (response.status().as_u16(), response.text().await.unwrap());
        if code == 200 {
            assert_eq!(body, "from a pod, for hello.default.localhost");
            break;
        }
        assert!(Instant::now() < deadline, "{code} {body}\n{}", dataplane.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
