terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

variable "store_url" {
  description = "Where snapshots are published, e.g. file:///srv/snapshots or s3://bucket/ghostnet."
  type        = string
}

variable "node_dir" {
  description = "The node data directory to archive."
  type        = string
}

provider "testnet" {
  default_store_url = var.store_url
}

# A new artifact whenever the day changes; the last 7 are kept.
resource "testnet_snapshot_artifact" "daily" {
  source_dir = var.node_dir
  network    = "ghostnet"
  kind       = "rolling"
  verify     = "full"
  retain     = 7
  triggers   = { day = formatdate("YYYY-MM-DD", plantimestamp()) }
}

data "testnet_snapshot" "latest" {
  network    = "ghostnet"
  kind       = "rolling"
  verify     = "checksum"
  depends_on = [testnet_snapshot_artifact.daily]
}

output "latest_url" {
  value = data.testnet_snapshot.latest.url
}

output "latest_sha256" {
  value = data.testnet_snapshot.latest.sha256
}
