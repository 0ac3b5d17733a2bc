//! The kinds Sluice manages and their names: group, version, plural, singular and the short
//! names `kubectl` knows (`ksvc`, `imc`, `sub`, ...).

/// One kind Sluice manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version, e.g. `v1`.
    pub version: &'static str,
    /// Kind, e.g. `InMemoryChannel`.
    pub kind: &'static str,
    /// Lower-case plural resource name, e.g. `inmemorychannels`.
    pub plural: &'static str,
    /// Lower-case singular name, e.g. `inmemorychannel`.
    pub singular: &'static str,
    /// Short names, e.g. `imc`.
    pub short_names: &'static [&'static str],
    /// Whether objects live in a namespace (`false`: cluster-scoped, like Namespace).
    pub namespaced: bool,
    /// Whether the kind has a `status` subresource (`{name}/status`).
    pub status_subresource: bool,
}

impl KindInfo {
    /// The `apiVersion` of the kind: `v1` for the core group, else `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the kind is one of Knative's (its group ends in `knative.dev`), as opposed to a
    /// Kubernetes built-in kind.
    pub fn is_knative(&self) -> bool {
        self.group.ends_with("knative.dev")
    }

    /// True when `name` (any case) is the kind, its plural, its singular or a short name.
    pub fn is_named(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(self.kind)
            || name.eq_ignore_ascii_case(self.plural)
            || name.eq_ignore_ascii_case(self.singular)
            || self.short_names.iter().any(|s| name.eq_ignore_ascii_case(s))
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
) -> KindInfo {
    KindInfo {
        group,
        version,
        kind,
        plural,
        singular,
        short_names,
        namespaced: true,
        status_subresource: true,
    }
}

/// A Kubernetes built-in kind (core, `apps`, `coordination.k8s.io`, `events.k8s.io`).
#[allow(clippy::too_many_arguments, reason = "one registry row, read as a table")]
const fn builtin(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    status_subresource: bool,
) -> KindInfo {
    KindInfo {
        group,
        version,
        kind,
        plural,
        singular,
        short_names,
        namespaced,
        status_subresource,
    }
}

static KINDS: &[KindInfo] = &[
    kind("serving.knative.dev", "v1", "Service", "services", "service", &["kservice", "ksvc"]),
    kind(
        "serving.knative.dev",
        "v1",
        "Configuration",
        "configurations",
        "configuration",
        &["config", "cfg"],
    ),
    kind("serving.knative.dev", "v1", "Revision", "revisions", "revision", &["rev"]),
    kind("serving.knative.dev", "v1", "Route", "routes", "route", &["rt"]),
    kind("eventing.knative.dev", "v1", "Broker", "brokers", "broker", &[]),
    kind("eventing.knative.dev", "v1", "Trigger", "triggers", "trigger", &[]),
    kind("messaging.knative.dev", "v1", "Channel", "channels", "channel", &["ch"]),
    kind(
        "messaging.knative.dev",
        "v1",
        "InMemoryChannel",
        "inmemorychannels",
        "inmemorychannel",
        &["imc"],
    ),
    kind(
        "messaging.knative.dev",
        "v1",
        "Subscription",
        "subscriptions",
        "subscription",
        &["sub"],
    ),
    kind("flows.knative.dev", "v1", "Sequence", "sequences", "sequence", &[]),
    kind("flows.knative.dev", "v1", "Parallel", "parallels", "parallel", &[]),
    kind("sources.knative.dev", "v1", "PingSource", "pingsources", "pingsource", &[]),
    kind("sources.knative.dev", "v1", "SinkBinding", "sinkbindings", "sinkbinding", &[]),
    kind(
        "sources.knative.dev",
        "v1",
        "ContainerSource",
        "containersources",
        "containersource",
        &[],
    ),
    kind(
        "sources.knative.dev",
        "v1",
        "ApiServerSource",
        "apiserversources",
        "apiserversource",
        &[],
    ),
    kind("sources.knative.dev", "v1", "KafkaSource", "kafkasources", "kafkasource", &[]),
    kind(
        "sources.knative.dev",
        "v1alpha1",
        "GitHubSource",
        "githubsources",
        "githubsource",
        &[],
    ),
    kind(
        "sources.knative.dev",
        "v1alpha1",
        "AwsSqsSource",
        "awssqssources",
        "awssqssource",
        &[],
    ),
    kind(
        "sources.knative.dev",
        "v1alpha1",
        "RabbitmqSource",
        "rabbitmqsources",
        "rabbitmqsource",
        &["rmqsource"],
    ),
    kind("eventing.knative.dev", "v1alpha1", "KafkaSink", "kafkasinks", "kafkasink", &[]),
    kind(
        "messaging.knative.dev",
        "v1beta1",
        "KafkaChannel",
        "kafkachannels",
        "kafkachannel",
        &["kc"],
    ),
    builtin("", "v1", "ConfigMap", "configmaps", "configmap", &["cm"], true, false),
    builtin("", "v1", "Secret", "secrets", "secret", &[], true, false),
    builtin("", "v1", "Namespace", "namespaces", "namespace", &["ns"], false, false),
    builtin("", "v1", "Event", "events", "event", &["ev"], true, false),
    builtin("", "v1", "Service", "services", "service", &["svc"], true, false),
    builtin("events.k8s.io", "v1", "Event", "events", "event", &["ev"], true, false),
    builtin("coordination.k8s.io", "v1", "Lease", "leases", "lease", &[], true, false),
    builtin("apps", "v1", "Deployment", "deployments", "deployment", &["deploy"], true, true),
    builtin("", "v1", "Pod", "pods", "pod", &["po"], true, true),
];

/// Every kind Sluice manages.
pub fn kinds() -> &'static [KindInfo] {
    KINDS
}

/// Finds a kind by any of its names, case-insensitively: kind, plural, singular or short name
/// (`ksvc`, `imc`), optionally qualified like kubectl's `brokers.eventing.knative.dev` or
/// `brokers.v1.eventing.knative.dev`.
pub fn find_kind(name: &str) -> Option<&'static KindInfo> {
    let name = name.trim();
    if let Some(k) = KINDS.iter().find(|k| k.is_named(name)) {
        return Some(k);
    }
    let (resource, qualifier) = name.split_once('.')?;
    KINDS.iter().find(|k| {
        k.is_named(resource)
            && (qualifier.eq_ignore_ascii_case(k.group)
                || qualifier
                    .split_once('.')
                    .is_some_and(|(v, g)| v.eq_ignore_ascii_case(k.version) && g.eq_ignore_ascii_case(k.group)))
    })
}

/// Finds a kind by `apiVersion` and `kind` exactly as they appear in a manifest.
pub fn find_by_type(api_version: &str, kind: &str) -> Option<&'static KindInfo> {
    let (group, version) = split_api_version(api_version);
    KINDS.iter().find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// Finds a kind by the parts of its REST path: `/apis/{group}/{version}/.../{plural}`.
pub fn find_by_plural(group: &str, version: &str, plural: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// Splits `apiVersion` into group and version (`v1` is the core group).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// A managed kind in `group` whose name matches `kind` ignoring case, at any version, or, in a
/// Knative group, differs from it by one typo (one letter added, dropped, changed, or two
/// neighbours swapped): used to explain manifests with a misspelled kind or an unserved
/// version. Kinds further away are taken to be real kinds Sluice does not manage (Knative
/// has more, e.g. `GitLabSource` beside `GitHubSource`) and are skipped, not rejected.
pub fn find_similar(group: &str, kind: &str) -> Option<&'static KindInfo> {
    let same_group = || KINDS.iter().filter(move |k| k.group == group);
    same_group().find(|k| k.kind.eq_ignore_ascii_case(kind)).or_else(|| {
        if !group.ends_with(".knative.dev") {
            return None;
        }
        same_group().find(|k| one_typo_apart(&k.kind.to_ascii_lowercase(), &kind.to_ascii_lowercase()))
    })
}

/// Whether two different names are one edit apart (insertion, deletion, substitution, or
/// transposition of neighbours).
fn one_typo_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    match (a.len(), b.len()) {
        (0, 0) => false,
        (x, y) if x == y => a[1..] == b[1..] || (x >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..]),
        (x, y) if x == y + 1 => a[1..] == *b,
        (x, y) if x + 1 == y => *a == b[1..],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(find_kind("ksvc").unwrap().kind, "Service");
        assert_eq!(find_kind("KService").unwrap().kind, "Service");
        assert_eq!(find_kind("imc").unwrap().kind, "InMemoryChannel");
        assert_eq!(find_kind("sub").unwrap().kind, "Subscription");
        assert_eq!(find_kind("cfg").unwrap().kind, "Configuration");
        assert_eq!(find_kind("config").unwrap().kind, "Configuration");
        assert_eq!(find_kind("rev").unwrap().kind, "Revision");
        assert_eq!(find_kind("rt").unwrap().kind, "Route");
        assert_eq!(find_kind("kc").unwrap().kind, "KafkaChannel");
        assert_eq!(find_kind("Brokers").unwrap().kind, "Broker");
        assert_eq!(find_kind("brokers.eventing.knative.dev").unwrap().kind, "Broker");
        assert_eq!(find_kind("trigger.eventing.knative.dev").unwrap().kind, "Trigger");
        assert_eq!(find_kind("pingsources.v1.sources.knative.dev").unwrap().kind, "PingSource");
        assert_eq!(find_kind("services.serving.knative.dev").unwrap().group, "serving.knative.dev");
        assert!(find_kind("brokers.messaging.knative.dev").is_none());
        assert!(find_kind("replicaset").is_none());
        // Knative's Service keeps the plain name; the core one answers to `svc`.
        assert_eq!(find_kind("service").unwrap().group, "serving.knative.dev");
        assert_eq!(find_kind("svc").unwrap().group, "");
        assert_eq!(find_kind("deploy").unwrap().kind, "Deployment");
        assert_eq!(find_kind("deployments.apps").unwrap().kind, "Deployment");
        assert_eq!(find_kind("events").unwrap().group, "");
        assert_eq!(find_kind("events.events.k8s.io").unwrap().group, "events.k8s.io");
        let ns = find_kind("ns").unwrap();
        assert!(!ns.namespaced && !ns.is_knative());
    }

    #[test]
    fn similar_kinds_catch_one_typo_in_knative_groups() {
        for typo in ["Triger", "Trigegr", "Triggerr", "Trigger", "trigger", "Trxgger"] {
            assert_eq!(
                find_similar("eventing.knative.dev", typo).map(|k| k.kind),
                Some("Trigger"),
                "{typo}"
            );
        }
        // Real Knative kinds Sluice does not manage are not typos of the ones it does.
        for other in ["GitLabSource", "EventPolicy", "EventType", "RabbitmqBrokerConfig", "Trig"] {
            assert!(
                find_similar("sources.knative.dev", other).is_none() && find_similar("eventing.knative.dev", other).is_none(),
                "{other}"
            );
        }
        // Outside Knative's groups only the case is forgiven.
        assert!(find_similar("", "Secrets").is_none());
        assert_eq!(find_similar("", "secret").map(|k| k.kind), Some("Secret"));
    }

    #[test]
    fn types_and_paths() {
        let b = find_by_type("eventing.knative.dev/v1", "Broker").unwrap();
        assert_eq!(b.api_version(), "eventing.knative.dev/v1");
        assert!(find_by_type("eventing.knative.dev/v1", "broker").is_none());
        assert!(find_by_type("messaging.knative.dev/v1beta1", "InMemoryChannel").is_none());
        assert_eq!(find_by_type("v1", "ConfigMap").unwrap().api_version(), "v1");
        assert_eq!(find_by_plural("", "v1", "secrets").unwrap().kind, "Secret");
        assert_eq!(
            find_by_plural("messaging.knative.dev", "v1beta1", "kafkachannels").unwrap().kind,
            "KafkaChannel"
        );
        assert_eq!(find_by_type("v1", "Service").unwrap().short_names, ["svc"]);
        assert_eq!(find_by_plural("", "v1", "namespaces").unwrap().kind, "Namespace");
        assert!(find_by_plural("apps", "v1", "deployments").unwrap().status_subresource);
    }
}
