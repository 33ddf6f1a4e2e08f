# Three regions and two testnets, the way a real network is laid out: every region's cluster gets
# its storage classes; `devnet` runs whole in us-east1; `berkeley` runs its producers, archive and
# SNARK work in europe-west1 and the public-facing roles (seeds, user agents, faucet, echo service)
# in ap-southeast-1. One provider alias per region, each a context of one kubeconfig.

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

# berkeley's lock is a Lease in each of its two clusters: a run holds both while it changes them.
module "berkeley_core" {
  source          = "../modules/testnet"
  providers       = { testnet = testnet.europe_west1 }
  network         = "berkeley"
  storage_classes = module.europe_west1.storage_classes
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
  roles           = ["seed-node", "user-agent", "faucet", "echo-service"]
  claims = {
    runtime-state = { size = "100Gi" }
  }
}
