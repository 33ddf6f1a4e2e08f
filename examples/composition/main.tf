# Three regions and two testnets, the way a real network is laid out: every region's cluster gets
# its storage classes; `devnet` runs whole in us-east1; `berkeley` runs its producers, archive and
# SNARK work in europe-west1 and the public-facing roles (seeds, user agents, faucet, echo service)
# in ap-southeast-1. One provider alias per region, each a context of one kubeconfig.
#
# One network lock and one network-state document span all three regions: the `network` provider
# names each region's cluster in a `cluster` block; every run holds the lock (a Lease in each
# cluster, held only when held in all three) while the testnets change, and records what runs
# where in the state document (a ConfigMap in each cluster), fenced by the lock's token.

terraform {
  required_version = ">= 1.10"
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

provider "testnet" {
  alias             = "us_east1"
  kubeconfig_path   = pathexpand(var.kubeconfig_path)
  kube_context      = var.contexts.us_east1
  default_store_url = var.store_url
  storage_prices    = var.storage_prices
}

provider "testnet" {
  alias             = "europe_west1"
  kubeconfig_path   = pathexpand(var.kubeconfig_path)
  kube_context      = var.contexts.europe_west1
  default_store_url = var.store_url
  storage_prices    = var.storage_prices
}

provider "testnet" {
  alias             = "ap_southeast_1"
  kubeconfig_path   = pathexpand(var.kubeconfig_path)
  kube_context      = var.contexts.ap_southeast_1
  default_store_url = var.store_url
  storage_prices    = var.storage_prices
}

# The whole network: its own connection is us-east1; the lock and the state document act on the
# three `cluster` blocks.
provider "testnet" {
  alias           = "network"
  kubeconfig_path = pathexpand(var.kubeconfig_path)
  kube_context    = var.contexts.us_east1

  cluster {
    name            = "us-east1"
    kubeconfig_path = pathexpand(var.kubeconfig_path)
    kube_context    = var.contexts.us_east1
  }
  cluster {
    name            = "europe-west1"
    kubeconfig_path = pathexpand(var.kubeconfig_path)
    kube_context    = var.contexts.europe_west1
  }
  cluster {
    name            = "ap-southeast-1"
    kubeconfig_path = pathexpand(var.kubeconfig_path)
    kube_context    = var.contexts.ap_southeast_1
  }
}

locals {
  regions = ["us-east1", "europe-west1", "ap-southeast-1"]
}

# Held by every plan and apply, in all three clusters at once: a second operator applying through
# any region waits (up to lock_wait_timeout) or is told who holds it and until when.
ephemeral "testnet_network_lock" "network" {
  provider               = testnet.network
  namespace              = "default"
  name                   = "testnets"
  clusters               = local.regions
  lease_duration_seconds = 120
  wait_timeout           = var.lock_wait_timeout
}

module "us_east1" {
  source    = "../modules/region"
  providers = { testnet = testnet.us_east1 }
  region    = "us-east1"
  cloud     = "gcp"
}

module "europe_west1" {
  source    = "../modules/region"
  providers = { testnet = testnet.europe_west1 }
  region    = "europe-west1"
  cloud     = "gcp"
  zones     = ["europe-west1-b", "europe-west1-c"]
}

module "ap_southeast_1" {
  source    = "../modules/region"
  providers = { testnet = testnet.ap_southeast_1 }
  region    = "ap-southeast-1"
  cloud     = "aws"
}

module "devnet" {
  source          = "../modules/testnet"
  providers       = { testnet = testnet.us_east1 }
  network         = "devnet"
  storage_classes = module.us_east1.storage_classes
  lock            = null # the network lock above covers every region
  depends_on      = [ephemeral.testnet_network_lock.network]
  claims = {
    runtime-state  = { size = "10Gi" }
    postgres-state = { size = "20Gi" }
  }
  # A snapshot of a devnet node's state, published when a directory is given.
  snapshot = var.devnet_state_dir == null ? null : {
    source_dir = var.devnet_state_dir
    kind       = "rolling"
    retain     = 3
  }
}

module "berkeley_core" {
  source          = "../modules/testnet"
  providers       = { testnet = testnet.europe_west1 }
  network         = "berkeley"
  storage_classes = module.europe_west1.storage_classes
  lock            = null
  depends_on      = [ephemeral.testnet_network_lock.network]
  roles           = ["archive-node", "block-producer", "seed-node", "snark-coordinator", "snark-worker"]
  claims = {
    runtime-state  = { size = "100Gi" }
    postgres-state = { size = "200Gi" }
  }
}

module "berkeley_edge" {
  source          = "../modules/testnet"
  providers       = { testnet = testnet.ap_southeast_1 }
  network         = "berkeley"
  storage_classes = module.ap_southeast_1.storage_classes
  lock            = null
  depends_on      = [ephemeral.testnet_network_lock.network]
  roles           = ["seed-node", "user-agent", "faucet", "echo-service"]
  claims = {
    runtime-state = { size = "100Gi" }
  }
}

# What runs where, one copy per cluster, written only under the lock (its token fences out a run
# whose lock lapsed), with a history of who applied what.
resource "testnet_network_state" "testnets" {
  provider      = testnet.network
  name          = "testnets"
  clusters      = local.regions
  fencing_token = ephemeral.testnet_network_lock.network.fencing_token
  components = {
    devnet = {
      cluster   = "us-east1"
      namespace = module.devnet.namespace
      roles     = keys(module.devnet.mounts)
      version   = var.versions.devnet
    }
    berkeley-core = {
      cluster   = "europe-west1"
      namespace = module.berkeley_core.namespace
      roles     = keys(module.berkeley_core.mounts)
      version   = var.versions.berkeley
    }
    berkeley-edge = {
      cluster   = "ap-southeast-1"
      namespace = module.berkeley_edge.namespace
      roles     = keys(module.berkeley_edge.mounts)
      version   = var.versions.berkeley
    }
  }
}
