//! `testnet_snapshot_artifact` (placeholder until written).

use async_trait::async_trait;
use tfplug::{Context, Diagnostics, Private, Resource, Schema, Value, Block};

use crate::config::Shared;

pub struct SnapshotArtifact(pub Shared);

#[async_trait]
impl Resource for SnapshotArtifact {
    fn type_name(&self) -> &'static str {
        "testnet_snapshot_artifact"
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
