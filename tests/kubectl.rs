//! End-to-end: the real `kubectl` against `sluice run`, through the kubeconfig it writes into
//! `--data-dir`: discovery (`api-resources`), server-side tables (`get`), `get -o yaml`,
//! OpenAPI (`explain`, and the client-side validation of `apply`), `apply -f` of a folder of
//! Knative manifests and `delete`.
//!
//! Without kubectl on the PATH the test fails when `CI=true` and is skipped otherwise.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kubeconfig_from_log, kubectl_present, Kubectl, Sluice};

/// The words of the first line of `table` (its header).
fn header(table: &str) -> Vec<&str> {
    table.lines().next().unwrap_or("").split_whitespace().collect()
}

/// The line of `table` whose first word is `name`, as words.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_discovers_lists_explains_applies_and_deletes() {
    if !kubectl_present() {
        return;
    }
    let sluice = Sluice::start("").await;
    let kubeconfig = kubeconfig_from_log(&sluice.log());
    assert_eq!(kubeconfig, sluice.dir.path().join("data/kubeconfig"));
    let k = Kubectl {
        kubeconfig,
        cache: tempfile::tempdir().unwrap(),
    };

    let version = k.ok(&["version"]);
    assert!(version.contains("Server Version: v1.32.0-sluice"), "{version}");

    let resources = k.ok(&["api-resources"]);
    assert_eq!(header(&resources), ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]);
    assert_eq!(row(&resources, "brokers"), ["brokers", "eventing.knative.dev/v1", "true", "Broker"]);
    assert_eq!(
        row(&resources, "triggers"),
        ["triggers", "eventing.knative.dev/v1", "true", "Trigger"]
    );
    assert_eq!(
        row(&resources, "inmemorychannels"),
        ["inmemorychannels", "imc", "messaging.knative.dev/v1", "true", "InMemoryChannel"]
    );
    // Both Services are listed, the core one first (as on a cluster with Knative Serving).
    let services: Vec<Vec<&str>> = resources
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first() == Some(&"services"))
        .collect();
    assert_eq!(
        services,
        [
            vec!["services", "svc", "v1", "true", "Service"],
            vec!["services", "kservice,ksvc", "serving.knative.dev/v1", "true", "Service"]
        ]
    );
    let eventing = k.ok(&["api-resources", "--categories", "eventing", "-o", "name"]);
    assert!(eventing.lines().any(|l| l == "brokers.eventing.knative.dev"), "{eventing}");

    // Validated on the client against /openapi/v2, then created (GET 404, POST).
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let applied = k.ok(&["apply", "-f", quickstart.to_str().unwrap()]);
    for line in [
        "broker.eventing.knative.dev/default created",
        "trigger.eventing.knative.dev/new-orders created",
        "trigger.eventing.knative.dev/payments created",
    ] {
        assert!(applied.contains(line), "{applied}");
    }
    // A misspelled field is caught by kubectl's own validation, before any request.
    let bad = common::write(
        sluice.dir.path(),
        "bad.yaml",
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: bad\nspec:\n  broker: default\n  subscriberr:\n    uri: http://127.0.0.1:9/\n",
    );
    let out = k.run(&["apply", "-f", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(r#"unknown field "subscriberr""#), "{err}");

    let brokers = k.ok(&["get", "brokers"]);
    assert_eq!(header(&brokers), ["NAME", "URL", "AGE", "READY", "REASON", "CLASS"]);
    let default = row(&brokers, "default");
    assert_eq!(default[1], format!("{}/default/default", sluice.gateway));
    assert_eq!(&default[3..], ["True", "MTChannelBasedBroker"], "{brokers}");

    let triggers = k.ok(&["get", "triggers"]);
    assert_eq!(header(&triggers), ["NAME", "BROKER", "SUBSCRIBER_URI", "AGE", "READY", "REASON"]);
    assert_eq!(
        row(&triggers, "payments")[..3],
        ["payments", "default", "http://127.0.0.1:9099/payments"]
    );

    let yaml = k.ok(&["get", "trigger", "payments", "-o", "yaml"]);
    let trigger: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(trigger["kind"], "Trigger");
    assert_eq!(trigger["metadata"]["namespace"], "default");
    assert_eq!(trigger["spec"]["broker"], "default");
    assert!(trigger["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string());
    let ready = trigger["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");

    let explained = k.ok(&["explain", "trigger.spec.filters"]);
    assert!(explained.contains("FIELD: filters <[]Object>"), "{explained}");
    for field in ["cesql\t<string>", "exact\t<map[string]string>", "all\t<[]Object>"] {
        assert!(explained.contains(field), "{field} in {explained}");
    }
    let explained = k.ok(&["explain", "brokers"]);
    assert!(
        explained.contains("KIND:       Broker") && explained.contains("metadata\t<ObjectMeta>"),
        "{explained}"
    );

    let selected = k.ok(&["get", "triggers", "-l", "eventing.knative.dev/broker=default", "-o", "name"]);
    assert_eq!(selected.lines().count(), 2, "{selected}");
    let out = k.run(&["get", "triggers", "-l", "app=none"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No resources found"));
    let named = k.ok(&["get", "triggers", "--field-selector", "metadata.name=payments", "-o", "name"]);
    assert_eq!(named.trim(), "trigger.eventing.knative.dev/payments");

    let deleted = k.ok(&["delete", "broker", "default"]);
    assert!(deleted.contains(r#"broker.eventing.knative.dev "default" deleted"#), "{deleted}");
    let out = k.run(&["get", "brokers"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No resources found in default namespace."));
    assert_eq!(
        row(&k.ok(&["get", "triggers"]), "payments")[4],
        "False",
        "the trigger lost its broker"
    );
}

/// kubectl's writes beyond create: a second `apply` that changes an object (merge patch with
/// kubectl's last-applied annotation), `label`, `annotate`, `patch --type merge|json`,
/// `apply --server-side`, `wait --for=condition=Ready`, and `get --watch` seeing a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patches_labels_waits_and_watches() {
    if !kubectl_present() {
        return;
    }
    let sluice = Sluice::start("").await;
    let k = Kubectl {
        kubeconfig: kubeconfig_from_log(&sluice.log()),
        cache: tempfile::tempdir().unwrap(),
    };
    let manifest = |uri: &str| {
        format!("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\nspec:\n  broker: default\n  subscriber:\n    uri: {uri}\n")
    };
    let file = common::write(sluice.dir.path(), "t.yaml", &manifest("http://127.0.0.1:9/a"));
    k.ok(&["apply", "-f", file.to_str().unwrap()]);
    k.ok(&["wait", "--for=condition=Ready", "trigger/t", "--timeout=20s"]);

    // A watch started now sees the changes below.
    let mut watch = Command::new("kubectl")
        .arg("--cache-dir")
        .arg(k.cache.path())
        .args(["get", "triggers", "--watch", "-o", "name"])
        .env("KUBECONFIG", &k.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    common::write(sluice.dir.path(), "t.yaml", &manifest("http://127.0.0.1:9/b"));
    let applied = k.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(applied.contains("trigger.eventing.knative.dev/t configured"), "{applied}");
    let yaml: serde_json::Value = serde_yaml::from_str(&k.ok(&["get", "trigger", "t", "-o", "yaml"])).unwrap();
    assert_eq!(yaml["spec"]["subscriber"]["uri"], "http://127.0.0.1:9/b");

    k.ok(&["label", "trigger", "t", "team=payments"]);
    k.ok(&["annotate", "trigger", "t", "owner=alice"]);
    k.ok(&[
        "patch",
        "trigger",
        "t",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"subscriber":{"uri":"http://127.0.0.1:9/c"}}}"#,
    ]);
    k.ok(&[
        "patch",
        "trigger",
        "t",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/tier","value":"1"}]"#,
    ]);
    let yaml: serde_json::Value = serde_yaml::from_str(&k.ok(&["get", "trigger", "t", "-o", "yaml"])).unwrap();
    assert_eq!(yaml["metadata"]["labels"]["team"], "payments");
    assert_eq!(yaml["metadata"]["labels"]["tier"], "1");
    assert_eq!(yaml["metadata"]["annotations"]["owner"], "alice");
    assert_eq!(yaml["spec"]["subscriber"]["uri"], "http://127.0.0.1:9/c");
    assert_eq!(
        k.ok(&["get", "triggers", "-l", "team=payments", "-o", "name"]).trim(),
        "trigger.eventing.knative.dev/t"
    );

    let ssa = common::write(
        sluice.dir.path(),
        "ssa.yaml",
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: ssa\nspec:\n  broker: default\n  subscriber:\n    uri: http://127.0.0.1:9/ssa\n",
    );
    let out = k.ok(&["apply", "--server-side", "-f", ssa.to_str().unwrap()]);
    assert!(out.contains("trigger.eventing.knative.dev/ssa serverside-applied"), "{out}");
    k.ok(&["wait", "--for=condition=Ready", "trigger/ssa", "--timeout=20s"]);

    // The watch saw the trigger change and the new one arrive.
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !seen.iter().any(|l: &String| l.ends_with("/ssa")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("kubectl get --watch did not see the new trigger: {seen:?}"),
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    // The listed trigger, then a line per change of it.
    assert!(seen.iter().filter(|l| l.ends_with("/t")).count() > 1, "{seen:?}");

    // Cascading deletes through ownerReferences: the trigger `ssa` owned by the broker.
    let uid = k.ok(&["get", "broker", "default", "-o", "jsonpath={.metadata.uid}"]);
    let owner = format!(
        r#"[{{"op":"add","path":"/metadata/ownerReferences","value":[{{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","name":"default","uid":"{uid}","blockOwnerDeletion":true}}]}}]"#
    );
    k.ok(&["patch", "trigger", "ssa", "--type", "json", "-p", &owner]);
    let out = k.ok(&["delete", "broker", "default", "--cascade=foreground"]);
    assert!(out.contains(r#"broker.eventing.knative.dev "default" deleted"#), "{out}");
    let left = k.ok(&["get", "triggers", "-o", "name"]);
    assert_eq!(
        left.trim(),
        "trigger.eventing.knative.dev/t",
        "the owned trigger went with its broker"
    );
}
