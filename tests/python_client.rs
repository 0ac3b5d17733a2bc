//! End-to-end: the official Python Kubernetes client (`kubernetes` on PyPI), a client no one
//! here wrote, against `sluice run` through the kubeconfig it writes into `--data-dir`. The
//! script `tests/python/kube_client.py` creates, lists (label and field selectors), gets,
//! waits for Ready, watches, patches (merge, JSON, server-side apply, the `/status`
//! subresource), replaces with a stale resourceVersion (409) and deletes Knative objects
//! through `CustomObjectsApi`, and does a ConfigMap round trip through `CoreV1Api`. Each step
//! prints an `ok:` line; a deviation prints `FAIL:` with what was expected and what came.
//!
//! The interpreter is `SLUICE_PYTHON` (set by `scripts/test`, which installs the client into
//! `.venv/`), else `.venv/bin/python` of the checkout. Without an interpreter that imports
//! `kubernetes` the test fails when `CI=true` and is skipped otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Sluice;

/// The interpreter to use, if it can import `kubernetes`; on CI its absence fails the test.
fn python_with_client() -> Option<PathBuf> {
    let python = match std::env::var_os("SLUICE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    };
    let missing = match Command::new(&python)
        .args(["-c", "import kubernetes; print(kubernetes.__version__)"])
        .output()
    {
        Err(e) => Some(format!("no Python interpreter at {} ({e})", python.display())),
        Ok(out) if !out.status.success() => Some(format!(
            "the Python package kubernetes is not installed for {}: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("")
        )),
        Ok(out) => {
            eprintln!("python client: kubernetes {}", String::from_utf8_lossy(&out.stdout).trim());
            None
        }
    };
    match missing {
        None => Some(python),
        Some(what) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{what}; CI=true requires this test to run (scripts/test installs it into .venv/)"
            );
            eprintln!("skipped: {what} (run scripts/test, or set SLUICE_PYTHON)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kubernetes_client_creates_lists_watches_patches_and_deletes() {
    let Some(python) = python_with_client() else {
        return;
    };
    // An object from the start, so the script's first list has a resourceVersion past 0 and its
    // watch replays exactly what came after it.
    let sluice =
        Sluice::start("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: existing\n  namespace: default\n").await;
    let kubeconfig = common::kubeconfig_from_log(&sluice.log());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/kube_client.py");
    let output_path = sluice.dir.path().join("python.out");
    let output = std::fs::File::create(&output_path).unwrap();
    let mut child = Command::new(&python)
        .arg(&script)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--broker-url")
        .arg(format!("{}/default/py-broker", sluice.gateway))
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .expect("run the Python script");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = std::fs::read_to_string(&output_path).unwrap_or_default();
    eprintln!("{out}");
    let status = status.unwrap_or_else(|| panic!("the Python script ran past 120 s:\n{out}\nsluice log:\n{}", sluice.log()));
    assert!(status.success(), "the Python script failed ({status}):\n{out}");
    assert_eq!(out.lines().last(), Some("python client: all steps passed"), "{out}");
    for step in [
        "ok: create_namespaced_custom_object broker py-broker",
        "ok: list_namespaced_custom_object with label_selector: [py-trigger]",
        "ok: trigger py-trigger and broker py-broker Ready=True",
        "ok: patch_namespaced_custom_object (merge patch)",
        "ok: patch_namespaced_custom_object_status",
        "ok: replace_namespaced_custom_object with a stale resourceVersion: ApiException 409",
        "ok: watch from resourceVersion",
        "ok: watch of configmaps",
        "ok: delete_namespaced_config_map",
    ] {
        assert!(out.lines().any(|l| l.starts_with(step)), "no line {step:?} in\n{out}");
    }
    let watched = out.lines().find(|l| l.starts_with("ok: watch from resourceVersion")).unwrap();
    assert!(watched.contains("ADDED MODIFIED") && watched.ends_with("DELETED"), "{watched}");
}
