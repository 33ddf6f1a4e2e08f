//! cty type constraints in their JSON form (`"string"`, `["list","string"]`, ...), as they travel
//! in schemas and beside dynamically-typed values; plus the plumbing both value codecs share:
//! error paths, friendly type names and the inference of a concrete type from a [`Value`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use super::{CodecError, Type, Value};

/// The JSON form of a type, as Terraform expects it in `Schema.Attribute.type`.
pub fn type_to_json(ty: &Type) -> serde_json::Value {
    use serde_json::Value as J;
    match ty {
        Type::Bool => J::String("bool".into()),
        Type::Number => J::String("number".into()),
        Type::String => J::String("string".into()),
        Type::Dynamic => J::String("dynamic".into()),
        Type::List(e) => J::Array(vec![J::String("list".into()), type_to_json(e)]),
        Type::Set(e) => J::Array(vec![J::String("set".into()), type_to_json(e)]),
        Type::Map(e) => J::Array(vec![J::String("map".into()), type_to_json(e)]),
        Type::Object { attrs, optional } => {
            let map: serde_json::Map<String, J> = attrs
                .iter()
                .map(|(k, t)| (k.clone(), type_to_json(t)))
                .collect();
            let mut parts = vec![J::String("object".into()), J::Object(map)];
            if !optional.is_empty() {
                parts.push(J::Array(
                    optional.iter().map(|n| J::String(n.clone())).collect(),
                ));
            }
            J::Array(parts)
        }
        Type::Tuple(elems) => J::Array(vec![
            J::String("tuple".into()),
            J::Array(elems.iter().map(type_to_json).collect()),
        ]),
    }
}

/// Reads a type from its JSON form. Optional-attribute lists must name attributes of the object.
pub fn type_from_json(j: &serde_json::Value) -> Result<Type, CodecError> {
    use serde_json::Value as J;
    let bad = |detail: String| CodecError::Malformed {
        format: "type JSON",
        detail,
    };
    match j {
        J::String(s) => match s.as_str() {
            "bool" => Ok(Type::Bool),
            "number" => Ok(Type::Number),
            "string" => Ok(Type::String),
            "dynamic" => Ok(Type::Dynamic),
            other => Err(bad(format!(
                "{other:?} is not a primitive type name (bool, number, string, dynamic)"
            ))),
        },
        J::Array(parts) => {
            let Some(J::String(kind)) = parts.first() else {
                return Err(bad(format!(
                    "a complex type must start with its kind name, got {j}"
                )));
            };
            let arity_ok = match kind.as_str() {
                "object" => parts.len() == 2 || parts.len() == 3,
                _ => parts.len() == 2,
            };
            if !arity_ok {
                return Err(bad(format!(
                    "wrong number of elements in {kind} type description {j}"
                )));
            }
            match kind.as_str() {
                "list" => Ok(Type::List(Box::new(type_from_json(&parts[1])?))),
                "set" => Ok(Type::Set(Box::new(type_from_json(&parts[1])?))),
                "map" => Ok(Type::Map(Box::new(type_from_json(&parts[1])?))),
                "tuple" => match &parts[1] {
                    J::Array(elems) => Ok(Type::Tuple(
                        elems.iter().map(type_from_json).collect::<Result<_, _>>()?,
                    )),
                    other => Err(bad(format!(
                        "tuple element types must be an array, got {other}"
                    ))),
                },
                "object" => {
                    let J::Object(m) = &parts[1] else {
                        return Err(bad(format!(
                            "object attribute types must be a JSON object, got {}",
                            parts[1]
                        )));
                    };
                    let attrs = m
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), type_from_json(v)?)))
                        .collect::<Result<BTreeMap<_, _>, CodecError>>()?;
                    let mut optional = BTreeSet::new();
                    if let Some(opt) = parts.get(2) {
                        let J::Array(names) = opt else {
                            return Err(bad(format!(
                                "optional attributes must be an array of names, got {opt}"
                            )));
                        };
                        for n in names {
                            match n {
                                J::String(n) if attrs.contains_key(n) => {
                                    optional.insert(n.clone());
                                }
                                other => {
                                    return Err(bad(format!(
                                    "optional attribute {other} is not an attribute of the object"
                                )))
                                }
                            }
                        }
                    }
                    Ok(Type::Object { attrs, optional })
                }
                other => Err(bad(format!(
                    "{other:?} is not a type kind (list, set, map, object, tuple)"
                ))),
            }
        }
        other => Err(bad(format!("a type is a string or an array, got {other}"))),
    }
}

/// The compact JSON text of a type, byte-identical to `serde_json::to_vec(&type_to_json(ty))`,
/// written without building a `serde_json::Value` (the msgpack codec does this per dynamic value).
pub fn type_to_json_bytes(ty: &Type) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    write_type_json(ty, &mut out);
    out
}

/// Parses the JSON text of a type.
pub fn type_from_json_bytes(bytes: &[u8]) -> Result<Type, CodecError> {
    let j: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| CodecError::Malformed {
            format: "type JSON",
            detail: format!("{e} in {:?}", String::from_utf8_lossy(bytes)),
        })?;
    type_from_json(&j)
}

pub(crate) fn write_type_json(ty: &Type, out: &mut Vec<u8>) {
    match ty {
        Type::Bool => out.extend_from_slice(br#""bool""#),
        Type::Number => out.extend_from_slice(br#""number""#),
        Type::String => out.extend_from_slice(br#""string""#),
        Type::Dynamic => out.extend_from_slice(br#""dynamic""#),
        Type::List(e) | Type::Set(e) | Type::Map(e) => {
            out.extend_from_slice(match ty {
                Type::List(_) => br#"["list","#.as_slice(),
                Type::Set(_) => br#"["set","#.as_slice(),
                _ => br#"["map","#.as_slice(),
            });
            write_type_json(e, out);
            out.push(b']');
        }
        Type::Object { attrs, optional } => {
            out.extend_from_slice(br#"["object",{"#);
            for (i, (k, t)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(k, out);
                out.push(b':');
                write_type_json(t, out);
            }
            out.push(b'}');
            if !optional.is_empty() {
                out.extend_from_slice(b",[");
                for (i, k) in optional.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_string(k, out);
                }
                out.push(b']');
            }
            out.push(b']');
        }
        Type::Tuple(elems) => {
            out.extend_from_slice(br#"["tuple",["#);
            for (i, t) in elems.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_type_json(t, out);
            }
            out.extend_from_slice(b"]]");
        }
    }
}

/// Writes a JSON string literal the way serde_json's compact writer does (so type JSON is
/// byte-identical either way): `"` and `\` escaped, control characters as `\n`, `\t`, ... or
/// `\u00XX`, everything else verbatim UTF-8.
pub(crate) fn write_json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A short human name for a type, as cty prints it ("list of string").
pub(crate) fn friendly_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::Number => "number".into(),
        Type::String => "string".into(),
        Type::Dynamic => "dynamic".into(),
        Type::List(e) => format!("list of {}", friendly_name(e)),
        Type::Set(e) => format!("set of {}", friendly_name(e)),
        Type::Map(e) => format!("map of {}", friendly_name(e)),
        Type::Object { attrs, .. } => {
            let names: Vec<&str> = attrs.keys().map(String::as_str).collect();
            format!("object with attributes {{{}}}", names.join(", "))
        }
        Type::Tuple(elems) => format!("tuple of {} elements", elems.len()),
    }
}

/// What kind of value a `Value` is, for error messages.
pub(crate) fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown(_) => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
    }
}

/// Deeper nesting than this is refused: it protects the stack against hostile input
/// (dynamic values can nest without bound), and no real configuration comes near it.
pub(crate) const MAX_DEPTH: usize = 200;

/// One step of the path to the value an error is about.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Attr(String),
    Index(usize),
    Key(String),
}

/// An error inside a codec, with the path collected while unwinding (innermost step first),
/// so that the success path pays nothing for error reporting.
#[derive(Debug)]
pub(crate) struct PathError {
    pub mismatch: Option<String>,
    pub detail: String,
    pub offset: Option<usize>,
    steps: Vec<Step>,
}

impl PathError {
    /// The bytes are not valid in the format at all.
    pub fn malformed(detail: impl Into<String>, offset: usize) -> PathError {
        PathError {
            mismatch: None,
            detail: detail.into(),
            offset: Some(offset),
            steps: Vec::new(),
        }
    }
    /// A well-formed value that does not fit `ty`.
    pub fn mismatch(ty: &Type, detail: impl Into<String>) -> PathError {
        PathError {
            mismatch: Some(friendly_name(ty)),
            detail: detail.into(),
            offset: None,
            steps: Vec::new(),
        }
    }
    pub fn at(mut self, step: Step) -> PathError {
        self.steps.push(step);
        self
    }
    pub fn path(&self) -> String {
        if self.steps.is_empty() {
            return "(root)".into();
        }
        let mut s = String::new();
        for step in self.steps.iter().rev() {
            let _ = match step {
                Step::Attr(a) => write!(s, ".{a}"),
                Step::Index(i) => write!(s, "[{i}]"),
                Step::Key(k) => write!(s, "[{k:?}]"),
            };
        }
        s
    }
    pub fn into_codec_error(self, format: &'static str) -> CodecError {
        let path = self.path();
        match self.mismatch {
            Some(ty) => CodecError::TypeMismatch {
                ty,
                detail: format!("at {path}: {}", self.detail),
            },
            None => {
                let offset = self
                    .offset
                    .map(|o| format!(", byte {o}"))
                    .unwrap_or_default();
                CodecError::Malformed {
                    format,
                    detail: format!("at {path}{offset}: {}", self.detail),
                }
            }
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.path(), self.detail)
    }
}

/// The concrete type a value would have in cty, for writing it where the schema says `dynamic`.
/// Nulls and unknowns carry no type and yield `Dynamic`; collection element types are unified
/// across elements (`Dynamic` gives way to any concrete type). Elements of one collection with
/// irreconcilable types are an error: cty collections are homogeneous.
pub(crate) fn infer_type(v: &Value, depth: usize) -> Result<Type, PathError> {
    if depth > MAX_DEPTH {
        return Err(PathError::mismatch(
            &Type::Dynamic,
            format!("value nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(match v {
        Value::Null | Value::Unknown(_) => Type::Dynamic,
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) => Type::String,
        Value::List(elems) => Type::List(Box::new(infer_element_type(
            elems.iter().enumerate().map(|(i, e)| (Step::Index(i), e)),
            depth,
        )?)),
        Value::Set(elems) => Type::Set(Box::new(infer_element_type(
            elems.iter().enumerate().map(|(i, e)| (Step::Index(i), e)),
            depth,
        )?)),
        Value::Map(m) => Type::Map(Box::new(infer_element_type(
            m.iter().map(|(k, e)| (Step::Key(k.clone()), e)),
            depth,
        )?)),
        Value::Object(m) => Type::Object {
            attrs: m
                .iter()
                .map(|(k, e)| {
                    Ok((
                        k.clone(),
                        infer_type(e, depth + 1).map_err(|err| err.at(Step::Attr(k.clone())))?,
                    ))
                })
                .collect::<Result<_, PathError>>()?,
            optional: BTreeSet::new(),
        },
        Value::Tuple(elems) => Type::Tuple(
            elems
                .iter()
                .enumerate()
                .map(|(i, e)| infer_type(e, depth + 1).map_err(|err| err.at(Step::Index(i))))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn infer_element_type<'a>(
    elems: impl Iterator<Item = (Step, &'a Value)>,
    depth: usize,
) -> Result<Type, PathError> {
    let mut acc = Type::Dynamic;
    for (step, e) in elems {
        let t = infer_type(e, depth + 1).map_err(|err| err.at(step.clone()))?;
        acc = match unify(&acc, &t) {
            Some(u) => u,
            None => {
                return Err(PathError::mismatch(
                    &acc,
                    format!(
                        "elements of one collection must share a type; this one is a {}",
                        friendly_name(&t)
                    ),
                )
                .at(step))
            }
        }
    }
    Ok(acc)
}

/// The most specific type both `a` and `b` conform to, if any (`Dynamic` stands for "not known").
fn unify(a: &Type, b: &Type) -> Option<Type> {
    match (a, b) {
        (Type::Dynamic, t) | (t, Type::Dynamic) => Some(t.clone()),
        (Type::List(x), Type::List(y)) => Some(Type::List(Box::new(unify(x, y)?))),
        (Type::Set(x), Type::Set(y)) => Some(Type::Set(Box::new(unify(x, y)?))),
        (Type::Map(x), Type::Map(y)) => Some(Type::Map(Box::new(unify(x, y)?))),
        (Type::Tuple(x), Type::Tuple(y)) if x.len() == y.len() => Some(Type::Tuple(
            x.iter()
                .zip(y)
                .map(|(p, q)| unify(p, q))
                .collect::<Option<_>>()?,
        )),
        (Type::Object { attrs: x, .. }, Type::Object { attrs: y, .. }) if x.len() == y.len() => {
            let attrs = x
                .iter()
                .map(|(k, p)| Some((k.clone(), unify(p, y.get(k)?)?)))
                .collect::<Option<BTreeMap<_, _>>>()?;
            Some(Type::Object {
                attrs,
                optional: BTreeSet::new(),
            })
        }
        (p, q) if p == q => Some(p.clone()),
        _ => None,
    }
}
