//! `testnet_snapshot`: finds a published artifact (a named label, or the latest of a network
//! and kind) and optionally verifies it now.

use async_trait::async_trait;
use tfplug::schema::validators::one_of;
use tfplug::{Attribute, AttributePath, Block, Context, DataSource, Diagnostics, Schema, Value};

use crate::config::Shared;
use crate::convert::catalog_error;
use crate::snapshot_artifact::{computed_attrs, meta_values, name_validator, store_url_validator};

/// The `testnet_snapshot` data source.
pub struct Snapshot(pub Shared);

/// Every metadata field as a string, for templates and outputs.
fn metadata_map(m: &catalog::ArtifactMeta) -> Value {
    let json = serde_json::to_value(m).unwrap_or_default();
    let entries = json.as_object().map(|o| {
        o.iter()
            .map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(a) => a
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect::<Vec<_>>()
    });
    Value::string_map(entries.unwrap_or_default())
}

#[async_trait]
impl DataSource for Snapshot {
    fn type_name(&self) -> &'static str {
        "testnet_snapshot"
    }

    fn schema(&self) -> Schema {
        let block = Block::new()
            .describe("A published snapshot artifact: the one with `label`, or the latest of `network` and `kind`. With `verify`, the artifact is read back and checked against its metadata now.")
            .attr(Attribute::string("store_url").optional().validate(store_url_validator()).describe("Store to look in: `file:///dir`, `s3://bucket/prefix` or `gs://bucket/prefix`. Defaults to the provider's `default_store_url`."))
            .attr(Attribute::string("network").required().validate(name_validator("A DNS label.", catalog::names::validate_network)).describe("Network name, e.g. `ghostnet`."))
            .attr(Attribute::string("kind").required().validate(name_validator("No `-`.", catalog::names::validate_kind)).describe("Snapshot kind, e.g. `rolling`."))
            .attr(Attribute::string("label").optional().computed().validate(name_validator("e.g. `1234567`.", catalog::names::validate_label)).describe("A specific artifact's label. When unset, the latest artifact of `network` and `kind`."))
            .attr(Attribute::string("verify").optional().validate(one_of(["checksum", "full"])).describe("Verify the artifact now and fail on mismatch: `checksum` re-reads it and compares SHA-256 and size; `full` also decompresses and walks the tar stream."))
            .attr(Attribute::number("block_height").computed().describe("Block height recorded at publish time, if any."))
            .attr(Attribute::string("block_hash").computed().describe("Block hash recorded at publish time, if any."))
            .attr(Attribute::string("block_time").computed().describe("Block time recorded at publish time, if any."))
            .attr(Attribute::string_map("metadata").computed().describe("Every field of the artifact's metadata JSON as a string (lists joined with `,`)."));
        Schema::new(computed_attrs(block, false))
    }

    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let (_, store) = self
            .0
            .store(config.get("store_url").as_str(), "store_url", diags)
            .await?;
        let network = config.get("network").as_str().unwrap_or_default();
        let kind = config.get("kind").as_str().unwrap_or_default();
        let found = match config.get("label").as_str() {
            Some(label) => {
                catalog::get(
                    store.as_ref(),
                    &catalog::names::artifact_name(network, kind, label),
                )
                .await
            }
            None => catalog::latest(store.as_ref(), network, kind).await,
        };
        let meta = match found {
            Ok(Some(m)) => m,
            Ok(None) => {
                let what = match config.get("label").as_str() {
                    Some(l) => format!("No artifact {network}-{kind}-{l}"),
                    None => format!("No artifact of network {network:?} and kind {kind:?}"),
                };
                diags.error(
                    "Snapshot not found",
                    format!("{what} is published at {}.", store.url("")),
                );
                return None;
            }
            Err(e) => {
                catalog_error(&e, None, diags);
                return None;
            }
        };
        if let Some(mode) = config.get("verify").as_str() {
            let mode = if mode == "full" {
                catalog::VerifyMode::Full
            } else {
                catalog::VerifyMode::Checksum
            };
            if let Err(e) = catalog::verify_artifact(store.as_ref(), &meta.name, mode).await {
                catalog_error(&e, None, diags);
                diags.attr_error(
                    AttributePath::attr("verify"),
                    "Snapshot does not match its metadata",
                    format!("{} failed verification; see the error above.", meta.url),
                );
                return None;
            }
        }
        let mut out = config.clone();
        for (k, v) in meta_values(store.as_ref(), &meta) {
            out.set(k, v);
        }
        out.set("label", Value::string(meta.label.clone()));
        out.set(
            "block_height",
            meta.block_height.map(Value::from).unwrap_or(Value::Null),
        );
        out.set("block_hash", Value::opt_string(meta.block_hash.clone()));
        out.set("block_time", Value::opt_string(meta.block_time.clone()));
        out.set("metadata", metadata_map(&meta));
        Some(out)
    }
}
