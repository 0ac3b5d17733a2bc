//! Where decisions find the objects they refer to: the [`Lookup`] trait, implemented by the
//! controllers over their reflector caches and by [`Objects`], the data plane's map.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Read access to the objects a decision refers to (a trigger's broker, a destination's
/// target, a channel's subscriptions).
pub trait Lookup {
    /// The object of `kind` in `group` named `namespace/name`, if it exists.
    fn get(&self, group: &str, kind: &str, namespace: &str, name: &str) -> Option<Arc<Value>>;
    /// Every object of `kind` in `group` in `namespace`.
    fn list(&self, group: &str, kind: &str, namespace: &str) -> Vec<Arc<Value>>;
}

/// The key of an object in [`Objects`]: group, kind, namespace, name.
pub type ObjectId = (String, String, String, String);

/// Objects held in a map, keyed by group, kind, namespace and name. Each is shared (`Arc`), so
/// a copy of the map (the data plane's, to decide outside the lock) copies no object.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    map: BTreeMap<ObjectId, Arc<Value>>,
}

impl Objects {
    /// The key of an object (its group from `apiVersion`).
    pub fn id(obj: &Value) -> ObjectId {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        (
            group.to_string(),
            obj["kind"].as_str().unwrap_or("").to_string(),
            crate::meta_str(obj, "namespace").to_string(),
            crate::meta_str(obj, "name").to_string(),
        )
    }

    /// Adds or replaces an object; returns the one it replaced.
    pub fn insert(&mut self, obj: Value) -> Option<Arc<Value>> {
        self.map.insert(Self::id(&obj), Arc::new(obj))
    }

    /// Removes an object.
    pub fn remove(&mut self, id: &ObjectId) -> Option<Arc<Value>> {
        self.map.remove(id)
    }

    /// The object with this key.
    pub fn by_id(&self, id: &ObjectId) -> Option<&Value> {
        self.map.get(id).map(|v| v.as_ref())
    }

    /// Removes every object of `kind` in `group` (before a full relist of that kind).
    pub fn clear_kind(&mut self, group: &str, kind: &str) {
        self.map.retain(|(g, k, _, _), _| !(g == group && k == kind));
    }

    /// Every object of `kind` in `group`, in every namespace.
    pub fn of_kind<'a>(&'a self, group: &'a str, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.map
            .iter()
            .filter(move |((g, k, _, _), _)| g == group && k == kind)
            .map(|(_, v)| v.as_ref())
    }
}

impl Lookup for Objects {
    fn get(&self, group: &str, kind: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.map
            .get(&(group.to_string(), kind.to_string(), namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn list(&self, group: &str, kind: &str, namespace: &str) -> Vec<Arc<Value>> {
        self.map
            .iter()
            .filter(|((g, k, ns, _), _)| g == group && k == kind && ns == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }
}
