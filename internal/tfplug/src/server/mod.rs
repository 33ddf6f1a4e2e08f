//! The `tfplugin6.Provider` gRPC service over a [`Provider`]: decoding, dispatch by type name,
//! the shared plan mechanics, and a diagnostic (never a crash) when author code panics.

mod convert;

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::diag::Diagnostics;
use crate::path::AttributePath;
use crate::plan;
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider as Rpc;
use crate::resource::{
    Context, DataSource, EphemeralResource, Function, PlanChange, Private, Provider, Resource,
};
use crate::schema::Schema;
use crate::value::{Type, Value};

use convert::{decode, diagnostics, encode};

struct Typed<T: ?Sized> {
    imp: Arc<T>,
    schema: Schema,
    ty: Type,
}

impl<T: ?Sized> Typed<T> {
    fn new(imp: Arc<T>, schema: Schema) -> Self {
        let ty = schema.value_type();
        Typed { imp, schema, ty }
    }
}

/// Serves one provider. Schemas are asked for once, at construction.
pub struct ProviderServer {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    provider_ty: Type,
    resources: HashMap<String, Typed<dyn Resource>>,
    data_sources: HashMap<String, Typed<dyn DataSource>>,
    ephemerals: HashMap<String, Typed<dyn EphemeralResource>>,
    functions: HashMap<String, Arc<dyn Function>>,
    cancel: CancellationToken,
}

impl ProviderServer {
    pub fn new(provider: impl Provider) -> Self {
        let provider: Arc<dyn Provider> = Arc::new(provider);
        let provider_schema = provider.schema();
        let provider_ty = provider_schema.value_type();
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), Typed::new(r.clone(), r.schema())))
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), Typed::new(r.clone(), r.schema())))
            .collect();
        let ephemerals = provider
            .ephemeral_resources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), Typed::new(r.clone(), r.schema())))
            .collect();
        let functions = provider
            .functions()
            .into_iter()
            .map(|f| (f.name().to_string(), f))
            .collect();
        ProviderServer {
            provider,
            provider_schema,
            provider_ty,
            resources,
            data_sources,
            ephemerals,
            functions,
            cancel: CancellationToken::new(),
        }
    }

    /// The token cancelled by StopProvider.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn ctx(&self, caps: Option<&pb::ClientCapabilities>) -> Context {
        Context {
            cancel: self.cancel.clone(),
            deferral_allowed: caps.is_some_and(|c| c.deferral_allowed),
        }
    }

    fn resource(&self, name: &str, diags: &mut Diagnostics) -> Option<&Typed<dyn Resource>> {
        let r = self.resources.get(name);
        if r.is_none() {
            diags.error(
                "Unknown resource type",
                format!(
                    "This provider has no resource type {name:?}. Known: {}.",
                    known(self.resources.keys())
                ),
            );
        }
        r
    }
    fn data_source(&self, name: &str, diags: &mut Diagnostics) -> Option<&Typed<dyn DataSource>> {
        let r = self.data_sources.get(name);
        if r.is_none() {
            diags.error(
                "Unknown data source",
                format!(
                    "This provider has no data source {name:?}. Known: {}.",
                    known(self.data_sources.keys())
                ),
            );
        }
        r
    }
    fn ephemeral(
        &self,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<&Typed<dyn EphemeralResource>> {
        let r = self.ephemerals.get(name);
        if r.is_none() {
            diags.error(
                "Unknown ephemeral resource",
                format!(
                    "This provider has no ephemeral resource {name:?}. Known: {}.",
                    known(self.ephemerals.keys())
                ),
            );
        }
        r
    }
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let mut v: Vec<&str> = names.map(String::as_str).collect();
    v.sort();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Runs author code; a panic becomes an error diagnostic and `None`.
async fn guard<T>(what: &str, diags: &mut Diagnostics, fut: impl Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(v) => Some(v),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(operation = what, panic = %msg, "provider code panicked");
            diags.error("Provider error", format!("The provider failed unexpectedly while {what}: {msg}. No further changes were made by this operation. Please report this bug."));
            None
        }
    }
}

fn ts(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

fn unknown_after(what: &str, v: &Value, diags: &mut Diagnostics) {
    let mut paths = Vec::new();
    plan::unknown_paths(v, &AttributePath::default(), &mut paths);
    for p in paths {
        diags.attr_error(p.clone(), "Provider returned an unknown value", format!("{p} is still unknown after {what}. This is a bug in the provider; please report it."));
    }
}

fn raw_json(raw: Option<&pb::RawState>, diags: &mut Diagnostics) -> Option<serde_json::Value> {
    let raw = raw?;
    if raw.json.is_empty() {
        if !raw.flatmap.is_empty() {
            diags.error(
                "Unsupported state format",
                "The stored state uses the legacy flatmap format, which this provider never wrote.",
            );
            return None;
        }
        return Some(serde_json::Value::Null);
    }
    match serde_json::from_slice(&raw.json) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error(
                "Malformed state",
                format!("The stored state is not valid JSON: {e}."),
            );
            None
        }
    }
}

/// Decodes a configuration and runs the schema's own validators over it.
fn validated(
    schema: &Schema,
    ty: &Type,
    config: Option<&pb::DynamicValue>,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let config = decode(config, ty, what, diags)?;
    crate::schema::validate_block(&schema.block, &config, &AttributePath::default(), diags);
    Some(config)
}

fn json_to_value(j: serde_json::Value, ty: &Type, diags: &mut Diagnostics) -> Option<Value> {
    if j.is_null() {
        return Some(Value::Null);
    }
    let pruned = convert::prune_json(j, ty);
    let bytes = serde_json::to_vec(&pruned).unwrap_or_default();
    match crate::value::json::decode(&bytes, ty) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error(
                "Malformed state",
                format!("The stored state does not match the schema: {e}."),
            );
            None
        }
    }
}

#[tonic::async_trait]
impl Rpc for ProviderServer {
    async fn get_metadata(
        &self,
        _req: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: self
                .data_sources
                .keys()
                .map(|k| pb::get_metadata::DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|k| pb::get_metadata::ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            functions: self
                .functions
                .keys()
                .map(|k| pb::get_metadata::FunctionMetadata { name: k.clone() })
                .collect(),
            ephemeral_resources: self
                .ephemerals
                .keys()
                .map(|k| pb::get_metadata::EphemeralResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(convert::schema(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, r)| (k.clone(), convert::schema(&r.schema)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, r)| (k.clone(), convert::schema(&r.schema)))
                .collect(),
            ephemeral_resource_schemas: self
                .ephemerals
                .iter()
                .map(|(k, r)| (k.clone(), convert::schema(&r.schema)))
                .collect(),
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.clone(), convert::function(&f.signature())))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(config) = validated(
            &self.provider_schema,
            &self.provider_ty,
            req.config.as_ref(),
            "provider configuration",
            &mut diags,
        ) {
            let ctx = self.ctx(None);
            let mut inner = Diagnostics::new();
            guard(
                "validating the provider configuration",
                &mut diags,
                self.provider.validate(&ctx, &config, &mut inner),
            )
            .await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diagnostics(diags),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(r) = self.resource(&req.type_name, &mut diags) {
            if let Some(config) = validated(
                &r.schema,
                &r.ty,
                req.config.as_ref(),
                "resource configuration",
                &mut diags,
            ) {
                let ctx = self.ctx(req.client_capabilities.as_ref());
                let mut inner = Diagnostics::new();
                guard(
                    "validating the resource configuration",
                    &mut diags,
                    r.imp.validate(&ctx, &config, &mut inner),
                )
                .await;
                diags.extend(inner);
            }
        }
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diagnostics(diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(r) = self.data_source(&req.type_name, &mut diags) {
            if let Some(config) = validated(
                &r.schema,
                &r.ty,
                req.config.as_ref(),
                "data source configuration",
                &mut diags,
            ) {
                let ctx = self.ctx(None);
                let mut inner = Diagnostics::new();
                guard(
                    "validating the data source configuration",
                    &mut diags,
                    r.imp.validate(&ctx, &config, &mut inner),
                )
                .await;
                diags.extend(inner);
            }
        }
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diagnostics(diags),
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(r) = self.ephemeral(&req.type_name, &mut diags) {
            if let Some(config) = validated(
                &r.schema,
                &r.ty,
                req.config.as_ref(),
                "ephemeral resource configuration",
                &mut diags,
            ) {
                let ctx = self.ctx(None);
                let mut inner = Diagnostics::new();
                guard(
                    "validating the ephemeral resource configuration",
                    &mut diags,
                    r.imp.validate(&ctx, &config, &mut inner),
                )
                .await;
                diags.extend(inner);
            }
        }
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: diagnostics(diags),
            },
        ))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut upgraded = None;
        if let Some(r) = self.resource(&req.type_name, &mut diags) {
            if let Some(j) = raw_json(req.raw_state.as_ref(), &mut diags) {
                let v = if req.version == r.schema.version {
                    json_to_value(j, &r.ty, &mut diags)
                } else {
                    let ctx = self.ctx(None);
                    let mut inner = Diagnostics::new();
                    let v = guard(
                        "upgrading stored state",
                        &mut diags,
                        r.imp.upgrade_state(&ctx, req.version, j, &mut inner),
                    )
                    .await
                    .flatten();
                    diags.extend(inner);
                    v
                };
                if let Some(mut v) = v {
                    plan::complete_object(&r.schema.block, &mut v);
                    upgraded = encode(&v, &r.ty, "upgraded state", &mut diags);
                }
            }
        }
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diagnostics(diags),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(
            req.config.as_ref(),
            &self.provider_ty,
            "provider configuration",
            &mut diags,
        ) {
            let ctx = self.ctx(req.client_capabilities.as_ref());
            let mut inner = Diagnostics::new();
            guard(
                "configuring the provider",
                &mut diags,
                self.provider.configure(&ctx, &config, &mut inner),
            )
            .await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diagnostics(diags),
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut new_state = req.current_state.clone();
        let mut private_out = req.private.clone();
        if let Some(r) = self.resource(&req.type_name, &mut diags) {
            if let Some(state) = decode(
                req.current_state.as_ref(),
                &r.ty,
                "current state",
                &mut diags,
            ) {
                if !state.is_null() {
                    let ctx = self.ctx(req.client_capabilities.as_ref());
                    let mut private = Private::from_bytes(&req.private);
                    let mut inner = Diagnostics::new();
                    let got = guard(
                        "reading the resource",
                        &mut diags,
                        r.imp.read(&ctx, &state, &mut private, &mut inner),
                    )
                    .await;
                    let failed = inner.has_errors();
                    diags.extend(inner);
                    match got {
                        Some(Some(mut v)) if !failed => {
                            plan::complete_object(&r.schema.block, &mut v);
                            plan::null_write_only(&r.schema.block, &mut v);
                            unknown_after("read", &v, &mut diags);
                            if !diags.has_errors() {
                                new_state = encode(&v, &r.ty, "refreshed state", &mut diags);
                                private_out = private.to_bytes();
                            }
                        }
                        Some(None) if !failed => {
                            tracing::info!(type_name = %req.type_name, "object no longer exists; removing it from state");
                            new_state = encode(&Value::Null, &r.ty, "refreshed state", &mut diags);
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics: diagnostics(diags),
            private: private_out,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut resp = pb::plan_resource_change::Response::default();
        if let Some(r) = self.resource(&req.type_name, &mut diags) {
            let prior = decode(req.prior_state.as_ref(), &r.ty, "prior state", &mut diags);
            let proposed = decode(
                req.proposed_new_state.as_ref(),
                &r.ty,
                "proposed new state",
                &mut diags,
            );
            let config = decode(req.config.as_ref(), &r.ty, "configuration", &mut diags);
            if let (Some(prior), Some(proposed), Some(config)) = (prior, proposed, config) {
                let (planned, requires_replace) =
                    plan::plan(&r.schema.block, &prior, &proposed, &config);
                let mut change = PlanChange {
                    prior,
                    config,
                    planned,
                    requires_replace,
                    private: Private::from_bytes(&req.prior_private),
                };
                let ctx = self.ctx(req.client_capabilities.as_ref());
                let mut inner = Diagnostics::new();
                guard(
                    "planning the change",
                    &mut diags,
                    r.imp.modify_plan(&ctx, &mut change, &mut inner),
                )
                .await;
                diags.extend(inner);
                plan::null_write_only(&r.schema.block, &mut change.planned);
                if !diags.has_errors() {
                    resp.planned_state =
                        encode(&change.planned, &r.ty, "planned state", &mut diags);
                    resp.requires_replace =
                        change.requires_replace.iter().map(convert::path).collect();
                    resp.planned_private = change.private.to_bytes();
                }
            }
        }
        resp.diagnostics = diagnostics(diags);
        Ok(Response::new(resp))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut resp = pb::apply_resource_change::Response {
            new_state: req.prior_state.clone(),
            private: req.planned_private.clone(),
            ..Default::default()
        };
        if let Some(r) = self.resource(&req.type_name, &mut diags) {
            let prior = decode(req.prior_state.as_ref(), &r.ty, "prior state", &mut diags);
            let planned = decode(
                req.planned_state.as_ref(),
                &r.ty,
                "planned state",
                &mut diags,
            );
            let config = decode(req.config.as_ref(), &r.ty, "configuration", &mut diags);
            if let (Some(prior), Some(planned), Some(config)) = (prior, planned, config) {
                let ctx = self.ctx(None);
                let mut private = Private::from_bytes(&req.planned_private);
                let mut inner = Diagnostics::new();
                let result = if planned.is_null() {
                    guard(
                        "deleting the resource",
                        &mut diags,
                        r.imp.delete(&ctx, &prior, &private, &mut inner),
                    )
                    .await
                    .map(|()| Some(Value::Null))
                } else if prior.is_null() {
                    guard(
                        "creating the resource",
                        &mut diags,
                        r.imp
                            .create(&ctx, &planned, &config, &mut private, &mut inner),
                    )
                    .await
                } else {
                    guard(
                        "updating the resource",
                        &mut diags,
                        r.imp
                            .update(&ctx, &prior, &planned, &config, &mut private, &mut inner),
                    )
                    .await
                };
                let failed = inner.has_errors();
                diags.extend(inner);
                match result {
                    Some(Some(mut v)) if !failed || !v.is_null() => {
                        plan::complete_object(&r.schema.block, &mut v);
                        plan::null_write_only(&r.schema.block, &mut v);
                        unknown_after("apply", &v, &mut diags);
                        if !diags.has_errors() || failed {
                            resp.new_state = encode(&v, &r.ty, "new state", &mut diags);
                            resp.private = private.to_bytes();
                        }
                    }
                    // A failed create leaves nothing; a failed update or delete keeps the prior state.
                    _ if prior.is_null() => {
                        resp.new_state = encode(&Value::Null, &r.ty, "new state", &mut diags)
                    }
                    _ => {}
                }
            }
        }
        resp.diagnostics = diagnostics(diags);
        Ok(Response::new(resp))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut imported = Vec::new();
        if let Some(r) = self.resource(&req.type_name, &mut diags) {
            let ctx = self.ctx(req.client_capabilities.as_ref());
            let mut inner = Diagnostics::new();
            let got = guard(
                "importing the resource",
                &mut diags,
                r.imp.import(&ctx, &req.id, &mut inner),
            )
            .await
            .flatten();
            let failed = inner.has_errors();
            diags.extend(inner);
            if let (Some(mut v), false) = (got, failed) {
                plan::complete_object(&r.schema.block, &mut v);
                if let Some(state) = encode(&v, &r.ty, "imported state", &mut diags) {
                    imported.push(pb::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: Some(state),
                        private: Vec::new(),
                        ..Default::default()
                    });
                }
            }
        }
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diagnostics(diags),
            deferred: None,
        }))
    }

    async fn move_resource_state(
        &self,
        req: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut resp = pb::move_resource_state::Response::default();
        if let Some(r) = self.resource(&req.target_type_name, &mut diags) {
            if let Some(j) = raw_json(req.source_state.as_ref(), &mut diags) {
                let ctx = self.ctx(None);
                let mut inner = Diagnostics::new();
                let got = guard(
                    "moving state",
                    &mut diags,
                    r.imp.move_state(&ctx, &req.source_type_name, j, &mut inner),
                )
                .await
                .flatten();
                diags.extend(inner);
                if let Some(mut v) = got {
                    plan::complete_object(&r.schema.block, &mut v);
                    resp.target_state = encode(&v, &r.ty, "moved state", &mut diags);
                    resp.target_private = req.source_private.clone();
                }
            }
        }
        resp.diagnostics = diagnostics(diags);
        Ok(Response::new(resp))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut state = None;
        if let Some(r) = self.data_source(&req.type_name, &mut diags) {
            if let Some(config) = decode(req.config.as_ref(), &r.ty, "configuration", &mut diags) {
                let ctx = self.ctx(req.client_capabilities.as_ref());
                let mut inner = Diagnostics::new();
                let got = guard(
                    "reading the data source",
                    &mut diags,
                    r.imp.read(&ctx, &config, &mut inner),
                )
                .await
                .flatten();
                let failed = inner.has_errors();
                diags.extend(inner);
                if let (Some(mut v), false) = (got, failed) {
                    plan::complete_object(&r.schema.block, &mut v);
                    unknown_after("reading the data source", &v, &mut diags);
                    if !diags.has_errors() {
                        state = encode(&v, &r.ty, "data source result", &mut diags);
                    }
                }
            }
        }
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics: diagnostics(diags),
            deferred: None,
        }))
    }

    async fn open_ephemeral_resource(
        &self,
        req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut resp = pb::open_ephemeral_resource::Response::default();
        if let Some(r) = self.ephemeral(&req.type_name, &mut diags) {
            if let Some(config) = decode(req.config.as_ref(), &r.ty, "configuration", &mut diags) {
                let ctx = self.ctx(req.client_capabilities.as_ref());
                let mut inner = Diagnostics::new();
                let got = guard(
                    "opening the ephemeral resource",
                    &mut diags,
                    r.imp.open(&ctx, &config, &mut inner),
                )
                .await
                .flatten();
                let failed = inner.has_errors();
                diags.extend(inner);
                if let (Some(mut opened), false) = (got, failed) {
                    plan::complete_object(&r.schema.block, &mut opened.result);
                    resp.result = encode(&opened.result, &r.ty, "ephemeral result", &mut diags);
                    resp.private = Some(opened.private.to_bytes());
                    resp.renew_at = opened.renew_at.map(ts);
                }
            }
        }
        resp.diagnostics = diagnostics(diags);
        Ok(Response::new(resp))
    }

    async fn renew_ephemeral_resource(
        &self,
        req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let mut resp = pb::renew_ephemeral_resource::Response {
            private: req.private.clone(),
            ..Default::default()
        };
        if let Some(r) = self.ephemeral(&req.type_name, &mut diags) {
            let ctx = self.ctx(None);
            let mut private = Private::from_bytes(req.private.as_deref().unwrap_or_default());
            let mut inner = Diagnostics::new();
            let next = guard(
                "renewing the ephemeral resource",
                &mut diags,
                r.imp.renew(&ctx, &mut private, &mut inner),
            )
            .await
            .flatten();
            diags.extend(inner);
            resp.renew_at = next.map(ts);
            resp.private = Some(private.to_bytes());
        }
        resp.diagnostics = diagnostics(diags);
        Ok(Response::new(resp))
    }

    async fn close_ephemeral_resource(
        &self,
        req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(r) = self.ephemeral(&req.type_name, &mut diags) {
            let ctx = self.ctx(None);
            let private = Private::from_bytes(req.private.as_deref().unwrap_or_default());
            let mut inner = Diagnostics::new();
            guard(
                "closing the ephemeral resource",
                &mut diags,
                r.imp.close(&ctx, &private, &mut inner),
            )
            .await;
            diags.extend(inner);
        }
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics: diagnostics(diags),
        }))
    }

    async fn get_functions(
        &self,
        _req: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self
                .functions
                .iter()
                .map(|(k, f)| (k.clone(), convert::function(&f.signature())))
                .collect(),
            diagnostics: vec![],
        }))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let req = req.into_inner();
        let fail = |text: String, arg: Option<i64>| {
            Ok(Response::new(pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text,
                    function_argument: arg,
                }),
            }))
        };
        let Some(f) = self.functions.get(&req.name) else {
            return fail(
                format!("This provider has no function {:?}.", req.name),
                None,
            );
        };
        let sig = f.signature();
        let mut args = Vec::with_capacity(req.arguments.len());
        for (i, a) in req.arguments.iter().enumerate() {
            let Some(p) = sig.parameters.get(i).or(sig.variadic.as_ref()) else {
                return fail(
                    format!(
                        "Too many arguments: {} takes {}.",
                        req.name,
                        sig.parameters.len()
                    ),
                    Some(i as i64),
                );
            };
            let mut d = Diagnostics::new();
            match decode(Some(a), &p.ty, "argument", &mut d) {
                Some(v) => args.push(v),
                None => {
                    return fail(
                        format!("Argument {} ({}) could not be decoded.", i + 1, p.name),
                        Some(i as i64),
                    )
                }
            }
        }
        let mut diags = Diagnostics::new();
        match guard("calling a function", &mut diags, f.call(args)).await {
            Some(Ok(v)) => {
                let result = encode(&v, &sig.return_type, "function result", &mut diags);
                if diags.has_errors() {
                    return fail(diags.0[0].detail.clone(), None);
                }
                Ok(Response::new(pb::call_function::Response {
                    result,
                    error: None,
                }))
            }
            Some(Err(e)) => fail(e.text, e.argument),
            None => fail(
                diags
                    .0
                    .first()
                    .map(|d| d.detail.clone())
                    .unwrap_or_default(),
                None,
            ),
        }
    }

    async fn stop_provider(
        &self,
        _req: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("Terraform asked the provider to stop; cancelling operations in progress");
        self.cancel.cancel();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

/// `get_provider_schema_optional`: schemas are fixed when the server is built and no RPC depends
/// on GetProviderSchema having been called, so Terraform may reuse the schema it fetched from the
/// first instance instead of asking every provider process it starts during one command.
fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        move_resource_state: true,
    }
}
