//! End-to-end: `sluice validate` and `sluice crds` as a user runs them.

use std::process::Command;

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap()
}

#[test]
fn validate_reports_field_paths_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n").unwrap();
    let out = sluice(&["validate", "-f", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipping ServiceAccount"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\nspec:\n  broker: default\n  filter:\n    attributes:\n      Bad-Key: x\n  subscriber:\n    uri: http://x.example/\n  delivery:\n    backoffDelay: 2s\n---\nkind: [oops\n").unwrap();
    let out = sluice(&["validate", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("spec.filter.attributes"), "{text}");
    assert!(text.contains("spec.delivery.backoffDelay"), "{text}");
    assert!(text.contains("document 2"), "{text}");

    // A misspelt Knative kind is an error, not a skipped object; a duration too large for the
    // clock is an error, not a crash.
    let odd = dir.path().join("odd.yaml");
    std::fs::write(&odd, "apiVersion: eventing.knative.dev/v1\nkind: Triger\nmetadata:\n  name: t\n---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\nspec:\n  delivery:\n    backoffDelay: P99999999999999999999Y\n").unwrap();
    let out = sluice(&["validate", "-f", odd.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#"kind: no kind "Triger" in eventing.knative.dev/v1 (did you mean "Trigger"?)"#),
        "{text}"
    );
    assert!(
        text.contains("spec.delivery.backoffDelay: invalid value: P99999999999999999999Y: not an ISO-8601 duration (out of range)"),
        "{text}"
    );

    let missing = sluice(&["validate", "-f", "/nonexistent/path.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn crds_output_matches_the_committed_copy() {
    let out = sluice(&["crds"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

/// Every command exits quietly when its reader goes away, as Unix tools do: no panic, no
/// error, exit 0.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("crds")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the first write
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Usage errors name what is missing in words, and every command's errors start with `error:`.
#[test]
fn usage_and_server_errors_read_alike() {
    let out = sluice(&["send"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.starts_with("error: ") && text.contains("--to URL or --broker NAME"), "{text}");
    let help = String::from_utf8_lossy(&sluice(&["send", "--help"]).stdout).to_string();
    assert!(
        help.contains("--type <TYPE>") && help.contains("-e, --extension <NAME=VALUE>"),
        "{help}"
    );
    let help = String::from_utf8_lossy(&sluice(&["run", "--help"]).stdout).to_string();
    assert!(help.contains("Without it nothing is persisted"), "{help}");
    // No server listens here: get and send --broker fail the same way.
    for args in [
        &["get", "brokers", "--server", "http://127.0.0.1:9"][..],
        &["send", "--broker", "b", "--server", "http://127.0.0.1:9"],
    ] {
        let out = sluice(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.starts_with("error: cannot reach the sluice API"), "{args:?}: {text}");
    }
}
