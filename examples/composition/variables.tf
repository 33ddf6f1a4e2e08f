variable "kubeconfig_path" {
  type        = string
  default     = "~/.kube/config"
  description = "The kubeconfig holding one context per region."
}

variable "contexts" {
  type = object({
    us_east1       = string
    europe_west1   = string
    ap_southeast_1 = string
  })
  default = {
    us_east1       = "gke-us-east1"
    europe_west1   = "gke-europe-west1"
    ap_southeast_1 = "eks-ap-southeast-1"
  }
  description = "The kubeconfig context of each region's cluster."
  validation {
    condition     = length(distinct([var.contexts.us_east1, var.contexts.europe_west1, var.contexts.ap_southeast_1])) == 3
    error_message = "contexts must name three different kubeconfig contexts, one per region: each region is its own cluster."
  }
}

variable "storage_prices" {
  type        = map(number)
  default     = null
  description = "USD per GiB-month by class name or tier, added to the provider's defaults (`ssd = 0.17`, `standard = 0.04`), e.g. `{ ssd = 0.187 }` for a region's list price."
}

variable "store_url" {
  type        = string
  default     = null
  description = "Where snapshots are published: `file:///dir`, `s3://bucket/prefix` or `gs://bucket/prefix`."
}

variable "devnet_state_dir" {
  type        = string
  default     = null
  description = "A devnet node's state directory to publish as a snapshot; null for none."
}

variable "lock_wait_timeout" {
  type        = string
  default     = "2m"
  description = "How long a run waits for another holder of the network lock, e.g. \"2m\"; \"0s\" fails at once naming the holder."
}

variable "versions" {
  type = object({
    devnet   = string
    berkeley = string
  })
  default = {
    devnet   = "3.0.0"
    berkeley = "3.0.0"
  }
  description = "The version each testnet runs, recorded in the network-state document."
}
