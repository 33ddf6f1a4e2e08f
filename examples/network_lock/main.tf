# Serialise changes to one testnet's network state: every apply of this configuration takes the
# lock for its duration, waiting up to 5 minutes for another run to finish.
terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

provider "testnet" {
  # kubeconfig_path = "~/.kube/config"
}

variable "testnet" {
  type    = string
  default = "devnet-7"
}

ephemeral "testnet_network_lock" "net" {
  namespace              = "default"
  name                   = var.testnet
  lease_duration_seconds = 120
  wait_timeout           = "5m"
}

resource "terraform_data" "change" {
  triggers_replace = [timestamp()]
  provisioner "local-exec" {
    command = "echo \"changing $TESTNET as $HOLDER (fencing token $TOKEN)\""
    environment = {
      TESTNET = var.testnet
      HOLDER  = ephemeral.testnet_network_lock.net.holder
      TOKEN   = ephemeral.testnet_network_lock.net.fencing_token
    }
  }
}

# Who holds it right now (not taking it).
data "testnet_network_lock" "now" {
  namespace = "default"
  name      = var.testnet
}

output "held_by" {
  value = data.testnet_network_lock.now.held ? data.testnet_network_lock.now.holder : null
}
