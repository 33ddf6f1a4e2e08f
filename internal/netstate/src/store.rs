//! Reading and writing the document in every listed cluster.
//!
//! A write: read every copy (with its resourceVersion), compare them (they must agree, unless
//! `repair_from` names the copy to trust), refuse a fencing token older than the document's,
//! apply the change and append one history entry, then write each cluster in name order, each
//! a compare-and-swap on the version read. All writers go through the first cluster first, so it
//! serialises them: a writer that loses there re-reads and re-applies its change on top of the
//! winner's document, so no history entry is lost. A copy found only behind (a write under way in
//! another process) is re-read for a short while before the copies are declared different.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster::{ClusterError, FencingToken, Member, CONFIG_MAP_MAX_BYTES};
use serde_json::{Map, Value};

use crate::compare::{compare, Divergence};
use crate::document::{changes, config_map_name, secret_paths, Document, HistoryEntry, DATA_KEY};
use crate::migrate::{read_document, MigrateError};

/// Label naming the network on its state ConfigMaps.
pub const LABEL_NETWORK: &str = "testnet.io/network";

/// What to write.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// The network (the ConfigMap is `<network>-network-state`).
    pub network: String,
    /// Namespace of the ConfigMap, the same in every cluster.
    pub namespace: String,
    /// The user's components.
    pub components: BTreeMap<String, Map<String, Value>>,
    /// The lock's fencing token; `None` writes unfenced (and is refused once a document has one).
    pub fencing_token: Option<FencingToken>,
    /// Who writes (the lock holder).
    pub holder: String,
    /// `TFC_RUN_ID`, when set.
    pub tfc_run_id: Option<String>,
    /// History entries kept (oldest dropped first). At least 1.
    pub history_limit: usize,
    /// Trust this cluster's copy and write it over the others.
    pub repair_from: Option<String>,
    /// How long to re-read copies that are only behind before failing (a write under way).
    pub settle_timeout: Duration,
}

/// Errors of the document, each naming the cluster when one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The copies in the clusters differ.
    #[error("the copies of {config_map} differ between clusters, so nothing was written:\n{divergence}\nFix the cause, or set repair_from to the cluster whose copy is right (it is copied over the others); {} has the most history", if divergence.ahead.is_empty() { "the provider's own cluster".to_string() } else { format!("{:?}", divergence.ahead) })]
    Diverged {
        /// ConfigMap name.
        config_map: String,
        /// How.
        divergence: Divergence,
    },
    /// The write's fencing token is older than the document's.
    #[error("refused: the fencing token {ours} is older than the document's {newer} (cluster {cluster:?}: {ours_n} < {newer_n}), last written by {holder:?} at {at}: the lock changed hands since it was taken; re-acquire it and plan again")]
    Fenced {
        /// Our token.
        ours: String,
        /// The document's.
        newer: String,
        /// Where ours is behind.
        cluster: String,
        /// Our count there.
        ours_n: i64,
        /// The newer count.
        newer_n: i64,
        /// The newer writer.
        holder: String,
        /// When it wrote.
        at: String,
    },
    /// The document carries a fencing token and this write none.
    #[error("refused: the document was written under the network lock (token {newer}, by {holder:?}) and this write carries no fencing_token; pass the lock's fencing_token")]
    Unfenced {
        /// The document's token.
        newer: String,
        /// Its writer.
        holder: String,
    },
    /// A stored copy cannot be read (newer schema, malformed).
    #[error("{config_map} in {}: {source}", where_(cluster))]
    Unreadable {
        /// ConfigMap name.
        config_map: String,
        /// The cluster.
        cluster: String,
        /// Why.
        #[source]
        source: MigrateError,
    },
    /// The document would not fit in a ConfigMap.
    #[error("the document would be {size} bytes, more than a ConfigMap holds ({limit} bytes, 1 MiB); make components smaller or lower history_limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// [`CONFIG_MAP_MAX_BYTES`].
        limit: usize,
    },
    /// Component attributes whose names say they are secrets.
    #[error("components must not hold secrets (the document is readable by anyone who can read ConfigMaps, and kept in its history): {}; keep secrets in a Kubernetes Secret and put its name here", paths.join(", "))]
    Secrets {
        /// The offending attribute paths.
        paths: Vec<String>,
    },
    /// `repair_from` names a cluster that is not listed or has no copy.
    #[error("repair_from = {cluster:?}: {why}")]
    BadRepair {
        /// The named cluster.
        cluster: String,
        /// What is wrong.
        why: String,
    },
    /// Talking to one cluster failed.
    #[error("{}: {source}", where_(cluster))]
    Cluster {
        /// The cluster.
        cluster: String,
        /// What went wrong.
        #[source]
        source: ClusterError,
    },
}

fn where_(c: &str) -> String {
    if c.is_empty() {
        "the provider's own cluster".into()
    } else {
        format!("cluster {c:?}")
    }
}

/// One cluster's copy as read.
struct Copy {
    cluster: String,
    doc: Option<Document>,
    resource_version: Option<String>,
}

async fn read_copies(
    members: &[Member],
    namespace: &str,
    config_map: &str,
) -> Result<(Vec<Copy>, String), StateError> {
    let mut out = Vec::new();
    let mut first_time = None;
    for m in members {
        let (stored, time) = m
            .cluster
            .get_config_map(namespace, config_map)
            .await
            .map_err(|source| StateError::Cluster {
                cluster: m.name.clone(),
                source,
            })?;
        first_time.get_or_insert(time.at_least);
        let (doc, rv) = match stored {
            None => (None, None),
            Some(s) => {
                let text = s.data.get(DATA_KEY).cloned().unwrap_or_default();
                let (doc, _) = read_document(&text).map_err(|source| StateError::Unreadable {
                    config_map: config_map.to_string(),
                    cluster: m.name.clone(),
                    source,
                })?;
                (Some(doc), Some(s.resource_version))
            }
        };
        out.push(Copy {
            cluster: m.name.clone(),
            doc,
            resource_version: rv,
        });
    }
    let now = first_time.map(|t| t.to_string()).unwrap_or_default();
    Ok((out, now))
}

fn sorted(members: &[Member]) -> Vec<Member> {
    let mut v = members.to_vec();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Checks that need no cluster: secrets, and whether the components alone already exceed a
/// ConfigMap. For plan time.
pub fn check_components(
    network: &str,
    components: &BTreeMap<String, Map<String, Value>>,
) -> Result<(), StateError> {
    let secrets = secret_paths(components);
    if !secrets.is_empty() {
        return Err(StateError::Secrets { paths: secrets });
    }
    let mut d = Document::empty(network);
    d.components = components.clone();
    let size = d.to_json().len();
    if size > CONFIG_MAP_MAX_BYTES {
        return Err(StateError::TooLarge {
            size,
            limit: CONFIG_MAP_MAX_BYTES,
        });
    }
    Ok(())
}

/// The document the write produces from `base` (the agreed copy), or the refusal.
fn next_document(
    base: Option<&Document>,
    req: &WriteRequest,
    now: &str,
) -> Result<Document, StateError> {
    let base = base
        .cloned()
        .unwrap_or_else(|| Document::empty(&req.network));
    if let Some(theirs) = base.fencing_token.as_deref() {
        let theirs_t: FencingToken = theirs.parse().unwrap_or_default();
        match &req.fencing_token {
            None => {
                return Err(StateError::Unfenced {
                    newer: theirs.to_string(),
                    holder: base.updated_by.clone(),
                })
            }
            Some(ours) => {
                if let Some(b) = ours.behind(&theirs_t) {
                    return Err(StateError::Fenced {
                        ours: ours.to_string(),
                        newer: theirs.to_string(),
                        cluster: b.cluster,
                        ours_n: b.ours,
                        newer_n: b.newer,
                        holder: base.updated_by.clone(),
                        at: base.updated_at.clone(),
                    });
                }
            }
        }
    }
    let mut doc = base.clone();
    doc.network = req.network.clone();
    doc.components = req.components.clone();
    doc.updated_at = now.to_string();
    doc.updated_by = req.holder.clone();
    // The newest token per cluster: a later writer with an older entry anywhere is refused.
    let mut token = base
        .fencing_token
        .as_deref()
        .and_then(|t| t.parse::<FencingToken>().ok())
        .unwrap_or_default();
    if let Some(ours) = &req.fencing_token {
        for (k, v) in &ours.0 {
            let e = token.0.entry(k.clone()).or_insert(*v);
            *e = (*e).max(*v);
        }
    }
    doc.fencing_token = (!token.0.is_empty()).then(|| token.to_string());
    let mut what = changes(&base.components, &req.components);
    if what.is_empty() {
        what.push("no component changed".into());
    }
    doc.history.push(HistoryEntry {
        time: now.to_string(),
        holder: req.holder.clone(),
        tfc_run_id: req.tfc_run_id.clone(),
        fencing_token: req.fencing_token.as_ref().map(|t| t.to_string()),
        changes: what,
    });
    let limit = req.history_limit.max(1);
    if doc.history.len() > limit {
        let drop = doc.history.len() - limit;
        doc.history.drain(..drop);
    }
    let size = doc.to_json().len();
    if size > CONFIG_MAP_MAX_BYTES {
        return Err(StateError::TooLarge {
            size,
            limit: CONFIG_MAP_MAX_BYTES,
        });
    }
    Ok(doc)
}

/// Writes the document in every member (see the module doc); returns what was written.
pub async fn write(members: &[Member], req: &WriteRequest) -> Result<Document, StateError> {
    check_components(&req.network, &req.components)?;
    let members = sorted(members);
    let cm = config_map_name(&req.network);
    if let Some(r) = &req.repair_from {
        if !members.iter().any(|m| &m.name == r) {
            return Err(StateError::BadRepair {
                cluster: r.clone(),
                why: format!(
                    "not one of the clusters this document lives in ({})",
                    members
                        .iter()
                        .map(|m| format!("{:?}", m.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    let started = Instant::now();
    let mut nap = Duration::from_millis(50);
    loop {
        let (copies, now) = read_copies(&members, &req.namespace, &cm).await?;
        let base = match &req.repair_from {
            Some(r) => {
                let trusted = copies
                    .iter()
                    .find(|c| &c.cluster == r)
                    .and_then(|c| c.doc.clone());
                if trusted.is_none() {
                    return Err(StateError::BadRepair {
                        cluster: r.clone(),
                        why: "that cluster has no copy of the document to repair from".into(),
                    });
                }
                trusted
            }
            None => {
                let pairs: Vec<(String, Option<Document>)> = copies
                    .iter()
                    .map(|c| (c.cluster.clone(), c.doc.clone()))
                    .collect();
                match compare(&pairs) {
                    None => copies.first().and_then(|c| c.doc.clone()),
                    Some(d) if d.only_behind && started.elapsed() < req.settle_timeout => {
                        tracing::info!(config_map = %cm, "copies differ only by a write under way; reading again");
                        tokio::time::sleep(nap).await;
                        nap = (nap * 2).min(Duration::from_millis(500));
                        continue;
                    }
                    Some(divergence) => {
                        return Err(StateError::Diverged {
                            config_map: cm,
                            divergence,
                        })
                    }
                }
            }
        };
        let doc = next_document(base.as_ref(), req, &now)?;
        let data = BTreeMap::from([(DATA_KEY.to_string(), doc.to_json())]);
        let labels = BTreeMap::from([(LABEL_NETWORK.to_string(), req.network.clone())]);
        let mut lost_race = false;
        for (i, (m, c)) in members.iter().zip(&copies).enumerate() {
            match m
                .cluster
                .put_config_map(
                    &req.namespace,
                    &cm,
                    labels.clone(),
                    data.clone(),
                    c.resource_version.as_deref(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {
                    tracing::info!(cluster = %m.name, config_map = %cm, first = i == 0, "document changed since read; reading again");
                    lost_race = true;
                    break;
                }
                Err(source) => {
                    return Err(StateError::Cluster {
                        cluster: m.name.clone(),
                        source,
                    })
                }
            }
        }
        if !lost_race {
            return Ok(doc);
        }
    }
}

/// Reads the document from one member; `None` when it has none.
pub async fn read(
    member: &Member,
    namespace: &str,
    network: &str,
) -> Result<Option<Document>, StateError> {
    let cm = config_map_name(network);
    let (copies, _) = read_copies(std::slice::from_ref(member), namespace, &cm).await?;
    Ok(copies.into_iter().next().and_then(|c| c.doc))
}

/// Reads every member's copy: `(cluster, document)` in name order.
pub async fn read_all(
    members: &[Member],
    namespace: &str,
    network: &str,
) -> Result<Vec<(String, Option<Document>)>, StateError> {
    let cm = config_map_name(network);
    let (copies, _) = read_copies(&sorted(members), namespace, &cm).await?;
    Ok(copies.into_iter().map(|c| (c.cluster, c.doc)).collect())
}

/// Deletes the document in every member.
pub async fn delete(members: &[Member], namespace: &str, network: &str) -> Result<(), StateError> {
    let cm = config_map_name(network);
    for m in sorted(members) {
        m.cluster
            .delete_config_map(namespace, &cm)
            .await
            .map_err(|source| StateError::Cluster {
                cluster: m.name.clone(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(token: Option<&str>) -> WriteRequest {
        WriteRequest {
            network: "n".into(),
            namespace: "default".into(),
            components: serde_json::from_value(json!({"a": {"version": "v2"}})).unwrap(),
            fencing_token: token.map(|t| t.parse().unwrap()),
            holder: "ann".into(),
            tfc_run_id: Some("run-1".into()),
            history_limit: 2,
            repair_from: None,
            settle_timeout: Duration::ZERO,
        }
    }

    #[test]
    fn fencing_refuses_an_older_token_and_names_the_newer_holder() {
        let mut base = Document::empty("n");
        base.fencing_token = Some("eu=5,us=3".into());
        base.updated_by = "bob".into();
        match next_document(Some(&base), &req(Some("eu=4,us=9")), "t") {
            Err(StateError::Fenced {
                cluster,
                holder,
                ours_n,
                newer_n,
                ..
            }) => {
                assert_eq!(
                    (cluster.as_str(), holder.as_str(), ours_n, newer_n),
                    ("eu", "bob", 4, 5)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            next_document(Some(&base), &req(None), "t"),
            Err(StateError::Unfenced { .. })
        ));
        let d = next_document(Some(&base), &req(Some("eu=5,us=4")), "t").unwrap();
        assert_eq!(d.fencing_token.as_deref(), Some("eu=5,us=4"));
    }

    #[test]
    fn history_records_the_change_and_is_capped() {
        let mut d = next_document(None, &req(Some("7")), "t1").unwrap();
        assert_eq!(d.history.len(), 1);
        let e = &d.history[0];
        assert_eq!(
            (
                e.holder.as_str(),
                e.tfc_run_id.as_deref(),
                e.fencing_token.as_deref()
            ),
            ("ann", Some("run-1"), Some("7"))
        );
        assert_eq!(e.changes, vec!["+ a"]);
        for t in ["t2", "t3"] {
            d = next_document(Some(&d), &req(Some("7")), t).unwrap();
        }
        assert_eq!(d.history.len(), 2, "capped at history_limit");
        assert_eq!(d.history[0].time, "t2");
        assert_eq!(d.history[1].changes, vec!["no component changed"]);
    }

    #[test]
    fn too_large_says_size_and_limit() {
        let big = "x".repeat(CONFIG_MAP_MAX_BYTES);
        let comps = serde_json::from_value(json!({"a": {"blob": big}})).unwrap();
        match check_components("n", &comps) {
            Err(e @ StateError::TooLarge { size, limit }) => {
                assert!(size > limit);
                assert_eq!(limit, 1_048_576);
                assert!(e.to_string().contains("1048576 bytes, 1 MiB"));
            }
            other => panic!("{other:?}"),
        }
    }
}
