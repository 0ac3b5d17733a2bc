//! Addresses and deliveries: resolving a Destination to a URL (the address of the object it
//! refers to, plus its relative `uri`), and the delivery a Trigger or Subscription runs with.

use sluice_crds::duck::{DeliverySpec, Destination};
use sluice_delivery::{RetryPolicy, Target};

use crate::{Environment, Lookup};

/// The URL of a broker's ingress on the gateway.
pub fn broker_url(env: &Environment, namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", env.gateway())
}

/// The URL of a channel's ingress on the gateway.
pub fn channel_url(env: &Environment, namespace: &str, name: &str) -> String {
    format!("{}/channels/{namespace}/{name}", env.gateway())
}

/// The address of an addressable object: a Broker, a channel, or a flow (its first channel).
/// `Err` says why there is none.
fn address_of(group: &str, kind: &str, namespace: &str, name: &str, env: &Environment, world: &dyn Lookup) -> Result<String, String> {
    let what = format!("{kind} {namespace}/{name}");
    let url = match (group, kind) {
        ("eventing.knative.dev", "Broker") => broker_url(env, namespace, name),
        ("messaging.knative.dev", "Channel" | "InMemoryChannel") => channel_url(env, namespace, name),
        ("flows.knative.dev", "Sequence") => channel_url(env, namespace, &format!("{name}-kn-sequence-0")),
        ("flows.knative.dev", "Parallel") => channel_url(env, namespace, &format!("{name}-kn-parallel")),
        // A Service's address is its Route's URL, once its status has one.
        ("serving.knative.dev", "Service") => {
            let service = world.get(group, kind, namespace, name).ok_or_else(|| format!("{what} not found"))?;
            return service["status"]["address"]["url"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{what} has no address yet"));
        }
        _ => {
            return Err(format!(
                "{what} is not addressable in embedded mode (kind {kind} of group {group:?})"
            ))
        }
    };
    match world.get(group, kind, namespace, name) {
        Some(_) => Ok(url),
        None => Err(format!("{what} not found")),
    }
}

/// Resolves a Destination in `namespace` to a URL: the address of its `ref` (joined with a
/// relative `uri`), or its absolute `uri`.
pub fn resolve(dest: &Destination, namespace: &str, env: &Environment, world: &dyn Lookup) -> Result<String, String> {
    let base = match &dest.r#ref {
        None => None,
        Some(r) => {
            let ns = r.namespace.as_deref().unwrap_or(namespace);
            Some(address_of(r.api_group(), &r.kind, ns, &r.name, env, world)?)
        }
    };
    match (base, dest.uri.as_deref()) {
        (Some(b), None) => Ok(b),
        (Some(b), Some(rel)) => {
            let base = url::Url::parse(&format!("{}/", b.trim_end_matches('/'))).map_err(|e| e.to_string())?;
            base.join(rel.trim_start_matches('/'))
                .map(|u| u.to_string())
                .map_err(|e| e.to_string())
        }
        (None, Some(uri)) => Ok(uri.to_string()),
        (None, None) => Err("destination has neither ref nor uri".into()),
    }
}

/// Resolved delivery settings for one subscriber.
#[derive(Debug)]
pub struct ResolvedDelivery {
    /// Retries and backoff.
    pub policy: RetryPolicy,
    /// Where failed events go.
    pub dead_letter: Option<Target>,
    /// The dead-letter sink's URL, for status.
    pub dead_letter_uri: Option<String>,
}

/// Why a delivery does not resolve: the condition reason and the message.
pub type DeliveryError = (String, String);

/// Resolves a delivery spec (its retry policy and dead-letter sink); `path` names it in errors.
pub fn resolve_delivery(
    spec: Option<&DeliverySpec>,
    path: &str,
    namespace: &str,
    env: &Environment,
    world: &dyn Lookup,
) -> Result<ResolvedDelivery, DeliveryError> {
    let Some(spec) = spec else {
        return Ok(ResolvedDelivery {
            policy: RetryPolicy::default(),
            dead_letter: None,
            dead_letter_uri: None,
        });
    };
    let policy = RetryPolicy::from_spec(spec, path).map_err(|errs| {
        (
            "DeliveryInvalid".to_string(),
            errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        )
    })?;
    let (dead_letter, dead_letter_uri) = match &spec.dead_letter_sink {
        None => (None, None),
        Some(d) => {
            let url = resolve(d, namespace, env, world).map_err(|m| ("Unable to get the dead letter sink's URI".to_string(), m))?;
            (
                Some(Target::parse(&url).map_err(|m| ("DeadLetterSinkResolveFailed".to_string(), m))?),
                Some(url),
            )
        }
    };
    Ok(ResolvedDelivery {
        policy,
        dead_letter,
        dead_letter_uri,
    })
}

/// The status of a Broker or channel as an addressable with a delivery: `address(es)` at
/// `url`, and `DeadLetterSinkResolved` with `deadLetterSinkUri` from its `spec.delivery`.
pub(crate) fn addressable_with_delivery(
    obj: &serde_json::Value,
    url: &str,
    env: &Environment,
    world: &dyn Lookup,
    conds: &mut Vec<sluice_crds::duck::ConditionCheck>,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) {
    use sluice_crds::duck::ConditionCheck as Cond;
    let delivery: Option<DeliverySpec> = crate::decode(&obj["spec"]["delivery"]);
    match resolve_delivery(delivery.as_ref(), "spec.delivery", crate::meta_str(obj, "namespace"), env, world) {
        Ok(rd) => {
            conds.push(Cond::ok("DeadLetterSinkResolved"));
            if let Some(u) = rd.dead_letter_uri {
                extra.insert("deadLetterSinkUri".into(), serde_json::json!(u));
            }
        }
        Err((reason, msg)) => conds.push(Cond::fail("DeadLetterSinkResolved", &reason, msg)),
    }
    extra.insert("address".into(), serde_json::json!({"name": "http", "url": url}));
    extra.insert("addresses".into(), serde_json::json!([{"name": "http", "url": url}]));
}

/// Whether a delivery spec sets any option of the retry group (SUB-03).
pub(crate) fn sets_retry_group(d: &DeliverySpec) -> bool {
    d.retry.is_some() || d.backoff_policy.is_some() || d.backoff_delay.is_some() || d.timeout.is_some() || d.retry_after_max.is_some()
}

/// The delivery a Trigger or Subscription runs with (BRK-01, SUB-03): the retry group
/// (retry, backoff, timeout, retryAfterMax, with the format) comes whole from its own spec when
/// `own_retry_group`, else from the broker's or channel's; the dead-letter sink is resolved on
/// its own, its own else the parent's.
pub(crate) fn effective_delivery(own: Option<DeliverySpec>, parent: Option<DeliverySpec>, own_retry_group: bool) -> Option<DeliverySpec> {
    let own_sink = own.as_ref().and_then(|d| d.dead_letter_sink.clone());
    let parent_sink = parent.as_ref().and_then(|d| d.dead_letter_sink.clone());
    let retry_group = if own_retry_group { own } else { parent };
    let dead_letter_sink = own_sink.or(parent_sink);
    match (retry_group, dead_letter_sink) {
        (None, None) => None,
        (group, dead_letter_sink) => Some(DeliverySpec {
            dead_letter_sink,
            ..group.unwrap_or_default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{env, obj, world};

    fn dest(v: serde_json::Value) -> Destination {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn destinations_resolve_to_addresses_of_existing_objects() {
        let w = world(vec![
            obj("Broker", "eventing.knative.dev", "b", json!({})),
            obj("Sequence", "flows.knative.dev", "s", json!({"steps": []})),
        ]);
        let cases = [
            (
                json!({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b"}}),
                Ok("http://127.0.0.1:8080/default/b"),
            ),
            (
                json!({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b"}, "uri": "/x/y"}),
                Ok("http://127.0.0.1:8080/default/b/x/y"),
            ),
            (
                json!({"ref": {"apiVersion": "flows.knative.dev/v1", "kind": "Sequence", "name": "s"}}),
                Ok("http://127.0.0.1:8080/channels/default/s-kn-sequence-0"),
            ),
            (json!({"uri": "http://127.0.0.1:9/"}), Ok("http://127.0.0.1:9/")),
            (
                json!({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "gone"}}),
                Err("Broker default/gone not found"),
            ),
            (
                json!({"ref": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}),
                Err("Pod default/p is not addressable in embedded mode (kind Pod of group \"\")"),
            ),
        ];
        for (d, want) in cases {
            let got = resolve(&dest(d.clone()), "default", &env(), &w);
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{d}");
        }
    }
}
