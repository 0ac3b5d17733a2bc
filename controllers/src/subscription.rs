//! The Subscription controller: status from `sluice_reconcile::subscription` (its channel,
//! subscriber, reply and delivery); requeued when a channel or another addressable object
//! changes.

use serde_json::Value;
use sluice_crds::messaging::Subscription;
use sluice_reconcile::{subscription, Environment};

use crate::core::{Decides, Decision, ADDRESSABLE};
use crate::mirror::Mirror;

impl Decides for Subscription {
    const DEPENDS_ON: &'static [(&'static str, &'static str)] = ADDRESSABLE;

    fn decide(object: &Value, env: &Environment, mirror: &Mirror) -> Decision {
        let d = subscription::subscription(object, env, mirror);
        Decision {
            status: d.status,
            serving: d.subscriber.map(|config| (d.channel, Some((config.id, config.generation)))),
            spec_field: None,
        }
    }
}
