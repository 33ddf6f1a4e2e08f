terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

provider "testnet" {
  kubeconfig_path = pathexpand("~/.kube/config")
}

resource "testnet_storage_class" "state" {
  name                   = "ghostnet-state"
  provisioner            = "ebs.csi.aws.com"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true
}

# Shared state for a testnet: genesis, keys and chain data mounted by every node pod.
resource "testnet_shared_state_pvc" "ghostnet" {
  namespace          = "ghostnet"
  create_namespace   = true
  name               = "shared-state"
  testnet            = "ghostnet"
  role               = "shared-state"
  labels             = { team = "infra" }
  access_modes       = ["ReadWriteOnce"]
  storage            = "10Gi"
  storage_class_name = testnet_storage_class.state.name

  timeouts = {
    create = "5m"
    delete = "2m"
  }
}

output "claim" {
  value = "${testnet_shared_state_pvc.ghostnet.id} (${testnet_shared_state_pvc.ghostnet.phase})"
}
