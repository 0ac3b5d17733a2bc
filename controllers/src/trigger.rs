//! The Trigger controller: status from `sluice_reconcile::trigger` (its broker, subscriber,
//! delivery and filter); requeued when a broker or another addressable object changes.

use serde_json::Value;
use sluice_crds::eventing::Trigger;
use sluice_reconcile::{trigger, Environment};

use crate::core::{Decides, Decision, ADDRESSABLE};
use crate::mirror::Mirror;

impl Decides for Trigger {
    const DEPENDS_ON: &'static [(&'static str, &'static str)] = ADDRESSABLE;

    fn decide(object: &Value, env: &Environment, mirror: &Mirror) -> Decision {
        let d = trigger::trigger(object, env, mirror);
        Decision {
            status: d.status,
            serving: d.subscriber.map(|(hub, config)| (hub, Some((config.id, config.generation)))),
            spec_field: None,
        }
    }
}
