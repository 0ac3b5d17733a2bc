//! The Broker controller: status from `sluice_reconcile::broker`; requeued when an object its
//! dead-letter sink can name changes.

use serde_json::Value;
use sluice_crds::eventing::Broker;
use sluice_reconcile::{broker, Environment};

use crate::core::{Decides, Decision, ADDRESSABLE};
use crate::mirror::Mirror;

impl Decides for Broker {
    const DEPENDS_ON: &'static [(&'static str, &'static str)] = ADDRESSABLE;

    fn decide(object: &Value, env: &Environment, mirror: &Mirror) -> Decision {
        let d = broker::broker(object, env, mirror);
        Decision {
            status: d.status,
            serving: d.hub.map(|h| (h.key, None)),
            spec_field: None,
        }
    }
}
