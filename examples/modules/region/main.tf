# The storage classes of one region: an `ssd` class for node databases and Postgres, a `standard`
# class for ledgers, configuration and keys. Names end in `-ssd` / `-standard` so the provider's
# price table can tell their tier from the name (see `storage_prices` in the provider docs).
#
# Give the module the provider of the region's cluster:
#
#   module "us_east1" {
#     source    = "./modules/region"
#     providers = { testnet = testnet.us_east1 }
#     region    = "us-east1"
#     cloud     = "gcp"
#   }

terraform {
  required_version = ">= 1.10"
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

locals {
  prefix = var.name_prefix == "" ? var.region : "${var.name_prefix}-${var.region}"
  topologies = length(var.zones) == 0 ? null : [{
    key    = "topology.kubernetes.io/zone"
    values = var.zones
  }]
  labels = merge(var.labels, {
    "app.kubernetes.io/part-of" = "testnet"
    "testnet.io/region"         = var.region
  })
}

resource "testnet_storage_class" "ssd" {
  name                   = "${local.prefix}-ssd"
  tier                   = "ssd"
  cloud                  = var.cloud
  reclaim_policy         = var.reclaim_policy
  volume_binding_mode    = var.volume_binding_mode
  allow_volume_expansion = true
  allowed_topologies     = local.topologies
  labels                 = local.labels
}

resource "testnet_storage_class" "standard" {
  name                   = "${local.prefix}-standard"
  tier                   = "standard"
  cloud                  = var.cloud
  reclaim_policy         = var.reclaim_policy
  volume_binding_mode    = var.volume_binding_mode
  allow_volume_expansion = true
  allowed_topologies     = local.topologies
  labels                 = local.labels
}
