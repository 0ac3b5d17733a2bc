//! The Channel and InMemoryChannel controllers (one decision, `sluice_reconcile::channel`):
//! status with the subscriptions added, and an InMemoryChannel's server-owned
//! `spec.subscribers`; requeued when a subscription or an addressable object changes.

use serde_json::Value;
use sluice_crds::messaging::{Channel, InMemoryChannel};
use sluice_reconcile::{channel, Environment};

use crate::core::{Decides, Decision, ADDRESSABLE};
use crate::mirror::Mirror;

/// What a channel's decision reads: its subscriptions and the addressable objects.
const CHANNEL_DEPENDS_ON: &[(&str, &str)] = &[
    ("messaging.knative.dev", "Subscription"),
    ADDRESSABLE[0],
    ADDRESSABLE[1],
    ADDRESSABLE[2],
    ADDRESSABLE[3],
    ADDRESSABLE[4],
];

fn decide(object: &Value, env: &Environment, mirror: &Mirror) -> Decision {
    let d = channel::channel(object, env, mirror);
    Decision {
        status: d.status,
        serving: Some((d.hub.key, None)),
        spec_field: d.spec_subscribers.map(|s| ("subscribers", s)),
    }
}

impl Decides for Channel {
    const DEPENDS_ON: &'static [(&'static str, &'static str)] = CHANNEL_DEPENDS_ON;

    fn decide(object: &Value, env: &Environment, mirror: &Mirror) -> Decision {
        decide(object, env, mirror)
    }
}

impl Decides for InMemoryChannel {
    const DEPENDS_ON: &'static [(&'static str, &'static str)] = CHANNEL_DEPENDS_ON;

    fn decide(object: &Value, env: &Environment, mirror: &Mirror) -> Decision {
        decide(object, env, mirror)
    }
}
