//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several `sluice controller`
//! processes against one API exactly one runs the controllers.
//!
//! A candidate takes the Lease when nobody holds it or the holder's `renewTime` is older than
//! `leaseDurationSeconds`, and the leader renews it every third of that duration. Every write
//! carries the Lease's `resourceVersion`, so of two candidates racing for it one gets a 409 and
//! stays a follower. A leader that cannot renew in time stops leading (the caller exits, and its
//! Deployment restarts it as a follower).

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::json;

use crate::Error;

/// Where the Lease is and who competes for it.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (hostname and process id, say).
    pub identity: String,
    /// How long a Lease stays held without renewal.
    pub duration: Duration,
}

fn leases(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"), "leases");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

fn micro_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Tries once to take or keep the Lease; `Ok(true)` when this candidate holds it now.
pub async fn try_lead(client: &Client, config: &LeaseConfig) -> Result<bool, Error> {
    let api = leases(client, &config.namespace);
    let now = Utc::now();
    // The Lease holds whole seconds: round up, so a holder renewing every third of `duration`
    // never looks expired.
    let seconds = config.duration.as_millis().div_ceil(1000).max(1) as i64;
    let spec = |transitions: i64, acquired: String| {
        json!({"holderIdentity": config.identity, "leaseDurationSeconds": seconds, "acquireTime": acquired,
            "renewTime": micro_time(now), "leaseTransitions": transitions})
    };
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": config.name, "namespace": config.namespace}, "spec": spec(0, micro_time(now))});
        return match api.create(&PostParams::default(), &serde_json::from_value(lease)?).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        };
    };
    let current = lease.data["spec"].clone();
    let holder = current["holderIdentity"].as_str().unwrap_or("");
    let renewed = current["renewTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let held_for = current["leaseDurationSeconds"].as_i64().unwrap_or(seconds);
    let expired = renewed.is_none_or(|t| now - t > chrono::Duration::seconds(held_for));
    if holder != config.identity && !holder.is_empty() && !expired {
        return Ok(false);
    }
    let transitions = current["leaseTransitions"].as_i64().unwrap_or(0) + i64::from(holder != config.identity);
    let acquired = match holder == config.identity {
        true => current["acquireTime"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| micro_time(now)),
        false => micro_time(now),
    };
    lease.data["spec"] = spec(transitions, acquired);
    match api.replace(&config.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Waits until this candidate leads, retrying every `duration / 3`.
pub async fn acquire(client: &Client, config: &LeaseConfig) {
    let mut waiting_logged = false;
    loop {
        match try_lead(client, config).await {
            Ok(true) => {
                tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
                return;
            }
            Ok(false) if !waiting_logged => {
                tracing::info!(lease = %config.name, identity = %config.identity, "another controller leads; waiting");
                waiting_logged = true;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(lease = %config.name, %error, "cannot reach the lease; retrying"),
        }
        tokio::time::sleep(config.duration / 3).await;
    }
}

/// Renews the Lease every `duration / 3` while it is held; returns when leadership is lost
/// (another holder, or no successful renewal within `duration`).
pub async fn keep(client: &Client, config: &LeaseConfig) {
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(config.duration / 3).await;
        match try_lead(client, config).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::warn!(lease = %config.name, "another controller took the lease");
                return;
            }
            Err(error) => {
                tracing::warn!(lease = %config.name, %error, "cannot renew the lease");
                if last_renewal.elapsed() >= config.duration {
                    return;
                }
            }
        }
    }
}
