terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

provider "testnet" {
  kubeconfig_path     = var.kubeconfig_path
  default_store_url   = var.store_url
  s3_endpoint         = var.s3_endpoint
  s3_force_path_style = var.s3_endpoint != null
  s3_region           = var.s3_region
  archiver_image      = var.archiver_image
}

# The newest state of the network, as its latest pointer names it: what new nodes start from.
data "testnet_snapshot" "seed" {
  network = var.network
  kind    = var.seed_kind
}

# One claim per node, filled from that artifact by a Job in the cluster: the data goes from the
# bucket to the volume, never through the machine running Terraform. A claim is created only
# when its restore verified; a failed restore leaves no claim, so the next apply tries again.
resource "testnet_shared_state_pvc" "node" {
  count              = var.nodes
  namespace          = var.namespace
  name               = "${var.network}-node-${count.index}"
  testnet            = var.network
  role               = "node"
  storage            = var.storage
  storage_class_name = var.storage_class

  restore_from {
    url    = data.testnet_snapshot.seed.url
    sha256 = data.testnet_snapshot.seed.sha256
  }
  job {
    env_secret_name      = var.store_secret
    service_account_name = var.service_account
    timeout              = "2h"
  }

  # A claim holds its node's state once restored: a newer seed artifact is for new claims only.
  lifecycle {
    ignore_changes = [restore_from]
  }
}

# The first node's runtime state, snapshotted by a Job next to the data and published (verified
# before it is published) as `<network>-<snapshot_kind>-<label>`.
resource "testnet_snapshot_artifact" "runtime" {
  source_claim = testnet_shared_state_pvc.node[0].id
  network      = var.network
  kind         = var.snapshot_kind
  label        = var.snapshot_label
  job {
    env_secret_name      = var.store_secret
    service_account_name = var.service_account
    timeout              = "2h"
  }
}
