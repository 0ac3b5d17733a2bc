//! Which revisions a Host reaches (RTE-01, RTE-02): each Route's `status.url` host takes its
//! whole traffic, split by `percent`; each tagged target's URL host takes that target alone.
//! Pure: Routes in, a table out.

use std::collections::HashMap;

use serde_json::Value;
use sluice_runtime::RevisionKey;

/// A revision and its share of a host's traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The revision.
    pub revision: RevisionKey,
    /// Its percent of the traffic.
    pub percent: u32,
}

/// The revisions one host sends traffic to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destination {
    /// Targets with a share above zero.
    pub targets: Vec<Target>,
    /// Why there are none yet, as the Route's status says (`AllTrafficAssigned`).
    pub pending: Option<String>,
}

impl Destination {
    /// The revision for a request whose roll (uniform in `0..100`) is `roll`.
    pub fn pick(&self, roll: u32) -> Option<&RevisionKey> {
        let total: u32 = self.targets.iter().map(|t| t.percent).sum();
        if total == 0 {
            return None;
        }
        let mut at = roll % total;
        for t in &self.targets {
            if at < t.percent {
                return Some(&t.revision);
            }
            at -= t.percent;
        }
        None
    }
}

/// Hosts to destinations.
#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    hosts: HashMap<String, Destination>,
}

/// The host of a URL, without its port.
fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_ascii_lowercase)
}

impl RoutingTable {
    /// The table of `routes` (Route objects with their status).
    pub fn new(routes: &[Value]) -> Self {
        let mut hosts = HashMap::new();
        for route in routes {
            let namespace = route["metadata"]["namespace"].as_str().unwrap_or("default");
            let traffic = route["status"]["traffic"].as_array().cloned().unwrap_or_default();
            let target = |t: &Value| {
                Some(Target {
                    revision: RevisionKey {
                        namespace: namespace.to_string(),
                        name: t["revisionName"].as_str()?.to_string(),
                    },
                    percent: t["percent"].as_u64().unwrap_or(0) as u32,
                })
            };
            if let Some(host) = route["status"]["url"].as_str().and_then(host_of) {
                let targets = traffic.iter().filter_map(target).filter(|t| t.percent > 0).collect();
                let pending = route["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "AllTrafficAssigned" && c["status"] == "False")
                    .and_then(|c| c["message"].as_str())
                    .map(str::to_string);
                hosts.insert(host, Destination { targets, pending });
            }
            for t in &traffic {
                if let (Some(host), Some(mut target)) = (t["url"].as_str().and_then(host_of), target(t)) {
                    target.percent = 100;
                    hosts.insert(
                        host,
                        Destination {
                            targets: vec![target],
                            pending: None,
                        },
                    );
                }
            }
        }
        Self { hosts }
    }

    /// Where a request with this `Host` header goes (the port, if any, is ignored).
    pub fn lookup(&self, host: &str) -> Option<&Destination> {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        };
        self.hosts.get(&name.to_ascii_lowercase())
    }

    /// Whether every host of `other` leads to the same targets here.
    pub fn covers(&self, other: &RoutingTable) -> bool {
        other
            .hosts
            .iter()
            .all(|(host, d)| self.hosts.get(host).is_some_and(|mine| mine.targets == d.targets))
    }

    /// Every revision some host sends traffic to.
    pub fn reachable(&self) -> impl Iterator<Item = &RevisionKey> {
        self.hosts.values().flat_map(|d| d.targets.iter().map(|t| &t.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> RevisionKey {
        RevisionKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn hosts_and_tags_lead_to_their_revisions() {
        let route = json!({
            "metadata": {"name": "hello", "namespace": "default"},
            "status": {"url": "http://hello.default.localhost:8080", "traffic": [
                {"revisionName": "hello-00001", "percent": 80},
                {"revisionName": "hello-00002", "percent": 20, "tag": "candidate", "url": "http://candidate-hello.default.localhost:8080"},
                {"revisionName": "hello-00003", "percent": 0, "tag": "next", "url": "http://next-hello.default.localhost:8080"},
            ]},
        });
        let table = RoutingTable::new(&[route]);
        let main = table.lookup("Hello.default.localhost:8080").unwrap();
        assert_eq!(main.targets.len(), 2);
        assert_eq!(main.pick(0), Some(&key("hello-00001")));
        assert_eq!(main.pick(79), Some(&key("hello-00001")));
        assert_eq!(main.pick(80), Some(&key("hello-00002")));
        assert_eq!(main.pick(99), Some(&key("hello-00002")));
        assert_eq!(
            table.lookup("next-hello.default.localhost").unwrap().pick(42),
            Some(&key("hello-00003"))
        );
        assert_eq!(
            table.lookup("candidate-hello.default.localhost").unwrap().pick(0),
            Some(&key("hello-00002"))
        );
        assert!(table.lookup("other.default.localhost").is_none());
        // A route with no resolved traffic yet picks nothing.
        let pending = json!({"metadata": {"name": "p", "namespace": "default"}, "status": {"url": "http://p.default.localhost"}});
        assert_eq!(RoutingTable::new(&[pending]).lookup("p.default.localhost").unwrap().pick(3), None);
    }
}
