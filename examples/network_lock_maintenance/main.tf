# A maintenance window spanning several runs: the lock is taken by `terraform apply` and held
# until `terraform destroy` (or until the lease lapses without an apply renewing it).
terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

provider "testnet" {
  # kubeconfig_path = "~/.kube/config"
}

resource "testnet_network_lock" "maintenance" {
  namespace              = "testnets"
  name                   = "devnet-7"
  holder                 = "ops-maintenance"
  lease_duration_seconds = 7200
}

output "fencing_token" {
  value = testnet_network_lock.maintenance.fencing_token
}
