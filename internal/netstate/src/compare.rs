//! Comparing the copies of the document across clusters, and explaining how they differ: which
//! cluster is behind (its history is a prefix of another's), which diverged, what differs.

use crate::document::Document;

/// How the copies differ; `Display` is the explanation users see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The cluster whose copy is furthest ahead (most history), the reference for the others.
    pub ahead: String,
    /// One line per other cluster whose copy differs from it.
    pub lines: Vec<String>,
    /// True when every differing copy is only behind (a prefix of the reference, or absent):
    /// possibly a write still under way, worth re-reading before failing.
    pub only_behind: bool,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

fn who(c: &str) -> String {
    if c.is_empty() {
        "the provider's own cluster".into()
    } else {
        format!("cluster {c:?}")
    }
}

/// How `other` differs from `reference`, or `None` when equal.
fn describe(
    cluster: &str,
    other: &Document,
    ahead: &str,
    reference: &Document,
) -> Option<(String, bool)> {
    if other == reference {
        return None;
    }
    let common = other
        .history
        .iter()
        .zip(&reference.history)
        .take_while(|(a, b)| a == b)
        .count();
    let prefix = common == other.history.len() && other.history.len() < reference.history.len();
    let mut parts = Vec::new();
    let mut comp = Vec::new();
    for (k, v) in &reference.components {
        match other.components.get(k) {
            None => comp.push(format!("{k} missing")),
            Some(x) if x != v => comp.push(format!(
                "{k} is {} there but {} in {}",
                serde_json::Value::Object(x.clone()),
                serde_json::Value::Object(v.clone()),
                who(ahead)
            )),
            _ => {}
        }
    }
    for k in other
        .components
        .keys()
        .filter(|k| !reference.components.contains_key(*k))
    {
        comp.push(format!("{k} present only there"));
    }
    if !comp.is_empty() {
        parts.push(format!("components: {}", comp.join("; ")));
    }
    if prefix {
        let missing = &reference.history[common..];
        let shown: Vec<String> = missing
            .iter()
            .map(|e| format!("{} by {} ({})", e.time, e.holder, e.changes.join(", ")))
            .collect();
        parts.insert(
            0,
            format!(
                "{} is behind {} by {} apply(ies): {}",
                who(cluster),
                who(ahead),
                missing.len(),
                shown.join("; ")
            ),
        );
    } else if common == other.history.len() && common == reference.history.len() {
        parts.insert(
            0,
            format!(
                "{} differs from {} although both record the same {common} apply(ies): changed outside Terraform",
                who(cluster),
                who(ahead)
            ),
        );
    } else {
        parts.insert(
            0,
            format!(
                "{} differs from {}: their histories diverge after entry {common} (it has {}, {} has {}; last written {} by {:?} vs {} by {:?})",
                who(cluster),
                who(ahead),
                other.history.len(),
                who(ahead),
                reference.history.len(),
                other.updated_at,
                other.updated_by,
                reference.updated_at,
                reference.updated_by
            ),
        );
    }
    if other.fencing_token != reference.fencing_token {
        parts.push(format!(
            "fencing token {:?} there, {:?} in {}",
            other.fencing_token,
            reference.fencing_token,
            who(ahead)
        ));
    }
    Some((parts.join("; "), prefix))
}

/// Compares the copies (`None`: the cluster has none). `None` when all are equal (or all absent).
pub fn compare(copies: &[(String, Option<Document>)]) -> Option<Divergence> {
    let present: Vec<(&String, &Document)> = copies
        .iter()
        .filter_map(|(c, d)| d.as_ref().map(|d| (c, d)))
        .collect();
    let (ahead, reference) = *present.iter().max_by(|a, b| {
        (a.1.history.len(), &a.1.updated_at)
            .cmp(&(b.1.history.len(), &b.1.updated_at))
            // On a tie the first cluster in name order is the reference.
            .then_with(|| b.0.cmp(a.0))
    })?;
    let mut lines = Vec::new();
    let mut only_behind = true;
    for (c, d) in copies {
        match d {
            // No copy is behind too (an empty history is a prefix of any): a first write still
            // under way, or a cluster newly added to the list.
            None => lines.push(format!("{} has no copy of the document", who(c))),
            Some(d) => {
                if let Some((line, prefix)) = describe(c, d, ahead, reference) {
                    lines.push(line);
                    only_behind &= prefix;
                }
            }
        }
    }
    (!lines.is_empty()).then(|| Divergence {
        ahead: ahead.clone(),
        lines,
        only_behind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::HistoryEntry;
    use serde_json::json;

    fn doc(versions: &[(&str, &str)], history: usize) -> Document {
        let mut d = Document::empty("n");
        for (k, v) in versions {
            d.components.insert(
                k.to_string(),
                json!({ "version": v }).as_object().unwrap().clone(),
            );
        }
        for i in 0..history {
            d.history.push(HistoryEntry {
                time: format!("2026-01-01T00:00:0{i}Z"),
                holder: format!("h{i}"),
                tfc_run_id: None,
                fencing_token: None,
                changes: vec![format!("change {i}")],
            });
        }
        d.updated_at = format!("2026-01-01T00:00:0{history}Z");
        d
    }

    #[test]
    fn equal_copies_agree() {
        let d = doc(&[("a", "v1")], 2);
        assert_eq!(
            compare(&[("eu".into(), Some(d.clone())), ("us".into(), Some(d))]),
            None
        );
        assert_eq!(compare(&[("eu".into(), None), ("us".into(), None)]), None);
    }

    #[test]
    fn behind_copy_is_named_with_what_it_lacks() {
        let new = doc(&[("a", "v2")], 3);
        let mut old = doc(&[("a", "v1")], 2);
        old.history.truncate(2);
        let d = compare(&[
            ("asia".into(), Some(new.clone())),
            ("eu".into(), Some(old)),
            ("us".into(), Some(new)),
        ])
        .unwrap();
        assert_eq!(d.ahead, "asia");
        assert!(d.only_behind);
        assert_eq!(d.lines.len(), 1);
        let text = d.to_string();
        assert!(
            text.contains("cluster \"eu\" is behind cluster \"asia\" by 1 apply(ies)"),
            "{text}"
        );
        assert!(text.contains("by h2 (change 2)"), "{text}");
        assert!(
            text.contains("a is {\"version\":\"v1\"} there but {\"version\":\"v2\"}"),
            "{text}"
        );
    }

    #[test]
    fn edited_copy_diverges_and_missing_copy_is_named() {
        let good = doc(&[("a", "v1")], 2);
        let mut edited = good.clone();
        edited.components.insert(
            "b".into(),
            json!({"version": "x"}).as_object().unwrap().clone(),
        );
        let missing = compare(&[("us".into(), Some(good.clone())), ("zz".into(), None)]).unwrap();
        assert!(
            missing.only_behind,
            "a missing copy may be a first write under way"
        );
        let d = compare(&[
            ("eu".into(), Some(edited)),
            ("us".into(), Some(good)),
            ("zz".into(), None),
        ])
        .unwrap();
        assert!(!d.only_behind);
        // Same history length and time: the first cluster by name is the reference.
        assert_eq!(d.ahead, "eu");
        let text = d.to_string();
        assert!(
            text.contains("cluster \"us\" differs from cluster \"eu\" although both record the same 2 apply(ies)"),
            "{text}"
        );
        assert!(text.contains("components: b missing"), "{text}");
        assert!(text.contains("cluster \"zz\" has no copy"), "{text}");
    }
}
