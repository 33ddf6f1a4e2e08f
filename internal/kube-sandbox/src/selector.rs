//! Label and field selectors as kube-apiserver accepts them in `?labelSelector=` and
//! `?fieldSelector=`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<(String, Op)>);

/// Splits on commas that are not inside `( … )`.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_top(s) {
            let p = part.trim();
            let err = || format!("unable to parse requirement: invalid label selector {p:?}");
            if let Some(k) = p.strip_prefix('!') {
                let k = k.trim();
                if !valid_key(k) {
                    return Err(err());
                }
                reqs.push((k.to_string(), Op::NotExists));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push((k.trim().to_string(), Op::NotEq(v.trim().to_string())));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push((k.trim().to_string(), Op::Eq(v.trim().to_string())));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push((k.trim().to_string(), Op::Eq(v.trim().to_string())));
            } else if let Some(idx) = p.find(" notin ").or_else(|| p.find(" notin(")) {
                let set = parse_set(&p[idx + 6..]).ok_or_else(err)?;
                reqs.push((p[..idx].trim().to_string(), Op::NotIn(set)));
            } else if let Some(idx) = p.find(" in ").or_else(|| p.find(" in(")) {
                let set = parse_set(&p[idx + 3..]).ok_or_else(err)?;
                reqs.push((p[..idx].trim().to_string(), Op::In(set)));
            } else {
                if !valid_key(p) {
                    return Err(err());
                }
                reqs.push((p.to_string(), Op::Exists));
            }
            let (k, _) = reqs.last().ok_or_else(err)?;
            if !valid_key(k) {
                return Err(err());
            }
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|(k, op)| match op {
            Op::Eq(v) => get(k) == Some(v.as_str()),
            Op::NotEq(v) => get(k) != Some(v.as_str()),
            Op::In(set) => get(k).is_some_and(|x| set.iter().any(|s| s == x)),
            Op::NotIn(set) => get(k).is_none_or(|x| !set.iter().any(|s| s == x)),
            Op::Exists => get(k).is_some(),
            Op::NotExists => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value`, comma-separated.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// `allowed` lists the field paths this kind supports besides metadata.name/namespace.
    pub fn parse(s: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let k = k.trim();
            if k != "metadata.name" && k != "metadata.namespace" && !allowed.contains(&k) {
                return Err(format!("field label not supported: {k}"));
            }
            reqs.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = obj;
            for seg in path.split('.') {
                cur = cur.get(seg).unwrap_or(&Value::Null);
            }
            let got = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(sel: &str, labels: Value) -> bool {
        LabelSelector::parse(sel)
            .unwrap()
            .matches(labels.as_object())
    }

    #[test]
    fn label_operators() {
        let l = json!({"app": "node", "tier": "val", "chain": "tezos"});
        assert!(m("app=node", l.clone()));
        assert!(m("app==node,tier=val", l.clone()));
        assert!(!m("app!=node", l.clone()));
        assert!(m("app!=x", l.clone()));
        assert!(m("missing!=x", l.clone()));
        assert!(m("tier in (val, obs)", l.clone()));
        assert!(!m("tier notin (val,obs)", l.clone()));
        assert!(m("missing notin (a)", l.clone()));
        assert!(m("chain", l.clone()));
        assert!(m("!missing", l.clone()));
        assert!(!m("!chain", l.clone()));
        assert!(m("", l));
        assert!(!m("app=node", Value::Null));
    }

    #[test]
    fn bad_label_selectors() {
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("=x").is_err());
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn fields() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        let f = FieldSelector::parse("metadata.name=a,metadata.namespace!=x", &[]).unwrap();
        assert!(f.matches(&obj));
        assert!(!FieldSelector::parse("metadata.name==b", &[])
            .unwrap()
            .matches(&obj));
        assert!(FieldSelector::parse("spec.x=1", &[]).is_err());
    }
}
