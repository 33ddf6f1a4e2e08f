//! A schema as the Markdown "Schema" section the Terraform Registry shows: attributes grouped as
//! Required / Optional / Read-Only, nested attributes and blocks in their own anchored sections.
//!
//! Everything Terraform enforces is stated from the schema itself (types, flags, defaults,
//! validators, replacement), so the page cannot drift from what the plugin serves. Descriptions
//! that already state a fact in their own words keep it, and the generated sentence is left out.

use tfplug::schema::{Attribute, Block, BlockNesting, NestedBlock, Nesting, PlanModifier};
use tfplug::{Type, Value};

/// Renders `block` under a `## Schema` heading.
pub fn render(block: &Block) -> String {
    let mut out = String::from("## Schema\n");
    let mut nested = Vec::new();
    render_groups(block, "", &mut out, &mut nested, "###");
    // Nested sections, breadth first in the order they were referenced.
    let mut i = 0;
    while i < nested.len() {
        let (anchor, title, inner): (String, String, Block) = nested[i].clone();
        out.push_str(&format!(
            "\n<a id=\"{anchor}\"></a>\n### Nested Schema for `{title}`\n"
        ));
        render_groups(&inner, &format!("{title}."), &mut out, &mut nested, "");
        i += 1;
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Required,
    Optional,
    ReadOnly,
}

fn attr_group(a: &Attribute) -> Group {
    if a.required {
        Group::Required
    } else if a.optional || a.write_only {
        Group::Optional
    } else {
        Group::ReadOnly
    }
}

fn block_group(b: &NestedBlock) -> Group {
    if b.min_items > 0 {
        Group::Required
    } else {
        Group::Optional
    }
}

/// One `Required` / `Optional` / `Read-Only` list per group that has members. Top level uses
/// `### ` headings, nested sections plain `Required:` labels as the registry does.
fn render_groups(
    block: &Block,
    prefix: &str,
    out: &mut String,
    nested: &mut Vec<(String, String, Block)>,
    heading: &str,
) {
    for (group, label) in [
        (Group::Required, "Required"),
        (Group::Optional, "Optional"),
        (Group::ReadOnly, "Read-Only"),
    ] {
        let mut lines = Vec::new();
        for a in block.attributes.iter().filter(|a| attr_group(a) == group) {
            lines.push(attribute_line(a, prefix, nested));
        }
        for b in block.blocks.iter().filter(|b| block_group(b) == group) {
            lines.push(block_line(b, prefix, nested));
        }
        if lines.is_empty() {
            continue;
        }
        if heading.is_empty() {
            out.push_str(&format!("\n{label}:\n\n"));
        } else {
            out.push_str(&format!("\n{heading} {label}\n\n"));
        }
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
}

fn anchor(kind: &str, path: &str) -> String {
    format!("{kind}--{}", path.replace('.', "--"))
}

fn attribute_line(
    a: &Attribute,
    prefix: &str,
    nested: &mut Vec<(String, String, Block)>,
) -> String {
    let mut kind = match &a.nested {
        Some(n) => match n.nesting {
            Nesting::Single => "Attributes".to_string(),
            Nesting::List => "Attributes List".to_string(),
            Nesting::Set => "Attributes Set".to_string(),
            Nesting::Map => "Attributes Map".to_string(),
        },
        None => type_name(&a.ty),
    };
    if a.sensitive {
        kind.push_str(", Sensitive");
    }
    if a.write_only {
        kind.push_str(", Write-only");
    }
    if a.deprecated.is_some() {
        kind.push_str(", Deprecated");
    }
    let mut text = String::new();
    if let Some(msg) = &a.deprecated {
        text.push_str(&format!("**Deprecated** {}", sentence(msg)));
    }
    push_sentence(&mut text, &one_line(&a.description));
    let desc_lc = a.description.to_lowercase();
    for v in &a.validators {
        let d = v.describe();
        if !d.is_empty() && !already_said(&a.description, &d) {
            push_sentence(&mut text, &d);
        }
    }
    if let Some(d) = &a.default {
        if !desc_lc.contains("default") {
            push_sentence(&mut text, &format!("Defaults to `{}`.", hcl_literal(d)));
        }
    }
    if a.write_only {
        push_sentence(
            &mut text,
            "Write-only: sent to the provider, never stored in plan or state.",
        );
    }
    for m in &a.plan_modifiers {
        let already = desc_lc.contains("replace");
        match m {
            PlanModifier::RequiresReplace if !already => {
                push_sentence(&mut text, "Changing it forces replacement.")
            }
            PlanModifier::RequiresReplaceIf(_, why) if !already && !why.is_empty() => {
                push_sentence(
                    &mut text,
                    &format!("May force replacement: {}", sentence(why)),
                )
            }
            _ => {}
        }
    }
    if let Some(n) = &a.nested {
        let path = format!("{prefix}{}", a.name);
        let id = anchor("nestedatt", &path);
        push_sentence(
            &mut text,
            &format!("(see [below for nested schema](#{id}))"),
        );
        nested.push((
            id,
            path,
            Block {
                attributes: n.attributes.clone(),
                ..Default::default()
            },
        ));
    }
    format!("- `{}` ({kind}) {text}", a.name)
        .trim_end()
        .to_string()
}

fn block_line(b: &NestedBlock, prefix: &str, nested: &mut Vec<(String, String, Block)>) -> String {
    let mut kind = match b.nesting {
        BlockNesting::Single | BlockNesting::Group => "Block".to_string(),
        BlockNesting::List => "Block List".to_string(),
        BlockNesting::Set => "Block Set".to_string(),
        BlockNesting::Map => "Block Map".to_string(),
    };
    if b.min_items > 0 && !matches!(b.nesting, BlockNesting::Single | BlockNesting::Group) {
        kind.push_str(&format!(", Min: {}", b.min_items));
    }
    if b.max_items > 0 && !matches!(b.nesting, BlockNesting::Single | BlockNesting::Group) {
        kind.push_str(&format!(", Max: {}", b.max_items));
    }
    if b.block.deprecated {
        kind.push_str(", Deprecated");
    }
    let path = format!("{prefix}{}", b.name);
    let id = anchor("nestedblock", &path);
    let mut text = one_line(&b.block.description);
    push_sentence(
        &mut text,
        &format!("(see [below for nested schema](#{id}))"),
    );
    nested.push((id, path, b.block.clone()));
    format!("- `{}` ({kind}) {text}", b.name)
}

/// The registry's names for types: `String`, `List of String`, `Map of Number`, `Object`.
pub fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "Boolean".into(),
        Type::Number => "Number".into(),
        Type::String => "String".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Object { .. } => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

/// A default as it would be written in HCL.
pub fn hcl_literal(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Unknown(_) => "(known after apply)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.as_f64().to_string(),
        },
        Value::String(s) => format!("{s:?}"),
        Value::List(l) | Value::Set(l) | Value::Tuple(l) => format!(
            "[{}]",
            l.iter().map(hcl_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) | Value::Object(m) => {
            if m.is_empty() {
                "{}".into()
            } else {
                format!(
                    "{{ {} }}",
                    m.iter()
                        .map(|(k, v)| format!("{k} = {}", hcl_literal(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
    }
}

/// Whether `description` already states what a validator's sentence `rule` says: every value
/// `rule` quotes in backticks appears in the description, or (quoting none) its first clause
/// does, e.g. "a DNS label" in "Network name (a DNS label)".
fn already_said(description: &str, rule: &str) -> bool {
    let quoted: Vec<&str> = rule.split('`').skip(1).step_by(2).collect();
    if !quoted.is_empty() {
        return quoted
            .iter()
            .all(|q| description.contains(&format!("`{q}`")));
    }
    let clause = rule
        .split([',', ':', ';', '.', '('])
        .next()
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let clause = ["a ", "an ", "the "]
        .iter()
        .find_map(|a| clause.strip_prefix(a))
        .unwrap_or(&clause);
    !clause.is_empty() && description.to_lowercase().contains(clause)
}

/// Descriptions are Markdown that may be wrapped; a list item wants one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sentence(s: &str) -> String {
    let s = one_line(s);
    if s.ends_with(['.', '!', '?', ')']) || s.is_empty() {
        s
    } else {
        format!("{s}.")
    }
}

fn push_sentence(text: &mut String, s: &str) {
    if s.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(s);
}
