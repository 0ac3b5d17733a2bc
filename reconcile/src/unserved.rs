//! The status of objects of kinds Sluice stores but does not run yet (sources, serving, Kafka
//! kinds): `Ready=False` with reason `NotServedYet`, so `kubectl wait` and users see why.

use serde_json::Value;
use sluice_crds::duck::ConditionCheck as Cond;

use crate::status_with;

/// The status of an object whose kind this build stores without running it.
pub fn not_served(obj: &Value) -> Value {
    let kind = obj["kind"].as_str().unwrap_or("");
    let msg = format!("{kind} is accepted and stored, but this build does not run it yet");
    status_with(obj, vec![Cond::fail("Ready", "NotServedYet", msg)], serde_json::Map::new())
}
