//! End-to-end: two `sluice controller` processes against one API (a `sluice run`): one takes
//! the leader-election Lease and runs the controllers, the other waits; killing the leader
//! hands the Lease over.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Sluice;
use serde_json::Value;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases/sluice-controller";

struct Replica {
    identity: &'static str,
    child: Child,
    log: std::path::PathBuf,
}

impl Replica {
    fn start(sluice: &Sluice, identity: &'static str) -> Replica {
        let log = sluice.dir.path().join(format!("controller-{identity}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "controller",
                "--gateway-url",
                &sluice.gateway,
                "--lease-namespace",
                "default",
                "--lease-duration",
                "1500ms",
            ])
            .arg("--kubeconfig")
            .arg(sluice.dir.path().join("data/kubeconfig"))
            .args(["--identity", identity])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Replica { identity, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(sluice: &Sluice) -> Option<(String, i64)> {
    let lease: Value = reqwest::get(format!("{}{LEASE}", sluice.api)).await.ok()?.json().await.ok()?;
    Some((
        lease["spec"]["holderIdentity"].as_str()?.to_string(),
        lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0),
    ))
}

async fn wait_for_holder(sluice: &Sluice, accept: impl Fn(&str) -> bool) -> (String, i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((h, t)) = holder(sluice).await {
            if accept(&h) {
                return (h, t);
            }
        }
        assert!(Instant::now() < deadline, "no expected lease holder: {:?}", holder(sluice).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_controller_leads_and_killing_it_hands_over() {
    let sluice = Sluice::start("").await;
    let mut replicas = vec![Replica::start(&sluice, "a"), Replica::start(&sluice, "b")];
    let (leader, _) = wait_for_holder(&sluice, |h| h == "a" || h == "b").await;
    // Let the follower find the lease held.
    let deadline = Instant::now() + Duration::from_secs(10);
    let follower = replicas.iter().find(|r| r.identity != leader).unwrap();
    while !follower.log().contains("another controller leads; waiting") {
        assert!(Instant::now() < deadline, "follower log:\n{}", follower.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lead = replicas.iter().find(|r| r.identity == leader).unwrap();
    assert!(lead.log().contains("became leader"), "{}", lead.log());
    assert!(!follower.log().contains("became leader"), "{}", follower.log());

    // SIGKILL: no goodbye; the follower takes over once the lease expires.
    let index = replicas.iter().position(|r| r.identity == leader).unwrap();
    drop(replicas.remove(index));
    let (next, transitions) = wait_for_holder(&sluice, |h| h != leader).await;
    assert_eq!(next, replicas[0].identity);
    assert!(transitions >= 1, "leaseTransitions {transitions}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replicas[0].log().contains("became leader") {
        assert!(Instant::now() < deadline, "{}", replicas[0].log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
