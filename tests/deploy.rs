//! The install manifests in `deploy/`: exactly what `sluice crds` and `sluice deploy` print, and
//! valid against Kubernetes' own schemas, checked with the
//! PyPI package `kubernetes-validate` (installed by `scripts/test` into `.venv/`; its absence
//! fails the test when `CI=true` and skips it otherwise).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn deploy_yaml_is_what_the_code_generates() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).arg("deploy").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(repo("deploy/sluice.yaml")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        committed,
        "run `sluice deploy > deploy/sluice.yaml`"
    );
}

#[test]
fn install_manifests_are_valid_kubernetes() {
    let python = std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo(".venv/bin/python"));
    let probe = Command::new(&python).args(["-m", "kubernetes_validate", "--version"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let what = format!("kubernetes-validate is not installed for {}", python.display());
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what}; CI=true requires this test (scripts/test installs it)"
        );
        eprintln!("skipped: {what} (run scripts/test, or set SLUICE_PYTHON)");
        return;
    }
    for file in ["deploy/crds.yaml", "deploy/sluice.yaml"] {
        let out = Command::new(&python)
            .args(["-m", "kubernetes_validate", "--strict", "--kubernetes-version", "1.32.0"])
            .arg(repo(file))
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{file} is not valid Kubernetes:\n{text}");
        assert!(text.contains("passed"), "{text}");
    }
}
