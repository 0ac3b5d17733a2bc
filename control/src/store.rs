//! The resource store of embedded mode: every applied object as JSON, keyed by kind, namespace
//! and name, persisted under `--data-dir` and restored on restart.
//!
//! Applying is all-or-nothing per request: every document is decoded, defaulted and validated
//! (including immutable fields against the stored version) before anything is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};
use sluice_crds::registry::KindInfo;
use sluice_crds::KnativeObject;
use tokio::sync::watch;

/// Identifies a stored object.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name, e.g. `brokers`.
    pub plural: String,
    /// Namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a typed object.
    pub fn of(obj: &KnativeObject) -> Self {
        let info = obj.kind_info();
        Self::new(info, obj.namespace(), obj.name())
    }

    /// A key from its parts. A kind stored as another ([`sluice_crds::storage`]) has that
    /// kind's key: an `events.k8s.io` Event is the core Event of the same name.
    pub fn new(info: &'static KindInfo, namespace: &str, name: &str) -> Self {
        let info = sluice_crds::storage::storage_kind(info);
        Self {
            group: info.group.to_string(),
            plural: info.plural.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `objects/{group}/{plural}/{namespace}/{name}.json`; cluster-scoped objects (empty
    /// namespace) have no namespace folder.
    fn file(&self, root: &Path) -> PathBuf {
        let group = if self.group.is_empty() { "core" } else { &self.group };
        let mut path = root.join("objects").join(group).join(&self.plural);
        if !self.namespace.is_empty() {
            path.push(&self.namespace);
        }
        path.join(format!("{}.json", self.name))
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// One or more documents are invalid; nothing was applied.
    #[error("{}", .messages.join("\n"))]
    Invalid {
        /// Every error, naming its document or object and the field.
        messages: Vec<String>,
        /// The same errors by field path (a Kubernetes `Status`'s causes).
        causes: Vec<sluice_crds::FieldError>,
    },
    /// The object does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        /// Kind (singular, lower-case).
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The object already exists (create).
    #[error("{kind} {namespace}/{name} already exists")]
    AlreadyExists {
        /// Kind (singular, lower-case).
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The write names a resourceVersion that is no longer the object's (optimistic
    /// concurrency: someone else changed it first).
    #[error("Operation cannot be fulfilled on {kind} {namespace}/{name}: the object has been modified (resourceVersion {given}, now {current}); read it again and retry")]
    Conflict {
        /// Kind (singular, lower-case).
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The resourceVersion the write carried.
        given: String,
        /// The object's resourceVersion.
        current: String,
    },
    /// Writing under the data directory failed.
    #[error("persisting {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What applying one object did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Kind, e.g. `Broker`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `created`, `configured` or `unchanged`.
    pub action: &'static str,
    /// Where it is stored.
    #[serde(skip)]
    pub key: ObjectKey,
}

/// What a change did to an object, named as a watch event's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// The object was created.
    Added,
    /// The object was changed (spec, metadata or status).
    Modified,
    /// The object was deleted.
    Deleted,
}

impl ChangeType {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change of one object: the object as it was after the change, with the
/// `resourceVersion` the change gave it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resourceVersion of the change.
    pub revision: u64,
    /// What happened.
    pub change: ChangeType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change (before it, for a delete, with the delete's resourceVersion),
    /// as JSON: serialized once for every watcher, and the history keeps text, several times
    /// smaller than the parsed value.
    pub object: bytes::Bytes,
}

impl Change {
    /// The change of `object` at `revision`.
    pub fn new(revision: u64, change: ChangeType, key: &ObjectKey, object: &Value) -> Self {
        Self {
            revision,
            change,
            key: key.clone(),
            object: serde_json::to_vec(object).expect("json values serialize").into(),
        }
    }

    /// The object of the change, parsed again (for a watch with a selector: the history keeps
    /// only the text, which most watches, selecting nothing, send as it is).
    pub fn object_value(&self) -> Value {
        serde_json::from_slice(&self.object).expect("the store serialized it")
    }
}

/// How many changes are kept for watches that resume from a resourceVersion.
pub const KEPT_CHANGES: usize = 10_000;

/// The recent changes, and the live feed of new ones.
struct Changes {
    kept: std::collections::VecDeque<Arc<Change>>,
    /// Every change after this revision is in `kept` (the history starts at process start).
    complete_after: u64,
    live: tokio::sync::broadcast::Sender<Arc<Change>>,
}

/// Where a watch starts: the changes it has missed (or, without a resourceVersion, every
/// current object as added), then the live feed.
pub struct WatchStart {
    /// Changes to send first, oldest first.
    pub initial: Vec<Arc<Change>>,
    /// Changes made after `initial`.
    pub live: tokio::sync::broadcast::Receiver<Arc<Change>>,
}

/// A watch from a resourceVersion older than the kept history (HTTP 410 `Expired`).
#[derive(Debug, thiserror::Error)]
#[error("too old resource version: {requested} (history starts after {oldest})")]
pub struct Expired {
    /// The resourceVersion asked for.
    pub requested: u64,
    /// The newest resourceVersion the history does not cover.
    pub oldest: u64,
}

/// The stored objects.
pub struct Store {
    objects: RwLock<BTreeMap<ObjectKey, Value>>,
    data_dir: Option<PathBuf>,
    revision: watch::Sender<u64>,
    /// Written only while `objects` is locked for writing, so a watch that locks `objects` for
    /// reading sees the objects and the history at one point in time.
    changes: std::sync::Mutex<Changes>,
}

impl Store {
    /// An empty store, persisting under `data_dir` if given; objects found there are restored.
    pub fn open(data_dir: Option<PathBuf>) -> Result<Arc<Self>, StoreError> {
        let mut objects = BTreeMap::new();
        let mut moved = Vec::new();
        if let Some(dir) = &data_dir {
            load_dir(&dir.join("objects"), &mut objects, &mut moved)?;
            if !objects.is_empty() {
                tracing::info!(count = objects.len(), dir = %dir.display(), "restored objects from data dir");
            }
        }
        // resourceVersion never goes back across restarts: the highest one stored, or the one
        // recorded at the last delete (which may have removed the highest object).
        let recorded = data_dir
            .as_deref()
            .and_then(|dir| std::fs::read_to_string(dir.join(REVISION_FILE)).ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let max_rv = objects
            .values()
            .filter_map(|v| v["metadata"]["resourceVersion"].as_str()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            .max(recorded);
        restore_settings(&objects);
        let (revision, _) = watch::channel(max_rv);
        let changes = Changes {
            kept: Default::default(),
            complete_after: max_rv,
            live: tokio::sync::broadcast::channel(1024).0,
        };
        let store = Self {
            objects: RwLock::new(objects),
            data_dir,
            revision,
            changes: std::sync::Mutex::new(changes),
        };
        // Objects found in an earlier version's place are written where they are kept now, and
        // the old file goes, so that a delete removes them for good.
        for (key, old_file) in moved {
            let value = store.objects.read().expect("store poisoned").get(&key).cloned();
            if let Some(value) = value {
                store.persist(&key, &value)?;
            }
            std::fs::remove_file(&old_file).map_err(|source| StoreError::Io {
                path: old_file.display().to_string(),
                source,
            })?;
            tracing::info!(from = %old_file.display(), "moved a stored object to where its kind is kept");
        }
        Ok(Arc::new(store))
    }

    /// Starts a watch over the objects `select` picks: from `from` (a resourceVersion) the
    /// changes after it, or, without one, every current object as added.
    pub fn watch(&self, from: Option<u64>, select: impl Fn(&ObjectKey) -> bool) -> Result<WatchStart, Expired> {
        let objects = self.objects.read().expect("store poisoned");
        let changes = self.changes.lock().expect("change history poisoned");
        let initial = match from {
            None | Some(0) => objects
                .iter()
                .filter(|(k, _)| select(k))
                .map(|(key, object)| {
                    let revision = object["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    Arc::new(Change::new(revision, ChangeType::Added, key, object))
                })
                .collect(),
            Some(rv) if rv < changes.complete_after => {
                return Err(Expired {
                    requested: rv,
                    oldest: changes.complete_after,
                })
            }
            Some(rv) => changes.kept.iter().filter(|c| c.revision > rv && select(&c.key)).cloned().collect(),
        };
        Ok(WatchStart {
            initial,
            live: changes.live.subscribe(),
        })
    }

    /// Records a change; called with `objects` locked for writing.
    fn record(&self, revision: u64, change: ChangeType, key: &ObjectKey, object: &Value) {
        for name in sluice_crds::serving::SETTINGS {
            if is_serving_config(key, name) {
                sluice_crds::serving::apply_settings(name, (!matches!(change, ChangeType::Deleted)).then_some(object));
            }
        }
        let mut changes = self.changes.lock().expect("change history poisoned");
        let change = Arc::new(Change::new(revision, change, key, object));
        if changes.kept.len() == KEPT_CHANGES {
            if let Some(dropped) = changes.kept.pop_front() {
                changes.complete_after = dropped.revision;
            }
        }
        changes.kept.push_back(change.clone());
        // No receiver is no error: nobody is watching.
        let _ = changes.live.send(change);
    }

    /// The current resourceVersion of the store (of its latest change).
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Runs `f` over every object, under the read lock (no copy).
    pub fn with_all<T>(&self, f: impl FnOnce(&BTreeMap<ObjectKey, Value>) -> T) -> T {
        f(&self.objects.read().expect("store poisoned"))
    }

    /// Objects of one kind, in one namespace or all, with the resourceVersion of the list: a
    /// watch from it sees every later change and none of the listed ones again.
    /// (Objects of a kind stored as another are answered in the stored form; see
    /// [`sluice_crds::storage::present`].)
    pub fn list_at(&self, info: &'static KindInfo, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let stored = sluice_crds::storage::storage_kind(info);
        let objects = self.objects.read().expect("store poisoned");
        let revision = *self.revision.borrow();
        let items = objects
            .iter()
            .filter(|(k, _)| k.group == stored.group && k.plural == stored.plural && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v.clone())
            .collect();
        (items, revision)
    }

    /// One object.
    pub fn get(&self, key: &ObjectKey) -> Option<Value> {
        self.objects.read().expect("store poisoned").get(key).cloned()
    }

    /// Applies documents all-or-nothing: every error of every document is reported and nothing
    /// is written unless all are valid. `create_only` refuses existing objects (HTTP POST).
    pub fn apply(&self, documents: Vec<Value>, create_only: bool) -> Result<Vec<Applied>, StoreError> {
        let mut errors = Vec::new();
        let mut causes = Vec::new();
        let mut prepared = Vec::new();
        // One apply at a time, from validation to the last write: two concurrent applies cannot
        // both pass an immutability check against the same old object.
        let mut objects = self.objects.write().expect("store poisoned");
        {
            for (i, doc) in documents.into_iter().enumerate() {
                let label = format!("document {}", i + 1);
                let given_rv = doc["metadata"]["resourceVersion"]
                    .as_str()
                    .filter(|v| !v.is_empty())
                    .map(str::to_string);
                let mut obj = match KnativeObject::from_value(without_status(&doc)) {
                    Ok(o) => o,
                    Err(e) => {
                        errors.push(format!("{label}: {e}"));
                        causes.extend(match e {
                            sluice_crds::ObjectError::Invalid(field_errors) => field_errors,
                            other => vec![sluice_crds::FieldError::new("kind", other.to_string())],
                        });
                        continue;
                    }
                };
                obj.apply_defaults();
                let generate_name = obj
                    .metadata()
                    .generate_name
                    .clone()
                    .filter(|g| !g.is_empty() && obj.name().is_empty());
                if let Some(prefix) = generate_name {
                    if !create_only {
                        // As `kubectl apply`: an apply must name what it applies, or applying the
                        // same manifest twice (or at every start) would create a new object each time.
                        errors.push(format!(
                            "{}: metadata.name: required to apply; metadata.generateName is used only when creating (POST)",
                            obj.label()
                        ));
                        causes.push(sluice_crds::FieldError::new("metadata.name", "required to apply"));
                        continue;
                    }
                    fill_generated_name(&mut obj, &prefix, &objects);
                }
                let key = ObjectKey::of(&obj);
                // Serving's settings apply to the documents after them in the same apply, as
                // when they are applied in order; undone below if the apply fails.
                if let Some(name) = sluice_crds::serving::SETTINGS.into_iter().find(|n| is_serving_config(&key, n)) {
                    sluice_crds::serving::apply_settings(name, Some(&obj.to_value()));
                }
                let mut errs = match objects.contains_key(&key) {
                    true => obj.validate_existing(),
                    false => obj.validate(),
                };
                // Validated as written; kept, and compared with what is kept, in the stored form.
                let obj = sluice_crds::storage::into_storage(obj);
                let old = objects.get(&key);
                if let Some(old) = old {
                    if create_only {
                        restore_settings(&objects);
                        return Err(StoreError::AlreadyExists {
                            kind: obj.kind_info().singular.to_string(),
                            namespace: key.namespace,
                            name: key.name,
                        });
                    }
                    let current = old["metadata"]["resourceVersion"].as_str().unwrap_or_default();
                    if let Some(given) = given_rv.filter(|given| given != current) {
                        restore_settings(&objects);
                        return Err(StoreError::Conflict {
                            kind: obj.kind_info().singular.to_string(),
                            namespace: key.namespace,
                            name: key.name,
                            given,
                            current: current.to_string(),
                        });
                    }
                    if let Ok(old_obj) = KnativeObject::from_value(without_status(old)) {
                        errs.extend(obj.validate_update(&old_obj));
                    }
                    if !old["metadata"]["deletionTimestamp"].is_null() {
                        let before = finalizers_of(old);
                        let added = obj.metadata().finalizers.iter().flatten().any(|f| !before.contains(f));
                        if added {
                            errs.push(sluice_crds::FieldError::new(
                                "metadata.finalizers",
                                "no new finalizers can be added if the object is being deleted",
                            ));
                        }
                    }
                }
                if !errs.is_empty() {
                    errors.extend(obj.describe_errors(&errs));
                    causes.extend(errs);
                    continue;
                }
                prepared.push((key, obj));
            }
        }
        if !errors.is_empty() {
            restore_settings(&objects);
            return Err(StoreError::Invalid { messages: errors, causes });
        }
        let mut results = Vec::new();
        let mut rv = *self.revision.borrow();
        // New values are staged (a later document sees an earlier one's), written to disk all
        // or none, and only then made visible.
        let mut staged: BTreeMap<ObjectKey, Value> = BTreeMap::new();
        for (key, obj) in prepared {
            let kind = obj.kind_info().kind.to_string();
            let mut value = obj.to_value();
            if obj.kind_info().namespaced {
                value["metadata"]["namespace"] = json!(key.namespace);
            } else if let Some(meta) = value["metadata"].as_object_mut() {
                // As the API server does: a cluster-scoped object has no namespace.
                meta.remove("namespace");
            }
            let old = staged.get(&key).or_else(|| objects.get(&key));
            keep_server_owned_fields(&mut value, old);
            let action = merge_metadata(&mut value, old, &mut rv);
            if action != "unchanged" {
                staged.insert(key.clone(), value);
            }
            results.push(Applied {
                kind,
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                action,
                key,
            });
        }
        let mut written: Vec<&ObjectKey> = Vec::new();
        for (key, value) in &staged {
            if let Err(e) = self.persist(key, value) {
                for done in written {
                    // Best effort: put back what was there before this apply.
                    let restored = match objects.get(done) {
                        Some(old) => self.persist(done, old),
                        None => self.unpersist(done),
                    };
                    if let Err(r) = restored {
                        tracing::error!(error = %r, "cannot undo a partial apply on disk");
                    }
                }
                return Err(e);
            }
            written.push(key);
        }
        for (key, value) in &staged {
            let revision = value["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(rv);
            let change = if objects.contains_key(key) {
                ChangeType::Modified
            } else {
                ChangeType::Added
            };
            self.record(revision, change, key, value);
        }
        let finalized: Vec<ObjectKey> = staged
            .iter()
            .filter(|(_, v)| !v["metadata"]["deletionTimestamp"].is_null() && finalizers_of(v).is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let written: Vec<ObjectKey> = staged.keys().cloned().collect();
        objects.extend(staged);
        // Published before the lock goes, so a list never sees objects newer than its version.
        self.revision.send_replace(rv);
        // A terminating object whose last finalizer was just removed goes now.
        for key in finalized {
            self.remove_locked(&mut objects, &key, Propagation::Background)?;
        }
        // So does one written with owners that are all gone (say, a child a controller made
        // again just after its owner was deleted), as the garbage collector deletes it.
        // (Only objects with owners are looked at: collecting every uid costs a pass over the
        // store, which every plain write would otherwise pay.)
        let owned: Vec<ObjectKey> = written
            .into_iter()
            .filter(|k| {
                objects
                    .get(k)
                    .is_some_and(|v| v["metadata"]["ownerReferences"].as_array().is_some_and(|r| !r.is_empty()))
            })
            .collect();
        let uids: std::collections::HashSet<&str> = if owned.is_empty() {
            Default::default()
        } else {
            objects.values().map(uid_of).collect()
        };
        let dangling: Vec<ObjectKey> = owned
            .into_iter()
            .filter(|k| {
                objects.get(k).is_some_and(|v| {
                    v["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| !refs.is_empty() && refs.iter().all(|r| !uids.contains(r["uid"].as_str().unwrap_or(""))))
                })
            })
            .collect();
        for key in dangling {
            tracing::info!(object = %key.name, namespace = %key.namespace, "deleting an object whose owners are gone");
            self.remove_locked(&mut objects, &key, Propagation::Background)?;
        }
        drop(objects);
        Ok(results)
    }

    /// Deletes one object, returning it, with Kubernetes' default (background) propagation.
    pub fn delete(&self, info: &'static KindInfo, namespace: &str, name: &str) -> Result<Value, StoreError> {
        self.delete_with(&ObjectKey::new(info, namespace, name), Propagation::Background)
    }

    /// Deletes one object as the Kubernetes API server does. An object with `finalizers` is
    /// only marked (`deletionTimestamp`) and goes once a later write has emptied them; one
    /// without is removed at once, and then the objects it owns (`ownerReferences`) are
    /// deleted or, with [`Propagation::Orphan`], released. Returns the object: marked, or as it
    /// was when removed.
    pub fn delete_with(&self, key: &ObjectKey, propagation: Propagation) -> Result<Value, StoreError> {
        let mut objects = self.objects.write().expect("store poisoned");
        self.delete_locked(&mut objects, key, propagation)
    }

    fn delete_locked(
        &self,
        objects: &mut BTreeMap<ObjectKey, Value>,
        key: &ObjectKey,
        propagation: Propagation,
    ) -> Result<Value, StoreError> {
        let obj = objects.get(key).cloned().ok_or_else(|| StoreError::NotFound {
            kind: key.plural.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        })?;
        let mut finalizers = finalizers_of(&obj);
        let foreground = propagation == Propagation::Foreground && !dependents(objects, &obj).is_empty();
        if foreground && !finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            finalizers.push(FOREGROUND_FINALIZER.to_string());
        }
        if finalizers.is_empty() {
            return self.remove_locked(objects, key, propagation);
        }
        // Terminating: kept, marked, until its finalizers are gone.
        let mut marked = obj.clone();
        if marked["metadata"]["deletionTimestamp"].is_null() {
            marked["metadata"]["deletionTimestamp"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        marked["metadata"]["finalizers"] = json!(finalizers);
        if marked != obj {
            self.commit_locked(objects, key, marked)?;
        }
        if foreground {
            for dependent in dependents(objects, &obj) {
                match self.delete_locked(objects, &dependent, Propagation::Background) {
                    Err(StoreError::NotFound { .. }) | Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            self.finish_foreground(objects, key)?;
        }
        Ok(objects.get(key).cloned().unwrap_or(obj))
    }

    /// Removes an object for good, then collects the objects it owned.
    fn remove_locked(
        &self,
        objects: &mut BTreeMap<ObjectKey, Value>,
        key: &ObjectKey,
        propagation: Propagation,
    ) -> Result<Value, StoreError> {
        // The revision first (the object may hold the highest resourceVersion), then off the
        // disk: an object that could not be removed there stays, rather than coming back after
        // a restart.
        let rv = *self.revision.borrow() + 1;
        self.record_revision(rv)?;
        self.unpersist(key)?;
        let mut value = objects.remove(key).expect("the caller found it");
        value["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(rv, ChangeType::Deleted, key, &value);
        self.revision.send_replace(rv);
        // Garbage collection (ownerReferences): dependents go too, or are released.
        for dependent in dependents(objects, &value) {
            let result = match propagation {
                Propagation::Orphan => self.release_locked(objects, &dependent, uid_of(&value)),
                _ => self.delete_locked(objects, &dependent, Propagation::Background).map(drop),
            };
            match result {
                Err(StoreError::NotFound { .. }) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        // An owner waiting for its dependents (foreground deletion) may go now.
        for owner in owners_of(objects, &value) {
            self.finish_foreground(objects, &owner)?;
        }
        Ok(value)
    }

    /// Ends the foreground deletion of `key` once nothing it owns is left.
    fn finish_foreground(&self, objects: &mut BTreeMap<ObjectKey, Value>, key: &ObjectKey) -> Result<(), StoreError> {
        let Some(obj) = objects.get(key) else { return Ok(()) };
        let finalizers = finalizers_of(obj);
        if !finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) || !dependents(objects, obj).is_empty() {
            return Ok(());
        }
        let remaining: Vec<String> = finalizers.into_iter().filter(|f| f != FOREGROUND_FINALIZER).collect();
        if remaining.is_empty() {
            return self.remove_locked(objects, key, Propagation::Background).map(drop);
        }
        let mut updated = obj.clone();
        updated["metadata"]["finalizers"] = json!(remaining);
        self.commit_locked(objects, key, updated).map(drop)
    }

    /// Removes the owner reference to `owner_uid` from a dependent (orphan propagation).
    fn release_locked(&self, objects: &mut BTreeMap<ObjectKey, Value>, key: &ObjectKey, owner_uid: &str) -> Result<(), StoreError> {
        let Some(obj) = objects.get(key) else { return Ok(()) };
        let mut updated = obj.clone();
        if let Some(refs) = updated["metadata"]["ownerReferences"].as_array_mut() {
            refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
            if refs.is_empty() {
                updated["metadata"]
                    .as_object_mut()
                    .expect("metadata is an object")
                    .remove("ownerReferences");
            }
        }
        self.commit_locked(objects, key, updated).map(drop)
    }

    /// Commits a server-made change of one object (status, server-owned spec, deletion marks,
    /// finalizers, owner references): the next resourceVersion, on disk, then in memory and as
    /// a watch event.
    fn commit_locked(&self, objects: &mut BTreeMap<ObjectKey, Value>, key: &ObjectKey, mut value: Value) -> Result<Value, StoreError> {
        let rv = *self.revision.borrow() + 1;
        value["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.persist(key, &value)?;
        self.record(rv, ChangeType::Modified, key, &value);
        objects.insert(key.clone(), value.clone());
        self.revision.send_replace(rv);
        Ok(value)
    }

    /// Writes an object's status through the `/status` subresource: nothing but `status`
    /// changes. `expected` is the resourceVersion the write carried, if any (409 when stale).
    /// Returns the object.
    pub fn write_status(&self, key: &ObjectKey, status: Value, expected: Option<&str>) -> Result<Value, StoreError> {
        let mut objects = self.objects.write().expect("store poisoned");
        let not_found = || StoreError::NotFound {
            kind: key.plural.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        };
        let obj = objects.get(key).ok_or_else(not_found)?;
        let current = obj["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
        if let Some(given) = expected.filter(|given| !given.is_empty() && *given != current) {
            return Err(StoreError::Conflict {
                kind: key.plural.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                given: given.to_string(),
                current,
            });
        }
        if obj.get("status") == Some(&status) {
            return Ok(obj.clone());
        }
        let mut updated = obj.clone();
        updated["status"] = status;
        self.commit_locked(&mut objects, key, updated)
    }

    /// Removes an object's file (a missing file is not an error), durably.
    fn unpersist(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let Some(dir) = &self.data_dir else { return Ok(()) };
        let path = key.file(dir);
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => sync_parent(&path).map_err(io),
        }
    }

    /// Records `rv` as the lowest resourceVersion a restart may start from.
    fn record_revision(&self, rv: u64) -> Result<(), StoreError> {
        let Some(dir) = &self.data_dir else { return Ok(()) };
        let path = dir.join(REVISION_FILE);
        write_durably(&path, rv.to_string().as_bytes()).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    fn persist(&self, key: &ObjectKey, value: &Value) -> Result<(), StoreError> {
        let Some(dir) = &self.data_dir else { return Ok(()) };
        let path = key.file(dir);
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let bytes = serde_json::to_vec_pretty(value).expect("json values serialize");
        write_durably(&path, &bytes).map_err(io)
    }
}

/// How a delete treats the objects the deleted one owns (`DeleteOptions.propagationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// The owner goes at once and its dependents after it (Kubernetes' default).
    #[default]
    Background,
    /// The owner stays, terminating with the `foregroundDeletion` finalizer, until every
    /// dependent is gone.
    Foreground,
    /// Dependents stay, released from the owner's reference.
    Orphan,
}

/// The finalizer that holds an owner in foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// Whether `key` is Serving's ConfigMap `knative-serving/{name}`, which admission reads.
fn is_serving_config(key: &ObjectKey, name: &str) -> bool {
    key.group.is_empty() && key.plural == "configmaps" && key.namespace == sluice_crds::serving::SETTINGS_NAMESPACE && key.name == name
}

/// Makes admission apply Serving's settings as `objects` hold them.
fn restore_settings(objects: &BTreeMap<ObjectKey, Value>) {
    for name in sluice_crds::serving::SETTINGS {
        let config = objects.iter().find(|(k, _)| is_serving_config(k, name)).map(|(_, v)| v);
        sluice_crds::serving::apply_settings(name, config);
    }
}

fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

fn finalizers_of(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

/// The objects whose `ownerReferences` name `owner` (by uid).
fn dependents(objects: &BTreeMap<ObjectKey, Value>, owner: &Value) -> Vec<ObjectKey> {
    let uid = uid_of(owner);
    if uid.is_empty() {
        return Vec::new();
    }
    objects
        .iter()
        .filter(|(_, v)| {
            v["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The stored objects that `dependent` names as owners.
fn owners_of(objects: &BTreeMap<ObjectKey, Value>, dependent: &Value) -> Vec<ObjectKey> {
    let uids: Vec<&str> = dependent["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
        .collect();
    if uids.is_empty() {
        return Vec::new();
    }
    objects
        .iter()
        .filter(|(_, v)| uids.contains(&uid_of(v)))
        .map(|(k, _)| k.clone())
        .collect()
}

/// File in the data dir holding the resourceVersion recorded at the last delete.
const REVISION_FILE: &str = "revision";

/// Replaces `path` with `bytes` so that, once this returns, the new content survives a crash
/// (`kill -9`, power loss): write a temporary file, fsync it, rename it over `path`, fsync the
/// directory that holds the name.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Fsyncs the directory holding `path`, making a create, rename or remove of it durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Gives an object that has only `metadata.generateName` a name, as the Kubernetes API server
/// does on create: the prefix (cut to leave room) and five random characters, unique in the store.
fn fill_generated_name(obj: &mut KnativeObject, prefix: &str, objects: &BTreeMap<ObjectKey, Value>) {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    const MAX_PREFIX: usize = 63 - 5;
    let prefix: String = prefix.chars().take(MAX_PREFIX).collect();
    loop {
        let random = uuid::Uuid::new_v4();
        let suffix: String = random.as_bytes()[..5]
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect();
        obj.metadata_mut().name = Some(format!("{prefix}{suffix}"));
        if !objects.contains_key(&ObjectKey::of(obj)) {
            return;
        }
    }
}

/// A copy of a stored object without its status (status is server-written, not validated).
pub fn without_status(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

/// Carries `spec.subscribers` of an InMemoryChannel over from the stored object when the
/// applied document does not set it: the channel controller owns that field, and a user
/// re-applying the channel's manifest must neither erase it nor count as a spec change (what
/// `kubectl apply`'s merge of fields it does not manage gives in Kubernetes).
fn keep_server_owned_fields(value: &mut Value, old: Option<&Value>) {
    let Some(old_subs) = old.and_then(|o| o["spec"].get("subscribers")) else {
        return;
    };
    if value["kind"] != "InMemoryChannel" || value["spec"].get("subscribers").is_some() {
        return;
    }
    if let Some(spec) = value["spec"].as_object_mut() {
        spec.insert("subscribers".into(), old_subs.clone());
    }
}

/// Fills server-set metadata (uid, creationTimestamp, generation, resourceVersion) and keeps
/// the old status; returns what happened. A new Namespace is `Active` at once: nothing here
/// provisions one.
fn merge_metadata(value: &mut Value, old: Option<&Value>, rv: &mut u64) -> &'static str {
    let spec_of = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
            if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                for k in [
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "resourceVersion",
                    "managedFields",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    meta.remove(k);
                }
            }
        }
        v
    };
    match old {
        Some(old) => {
            if spec_of(old) == spec_of(value) {
                return "unchanged";
            }
            let old_meta = &old["metadata"];
            let spec_changed = old.get("spec") != value.get("spec");
            let generation = old_meta["generation"].as_i64().unwrap_or(1) + i64::from(spec_changed);
            *rv += 1;
            let meta = &mut value["metadata"];
            meta["uid"] = old_meta["uid"].clone();
            meta["creationTimestamp"] = old_meta["creationTimestamp"].clone();
            // Server-owned: only a delete sets them.
            for k in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                match old_meta.get(k) {
                    Some(v) => meta[k] = v.clone(),
                    None => {
                        meta.as_object_mut().map(|m| m.remove(k));
                    }
                }
            }
            meta["generation"] = json!(generation);
            meta["resourceVersion"] = json!(rv.to_string());
            value["status"] = old.get("status").cloned().unwrap_or_else(|| json!({}));
            "configured"
        }
        None => {
            *rv += 1;
            let meta = &mut value["metadata"];
            meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
            meta["creationTimestamp"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            meta["generation"] = json!(1);
            meta["resourceVersion"] = json!(rv.to_string());
            if let Some(m) = meta.as_object_mut() {
                m.remove("deletionTimestamp");
                m.remove("deletionGracePeriodSeconds");
            }
            let namespace = value["apiVersion"] == "v1" && value["kind"] == "Namespace";
            if let Some(m) = value.as_object_mut() {
                m.remove("status");
                if namespace {
                    m.insert("status".into(), json!({"phase": "Active"}));
                }
            }
            "created"
        }
    }
}

/// Reads every stored object under `dir` into `out`. Files of a kind now kept in another's form
/// (written by an earlier version) are read in that form and listed in `moved`, to be written
/// again where the form is kept.
fn load_dir(dir: &Path, out: &mut BTreeMap<ObjectKey, Value>, moved: &mut Vec<(ObjectKey, PathBuf)>) -> Result<(), StoreError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let io = |p: &Path, source| StoreError::Io {
        path: p.display().to_string(),
        source,
    };
    for entry in entries {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if path.is_dir() {
            load_dir(&path, out, moved)?;
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "skipping unreadable stored object");
                continue;
            }
        };
        match KnativeObject::from_value(without_status(&value)) {
            Ok(obj) if sluice_crds::storage::is_converted(obj.kind_info()) => {
                // Written before this kind was kept in another's form: converted, unless the
                // stored form is there too.
                let obj = sluice_crds::storage::into_storage(obj);
                let key = ObjectKey::of(&obj);
                out.entry(key.clone()).or_insert_with(|| obj.to_value());
                moved.push((key, path));
            }
            Ok(obj) => {
                out.insert(ObjectKey::of(&obj), value);
            }
            Err(e) => tracing::error!(file = %path.display(), error = %e, "skipping invalid stored object"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(name: &str) -> Value {
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": name, "namespace": "default"}})
    }

    fn resource_version(store: &Store, name: &str) -> u64 {
        let info = sluice_crds::registry::find_kind("Broker").unwrap();
        let obj = store.get(&ObjectKey::new(info, "default", name)).unwrap();
        obj["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
    }

    /// An `events.k8s.io` Event an earlier version kept in its own folder is moved to where
    /// Events are kept (as core Events) on open, so a delete removes it for good.
    #[test]
    fn events_kept_apart_by_an_earlier_version_are_moved() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("objects/events.k8s.io/events/default/e.1.json");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e.1", "namespace": "default", "resourceVersion": "7"},
            "regarding": {"kind": "Broker", "name": "b"}, "note": "made"});
        std::fs::write(&old, serde_json::to_vec(&event).unwrap()).unwrap();
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        let core = sluice_crds::registry::find_by_type("v1", "Event").unwrap();
        let key = ObjectKey::new(core, "default", "e.1");
        assert_eq!(store.get(&key).unwrap()["message"], "made");
        assert!(!old.exists(), "the old file is gone");
        assert!(dir.path().join("objects/core/events/default/e.1.json").is_file());
        store.delete(core, "default", "e.1").unwrap();
        drop(store);
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        assert!(store.get(&key).is_none(), "deleted for good");
    }

    /// resourceVersion is monotonic across restarts, also when the object holding the highest
    /// one was deleted just before (the store is reopened from disk as after `kill -9`).
    #[test]
    fn resource_versions_never_go_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        store.apply(vec![broker("a"), broker("b")], false).unwrap();
        let highest = resource_version(&store, "b");
        let info = sluice_crds::registry::find_kind("Broker").unwrap();
        store.delete(info, "default", "b").unwrap();
        drop(store);
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        assert!(store.get(&ObjectKey::new(info, "default", "b")).is_none(), "the delete survived");
        store.apply(vec![broker("c")], false).unwrap();
        assert!(
            resource_version(&store, "c") > highest + 1,
            "{} after {highest} and a delete",
            resource_version(&store, "c")
        );
        let leftovers: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|e| {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    vec![p]
                }
            })
            .collect()
    }

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey::new(sluice_crds::registry::find_kind(kind).unwrap(), "default", name)
    }

    /// A Trigger owned by `owner` (its uid), as a controller would create it.
    fn owned_trigger(name: &str, owner: &Value, finalizers: &[&str]) -> Value {
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": name, "namespace": "default", "finalizers": finalizers,
                "ownerReferences": [{"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]},
            "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/"}}})
    }

    fn with_finalizers(mut v: Value, finalizers: &[&str]) -> Value {
        v["metadata"]["finalizers"] = json!(finalizers);
        v
    }

    /// Finalizers hold a deleted object, marked, until a write removes the last one; no new
    /// finalizer may be added meanwhile.
    #[test]
    fn finalizers_hold_a_deleted_object_until_they_are_removed() {
        let store = Store::open(None).unwrap();
        store
            .apply(vec![with_finalizers(broker("b"), &["example.com/cleanup"])], false)
            .unwrap();
        let marked = store.delete_with(&key("Broker", "b"), Propagation::Background).unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string(), "{marked}");
        let stored = store.get(&key("Broker", "b")).expect("still there while a finalizer remains");
        assert_eq!(stored["metadata"]["deletionTimestamp"], marked["metadata"]["deletionTimestamp"]);
        // Deleting again changes nothing; the mark cannot be written away.
        store.delete_with(&key("Broker", "b"), Propagation::Background).unwrap();
        let mut cleared = without_status(&stored);
        cleared["metadata"].as_object_mut().unwrap().remove("deletionTimestamp");
        let err = store
            .apply(vec![with_finalizers(cleared.clone(), &["example.com/cleanup", "other"])], false)
            .unwrap_err();
        assert!(err.to_string().contains("no new finalizers"), "{err}");
        store.apply(vec![with_finalizers(cleared, &[])], false).unwrap();
        assert!(store.get(&key("Broker", "b")).is_none(), "gone with its last finalizer");
    }

    /// ownerReferences: background deletes dependents after the owner, orphan releases them,
    /// foreground keeps the owner until its dependents (held by their own finalizers) are gone.
    #[test]
    fn owner_references_collect_release_or_hold() {
        let store = Store::open(None).unwrap();
        let get = |name: &str| store.get(&key("Broker", name)).unwrap();
        store.apply(vec![broker("bg"), broker("orphan"), broker("fg")], false).unwrap();
        store
            .apply(
                vec![
                    owned_trigger("t-bg", &get("bg"), &[]),
                    owned_trigger("t-orphan", &get("orphan"), &[]),
                ],
                false,
            )
            .unwrap();
        store
            .apply(vec![owned_trigger("t-fg", &get("fg"), &["example.com/drain"])], false)
            .unwrap();

        store.delete_with(&key("Broker", "bg"), Propagation::Background).unwrap();
        assert!(store.get(&key("Trigger", "t-bg")).is_none(), "background: the dependent went too");

        store.delete_with(&key("Broker", "orphan"), Propagation::Orphan).unwrap();
        let orphan = store.get(&key("Trigger", "t-orphan")).expect("orphan: the dependent stays");
        assert!(orphan["metadata"].get("ownerReferences").is_none(), "{orphan}");

        let owner = store.delete_with(&key("Broker", "fg"), Propagation::Foreground).unwrap();
        assert_eq!(owner["metadata"]["finalizers"], json!([FOREGROUND_FINALIZER]));
        let dependent = store.get(&key("Trigger", "t-fg")).expect("held by its own finalizer");
        assert!(dependent["metadata"]["deletionTimestamp"].is_string());
        assert!(
            store.get(&key("Broker", "fg")).is_some(),
            "foreground: the owner waits for its dependents"
        );
        let mut released = without_status(&dependent);
        released["metadata"]["finalizers"] = json!([]);
        store.apply(vec![released], false).unwrap();
        assert!(store.get(&key("Trigger", "t-fg")).is_none());
        assert!(store.get(&key("Broker", "fg")).is_none(), "the owner went after its last dependent");
    }

    /// An object written with owners that are all gone is collected at once, as the garbage
    /// collector would (a controller recreating a child just after its owner was deleted).
    #[test]
    fn an_object_whose_owners_are_gone_is_collected() {
        let store = Store::open(None).unwrap();
        let ghost = json!({"metadata": {"name": "gone", "uid": "no-such-uid"}});
        store.apply(vec![owned_trigger("orphaned", &ghost, &[])], false).unwrap();
        assert!(store.get(&key("Trigger", "orphaned")).is_none());
    }

    #[test]
    fn generate_name_names_each_created_object_and_apply_needs_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        let doc = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {"generateName": "orders-", "namespace": "default"}});
        let err = store.apply(vec![doc.clone()], false).unwrap_err();
        assert!(err.to_string().contains("metadata.name: required to apply"), "{err}");
        let first = store.apply(vec![doc.clone()], true).unwrap();
        let second = store.apply(vec![doc], true).unwrap();
        assert_eq!((first[0].action, second[0].action), ("created", "created"));
        for applied in [&first[0], &second[0]] {
            assert!(
                applied.name.starts_with("orders-") && applied.name.len() == "orders-".len() + 5,
                "{}",
                applied.name
            );
        }
        assert_ne!(first[0].name, second[0].name);
        let info = sluice_crds::registry::find_kind("broker").unwrap();
        let stored = store
            .get(&ObjectKey::new(info, "default", &first[0].name))
            .expect("stored under its generated name");
        assert_eq!(stored["metadata"]["name"], json!(first[0].name));
        let reopened = Store::open(Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(reopened.with_all(|o| o.len()), 2);
    }

    #[test]
    fn an_apply_that_cannot_be_written_to_disk_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path().to_path_buf())).unwrap();
        store.apply(vec![broker("kept")], false).unwrap();
        // A file where the store needs the `default` namespace directory of triggers.
        let triggers = dir.path().join("objects/eventing.knative.dev/triggers");
        std::fs::create_dir_all(&triggers).unwrap();
        std::fs::write(triggers.join("default"), b"in the way").unwrap();
        let trigger = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "t", "namespace": "default"},
            "spec": {"broker": "kept", "subscriber": {"uri": "http://127.0.0.1:1/"}}});
        let err = store.apply(vec![broker("a-new-one"), trigger], false).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        // Neither the broker written before the failure nor the trigger is in memory or on disk.
        let names: Vec<String> = store.with_all(|o| o.keys().map(|k| k.name.clone()).collect());
        assert_eq!(names, ["kept"]);
        assert!(!dir
            .path()
            .join("objects/eventing.knative.dev/brokers/default/a-new-one.json")
            .exists());
        let reopened = Store::open(Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(reopened.with_all(|o| o.len()), 1);
    }
}
