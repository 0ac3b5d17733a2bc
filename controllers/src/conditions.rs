//! Knative-shaped status conditions: a `Ready` condition summarising the others, and a
//! `lastTransitionTime` that moves only when a condition's status changes.

use serde_json::{json, Value};

/// One condition to report: `Ok` is True, `Err((reason, message))` is False.
pub struct Condition {
    /// The condition's type, e.g. `ChannelsReady`.
    pub type_: &'static str,
    /// Its outcome.
    pub outcome: Result<(), (String, String)>,
}

impl Condition {
    /// A condition that holds.
    pub fn ok(type_: &'static str) -> Self {
        Self { type_, outcome: Ok(()) }
    }

    /// A condition that does not hold, with the reason and a message.
    pub fn fail(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            outcome: Err((reason.to_string(), message.into())),
        }
    }
}

/// The `conditions` array: `conditions` plus `Ready` (False with the first failure's reason, if
/// any), each keeping its `lastTransitionTime` from `previous` while its status is unchanged.
pub fn conditions(previous: &Value, conditions: Vec<Condition>) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let first_failure = conditions.iter().find_map(|c| c.outcome.as_ref().err().cloned());
    let mut all = conditions;
    all.push(Condition {
        type_: "Ready",
        outcome: first_failure.map_or(Ok(()), Err),
    });
    let out: Vec<Value> = all
        .into_iter()
        .map(|c| {
            let (status, reason, message) = match c.outcome {
                Ok(()) => ("True", None, None),
                Err((r, m)) => ("False", Some(r), Some(m)),
            };
            let before = previous.as_array().into_iter().flatten().find(|p| p["type"] == c.type_);
            let since = match before {
                Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
                _ => json!(now),
            };
            let mut v = json!({"type": c.type_, "status": status, "lastTransitionTime": since});
            if let Some(r) = reason {
                v["reason"] = json!(r);
                v["message"] = json!(message);
            }
            v
        })
        .collect();
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_follows_the_first_failure_and_times_move_only_on_change() {
        let previous = json!([{"type": "ChannelsReady", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]);
        let out = conditions(
            &previous,
            vec![
                Condition::ok("ChannelsReady"),
                Condition::fail("SubscriptionsReady", "NotReady", "sub x"),
            ],
        );
        assert_eq!(out[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(out[2]["type"], "Ready");
        assert_eq!(
            (out[2]["status"].as_str(), out[2]["reason"].as_str()),
            (Some("False"), Some("NotReady"))
        );
    }
}
