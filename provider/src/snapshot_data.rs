//! `testnet_snapshot` (placeholder until written).

use async_trait::async_trait;
use tfplug::{Block, Context, DataSource, Diagnostics, Schema, Value};

use crate::config::Shared;

pub struct Snapshot(pub Shared);

#[async_trait]
impl DataSource for Snapshot {
    fn type_name(&self) -> &'static str {
        "testnet_snapshot"
    }
    fn schema(&self) -> Schema {
        Schema::new(Block::new())
    }
    async fn read(&self, _ctx: &Context, _config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        diags.error("Not implemented", "");
        None
    }
}
