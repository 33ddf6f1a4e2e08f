output "region" {
  value = var.region
}

output "cloud" {
  value = var.cloud
}

# What the testnet module takes as `storage_classes`.
output "storage_classes" {
  description = "Class names by tier: `{ ssd = ..., standard = ... }`."
  value = {
    ssd      = testnet_storage_class.ssd.name
    standard = testnet_storage_class.standard.name
  }
}
