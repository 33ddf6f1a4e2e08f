output "seed" {
  description = "The artifact the claims were restored from."
  value = {
    url    = data.testnet_snapshot.seed.url
    sha256 = data.testnet_snapshot.seed.sha256
  }
}

output "claims" {
  description = "Each node's claim (`namespace/name`) and the SHA-256 of the artifact restored into it."
  value       = { for c in testnet_shared_state_pvc.node : c.id => c.restored_sha256 }
}

output "runtime_snapshot" {
  description = "The artifact the Job published from the first node's claim."
  value = {
    url    = testnet_snapshot_artifact.runtime.url
    sha256 = testnet_snapshot_artifact.runtime.sha256
  }
}
