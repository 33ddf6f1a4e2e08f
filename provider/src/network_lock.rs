//! `testnet_network_lock` (placeholder until written).

use async_trait::async_trait;
use tfplug::{Block, Context, DataSource, Diagnostics, EphemeralResource, Opened, Private, Resource, Schema, Value};

use crate::config::Shared;

pub struct ManagedLock(pub Shared);
pub struct LockData(pub Shared);
pub struct EphemeralLock(pub Shared);

#[async_trait]
impl Resource for ManagedLock {
    fn type_name(&self) -> &'static str {
        "testnet_network_lock"
    }
    fn schema(&self) -> Schema {
        Schema::new(Block::new())
    }
    async fn create(&self, _ctx: &Context, _planned: &Value, _config: &Value, _private: &mut Private, diags: &mut Diagnostics) -> Option<Value> {
        diags.error("Not implemented", "");
        None
    }
    async fn read(&self, _ctx: &Context, state: &Value, _private: &mut Private, _diags: &mut Diagnostics) -> Option<Value> {
        Some(state.clone())
    }
    async fn update(&self, _ctx: &Context, _prior: &Value, _planned: &Value, _config: &Value, _private: &mut Private, diags: &mut Diagnostics) -> Option<Value> {
        diags.error("Not implemented", "");
        None
    }
    async fn delete(&self, _ctx: &Context, _prior: &Value, _private: &Private, _diags: &mut Diagnostics) {}
}

#[async_trait]
impl DataSource for LockData {
    fn type_name(&self) -> &'static str {
        "testnet_network_lock"
    }
    fn schema(&self) -> Schema {
        Schema::new(Block::new())
    }
    async fn read(&self, _ctx: &Context, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        diags.error("Not implemented", "");
        None
    }
}

#[async_trait]
impl EphemeralResource for EphemeralLock {
    fn type_name(&self) -> &'static str {
        "testnet_network_lock"
    }
    fn schema(&self) -> Schema {
        Schema::new(Block::new())
    }
    async fn open(&self, _ctx: &Context, _config: &Value, diags: &mut Diagnostics) -> Option<Opened> {
        diags.error("Not implemented", "");
        None
    }
}
