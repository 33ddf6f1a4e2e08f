# One testnet's state on a local cluster, built from the two modules a real network uses: the
# region's storage classes (examples/modules/region), and the testnet (examples/modules/testnet):
# its shared-state claims for every role, the network lock held for the run, and a verified
# snapshot of a node's state. The outputs tell each role's chart which claims to mount, and what
# the claims cost per month.

terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig of the cluster (the demo's local API server)."
}

variable "store_url" {
  type        = string
  description = "Where snapshots are published: file:///dir, s3://bucket/prefix or gs://bucket/prefix."
}

variable "node_state_dir" {
  type        = string
  description = "A node's state directory to snapshot."
}

variable "network" {
  type    = string
  default = "devnet"
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.network))
    error_message = "network must be a DNS label: lowercase letters, digits and '-'."
  }
}

provider "testnet" {
  kubeconfig_path   = var.kubeconfig_path
  default_store_url = var.store_url
}

# The region's two classes: <network>-local-ssd and <network>-local-standard.
module "region" {
  source      = "../modules/region"
  region      = "local"
  cloud       = "gcp"
  name_prefix = var.network
  # Bind at once, so the claims show Bound without a pod to consume them.
  volume_binding_mode = "Immediate"
}

module "testnet" {
  source          = "../modules/testnet"
  network         = var.network
  storage_classes = module.region.storage_classes
  # Small sizes for a laptop; the defaults are sized for a real network.
  claims = {
    runtime-state  = { size = "2Gi" }
    postgres-state = { size = "5Gi" }
  }
  lock = { wait_timeout = "30s" }
  snapshot = {
    source_dir   = var.node_state_dir
    kind         = "rolling"
    label        = "demo"
    block_height = 1200
  }
}

# Read back through the index, as a node's init container would find the latest snapshot.
data "testnet_snapshot" "latest" {
  network    = var.network
  kind       = "rolling"
  verify     = "checksum"
  depends_on = [module.testnet]
}

output "storage_classes" {
  value = module.region.storage_classes
}

output "claims" {
  value = { for name, c in module.testnet.claims : name => "${c.phase}, ${c.storage} ${c.storage_class}, ${c.role}" }
}

output "block_producer_mounts" {
  description = "What a block producer's chart mounts instead of emptyDir volumes (every role: module.testnet.mounts)."
  value       = module.testnet.mounts["block-producer"]
}

output "estimated_monthly_cost_usd" {
  value = module.testnet.estimated_monthly_cost_usd
}

output "snapshot_url" {
  value = module.testnet.snapshot.url
}

output "snapshot_sha256" {
  value = data.testnet_snapshot.latest.sha256
}
