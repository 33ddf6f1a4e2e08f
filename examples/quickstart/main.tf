# One testnet's state on a local cluster: two storage classes, the testnet's shared-state claims,
# the network lock held for the run, and a verified snapshot of a node's state.

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

# Held while this plan or apply runs, so no other operator changes the testnet meanwhile.
ephemeral "testnet_network_lock" "run" {
  namespace              = "default"
  name                   = "${var.network}-state"
  lease_duration_seconds = 120
  wait_timeout           = "30s"
}

resource "testnet_storage_class" "ssd" {
  name                   = "${var.network}-ssd"
  tier                   = "ssd"
  cloud                  = "gcp"
  volume_binding_mode    = "Immediate"
  allow_volume_expansion = true
}

resource "testnet_storage_class" "standard" {
  name  = "${var.network}-standard"
  tier  = "standard"
  cloud = "gcp"
}

resource "testnet_shared_state_pvc" "genesis" {
  namespace          = var.network
  create_namespace   = true
  name               = "genesis-ledger"
  testnet            = var.network
  role               = "block-producer"
  access_modes       = ["ReadWriteOnce"]
  storage            = "1Gi"
  storage_class_name = testnet_storage_class.ssd.name
}

resource "testnet_shared_state_pvc" "archive_db" {
  namespace          = var.network
  create_namespace   = true
  name               = "archive-postgres"
  testnet            = var.network
  role               = "archive-node"
  storage            = "10Gi"
  storage_class_name = testnet_storage_class.standard.name
  depends_on         = [testnet_shared_state_pvc.genesis]
}

resource "testnet_snapshot_artifact" "seed" {
  source_dir   = var.node_state_dir
  network      = var.network
  kind         = "rolling"
  label        = "demo"
  block_height = 1200
  verify       = "full"
}

data "testnet_snapshot" "latest" {
  store_url  = var.store_url
  network    = var.network
  kind       = "rolling"
  verify     = "checksum"
  depends_on = [testnet_snapshot_artifact.seed]
}

output "storage_classes" {
  value = [testnet_storage_class.ssd.name, testnet_storage_class.standard.name]
}

output "claims" {
  value = {
    genesis    = { phase = testnet_shared_state_pvc.genesis.phase, capacity = testnet_shared_state_pvc.genesis.capacity }
    archive_db = { phase = testnet_shared_state_pvc.archive_db.phase }
  }
}

output "snapshot_url" {
  value = testnet_snapshot_artifact.seed.url
}

output "snapshot_sha256" {
  value = data.testnet_snapshot.latest.sha256
}
