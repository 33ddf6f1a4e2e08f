//! Schemas: what a provider, resource, data source or ephemeral resource accepts and returns.
//!
//! Besides what Terraform sees (types, flags, descriptions), an attribute carries the behaviour the
//! framework applies for the author: validators, defaults and plan modifiers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::diag::Diagnostics;
use crate::path::AttributePath;
use crate::value::{Type, Value};

/// A versioned schema. Raise `version` when the stored state changes shape and handle the old
/// shape in the resource's `upgrade_state`.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(block: Block) -> Self {
        Schema { version: 0, block }
    }
    pub fn version(mut self, v: i64) -> Self {
        self.version = v;
        self
    }
    /// The cty type of a value conforming to this schema.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }
}

/// A block: attributes and nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    /// Markdown.
    pub description: String,
    pub deprecated: bool,
}

impl Block {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn describe(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    pub fn attr(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn value_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value_type()))
            .collect();
        for b in &self.blocks {
            attrs.insert(b.name.clone(), b.value_type());
        }
        Type::Object {
            attrs,
            optional: Default::default(),
        }
    }
}

/// How a nested block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockNesting {
    Single,
    /// Like `Single`, but never null: absent means all attributes null.
    Group,
    List,
    Set,
    Map,
}

#[derive(Clone, Debug)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: BlockNesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

impl NestedBlock {
    pub fn new(name: impl Into<String>, nesting: BlockNesting, block: Block) -> Self {
        NestedBlock {
            name: name.into(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }
    pub fn max_items(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }
    pub fn min_items(mut self, n: i64) -> Self {
        self.min_items = n;
        self
    }
    pub fn value_type(&self) -> Type {
        let obj = self.block.value_type();
        match self.nesting {
            BlockNesting::Single | BlockNesting::Group => obj,
            BlockNesting::List => Type::list(obj),
            BlockNesting::Set => Type::set(obj),
            BlockNesting::Map => Type::map(obj),
        }
    }
}

/// How nested attributes repeat (`attr = { ... }`, `attr = [{ ... }]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
}

#[derive(Clone, Debug)]
pub struct NestedAttributes {
    pub nesting: Nesting,
    pub attributes: Vec<Attribute>,
}

/// Checks one known, non-null value; adds diagnostics at `path` when it is wrong.
pub trait Validator: Send + Sync {
    fn validate(&self, value: &Value, path: &AttributePath, diags: &mut Diagnostics);
    /// A Markdown sentence for the docs, e.g. "One of `a`, `b`."
    fn describe(&self) -> String {
        String::new()
    }
}

/// What the framework does to an attribute's planned value.
#[derive(Clone)]
pub enum PlanModifier {
    /// A change to this attribute replaces the object.
    RequiresReplace,
    /// Replaces the object when the function, given (prior, planned) values, says so.
    RequiresReplaceIf(Arc<dyn Fn(&Value, &Value) -> bool + Send + Sync>, String),
    /// A computed attribute that does not change once set: keep the prior value instead of
    /// planning it as unknown on every update.
    UseStateForUnknown,
}

impl fmt::Debug for PlanModifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanModifier::RequiresReplace => f.write_str("RequiresReplace"),
            PlanModifier::RequiresReplaceIf(_, d) => write!(f, "RequiresReplaceIf({d})"),
            PlanModifier::UseStateForUnknown => f.write_str("UseStateForUnknown"),
        }
    }
}

/// An attribute with its flags and behaviour. Build with the constructors and chained setters:
/// `Attribute::string("name").required().describe("...").requires_replace()`.
#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    /// Set for nested attributes; `ty` is then derived from it.
    pub nested: Option<NestedAttributes>,
    /// Markdown.
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// Accepted in configuration, never stored in plan or state.
    pub write_only: bool,
    /// When set, a deprecation message shown when the attribute is used.
    pub deprecated: Option<String>,
    pub validators: Vec<Arc<dyn Validator>>,
    pub plan_modifiers: Vec<PlanModifier>,
    /// Value planned when the configuration leaves the attribute null (implies optional + computed).
    pub default: Option<Value>,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("required", &self.required)
            .field("optional", &self.optional)
            .field("computed", &self.computed)
            .finish_non_exhaustive()
    }
}

impl Attribute {
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Attribute {
            name: name.into(),
            ty,
            nested: None,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: None,
            validators: Vec::new(),
            plan_modifiers: Vec::new(),
            default: None,
        }
    }
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, Type::String)
    }
    pub fn bool(name: impl Into<String>) -> Self {
        Self::new(name, Type::Bool)
    }
    pub fn number(name: impl Into<String>) -> Self {
        Self::new(name, Type::Number)
    }
    pub fn string_list(name: impl Into<String>) -> Self {
        Self::new(name, Type::list(Type::String))
    }
    pub fn string_set(name: impl Into<String>) -> Self {
        Self::new(name, Type::set(Type::String))
    }
    pub fn string_map(name: impl Into<String>) -> Self {
        Self::new(name, Type::map(Type::String))
    }
    /// Nested attributes (`name = { ... }` for `Single`, `name = [{ ... }]` for `List`).
    pub fn nested(name: impl Into<String>, nesting: Nesting, attributes: Vec<Attribute>) -> Self {
        let mut a = Self::new(name, Type::Dynamic);
        a.nested = Some(NestedAttributes {
            nesting,
            attributes,
        });
        a.ty = a.value_type();
        a
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn deprecated(mut self, message: impl Into<String>) -> Self {
        self.deprecated = Some(message.into());
        self
    }
    pub fn describe(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    pub fn validate(mut self, v: impl Validator + 'static) -> Self {
        self.validators.push(Arc::new(v));
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.plan_modifiers.push(PlanModifier::RequiresReplace);
        self
    }
    pub fn requires_replace_if(
        mut self,
        why: impl Into<String>,
        f: impl Fn(&Value, &Value) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.plan_modifiers
            .push(PlanModifier::RequiresReplaceIf(Arc::new(f), why.into()));
        self
    }
    pub fn use_state_for_unknown(mut self) -> Self {
        self.plan_modifiers.push(PlanModifier::UseStateForUnknown);
        self
    }
    /// A default for an optional attribute: makes it optional + computed.
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self.optional = true;
        self.computed = true;
        self
    }

    pub fn value_type(&self) -> Type {
        match &self.nested {
            None => self.ty.clone(),
            Some(n) => {
                let obj = Type::Object {
                    attrs: n
                        .attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value_type()))
                        .collect(),
                    optional: Default::default(),
                };
                match n.nesting {
                    Nesting::Single => obj,
                    Nesting::List => Type::list(obj),
                    Nesting::Set => Type::set(obj),
                    Nesting::Map => Type::map(obj),
                }
            }
        }
    }
    pub(crate) fn requires_replace_any(&self) -> bool {
        self.plan_modifiers.iter().any(|m| {
            matches!(
                m,
                PlanModifier::RequiresReplace | PlanModifier::RequiresReplaceIf(..)
            )
        })
    }
}

/// Ready-made validators.
pub mod validators {
    use super::*;

    /// A string that must be one of the listed values.
    pub struct OneOf(pub Vec<String>);

    pub fn one_of<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> OneOf {
        OneOf(values.into_iter().map(Into::into).collect())
    }

    impl Validator for OneOf {
        fn validate(&self, value: &Value, path: &AttributePath, diags: &mut Diagnostics) {
            if let Some(s) = value.as_str() {
                if !self.0.iter().any(|v| v == s) {
                    diags.attr_error(
                        path.clone(),
                        format!("Invalid value for {path}"),
                        format!("{s:?} is not allowed. Allowed values: {}.", quoted(&self.0)),
                    );
                }
            }
        }
        fn describe(&self) -> String {
            format!(
                "One of {}.",
                self.0
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }

    /// An integer within `min..=max`.
    pub struct IntRange {
        pub min: i64,
        pub max: i64,
    }

    pub fn int_range(min: i64, max: i64) -> IntRange {
        IntRange { min, max }
    }

    impl Validator for IntRange {
        fn validate(&self, value: &Value, path: &AttributePath, diags: &mut Diagnostics) {
            match value.as_i64() {
                Some(n) if n >= self.min && n <= self.max => {}
                Some(n) => diags.attr_error(
                    path.clone(),
                    format!("Invalid value for {path}"),
                    format!(
                        "{n} is out of range. Allowed: a whole number from {} to {}.",
                        self.min, self.max
                    ),
                ),
                None if value.as_f64().is_some() => diags.attr_error(
                    path.clone(),
                    format!("Invalid value for {path}"),
                    format!(
                        "{} is not a whole number. Allowed: a whole number from {} to {}.",
                        value.as_f64().unwrap_or_default(),
                        self.min,
                        self.max
                    ),
                ),
                None => {}
            }
        }
        fn describe(&self) -> String {
            format!("A whole number from {} to {}.", self.min, self.max)
        }
    }

    /// A validator from a function returning `Err(detail)` for a bad value; the summary names
    /// the attribute.
    pub struct FromFn<F>(pub F, pub String);

    pub fn from_fn<F>(doc: impl Into<String>, f: F) -> FromFn<F>
    where
        F: Fn(&Value) -> Result<(), String> + Send + Sync,
    {
        FromFn(f, doc.into())
    }

    impl<F> Validator for FromFn<F>
    where
        F: Fn(&Value) -> Result<(), String> + Send + Sync,
    {
        fn validate(&self, value: &Value, path: &AttributePath, diags: &mut Diagnostics) {
            if let Err(detail) = (self.0)(value) {
                diags.attr_error(path.clone(), format!("Invalid value for {path}"), detail);
            }
        }
        fn describe(&self) -> String {
            self.1.clone()
        }
    }

    fn quoted(v: &[String]) -> String {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs every validator of `block` over a (possibly partly unknown) configuration value; unknown
/// and null values are skipped, as they are checked again once known.
pub fn validate_block(
    block: &Block,
    config: &Value,
    path: &AttributePath,
    diags: &mut Diagnostics,
) {
    for a in &block.attributes {
        let v = config.get(&a.name);
        let p = path.then_attr(&a.name);
        validate_attribute(a, v, &p, diags);
    }
    for b in &block.blocks {
        let v = config.get(&b.name);
        let p = path.then_attr(&b.name);
        match b.nesting {
            BlockNesting::Single | BlockNesting::Group => validate_block(&b.block, v, &p, diags),
            BlockNesting::List | BlockNesting::Set => {
                for (i, e) in v.elements().iter().enumerate() {
                    validate_block(&b.block, e, &p.then_index(i as i64), diags);
                }
            }
            BlockNesting::Map => {
                if let Some(m) = v.entries() {
                    for (k, e) in m {
                        validate_block(&b.block, e, &p.then_key(k), diags);
                    }
                }
            }
        }
    }
}

fn validate_attribute(a: &Attribute, v: &Value, p: &AttributePath, diags: &mut Diagnostics) {
    if v.is_null() || v.is_unknown() {
        return;
    }
    if let Some(msg) = &a.deprecated {
        diags.attr_warning(p.clone(), format!("Deprecated attribute {p}"), msg.clone());
    }
    for val in &a.validators {
        val.validate(v, p, diags);
    }
    if let Some(n) = &a.nested {
        let nested_block = Block {
            attributes: n.attributes.clone(),
            ..Default::default()
        };
        match n.nesting {
            Nesting::Single => validate_block(&nested_block, v, p, diags),
            Nesting::List | Nesting::Set => {
                for (i, e) in v.elements().iter().enumerate() {
                    validate_block(&nested_block, e, &p.then_index(i as i64), diags);
                }
            }
            Nesting::Map => {
                if let Some(m) = v.entries() {
                    for (k, e) in m {
                        validate_block(&nested_block, e, &p.then_key(k), diags);
                    }
                }
            }
        }
    }
}
