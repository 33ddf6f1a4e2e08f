# One testnet on one cluster: its namespace, the shared-state claims of the roles it runs, the
# network lock held while Terraform changes it, and optionally a snapshot of a node's state.
#
# Claims come in two kinds:
#   - shared, one per testnet, mounted read-only by every role that needs it: genesis ledger,
#     genesis proof, epoch ledger, daemon config;
#   - per role, mounted read-write by that role only: wallet keys, runtime state, Postgres state.
# The `mounts` output lists, for each role, the claims its pods mount and where, so a chart replaces
# its `emptyDir` volumes with one lookup: `module.devnet.mounts["block-producer"]`.

terraform {
  required_version = ">= 1.10"
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

locals {
  namespace = coalesce(var.namespace, var.network)

  # What each kind of state is, who mounts it, and its defaults (overridable through var.claims).
  state = {
    genesis-ledger = {
      shared     = true
      tier       = "standard"
      size       = "2Gi"
      modes      = ["ReadOnlyMany"]
      mount_path = "/var/lib/testnet/genesis/ledger"
      roles      = ["archive-node", "block-producer", "seed-node", "snark-coordinator", "user-agent", "faucet", "echo-service"]
    }
    genesis-proof = {
      shared     = true
      tier       = "standard"
      size       = "1Gi"
      modes      = ["ReadOnlyMany"]
      mount_path = "/var/lib/testnet/genesis/proof"
      roles      = ["archive-node", "block-producer", "seed-node", "snark-coordinator", "snark-worker", "user-agent", "faucet", "echo-service"]
    }
    epoch-ledger = {
      shared     = true
      tier       = "ssd"
      size       = "2Gi"
      modes      = ["ReadOnlyMany"]
      mount_path = "/var/lib/testnet/genesis/epoch"
      roles      = ["archive-node", "block-producer", "seed-node", "snark-coordinator", "user-agent", "faucet", "echo-service"]
    }
    daemon-config = {
      shared     = true
      tier       = "standard"
      size       = "1Gi"
      modes      = ["ReadOnlyMany"]
      mount_path = "/etc/testnet/daemon"
      roles      = ["archive-node", "block-producer", "seed-node", "snark-coordinator", "snark-worker", "user-agent", "faucet", "echo-service"]
    }
    wallet-keys = {
      shared     = false
      tier       = "standard"
      size       = "1Gi"
      modes      = ["ReadWriteOnce"]
      mount_path = "/var/lib/testnet/keys"
      roles      = ["block-producer", "snark-coordinator", "user-agent", "faucet", "echo-service"]
    }
    runtime-state = {
      shared     = false
      tier       = "ssd"
      size       = "20Gi"
      modes      = ["ReadWriteOnce"]
      mount_path = "/var/lib/testnet/state"
      roles      = ["archive-node", "block-producer", "seed-node", "snark-coordinator", "user-agent", "faucet", "echo-service"]
    }
    postgres-state = {
      shared     = false
      tier       = "ssd"
      size       = "50Gi"
      modes      = ["ReadWriteOnce"]
      mount_path = "/var/lib/postgresql/data"
      roles      = ["archive-node"]
    }
  }

  # The effective settings of each kind of state, defaults merged with var.claims.
  settings = {
    for kind, s in local.state : kind => {
      shared       = s.shared
      tier         = try(coalesce(var.claims[kind].tier), s.tier)
      size         = try(coalesce(var.claims[kind].size), s.size)
      access_modes = try(coalesce(var.claims[kind].access_modes), s.modes)
      mount_path   = s.mount_path
      roles        = [for r in s.roles : r if contains(var.roles, r)]
    }
  }

  # One claim per shared kind needed by any deployed role, one per (role, kind) otherwise.
  claims = merge(
    {
      for kind, s in local.settings : kind => merge(s, { kind = kind, role = "shared" })
      if s.shared && length(s.roles) > 0
    },
    merge([
      for kind, s in local.settings : {
        for r in s.roles : "${r}-${kind}" => merge(s, { kind = kind, role = r })
      } if !s.shared
    ]...),
  )
}

# Held while any plan or apply of this testnet runs (see README.md for why ephemeral).
ephemeral "testnet_network_lock" "run" {
  count                  = var.lock == null ? 0 : 1
  namespace              = var.lock.namespace
  name                   = "${var.network}-state"
  lease_duration_seconds = var.lock.lease_duration_seconds
  wait_timeout           = var.lock.wait_timeout
}

resource "testnet_shared_state_pvc" "claim" {
  for_each = local.claims

  namespace          = local.namespace
  create_namespace   = true
  name               = each.key
  testnet            = var.network
  role               = each.value.role
  labels             = merge(var.labels, { "testnet.io/state" = each.value.kind })
  access_modes       = each.value.access_modes
  storage            = each.value.size
  storage_class_name = var.storage_classes[each.value.tier]

  timeouts = {
    create = var.claim_create_timeout
  }

  # Claims change only while this run holds the network lock.
  depends_on = [ephemeral.testnet_network_lock.run]
}

resource "testnet_snapshot_artifact" "state" {
  count = var.snapshot == null ? 0 : 1

  source_dir   = var.snapshot.source_dir
  store_url    = var.snapshot.store_url
  network      = var.network
  kind         = var.snapshot.kind
  label        = var.snapshot.label
  block_height = var.snapshot.block_height
  verify       = "full"
  retain       = var.snapshot.retain

  index_lock       = var.snapshot.index_lock
  single_publisher = var.snapshot.single_publisher

  depends_on = [ephemeral.testnet_network_lock.run]
}
