output "namespace" {
  value = local.namespace
}

# For each role, the volumes its pods mount instead of `emptyDir`:
#   module.devnet.mounts["block-producer"] = [
#     { volume = "genesis-ledger", claim = "genesis-ledger", mount_path = "/var/lib/testnet/genesis/ledger", read_only = true },
#     ...
#   ]
output "mounts" {
  description = "Per role, the claims to mount: `volume` (a volume name), `claim`, `mount_path`, `read_only`."
  value = {
    for r in var.roles : r => [
      for name, c in local.claims : {
        volume     = c.kind
        claim      = testnet_shared_state_pvc.claim[name].name
        mount_path = c.mount_path
        read_only  = c.shared
      } if c.shared ? contains(c.roles, r) : c.role == r
    ]
  }
}

output "claims" {
  description = "Every claim by name: role, kind of state, class, size, access modes, phase and estimated monthly cost."
  value = {
    for name, c in testnet_shared_state_pvc.claim : name => {
      role                       = local.claims[name].role
      state                      = local.claims[name].kind
      storage_class              = c.storage_class_name
      storage                    = c.storage
      access_modes               = c.access_modes
      phase                      = c.phase
      estimated_monthly_cost_usd = local.costs[name]
    }
  }
}

locals {
  # A claim's cost is null when the provider's price table has no price for its class.
  costs = { for name, c in testnet_shared_state_pvc.claim : name => c.estimated_monthly_cost_usd }
}

output "estimated_monthly_cost_usd" {
  description = "Sum of the claims' estimated monthly cost in USD, rounded to cents, from the provider's price table (`storage_prices`); known at plan time. Null when any claim's class has no price."
  value       = anytrue([for v in values(local.costs) : v == null]) ? null : floor(sum(concat([0], values(local.costs))) * 100 + 0.5) / 100
}

output "lock_name" {
  value = var.lock == null ? null : "${var.lock.namespace}/${var.network}-state"
}

output "snapshot" {
  description = "The published snapshot (`url`, `sha256`, `size_bytes`), or null."
  value = var.snapshot == null ? null : {
    url        = testnet_snapshot_artifact.state[0].url
    sha256     = testnet_snapshot_artifact.state[0].sha256
    size_bytes = testnet_snapshot_artifact.state[0].size_bytes
  }
}
