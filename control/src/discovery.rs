//! API discovery as the Kubernetes API server answers it: `/version`, `/api`, `/api/v1`,
//! `/apis`, `/apis/{group}`, `/apis/{group}/{version}`, in the plain format (`APIVersions`,
//! `APIGroupList`, `APIGroup`, `APIResourceList`) and, for `/api` and `/apis`, the aggregated
//! format (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) that kubectl asks for first.
//!
//! Every kind of the registry is listed with the verbs the resource API serves, its scope, its
//! short names and categories (its CRD's: `all`, `knative`, `eventing`, ...; Kubernetes' `all`
//! for Deployment and Service), and with its `status` subresource when it has one.

use std::sync::LazyLock;

use serde_json::{json, Value};
use sluice_crds::registry::{kinds, KindInfo};

/// The verbs the resource API serves for every kind (`api::router`): GET of one object, list
/// and watch (in a namespace and across all), POST, PUT, PATCH and DELETE. No deletecollection.
pub const VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];

/// The verbs of the `status` subresource: GET, PUT and PATCH of `{name}/status`.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// The Kubernetes minor version whose API shapes Sluice follows (`/version`).
pub const KUBERNETES_MINOR: &str = "32";

/// Media type of aggregated discovery (`APIGroupDiscoveryList`, `apidiscovery.k8s.io/v2`).
pub const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The CRDs of the registry's kinds as JSON, built once.
static CRDS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    sluice_crds::crd::crds()
        .iter()
        .map(|c| serde_json::to_value(c).expect("a CustomResourceDefinition always serializes"))
        .collect()
});

/// The CRD (as JSON) that defines `info`; `None` for the core kinds.
pub fn crd_of(info: &KindInfo) -> Option<&'static Value> {
    CRDS.iter()
        .find(|c| c["spec"]["group"] == info.group && c["spec"]["names"]["plural"] == info.plural)
}

/// The version entry of `info`'s CRD (`spec.versions[]` with `name == info.version`).
pub fn crd_version_of(info: &KindInfo) -> Option<&'static Value> {
    crd_of(info)?["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == info.version)
}

/// The categories of a kind, as its CRD declares them, or as Kubernetes declares them for its
/// built-in kinds (`all` for Deployment, Service and Pod).
pub fn categories(info: &KindInfo) -> Vec<String> {
    if matches!((info.group, info.kind), ("apps", "Deployment") | ("", "Service") | ("", "Pod")) {
        return vec!["all".into()];
    }
    crd_of(info)
        .and_then(|c| c["spec"]["names"]["categories"].as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `GET /version`: a `version.Info`.
pub fn version_info() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-sluice"),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": format!("sluice {}", env!("CARGO_PKG_VERSION")),
        "platform": format!("{}/{arch}", std::env::consts::OS),
    })
}

/// Orders Kubernetes versions as the API server prefers them: GA before beta before alpha, then
/// the higher major version, then the higher pre-release number (`v1` > `v1beta2` > `v1beta1`
/// > `v1alpha1`); other names sort last, alphabetically.
fn version_priority(version: &str) -> (u8, std::cmp::Reverse<u32>, std::cmp::Reverse<u32>, String) {
    use std::cmp::Reverse;
    let parse = || -> Option<(u8, u32, u32)> {
        let rest = version.strip_prefix('v')?;
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let major: u32 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        let (rank, n) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else {
            (2, tail.strip_prefix("alpha")?)
        };
        Some((rank, major, n.parse().ok()?))
    };
    match parse() {
        Some((rank, major, minor)) => (rank, Reverse(major), Reverse(minor), String::new()),
        None => (3, Reverse(0), Reverse(0), version.to_string()),
    }
}

/// The groups of the registry (core excluded), in registry order, each with its versions in
/// order of preference.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for k in kinds().iter().filter(|k| !k.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == k.group) {
            Some((_, versions)) if !versions.contains(&k.version) => versions.push(k.version),
            Some(_) => {}
            None => out.push((k.group, vec![k.version])),
        }
    }
    for (_, versions) in &mut out {
        versions.sort_by_key(|v| version_priority(v));
    }
    out
}

fn group_entry(group: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

/// `GET /api`: `APIVersions` with `v1`. `server_address` (the request's `Host`) fills
/// `serverAddressByClientCIDRs` when known.
pub fn api_versions(server_address: Option<&str>) -> Value {
    let cidrs: Vec<Value> = server_address
        .map(|a| json!({"clientCIDR": "0.0.0.0/0", "serverAddress": a}))
        .into_iter()
        .collect();
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs})
}

/// `GET /apis`: `APIGroupList` with every group of the registry.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups().iter().map(|(g, v)| group_entry(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`: `APIGroup`, or `None` for a group Sluice does not serve.
pub fn api_group(group: &str) -> Option<Value> {
    let groups = groups();
    let (g, versions) = groups.iter().find(|(g, _)| *g == group)?;
    let mut entry = group_entry(g, versions);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

fn kinds_of<'a>(group: &'a str, version: &'a str) -> impl Iterator<Item = &'static KindInfo> + 'a {
    kinds().iter().filter(move |k| k.group == group && k.version == version)
}

/// One `APIResource` of an `APIResourceList`.
fn api_resource(info: &KindInfo) -> Value {
    let mut r = json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": VERBS,
    });
    if !info.short_names.is_empty() {
        r["shortNames"] = json!(info.short_names);
    }
    let categories = categories(info);
    if !categories.is_empty() {
        r["categories"] = json!(categories);
    }
    r
}

/// `GET /api/v1` (`group` empty) or `GET /apis/{group}/{version}`: `APIResourceList`, or
/// `None` when no kind is served at that group and version.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = kinds_of(group, version)
        .flat_map(|info| {
            let status = json!({
                "name": format!("{}/status", info.plural), "singularName": "", "namespaced": info.namespaced,
                "kind": info.kind, "verbs": STATUS_VERBS,
            });
            // Only kinds with a served status subresource list it (not ConfigMap, Secret, Event,
            // Lease; nor the core Service and Namespace, whose status Sluice does not serve).
            std::iter::once(api_resource(info)).chain(info.status_subresource.then_some(status))
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

/// One `APIResourceDiscovery` of aggregated discovery.
fn discovery_resource(info: &KindInfo) -> Value {
    let mut r = json!({
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": info.singular,
        "verbs": VERBS,
    });
    if info.status_subresource {
        r["subresources"] = json!([{
            "subresource": "status",
            "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
            "verbs": STATUS_VERBS,
        }]);
    }
    if !info.short_names.is_empty() {
        r["shortNames"] = json!(info.short_names);
    }
    let categories = categories(info);
    if !categories.is_empty() {
        r["categories"] = json!(categories);
    }
    r
}

fn discovery_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = kinds_of(group, v).map(discovery_resource).collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": metadata, "versions": versions})
}

/// Aggregated discovery (`APIGroupDiscoveryList`) of `/api` (`core == true`: the core group)
/// or `/apis` (every other group).
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![discovery_group("", &["v1"])]
    } else {
        groups().iter().map(|(g, v)| discovery_group(g, v)).collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Whether an `Accept` header asks for aggregated discovery v2 (kubectl lists it first, with
/// `v2beta1` and plain JSON as fallbacks).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let mut parts = media.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let has = |k: &str, v: &str| params.iter().any(|(pk, pv)| pk.eq_ignore_ascii_case(k) && *pv == v);
        ty.eq_ignore_ascii_case("application/json")
            && has("g", "apidiscovery.k8s.io")
            && has("v", "v2")
            && has("as", "APIGroupDiscoveryList")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1beta1", "v2", "v1", "v1beta2", "foo"];
        v.sort_by_key(|v| version_priority(v));
        assert_eq!(v, ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }

    #[test]
    fn group_list_prefers_ga_versions() {
        let list = api_group_list();
        assert_eq!(list["kind"], "APIGroupList");
        let groups = list["groups"].as_array().unwrap();
        let eventing = groups.iter().find(|g| g["name"] == "eventing.knative.dev").unwrap();
        assert_eq!(eventing["preferredVersion"]["groupVersion"], "eventing.knative.dev/v1");
        let versions: Vec<&str> = eventing["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v1", "v1alpha1"]);
        assert!(groups.iter().all(|g| g["name"] != ""), "the core group is served at /api");
        for name in [
            "serving.knative.dev",
            "messaging.knative.dev",
            "flows.knative.dev",
            "sources.knative.dev",
        ] {
            assert!(groups.iter().any(|g| g["name"] == name), "{name}");
        }
        assert_eq!(api_group("messaging.knative.dev").unwrap()["preferredVersion"]["version"], "v1");
        assert_eq!(api_group("apps").unwrap()["preferredVersion"]["groupVersion"], "apps/v1");
        assert!(api_group("batch").is_none());
    }

    #[test]
    fn resource_lists_carry_names_verbs_and_categories() {
        let list = api_resource_list("eventing.knative.dev", "v1").unwrap();
        assert_eq!(list["groupVersion"], "eventing.knative.dev/v1");
        let resources = list["resources"].as_array().unwrap();
        let names: Vec<&str> = resources.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["brokers", "brokers/status", "triggers", "triggers/status"]);
        assert_eq!(resources[1]["verbs"], json!(["get", "patch", "update"]));
        let broker = &resources[0];
        assert_eq!(broker["kind"], "Broker");
        assert_eq!(broker["singularName"], "broker");
        assert_eq!(broker["namespaced"], true);
        assert_eq!(
            broker["verbs"],
            json!(["create", "delete", "get", "list", "patch", "update", "watch"])
        );
        assert_eq!(broker["categories"], json!(["all", "knative", "eventing"]));
        assert!(broker.get("shortNames").is_none());

        let messaging = api_resource_list("messaging.knative.dev", "v1").unwrap();
        let imc = messaging["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "inmemorychannels")
            .unwrap();
        assert_eq!(imc["shortNames"], json!(["imc"]));
        let serving = api_resource_list("serving.knative.dev", "v1").unwrap();
        let ksvc = serving["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "services")
            .unwrap();
        assert_eq!(ksvc["shortNames"], json!(["kservice", "ksvc"]));
        assert_eq!(ksvc["categories"], json!(["all", "knative", "serving"]));

        let core = api_resource_list("", "v1").unwrap();
        assert_eq!(core["groupVersion"], "v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["configmaps", "secrets", "namespaces", "events", "services", "pods", "pods/status"]
        );
        assert_eq!(core["resources"][0]["shortNames"], json!(["cm"]));
        assert!(core["resources"][0].get("categories").is_none());
        assert_eq!(core["resources"][2]["namespaced"], false);
        assert_eq!(core["resources"][4]["categories"], json!(["all"]));
        let apps = api_resource_list("apps", "v1").unwrap();
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["deployments", "deployments/status"]);
        assert_eq!(apps["resources"][0]["shortNames"], json!(["deploy"]));
        assert!(api_resource_list("coordination.k8s.io", "v1").is_some());
        assert!(api_resource_list("events.k8s.io", "v1").is_some());

        assert!(api_resource_list("eventing.knative.dev", "v2").is_none());
    }

    #[test]
    fn aggregated_discovery_has_every_kind() {
        let apis = aggregated(false);
        assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2");
        let count: usize = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["versions"].as_array().unwrap())
            .map(|v| v["resources"].as_array().unwrap().len())
            .sum();
        assert_eq!(count, kinds().iter().filter(|k| !k.group.is_empty()).count());
        let sources = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "sources.knative.dev")
            .unwrap();
        assert_eq!(sources["versions"][0]["version"], "v1", "the preferred version comes first");
        let ping = &sources["versions"][0]["resources"][0];
        assert_eq!(
            ping["responseKind"],
            json!({"group": "sources.knative.dev", "version": "v1", "kind": "PingSource"})
        );
        assert_eq!(ping["scope"], "Namespaced");
        let core = aggregated(true);
        let namespaces = &core["items"][0]["versions"][0]["resources"][2];
        assert_eq!(namespaces["resource"], "namespaces");
        assert_eq!(namespaces["scope"], "Cluster");
        assert!(namespaces.get("subresources").is_none());
    }

    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated(kubectl));
        assert!(!wants_aggregated("application/json"));
        assert!(!wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        ));
    }

    #[test]
    fn version_is_a_kubernetes_version() {
        let v = version_info();
        assert_eq!(v["major"], "1");
        assert_eq!(v["gitVersion"], "v1.32.0-sluice");
        assert!(v["platform"].as_str().unwrap().contains('/'));
    }
}
