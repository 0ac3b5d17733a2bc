//! End-to-end: the Kubernetes built-in kinds the resource API serves beside Knative's —
//! Namespace (cluster-scoped), core and `events.k8s.io` Events, Lease, Deployment, Service —
//! created, read, listed, replaced and deleted over HTTP; Events selected by their
//! `involvedObject`, and served as both Event kinds from one stored resource; and the real
//! `kubectl` applying, listing and creating them.
//!
//! The kubectl part fails without kubectl when `CI=true` and is skipped otherwise.

mod common;

use common::{kubeconfig_from_log, kubectl_present, Kubectl, Sluice};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn send(method: reqwest::Method, url: String, body: Option<&Value>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect()
}

/// One namespaced kind: its collection path and a valid object of it named `name`.
struct Case {
    collection: &'static str,
    all: &'static str,
    object: Value,
    /// A change for the replace: a JSON pointer and its new value.
    change: (&'static str, Value),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            collection: "/api/v1/namespaces/default/events",
            all: "/api/v1/events",
            object: json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "b.1"},
                "involvedObject": {"kind": "Broker", "name": "b", "namespace": "default"},
                "reason": "Created", "message": "made", "type": "Normal", "count": 1}),
            change: ("/count", json!(2)),
        },
        Case {
            collection: "/apis/events.k8s.io/v1/namespaces/default/events",
            all: "/apis/events.k8s.io/v1/events",
            object: json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "b.2"},
                "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "sluice.dev/test",
                "reportingInstance": "t-1", "action": "Create", "reason": "Created", "type": "Normal",
                "regarding": {"kind": "Broker", "name": "b", "namespace": "default"}, "note": "made"}),
            change: ("/note", json!("made again")),
        },
        Case {
            collection: "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            all: "/apis/coordination.k8s.io/v1/leases",
            object: json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
                "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
            change: ("/spec/holderIdentity", json!("b")),
        },
        Case {
            collection: "/apis/apps/v1/namespaces/default/deployments",
            all: "/apis/apps/v1/deployments",
            object: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                               "ports": [{"containerPort": 80}],
                                                               "resources": {"limits": {"cpu": 1}}}]}}}}),
            change: ("/spec/replicas", json!(3)),
        },
        Case {
            collection: "/api/v1/namespaces/default/services",
            all: "/api/v1/services",
            object: json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
            change: ("/spec/ports/0/port", json!(81)),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_kinds_are_created_read_listed_replaced_and_deleted() {
    let sluice = Sluice::start("").await;
    let api = sluice.api.clone();
    for case in cases() {
        let name = case.object["metadata"]["name"].as_str().unwrap();
        let at = |path: &str| format!("{api}{path}");
        let item = at(&format!("{}/{name}", case.collection));

        let (code, created) = send(reqwest::Method::POST, at(case.collection), Some(&case.object)).await;
        assert_eq!(code, StatusCode::CREATED, "{}: {created}", case.collection);
        assert_eq!(created["metadata"]["namespace"], "default");
        assert!(created["metadata"]["uid"].is_string());
        let (code, _) = send(reqwest::Method::POST, at(case.collection), Some(&case.object)).await;
        assert_eq!(code, StatusCode::CONFLICT, "{}: a second create", case.collection);

        let (code, got) = send(reqwest::Method::GET, item.clone(), None).await;
        assert_eq!(code, StatusCode::OK, "{item}");
        assert_eq!(got, created);
        for list in [case.collection, case.all] {
            let (code, listed) = send(reqwest::Method::GET, at(list), None).await;
            assert_eq!(code, StatusCode::OK, "{list}");
            assert_eq!(names(&listed), [name], "{list}");
        }

        let mut changed = got.clone();
        *changed.pointer_mut(case.change.0).unwrap() = case.change.1.clone();
        let (code, replaced) = send(reqwest::Method::PUT, item.clone(), Some(&changed)).await;
        assert_eq!(code, StatusCode::OK, "{item}: {replaced}");
        assert_eq!(replaced.pointer(case.change.0), Some(&case.change.1), "{item}");
        assert_ne!(replaced["metadata"]["resourceVersion"], got["metadata"]["resourceVersion"]);

        let (code, _) = send(reqwest::Method::DELETE, item.clone(), None).await;
        assert_eq!(code, StatusCode::OK, "{item}");
        let (code, _) = send(reqwest::Method::GET, item.clone(), None).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{item}");
    }

    // An unknown field is refused with its path, as for ConfigMap.
    let mut deployment = cases().remove(3).object;
    deployment["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("x");
    let (code, status) = send(
        reqwest::Method::POST,
        format!("{api}/apis/apps/v1/namespaces/default/deployments"),
        Some(&deployment),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("spec.template.spec.containers[0].imagee: unknown field"),
        "{status}"
    );
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Web"}});
    let (code, status) = send(
        reqwest::Method::POST,
        format!("{api}/api/v1/namespaces/default/services"),
        Some(&service),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(status["message"].as_str().unwrap().contains("metadata.name"), "{status}");
    // Events and Leases have no status subresource; Deployments do.
    let (code, _) = send(
        reqwest::Method::PUT,
        format!("{api}/apis/coordination.k8s.io/v1/namespaces/default/leases/leader/status"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_cluster_scoped() {
    let sluice = Sluice::start("").await;
    let api = sluice.api.clone();
    let (code, list) = send(reqwest::Method::GET, format!("{api}/api/v1/namespaces"), None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(names(&list), ["default"], "the default namespace exists");
    assert_eq!(list["items"][0]["status"]["phase"], "Active");
    assert_eq!(list["kind"], "NamespaceList");

    // A namespace given in the body is dropped, as the API server drops it.
    let team = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "namespace": "x"}});
    let (code, created) = send(reqwest::Method::POST, format!("{api}/api/v1/namespaces"), Some(&team)).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert!(created["metadata"].get("namespace").is_none(), "{created}");
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    let stored = sluice.dir.path().join("data/objects/core/namespaces/team-a.json");
    assert!(stored.is_file(), "{} holds the namespace", stored.display());

    let item = format!("{api}/api/v1/namespaces/team-a");
    let (code, got) = send(reqwest::Method::GET, item.clone(), None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(got["status"]["phase"], "Active");
    let mut labelled = got.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    let (code, replaced) = send(reqwest::Method::PUT, item.clone(), Some(&labelled)).await;
    assert_eq!(code, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["metadata"]["labels"]["team"], "a");
    let (code, selected) = send(
        reqwest::Method::GET,
        format!("{api}/api/v1/namespaces?labelSelector=team%3Da"),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(names(&selected), ["team-a"]);

    // No namespaced paths for a cluster-scoped kind, no cluster-scoped paths for a namespaced one.
    for path in [
        "/api/v1/namespaces/default/namespaces",
        "/api/v1/namespaces/default/namespaces/team-a",
    ] {
        let (code, _) = send(reqwest::Method::GET, format!("{api}{path}"), None).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
    }
    let broker = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "b"}});
    let (code, _) = send(
        reqwest::Method::POST,
        format!("{api}/apis/eventing.knative.dev/v1/brokers"),
        Some(&broker),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "a broker needs a namespace");

    // Objects may live in a namespace that does not exist.
    let (code, _) = send(
        reqwest::Method::POST,
        format!("{api}/apis/eventing.knative.dev/v1/namespaces/nowhere/brokers"),
        Some(&broker),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);

    let (code, _) = send(reqwest::Method::DELETE, item.clone(), None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = send(reqwest::Method::GET, item, None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(!stored.exists());
    let (code, status) = send(reqwest::Method::DELETE, format!("{api}/api/v1/namespaces/default"), None).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert!(status["message"].as_str().unwrap().contains("may not be deleted"), "{status}");

    // Discovery says which kinds are cluster-scoped.
    let (_, core) = send(reqwest::Method::GET, format!("{api}/api/v1"), None).await;
    let scope = |name: &str| {
        core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {core}"))["namespaced"]
            .clone()
    };
    assert_eq!(
        (scope("namespaces"), scope("events"), scope("services")),
        (json!(false), json!(true), json!(true))
    );
    let (_, groups) = send(reqwest::Method::GET, format!("{api}/apis"), None).await;
    for group in ["apps", "coordination.k8s.io", "events.k8s.io"] {
        assert!(
            groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == group),
            "{group} in {groups}"
        );
    }

    // The default namespace is there again after a restart, and team namespaces stay deleted.
    let mut sluice = sluice;
    sluice.restart_without_manifests().await;
    let (_, list) = send(reqwest::Method::GET, format!("{}/api/v1/namespaces", sluice.api), None).await;
    assert_eq!(names(&list), ["default"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_selected_by_involved_object() {
    let sluice = Sluice::start("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n").await;
    let api = sluice.api.clone();
    let broker = sluice.get_json("/apis/eventing.knative.dev/v1/namespaces/default/brokers/b").await;
    let uid = broker["metadata"]["uid"].as_str().unwrap().to_string();
    let event = |name: &str, about: &str, uid: &str| {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": about, "namespace": "default", "uid": uid},
            "reason": "Ready", "message": format!("{about} is ready"), "type": "Normal",
            "lastTimestamp": "2024-01-01T00:00:00Z", "source": {"component": "sluice"}})
    };
    for e in [event("b.1", "b", &uid), event("b.2", "b", "an-older-b"), event("c.1", "c", "other")] {
        let (code, body) = send(reqwest::Method::POST, format!("{api}/api/v1/namespaces/default/events"), Some(&e)).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    // What `kubectl describe broker b` asks for.
    let selector = format!("involvedObject.name=b,involvedObject.namespace=default,involvedObject.kind=Broker,involvedObject.uid={uid}");
    let url = format!("{api}/api/v1/namespaces/default/events?fieldSelector={}", urlencode(&selector));
    let (code, list) = send(reqwest::Method::GET, url, None).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["b.1"]);
    let url = format!(
        "{api}/api/v1/events?fieldSelector={}",
        urlencode("involvedObject.name=b,source=sluice")
    );
    let (_, list) = send(reqwest::Method::GET, url, None).await;
    assert_eq!(names(&list), ["b.1", "b.2"]);
    let url = format!(
        "{api}/api/v1/namespaces/default/events?fieldSelector={}",
        urlencode("involvedObject.name!=b")
    );
    let (_, list) = send(reqwest::Method::GET, url, None).await;
    assert_eq!(names(&list), ["c.1"]);
    // One stored resource, two kinds: the core Events are `events.k8s.io` Events too, with
    // Kubernetes' field mapping, selected by that kind's own fields, listed, read and watched.
    let v1 = format!("{api}/apis/events.k8s.io/v1/namespaces/default/events");
    let url = format!("{v1}?fieldSelector={}", urlencode("regarding.name=b"));
    let (code, list) = send(reqwest::Method::GET, url, None).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["b.1", "b.2"]);
    let first = &list["items"][0];
    assert_eq!(first["apiVersion"], "events.k8s.io/v1");
    assert_eq!(first["note"], "b is ready");
    assert_eq!(first["regarding"]["uid"], uid.as_str());
    assert_eq!(first["deprecatedSource"]["component"], "sluice");
    assert_eq!(first["deprecatedLastTimestamp"], "2024-01-01T00:00:00Z");
    assert!(first.get("message").is_none() && first.get("involvedObject").is_none(), "{first}");
    let (code, one) = send(reqwest::Method::GET, format!("{v1}/b.1"), None).await;
    assert_eq!((code, &one), (StatusCode::OK, first));
    // One written through core lacks what a new `events.k8s.io` Event needs, and is still
    // writable through `events.k8s.io`, as in the API server.
    let patched = reqwest::Client::new()
        .patch(format!("{v1}/b.2"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"note": "b is ready again"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK, "{}", patched.text().await.unwrap());
    let (_, b2) = send(reqwest::Method::GET, format!("{api}/api/v1/namespaces/default/events/b.2"), None).await;
    assert_eq!(b2["message"], "b is ready again");
    let watched = reqwest::get(format!("{v1}?watch=true&timeoutSeconds=1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let watched: Vec<Value> = watched.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(watched.len(), 3, "{watched:?}");
    assert!(
        watched
            .iter()
            .all(|e| e["type"] == "ADDED" && e["object"]["apiVersion"] == "events.k8s.io/v1" && e["object"]["note"].is_string()),
        "{watched:?}"
    );
    // Written as `events.k8s.io`, read as core, deleted as core, gone from both.
    let written = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "d.1"},
        "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "sluice.dev/test",
        "reportingInstance": "t-1", "action": "Create", "reason": "Created", "type": "Normal",
        "regarding": {"kind": "Broker", "name": "d", "namespace": "default"}, "note": "d made"});
    let (code, created) = send(reqwest::Method::POST, v1.clone(), Some(&written)).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["note"], "d made");
    let core = format!("{api}/api/v1/namespaces/default/events/d.1");
    let (code, as_core) = send(reqwest::Method::GET, core.clone(), None).await;
    assert_eq!(code, StatusCode::OK, "{as_core}");
    assert_eq!(
        (
            &as_core["apiVersion"],
            &as_core["message"],
            &as_core["involvedObject"]["name"],
            &as_core["reportingComponent"]
        ),
        (&json!("v1"), &json!("d made"), &json!("d"), &json!("sluice.dev/test"))
    );
    assert_eq!(as_core["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
    let (code, _) = send(reqwest::Method::POST, v1.clone(), Some(&written)).await;
    assert_eq!(code, StatusCode::CONFLICT, "the same name through the other group exists already");
    let (code, _) = send(reqwest::Method::DELETE, core, None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = send(reqwest::Method::GET, format!("{v1}/d.1"), None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Fields a kind does not support are a 400, as in Kubernetes.
    let url = format!(
        "{api}/apis/eventing.knative.dev/v1/namespaces/default/brokers?fieldSelector={}",
        urlencode("involvedObject.name=b")
    );
    let (code, status) = send(reqwest::Method::GET, url, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{status}");

    if !kubectl_present() {
        return;
    }
    let k = Kubectl {
        kubeconfig: kubeconfig_from_log(&sluice.log()),
        cache: tempfile::tempdir().unwrap(),
    };
    let described = k.ok(&["describe", "broker", "b"]);
    let events = described.split("Events:").nth(1).unwrap_or_else(|| panic!("{described}"));
    assert!(events.contains("Ready") && events.contains("b is ready"), "{described}");
    assert!(!events.contains("c is ready"), "{described}");
    let listed = k.ok(&["get", "events"]);
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "{listed}");
    assert!(
        listed.lines().any(|l| l.contains("broker/b") && l.contains("b is ready")),
        "{listed}"
    );
}

/// Percent-encodes what a query value may not hold as is.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const APP: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: team-b
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
          resources:
            limits:
              cpu: 1
              memory: 128Mi
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: 80
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_lists_and_creates_builtin_kinds() {
    if !kubectl_present() {
        return;
    }
    let sluice = Sluice::start("").await;
    let k = Kubectl {
        kubeconfig: kubeconfig_from_log(&sluice.log()),
        cache: tempfile::tempdir().unwrap(),
    };
    let file = common::write(sluice.dir.path(), "app.yaml", APP);
    let applied = k.ok(&["apply", "-f", file.to_str().unwrap()]);
    for line in ["namespace/team-b created", "deployment.apps/web created", "service/web created"] {
        assert!(applied.contains(line), "{line} in {applied}");
    }
    // A second apply with a new image is a strategic merge patch of the containers list.
    let file = common::write(sluice.dir.path(), "app.yaml", &APP.replace("nginx:1.27", "nginx:1.28"));
    let again = k.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(again.contains("deployment.apps/web configured"), "{again}");
    let yaml: Value = serde_yaml::from_str(&k.ok(&["get", "deploy", "web", "-o", "yaml"])).unwrap();
    let container = &yaml["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.28");
    assert_eq!(container["ports"][0]["containerPort"], 80);
    // A typo is caught (by kubectl's validation or the server's), naming the field.
    let typo = common::write(
        sluice.dir.path(),
        "typo.yaml",
        &APP.replace("containerPort: 80", "containerPortt: 80"),
    );
    let out = k.run(&["apply", "-f", typo.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("containerPortt"), "{err}");

    let listed = k.ok(&["get", "deployments,services,namespaces"]);
    let line = |prefix: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{listed}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("deployment.apps/web")[..4],
        ["deployment.apps/web", "0/2", "0", "0"],
        "{listed}"
    );
    assert_eq!(
        line("service/web")[..5],
        ["service/web", "ClusterIP", "<none>", "<none>", "80/TCP"],
        "{listed}"
    );
    assert_eq!(line("namespace/team-b")[..2], ["namespace/team-b", "Active"], "{listed}");
    assert_eq!(line("namespace/default")[..2], ["namespace/default", "Active"], "{listed}");
    let yaml: Value = serde_yaml::from_str(&k.ok(&["get", "deploy", "web", "-o", "yaml"])).unwrap();
    assert_eq!(yaml["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
    assert_eq!(yaml["spec"]["strategy"]["type"], "RollingUpdate");

    // kubectl's typed creates send protobuf (client-go's typed clients for built-in kinds).
    k.ok(&["create", "namespace", "x"]);
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "x",
        "--from-literal=mode=fast",
        "--from-literal=size=3",
    ]);
    k.ok(&["create", "secret", "generic", "token", "-n", "x", "--from-literal=key=s3cret"]);
    let cm: Value = serde_json::from_str(&k.ok(&["get", "configmap", "settings", "-n", "x", "-o", "json"])).unwrap();
    assert_eq!(cm["data"], serde_json::json!({"mode": "fast", "size": "3"}));
    let secret: Value = serde_json::from_str(&k.ok(&["get", "secret", "token", "-n", "x", "-o", "json"])).unwrap();
    assert_eq!(secret["data"]["key"], "czNjcmV0", "{secret}");
    assert_eq!(secret["type"], "Opaque", "{secret}");
    let namespaces = k.ok(&["get", "namespaces", "-o", "name"]);
    assert!(namespaces.lines().any(|l| l == "namespace/x"), "{namespaces}");
    let deleted = k.ok(&["delete", "namespace", "x"]);
    assert!(deleted.contains(r#"namespace "x" deleted"#), "{deleted}");

    let out = k.run(&["get", "events"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No resources found in default namespace."),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
