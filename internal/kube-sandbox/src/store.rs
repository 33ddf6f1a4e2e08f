//! One in-memory object store for every kind: a global resourceVersion counter, compare-and-swap
//! updates, a bounded history of changes for watches, and optional JSON persistence.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify};

use crate::kinds::{self, Kind};

/// How many past changes a watch can resume from before getting 410 Expired.
const HISTORY: usize = 20_000;

/// `(plural, namespace, name)`; namespace is empty for cluster-scoped kinds.
pub type Key = (String, String, String);

/// One change, as delivered to watchers.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub plural: &'static str,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// Every change with rv > floor is still in `history`.
    floor: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object already exists")]
    Exists,
    #[error("object not found")]
    Missing,
    #[error("resourceVersion {expected} is stale (current {current})")]
    Stale { expected: String, current: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The shared store. Cheap to clone; all methods are synchronous and short.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Change>,
    /// Wakes the controller after every change.
    pub changed: Arc<Notify>,
    data_file: Option<PathBuf>,
}

pub fn key(kind: &Kind, ns: &str, name: &str) -> Key {
    (
        kind.plural.to_string(),
        if kind.namespaced {
            ns.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn rv_of(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion")
}

impl Store {
    /// Opens the store, reloading `DIR/state.json` when a data dir is given.
    pub fn open(data_dir: Option<PathBuf>) -> Result<Self, PersistError> {
        let data_file = data_dir.map(|d| d.join("state.json"));
        let mut inner = Inner {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            floor: 1,
        };
        if let Some(path) = &data_file {
            if path.exists() {
                let text = std::fs::read_to_string(path).map_err(|source| PersistError::Read {
                    path: path.clone(),
                    source,
                })?;
                let v: Value =
                    serde_json::from_str(&text).map_err(|source| PersistError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                inner.rv = v
                    .get("resourceVersion")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                inner.floor = inner.rv;
                for obj in v
                    .get("objects")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let plural = obj.get("plural").and_then(Value::as_str).unwrap_or("");
                    let Some(kind) = kinds::ALL.iter().find(|k| k.plural == plural) else {
                        continue;
                    };
                    let o = obj.get("object").cloned().unwrap_or(Value::Null);
                    inner.objects.insert(
                        key(kind, meta_str(&o, "namespace"), meta_str(&o, "name")),
                        o,
                    );
                }
            }
        }
        let (tx, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
            tx,
            changed: Arc::new(Notify::new()),
            data_file,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written map (every mutation is one
        // insert/remove), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, kind: &Kind, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&key(kind, ns, name)).cloned()
    }

    /// All objects of a kind (in one namespace when `ns` is given), with the list resourceVersion.
    pub fn list(&self, kind: &Kind, ns: Option<&str>) -> (Vec<Value>, u64) {
        let g = self.lock();
        let items = g
            .objects
            .iter()
            .filter(|((p, n, _), _)| {
                p == kind.plural && ns.is_none_or(|ns| !kind.namespaced || n == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, g.rv)
    }

    fn record(&self, g: &mut Inner, kind: &'static Kind, ty: &'static str, object: Value) {
        let change = Change {
            rv: g.rv,
            plural: kind.plural,
            namespace: meta_str(&object, "namespace").to_string(),
            kind: ty,
            object,
        };
        g.history.push_back(change.clone());
        while g.history.len() > HISTORY {
            if let Some(old) = g.history.pop_front() {
                g.floor = old.rv;
            }
        }
        let _ = self.tx.send(change);
        self.persist(g);
        self.changed.notify_one();
    }

    fn persist(&self, g: &Inner) {
        let Some(path) = &self.data_file else { return };
        let objects: Vec<Value> = g
            .objects
            .iter()
            .map(|((p, _, _), o)| json!({"plural": p, "object": o}))
            .collect();
        let doc = json!({"resourceVersion": g.rv, "objects": objects});
        let tmp = path.with_extension("json.tmp");
        let res = serde_json::to_vec(&doc)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            tracing::error!(path = %path.display(), error = %e, "persisting state failed");
        }
    }

    fn stamp(g: &mut Inner, kind: &Kind, obj: &mut Value) {
        g.rv += 1;
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        obj["metadata"]["resourceVersion"] = json!(g.rv.to_string());
    }

    /// Inserts a new object (metadata already filled by the caller, except resourceVersion).
    pub fn create(&self, kind: &'static Kind, mut obj: Value) -> Result<Value, StoreError> {
        let mut g = self.lock();
        let k = key(kind, meta_str(&obj, "namespace"), meta_str(&obj, "name"));
        if g.objects.contains_key(&k) {
            return Err(StoreError::Exists);
        }
        Self::stamp(&mut g, kind, &mut obj);
        g.objects.insert(k, obj.clone());
        self.record(&mut g, kind, "ADDED", obj.clone());
        Ok(obj)
    }

    /// Replaces an object if its stored resourceVersion is still `expected_rv`. An object that is
    /// being deleted and has no finalizers left is removed instead, as the real registry does.
    pub fn update(
        &self,
        kind: &'static Kind,
        mut obj: Value,
        expected_rv: &str,
    ) -> Result<Value, StoreError> {
        let mut g = self.lock();
        let k = key(kind, meta_str(&obj, "namespace"), meta_str(&obj, "name"));
        let current = g.objects.get(&k).ok_or(StoreError::Missing)?;
        if rv_of(current) != expected_rv {
            return Err(StoreError::Stale {
                expected: expected_rv.into(),
                current: rv_of(current).into(),
            });
        }
        Self::stamp(&mut g, kind, &mut obj);
        let deleting = !meta_str(&obj, "deletionTimestamp").is_empty();
        let no_finalizers = obj["metadata"]
            .get("finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
        if deleting && no_finalizers && kind.plural != "namespaces" {
            g.objects.remove(&k);
            self.record(&mut g, kind, "DELETED", obj.clone());
        } else {
            g.objects.insert(k, obj.clone());
            self.record(&mut g, kind, "MODIFIED", obj.clone());
        }
        Ok(obj)
    }

    /// Removes an object now (if `expected_rv` still matches when given).
    pub fn remove(
        &self,
        kind: &'static Kind,
        ns: &str,
        name: &str,
        expected_rv: Option<&str>,
    ) -> Result<Value, StoreError> {
        let mut g = self.lock();
        let k = key(kind, ns, name);
        let current = g.objects.get(&k).ok_or(StoreError::Missing)?;
        if let Some(e) = expected_rv {
            if rv_of(current) != e {
                return Err(StoreError::Stale {
                    expected: e.into(),
                    current: rv_of(current).into(),
                });
            }
        }
        let mut obj = g.objects.remove(&k).ok_or(StoreError::Missing)?;
        Self::stamp(&mut g, kind, &mut obj);
        self.record(&mut g, kind, "DELETED", obj.clone());
        Ok(obj)
    }

    /// Subscribes to changes after `since`. Returns the changes already in history plus the live
    /// receiver, taken under one lock so nothing is missed or duplicated; `Err(floor)` when
    /// `since` is older than the history kept.
    pub fn watch_from(
        &self,
        since: u64,
    ) -> Result<(Vec<Change>, broadcast::Receiver<Change>), u64> {
        let g = self.lock();
        if since < g.floor {
            return Err(g.floor);
        }
        let backlog = g.history.iter().filter(|c| c.rv > since).cloned().collect();
        Ok((backlog, self.tx.subscribe()))
    }

    /// Current objects of a kind plus a live receiver, taken under one lock: the start of a
    /// watch without a resourceVersion (synthetic ADDED events, then changes).
    pub fn snapshot_and_watch(
        &self,
        kind: &Kind,
        ns: Option<&str>,
    ) -> (Vec<Value>, broadcast::Receiver<Change>) {
        let g = self.lock();
        let items = g
            .objects
            .iter()
            .filter(|((p, n, _), _)| {
                p == kind.plural && ns.is_none_or(|ns| !kind.namespaced || n == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, self.tx.subscribe())
    }
}
