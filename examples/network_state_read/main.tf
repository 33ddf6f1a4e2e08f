# Who changed the network last, and what runs where, read from the European copy of the
# network-state document (written by examples/composition).
terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

variable "kubeconfig_path" {
  type    = string
  default = "~/.kube/config"
}

provider "testnet" {
  kubeconfig_path = pathexpand(var.kubeconfig_path)
  cluster {
    name            = "europe-west1"
    kubeconfig_path = pathexpand(var.kubeconfig_path)
  }
}

data "testnet_network_state" "testnets" {
  name    = "testnets"
  cluster = "europe-west1"
}

output "last_change" {
  value = {
    by      = data.testnet_network_state.testnets.updated_by
    at      = data.testnet_network_state.testnets.updated_at
    changes = try(data.testnet_network_state.testnets.history[length(data.testnet_network_state.testnets.history) - 1].changes, [])
  }
}

output "components" {
  value = data.testnet_network_state.testnets.components
}
