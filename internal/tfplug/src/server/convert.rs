//! Conversions between the framework's types and the protocol's messages. Authors never see
//! these.

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::path::{AttributePath, Step};
use crate::proto::tfplugin6 as pb;
use crate::resource::{Parameter, Signature};
use crate::schema::{Attribute, Block, BlockNesting, NestedBlock, Nesting, Schema};
use crate::value::{json, msgpack, type_to_json, Type, Value};

const MARKDOWN: i32 = pb::StringKind::Markdown as i32;

pub(crate) fn schema(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(block(&s.block)),
    }
}

fn block(b: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: b.attributes.iter().map(attribute).collect(),
        block_types: b.blocks.iter().map(nested_block).collect(),
        description: b.description.clone(),
        description_kind: MARKDOWN,
        deprecated: b.deprecated,
    }
}

fn type_bytes(t: &Type) -> Vec<u8> {
    serde_json::to_vec(&type_to_json(t)).unwrap_or_default()
}

fn attribute(a: &Attribute) -> pb::schema::Attribute {
    let mut description = a.description.clone();
    let docs: Vec<String> = a
        .validators
        .iter()
        .map(|v| v.describe())
        .filter(|d| !d.is_empty())
        .collect();
    if !docs.is_empty() && !description.contains(&docs[0]) {
        description = format!("{description} {}", docs.join(" "))
            .trim()
            .to_string();
    }
    pb::schema::Attribute {
        name: a.name.clone(),
        r#type: if a.nested.is_some() {
            Vec::new()
        } else {
            type_bytes(&a.ty)
        },
        nested_type: a.nested.as_ref().map(|n| pb::schema::Object {
            attributes: n.attributes.iter().map(attribute).collect(),
            nesting: match n.nesting {
                Nesting::Single => pb::schema::object::NestingMode::Single,
                Nesting::List => pb::schema::object::NestingMode::List,
                Nesting::Set => pb::schema::object::NestingMode::Set,
                Nesting::Map => pb::schema::object::NestingMode::Map,
            } as i32,
            ..Default::default()
        }),
        description,
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind: MARKDOWN,
        deprecated: a.deprecated.is_some(),
        write_only: a.write_only,
    }
}

fn nested_block(b: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode as M;
    pb::schema::NestedBlock {
        type_name: b.name.clone(),
        block: Some(block(&b.block)),
        nesting: match b.nesting {
            BlockNesting::Single => M::Single,
            BlockNesting::Group => M::Group,
            BlockNesting::List => M::List,
            BlockNesting::Set => M::Set,
            BlockNesting::Map => M::Map,
        } as i32,
        min_items: b.min_items,
        max_items: b.max_items,
    }
}

pub(crate) fn function(s: &Signature) -> pb::Function {
    let param = |p: &Parameter| pb::function::Parameter {
        name: p.name.clone(),
        r#type: type_bytes(&p.ty),
        allow_null_value: p.allow_null,
        allow_unknown_values: p.allow_unknown,
        description: p.description.clone(),
        description_kind: MARKDOWN,
    };
    pb::Function {
        parameters: s.parameters.iter().map(param).collect(),
        variadic_parameter: s.variadic.as_ref().map(param),
        r#return: Some(pb::function::Return {
            r#type: type_bytes(&s.return_type),
        }),
        summary: s.summary.clone(),
        description: s.description.clone(),
        description_kind: MARKDOWN,
        deprecation_message: String::new(),
    }
}

pub(crate) fn path(p: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    Step::Attr(a) => Selector::AttributeName(a.clone()),
                    Step::Key(k) => Selector::ElementKeyString(k.clone()),
                    Step::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

pub(crate) fn diagnostics(d: Diagnostics) -> Vec<pb::Diagnostic> {
    d.0.into_iter().map(diagnostic).collect()
}

fn diagnostic(d: Diagnostic) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: match d.severity {
            Severity::Error => pb::diagnostic::Severity::Error,
            Severity::Warning => pb::diagnostic::Severity::Warning,
        } as i32,
        summary: d.summary,
        detail: d.detail,
        attribute: d.attribute.as_ref().filter(|p| !p.is_root()).map(path),
    }
}

/// Decodes a DynamicValue; an absent one is null. Errors become a diagnostic naming `what`.
pub(crate) fn decode(
    dv: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let Some(dv) = dv else {
        return Some(Value::Null);
    };
    let r = if !dv.msgpack.is_empty() {
        msgpack::decode(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        json::decode(&dv.json, ty)
    } else {
        return Some(Value::Null);
    };
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error("Malformed value from Terraform", format!("The {what} could not be decoded: {e}. This is a bug in Terraform or the provider; please report it."));
            None
        }
    }
}

pub(crate) fn encode(
    v: &Value,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<pb::DynamicValue> {
    match msgpack::encode(v, ty) {
        Ok(b) => Some(pb::DynamicValue {
            msgpack: b,
            json: Vec::new(),
        }),
        Err(e) => {
            diags.error("Provider produced an invalid value", format!("The {what} could not be encoded: {e}. This is a bug in the provider; please report it."));
            None
        }
    }
}

/// Keeps only what `ty` describes of a JSON state, so state written by an older schema with
/// attributes since removed still decodes.
pub(crate) fn prune_json(v: serde_json::Value, ty: &Type) -> serde_json::Value {
    use serde_json::Value as J;
    match (v, ty) {
        (J::Object(m), Type::Object { attrs, .. }) => J::Object(
            m.into_iter()
                .filter_map(|(k, x)| attrs.get(&k).map(|t| (k, prune_json(x, t))))
                .collect(),
        ),
        (J::Array(a), Type::List(t) | Type::Set(t)) => {
            J::Array(a.into_iter().map(|x| prune_json(x, t)).collect())
        }
        (J::Object(m), Type::Map(t)) => {
            J::Object(m.into_iter().map(|(k, x)| (k, prune_json(x, t))).collect())
        }
        (v, _) => v,
    }
}
