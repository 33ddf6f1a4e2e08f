//! Retention that never pulls an artifact from under a reader. Dropping an artifact is two steps
//! apart in time: the artifact leaves the index (and the latest pointer moves to a kept one) and
//! is recorded as retired; its objects are deleted by a later retention run once the grace
//! period has passed, so whoever read the index or the pointer just before (a restore that has
//! started, a node following `latest`) can still finish reading it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::doc::{self, Change};
use crate::error::Result;
use crate::meta::{ArtifactMeta, Index, LatestPointer};
use crate::names::{self, INDEX_KEY};
use crate::publish::check_format;

/// How long an artifact dropped from the index stays readable before its objects are deleted.
pub const DEFAULT_RETENTION_GRACE: Duration = Duration::from_secs(3600);

/// An artifact retention removed from the index whose objects are not deleted yet
/// (`base.json`, `retired`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub name: String,
    pub network: String,
    pub kind: String,
    /// RFC 3339: when it left the index.
    pub retired_at: String,
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Artifacts this run removed from the index (deleted later, after the grace period).
    pub retired: Vec<String>,
    /// Artifacts whose objects this run deleted (retired at least the grace period ago).
    pub deleted: Vec<String>,
}

/// Keeps the newest `keep` artifacts of a network and kind in the index, retires the others,
/// and deletes the objects of those retired at least `grace` ago.
pub async fn apply_retention(
    store: &dyn objstore::ObjectStore,
    network: &str,
    kind: &str,
    keep: u32,
    grace: Duration,
) -> Result<RetentionReport> {
    apply_retention_at(store, network, kind, keep, grace, OffsetDateTime::now_utc()).await
}

/// [`apply_retention`] as if the time were `now` (tests, and tools that sweep on a schedule).
///
/// Order: index (conditional, so a concurrent publisher's entry survives) -> latest pointer
/// repaired to a kept artifact -> objects past their grace deleted, never the one the pointer
/// names -> their retired entries dropped. A failure at any step leaves a state the next run
/// completes: no reader is ever sent to a missing object.
pub async fn apply_retention_at(
    store: &dyn objstore::ObjectStore,
    network: &str,
    kind: &str,
    keep: u32,
    grace: Duration,
    now: OffsetDateTime,
) -> Result<RetentionReport> {
    let url = store.url(INDEX_KEY);
    let stamp = now
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"));
    let mut report = RetentionReport::default();
    let mut due: Vec<Retired> = Vec::new();
    doc::update::<Index, _>(store, INDEX_KEY, |current| {
        report.retired.clear();
        due.clear();
        let mut index = check_format(&url, current.unwrap_or_default())?;
        let before = (index.artifacts.len(), index.retired.len());
        let mut group: Vec<&ArtifactMeta> = index
            .artifacts
            .iter()
            .filter(|a| a.network == network && a.kind == kind)
            .collect();
        group.sort_by(|a, b| b.recency_cmp(a));
        let dropped: Vec<ArtifactMeta> = group.into_iter().skip(keep as usize).cloned().collect();
        index
            .artifacts
            .retain(|a| !dropped.iter().any(|d| d.name == a.name));
        for d in &dropped {
            report.retired.push(d.name.clone());
            index.retired.push(Retired {
                name: d.name.clone(),
                network: d.network.clone(),
                kind: d.kind.clone(),
                retired_at: stamp.clone(),
            });
        }
        // A name published again since it was retired is live: never delete it.
        let live: Vec<String> = index.artifacts.iter().map(|a| a.name.clone()).collect();
        index.retired.retain(|r| !live.contains(&r.name));
        due = index
            .retired
            .iter()
            .filter(|r| r.network == network && r.kind == kind && is_due(r, grace, now))
            .cloned()
            .collect();
        if (index.artifacts.len(), index.retired.len()) == before {
            return Ok(Change::Keep);
        }
        index.updated_at = stamp.clone();
        Ok(Change::Write(index))
    })
    .await?;
    if !report.retired.is_empty() {
        crate::ops::repair_latest_pointer(store, network, kind).await?;
    }
    if due.is_empty() {
        return Ok(report);
    }
    let pointed = doc::read::<LatestPointer>(store, &names::latest_key(network, kind))
        .await?
        .map(|(p, _)| p.name);
    for r in &due {
        if pointed.as_deref() == Some(r.name.as_str()) {
            continue;
        }
        tracing::info!(object = %store.url(&names::artifact_key(&r.name)), retired_at = %r.retired_at,
            "retention: grace period over, deleting artifact");
        store.delete(&names::artifact_key(&r.name)).await?;
        store.delete(&names::metadata_key(&r.name)).await?;
        report.deleted.push(r.name.clone());
    }
    if !report.deleted.is_empty() {
        let deleted = report.deleted.clone();
        doc::update::<Index, _>(store, INDEX_KEY, |current| {
            let Some(index) = current else {
                return Ok(Change::Keep);
            };
            let mut index = check_format(&url, index)?;
            let n = index.retired.len();
            index.retired.retain(|r| !deleted.contains(&r.name));
            if index.retired.len() == n {
                return Ok(Change::Keep);
            }
            index.updated_at = stamp.clone();
            Ok(Change::Write(index))
        })
        .await?;
    }
    Ok(report)
}

/// Whether a retired artifact's grace period is over. An unreadable time counts as over: the
/// entry is already out of the index.
fn is_due(r: &Retired, grace: Duration, now: OffsetDateTime) -> bool {
    match OffsetDateTime::parse(&r.retired_at, &Rfc3339) {
        Ok(t) => t + grace <= now,
        Err(_) => true,
    }
}
