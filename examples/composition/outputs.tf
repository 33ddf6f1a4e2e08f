output "storage_classes" {
  value = {
    us-east1       = module.us_east1.storage_classes
    europe-west1   = module.europe_west1.storage_classes
    ap-southeast-1 = module.ap_southeast_1.storage_classes
  }
}

# What each testnet's charts mount, per region and role.
output "mounts" {
  value = {
    devnet   = { us-east1 = module.devnet.mounts }
    berkeley = { europe-west1 = module.berkeley_core.mounts, ap-southeast-1 = module.berkeley_edge.mounts }
  }
}

output "estimated_monthly_cost_usd" {
  description = "Per testnet, the monthly cost of its claims (USD), null when a class has no price."
  value = {
    devnet   = module.devnet.estimated_monthly_cost_usd
    berkeley = module.berkeley_core.estimated_monthly_cost_usd == null || module.berkeley_edge.estimated_monthly_cost_usd == null ? null : module.berkeley_core.estimated_monthly_cost_usd + module.berkeley_edge.estimated_monthly_cost_usd
  }
}

output "devnet_snapshot" {
  value = module.devnet.snapshot
}

# Who last changed the network, and how many applies the state document remembers.
output "network_state" {
  value = {
    updated_by = testnet_network_state.testnets.updated_by
    updated_at = testnet_network_state.testnets.updated_at
    applies    = length(testnet_network_state.testnets.history)
  }
}
