//! One controller per kind this build stores but does not run (sources, serving, Kafka kinds):
//! each object gets `Ready=False`, reason `NotServedYet` (`sluice_reconcile::unserved`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller};
use kube::{Client, ResourceExt};
use sluice_crds::registry::{kinds, KindInfo};

use crate::status::write_status;
use crate::Error;

/// The kinds with a controller of their own, besides the sources whose adapters run
/// (`sluice_reconcile::source::RUN`).
const SERVED: [&str; 13] = [
    "Broker",
    "Trigger",
    "Channel",
    "InMemoryChannel",
    "Subscription",
    "Sequence",
    "Parallel",
    "Service",
    "Configuration",
    "Route",
    "Revision",
    "ContainerSource",
    "SinkBinding",
];

/// The Knative kinds stored without being run.
pub fn unserved_kinds() -> impl Iterator<Item = &'static KindInfo> {
    kinds()
        .iter()
        .filter(|k| k.is_knative() && k.status_subresource && !SERVED.contains(&k.kind) && !sluice_reconcile::source::RUN.contains(&k.kind))
}

struct Context {
    client: Client,
    resource: ApiResource,
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    if object.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let value = serde_json::to_value(object.as_ref())?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &object.namespace().unwrap_or_default(), &ctx.resource);
    write_status(&api, &value, &sluice_reconcile::unserved::not_served(&value)).await?;
    Ok(Action::await_change())
}

fn error_policy(object: Arc<DynamicObject>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(object = %object.name_any(), %error, "writing the status of an object not served failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

/// Runs a controller for every kind stored without being run.
pub async fn run(client: Client) {
    let controllers = unserved_kinds().map(|info| {
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(info.group, info.version, info.kind), info.plural);
        let ctx = Arc::new(Context {
            client: client.clone(),
            resource: resource.clone(),
        });
        Controller::new_with(
            Api::<DynamicObject>::all_with(client.clone(), &resource),
            watcher::Config::default(),
            resource,
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
    });
    futures_util::future::join_all(controllers).await;
}
