//! The traits a provider author implements. Values are [`Value`]s shaped by the schema; the
//! framework handles the protocol, plan mechanics (defaults, unknown computed values, replace
//! paths, write-only attributes), panics and cancellation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::diag::Diagnostics;
use crate::path::AttributePath;
use crate::schema::Schema;
use crate::value::{Type, Value};

/// What every call gets: cancellation (Terraform's StopProvider, i.e. Ctrl-C) and what the
/// client said it can do.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Cancelled when Terraform asks the provider to stop. Long operations watch it and clean up.
    pub cancel: CancellationToken,
    /// Terraform accepts deferred actions (unknown provider configuration).
    pub deferral_allowed: bool,
}

/// Opaque per-resource data stored by Terraform beside the state, never shown to users.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Private(pub BTreeMap<String, serde_json::Value>);

impl Private {
    pub fn from_bytes(b: &[u8]) -> Private {
        if b.is_empty() {
            return Private::default();
        }
        serde_json::from_slice(b).map(Private).unwrap_or_default()
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            return Vec::new();
        }
        serde_json::to_vec(&self.0).unwrap_or_default()
    }
    pub fn get(&self, k: &str) -> Option<&serde_json::Value> {
        self.0.get(k)
    }
    pub fn set(&mut self, k: impl Into<String>, v: serde_json::Value) {
        self.0.insert(k.into(), v);
    }
}

/// A provider: its configuration and what it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's local name, the prefix of its type names (`testnet`).
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    /// Checks beyond per-attribute validators. The configuration may contain unknown values.
    async fn validate(&self, _ctx: &Context, _config: &Value, _diags: &mut Diagnostics) {}
    /// Receives the provider configuration. During plan it may contain unknown values (it
    /// depends on resources not created yet): keep what is known and let resources plan with
    /// unknowns rather than failing.
    async fn configure(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics);
    fn resources(&self) -> Vec<Arc<dyn Resource>>;
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        Vec::new()
    }
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        Vec::new()
    }
}

/// A plan being made for one resource instance. The framework fills `planned` from the
/// configuration and prior state (defaults, unknown computed values, `requires_replace`) before
/// calling [`Resource::modify_plan`], which may refine it.
#[derive(Debug)]
pub struct PlanChange {
    /// Null when creating.
    pub prior: Value,
    pub config: Value,
    /// Null when destroying.
    pub planned: Value,
    pub requires_replace: Vec<AttributePath>,
    pub private: Private,
}

impl PlanChange {
    pub fn is_create(&self) -> bool {
        self.prior.is_null()
    }
    pub fn is_destroy(&self) -> bool {
        self.planned.is_null()
    }
    /// The attribute changes between prior state and plan (false when creating or unknown).
    pub fn changed(&self, attr: &str) -> bool {
        !self.prior.is_null() && !self.prior.get(attr).equals(self.planned.get(attr))
    }
    /// Replace the object because of `attr`.
    pub fn replace_because(&mut self, attr: &str) {
        let p = AttributePath::attr(attr);
        if !self.requires_replace.contains(&p) {
            self.requires_replace.push(p);
        }
    }
}

/// A managed resource.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// The full type name, e.g. `testnet_storage_class`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    /// Checks beyond per-attribute validators. The configuration may contain unknown values.
    async fn validate(&self, _ctx: &Context, _config: &Value, _diags: &mut Diagnostics) {}
    /// Refines the plan the framework made: computed values known in advance, replacements
    /// that depend on the live object, plan-time diagnostics.
    async fn modify_plan(&self, _ctx: &Context, _plan: &mut PlanChange, _diags: &mut Diagnostics) {}
    /// Creates the object; returns the new state (no unknowns left), or `None` with errors.
    async fn create(
        &self,
        ctx: &Context,
        planned: &Value,
        config: &Value,
        private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
    /// Refreshes the state from the real object; `None` without errors means it is gone.
    async fn read(
        &self,
        ctx: &Context,
        state: &Value,
        private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
    /// Updates the object in place; returns the new state.
    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
        config: &Value,
        private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
    async fn delete(
        &self,
        ctx: &Context,
        prior: &Value,
        private: &Private,
        diags: &mut Diagnostics,
    );
    /// Turns an import ID into a state that `read` can complete. The default refuses import.
    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        diags.error(
            "Import not supported",
            format!("{} cannot be imported (ID {id:?}).", self.type_name()),
        );
        None
    }
    /// Converts state stored by an older schema `version` (as JSON) into the current shape.
    /// Called only when the version differs from the current schema's.
    async fn upgrade_state(
        &self,
        _ctx: &Context,
        version: i64,
        _state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        diags.error(
            "Unsupported state version",
            format!(
                "{} cannot upgrade state from schema version {version}.",
                self.type_name()
            ),
        );
        None
    }
    /// Accepts state moved from another resource type (`moved` blocks). `source_type` is the
    /// full type name, `source_state` its state as JSON. The default refuses.
    async fn move_state(
        &self,
        _ctx: &Context,
        source_type: &str,
        _source_state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        diags.error(
            "Move not supported",
            format!(
                "{} cannot take state moved from {source_type}.",
                self.type_name()
            ),
        );
        None
    }
}

/// A data source.
#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _ctx: &Context, _config: &Value, _diags: &mut Diagnostics) {}
    /// Reads; returns the full value (config plus computed attributes).
    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// What opening an ephemeral resource returns.
#[derive(Debug, Default)]
pub struct Opened {
    pub result: Value,
    /// Handed back to `renew` and `close`.
    pub private: Private,
    /// When Terraform should call `renew`, if ever.
    pub renew_at: Option<SystemTime>,
}

/// An ephemeral resource: exists for the duration of one Terraform run, never stored.
#[async_trait]
pub trait EphemeralResource: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _ctx: &Context, _config: &Value, _diags: &mut Diagnostics) {}
    async fn open(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Opened>;
    /// Extends it; returns the next renewal time.
    async fn renew(
        &self,
        _ctx: &Context,
        _private: &mut Private,
        _diags: &mut Diagnostics,
    ) -> Option<SystemTime> {
        None
    }
    async fn close(&self, _ctx: &Context, _private: &Private, _diags: &mut Diagnostics) {}
}

/// A parameter of a provider function.
#[derive(Clone, Debug)]
pub struct Parameter {
    pub name: String,
    pub ty: Type,
    pub allow_null: bool,
    pub allow_unknown: bool,
    pub description: String,
}

/// A provider function's signature.
#[derive(Clone, Debug)]
pub struct Signature {
    pub parameters: Vec<Parameter>,
    pub variadic: Option<Parameter>,
    pub return_type: Type,
    pub summary: String,
    pub description: String,
}

/// Why a function call failed; `argument` points at the offending argument.
#[derive(Clone, Debug)]
pub struct FunctionError {
    pub text: String,
    pub argument: Option<i64>,
}

/// A provider-defined function (`provider::testnet::NAME(...)`).
#[async_trait]
pub trait Function: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn signature(&self) -> Signature;
    async fn call(&self, args: Vec<Value>) -> Result<Value, FunctionError>;
}
