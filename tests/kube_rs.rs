//! End-to-end: kube-rs, the client the controllers are to be written with, against the API that
//! `sluice run` serves, through the kubeconfig it writes: typed create, get, list, status
//! patches through the subresource, a stale write's 409, the `watcher` stream, and a
//! `Controller` whose reconcile writes status, as every Sluice controller will.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Sluice;
use futures_util::StreamExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use sluice_crds::eventing::{Broker, BrokerSpec};

async fn client(sluice: &Sluice) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(sluice.dir.path().join("data/kubeconfig")).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn broker(name: &str) -> Broker {
    Broker::new(name, BrokerSpec::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_api_and_watcher() {
    let sluice = Sluice::start("").await;
    let brokers: Api<Broker> = Api::namespaced(client(&sluice).await, "default");

    let created = brokers.create(&PostParams::default(), &broker("a")).await.unwrap();
    assert!(created.uid().is_some() && created.resource_version().is_some());
    let listed = brokers.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.iter().map(|b| b.name_any()).collect::<Vec<_>>(), ["a"]);
    assert!(listed.metadata.resource_version.is_some());

    // Status through the subresource, as controllers write it.
    let patch = json!({"status": {"observedGeneration": 1, "annotations": {"written-by": "kube-rs"}}});
    let patched = brokers
        .patch_status("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let status = serde_json::to_value(&patched.status).unwrap();
    assert_eq!(status["annotations"]["written-by"], "kube-rs", "{status}");

    // A stale write is a 409 the client reports as such.
    let mut stale = created.clone();
    stale.metadata.labels = Some([("team".to_string(), "x".to_string())].into());
    let err = brokers.replace("a", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(status) if status.code == 409), "{err:?}");

    // The watcher lists, then follows: a new broker arrives, a deleted one goes.
    let mut events = watcher(brokers.clone(), watcher::Config::default()).applied_objects().boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.name_any(), "a");
    brokers.create(&PostParams::default(), &broker("b")).await.unwrap();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the watcher sees b")
            .unwrap()
            .unwrap();
        if next.name_any() == "b" {
            break;
        }
    }
    let mut deletions = watcher(brokers.clone(), watcher::Config::default()).boxed();
    // Delete once the watcher has listed, so that the delete comes as a watch event.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), deletions.next())
            .await
            .expect("the watcher lists")
            .unwrap()
            .unwrap();
        if matches!(event, watcher::Event::InitDone) {
            break;
        }
    }
    brokers.delete("b", &DeleteParams::default()).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), deletions.next())
            .await
            .expect("the watcher sees the delete")
            .unwrap()
            .unwrap()
        {
            watcher::Event::Delete(b) if b.name_any() == "b" => break,
            _ => continue,
        }
    }
}

/// The shape every Sluice controller will take: a kube-rs `Controller` over a typed kind,
/// whose reconcile patches status through `/status`; here a toy one that records the
/// generation it saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kube_rs_controller_reconciles_against_the_embedded_api() {
    let sluice = Sluice::start("").await;
    let client = client(&sluice).await;
    let brokers: Api<Broker> = Api::namespaced(client.clone(), "default");
    brokers.create(&PostParams::default(), &broker("c")).await.unwrap();

    async fn reconcile(b: Arc<Broker>, api: Arc<Api<Broker>>) -> Result<Action, kube::Error> {
        let patch = json!({"status": {"annotations": {"seen-generation": b.metadata.generation.unwrap_or(0).to_string()}}});
        api.patch_status(&b.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<Broker>, _: &kube::Error, _: Arc<Api<Broker>>) -> Action {
        Action::requeue(Duration::from_millis(100))
    }
    let controller = Controller::new(brokers.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(brokers.clone()))
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let b = brokers.get("c").await.unwrap();
        let seen = serde_json::to_value(&b.status).unwrap()["annotations"]["seen-generation"].clone();
        if seen == "1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the controller did not reconcile: {:?}",
            b.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.abort();
}
