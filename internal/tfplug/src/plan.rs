//! The plan mechanics every resource shares, so authors write only what is particular to them.

use crate::path::AttributePath;
use crate::schema::{Attribute, Block, PlanModifier};
use crate::value::Value;

/// Computes the planned state from Terraform's proposed new state: defaults for null optional
/// attributes, unknown for computed attributes the provider will set, prior values kept where
/// the author asked, and the attributes whose change forces replacement.
pub(crate) fn plan(
    block: &Block,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> (Value, Vec<AttributePath>) {
    if proposed.is_null() {
        return (Value::Null, Vec::new());
    }
    let mut planned = proposed.clone();
    // Write-only values are never stored, so they never count as a change.
    null_write_only(block, &mut planned);
    apply_defaults(block, config, &mut planned);
    let creating = prior.is_null();
    let changed = creating || !planned.equals(prior);
    if changed {
        mark_computed_unknown(block, prior, config, &mut planned, creating);
    }
    let mut replace = Vec::new();
    if !creating {
        for a in &block.attributes {
            if !a.requires_replace_any() {
                continue;
            }
            let (old, new) = (prior.get(&a.name), planned.get(&a.name));
            if a.computed && config.get(&a.name).is_null() {
                continue; // the provider chooses it; a change of its own is no reason to replace
            }
            if replace_needed(a, old, new) {
                replace.push(AttributePath::attr(&a.name));
            }
        }
    }
    (planned, replace)
}

fn replace_needed(a: &Attribute, old: &Value, new: &Value) -> bool {
    if old.equals(new) {
        return false;
    }
    a.plan_modifiers.iter().any(|m| match m {
        PlanModifier::RequiresReplace => true,
        PlanModifier::RequiresReplaceIf(f, _) => f(old, new),
        PlanModifier::UseStateForUnknown => false,
    })
}

fn apply_defaults(block: &Block, config: &Value, planned: &mut Value) {
    for a in &block.attributes {
        if let Some(d) = &a.default {
            if config.get(&a.name).is_null() {
                planned.set(&a.name, d.clone());
            }
        }
    }
}

fn mark_computed_unknown(
    block: &Block,
    prior: &Value,
    config: &Value,
    planned: &mut Value,
    creating: bool,
) {
    for a in &block.attributes {
        if !a.computed || a.default.is_some() || !config.get(&a.name).is_null() {
            continue;
        }
        let keep = !creating
            && a.plan_modifiers
                .iter()
                .any(|m| matches!(m, PlanModifier::UseStateForUnknown))
            && !prior.get(&a.name).is_null();
        if keep {
            planned.set(&a.name, prior.get(&a.name).clone());
        } else {
            planned.set(&a.name, Value::unknown());
        }
    }
}

/// Write-only attributes never reach plan or state.
pub(crate) fn null_write_only(block: &Block, v: &mut Value) {
    if v.is_null() {
        return;
    }
    for a in &block.attributes {
        if a.write_only && !v.get(&a.name).is_null() {
            v.set(&a.name, Value::Null);
        }
    }
}

/// Paths of values still unknown, which must not remain after apply or read.
pub(crate) fn unknown_paths(v: &Value, path: &AttributePath, out: &mut Vec<AttributePath>) {
    match v {
        Value::Unknown(_) => out.push(path.clone()),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| unknown_paths(x, &path.then_attr(k), out)),
        Value::Map(m) => m
            .iter()
            .for_each(|(k, x)| unknown_paths(x, &path.then_key(k), out)),
        Value::List(l) | Value::Set(l) | Value::Tuple(l) => l
            .iter()
            .enumerate()
            .for_each(|(i, x)| unknown_paths(x, &path.then_index(i as i64), out)),
        _ => {}
    }
}

/// Fills attributes the value lacks with null so it conforms to the block's object type.
pub(crate) fn complete_object(block: &Block, v: &mut Value) {
    if let Value::Object(m) = v {
        for a in &block.attributes {
            m.entry(a.name.clone()).or_insert(Value::Null);
        }
        for b in &block.blocks {
            m.entry(b.name.clone()).or_insert(Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Attribute;

    fn block() -> Block {
        Block::new()
            .attr(Attribute::string("name").required().requires_replace())
            .attr(Attribute::string("size").optional())
            .attr(Attribute::string("mode").default("fast"))
            .attr(Attribute::string("id").computed().use_state_for_unknown())
            .attr(Attribute::string("etag").computed())
            .attr(Attribute::string("secret").optional().write_only())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    #[test]
    fn create_marks_computed_unknown_and_applies_defaults() {
        let config = obj(&[("name", "a".into()), ("secret", "s".into())]);
        let proposed = config.clone();
        let (p, r) = plan(&block(), &Value::Null, &proposed, &config);
        assert!(r.is_empty());
        assert_eq!(p.get("mode"), &Value::from("fast"));
        assert!(p.get("id").is_unknown());
        assert!(p.get("etag").is_unknown());
        assert!(p.get("secret").is_null(), "write-only never planned");
    }

    #[test]
    fn unchanged_update_keeps_everything() {
        let prior = obj(&[
            ("name", "a".into()),
            ("mode", "fast".into()),
            ("id", "1".into()),
            ("etag", "e".into()),
        ]);
        let config = obj(&[("name", "a".into())]);
        let (p, r) = plan(&block(), &prior, &prior.clone(), &config);
        assert!(r.is_empty());
        assert!(p.equals(&prior));
    }

    #[test]
    fn changed_update_keeps_stable_ids_and_unknowns_the_rest() {
        let prior = obj(&[
            ("name", "a".into()),
            ("mode", "fast".into()),
            ("id", "1".into()),
            ("etag", "e".into()),
            ("size", "1".into()),
        ]);
        let config = obj(&[("name", "a".into()), ("size", "2".into())]);
        let mut proposed = prior.clone();
        proposed.set("size", "2".into());
        let (p, r) = plan(&block(), &prior, &proposed, &config);
        assert!(r.is_empty());
        assert_eq!(p.get("id"), &Value::from("1"));
        assert!(p.get("etag").is_unknown());
    }

    #[test]
    fn requires_replace_reports_the_path() {
        let prior = obj(&[
            ("name", "a".into()),
            ("mode", "fast".into()),
            ("id", "1".into()),
        ]);
        let config = obj(&[("name", "b".into())]);
        let mut proposed = prior.clone();
        proposed.set("name", "b".into());
        let (_, r) = plan(&block(), &prior, &proposed, &config);
        assert_eq!(r, vec![AttributePath::attr("name")]);
    }

    #[test]
    fn destroy_plans_null() {
        let prior = obj(&[("name", "a".into())]);
        let (p, r) = plan(&block(), &prior, &Value::Null, &Value::Null);
        assert!(p.is_null() && r.is_empty());
    }

    #[test]
    fn unknown_paths_found_deep() {
        let v = obj(&[("a", Value::List(vec![Value::Null, Value::unknown()]))]);
        let mut out = Vec::new();
        unknown_paths(&v, &AttributePath::default(), &mut out);
        assert_eq!(out, vec![AttributePath::attr("a").then_index(1)]);
    }
}
