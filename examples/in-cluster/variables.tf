variable "kubeconfig_path" {
  type        = string
  default     = "~/.kube/config"
  description = "Kubeconfig of the cluster the testnet runs in."
}

variable "store_url" {
  type        = string
  description = "Store prefix the pods reach, where artifacts are published: s3://bucket/prefix or gs://bucket/prefix (not file://: a pod cannot see this machine's directories)."
  validation {
    condition     = can(regex("^(s3|gs)://[^/]+", var.store_url))
    error_message = "store_url must be s3://bucket[/prefix] or gs://bucket[/prefix]: the Jobs run in the cluster and cannot reach a file:// directory of this machine."
  }
}

variable "s3_endpoint" {
  type        = string
  default     = null
  description = "Endpoint of an S3-compatible server (MinIO, Ceph RGW), reachable from this machine and from the pods; null for AWS S3. Sets path-style addressing."
}

variable "s3_region" {
  type        = string
  default     = null
  description = "S3 region of the bucket, e.g. us-east-1."
}

variable "archiver_image" {
  type        = string
  default     = null
  description = "testnet-archiver image the Jobs run, as the nodes pull it (e.g. a copy in your registry); null for the provider's default."
}

variable "store_secret" {
  type        = string
  default     = null
  description = "Secret in `namespace` whose keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) become the Jobs' environment. Null when `service_account` carries a cloud identity instead (IRSA, Workload Identity)."
}

variable "service_account" {
  type        = string
  default     = null
  description = "Service account the Jobs run as, e.g. one bound to an IAM role (IRSA on EKS) or a Google service account (Workload Identity on GKE) that may use the bucket."
}

variable "namespace" {
  type        = string
  default     = "ghostnet"
  description = "Namespace of the testnet; it must exist, with `store_secret` in it when set."
}

variable "network" {
  type        = string
  default     = "ghostnet"
  description = "Network name: the artifacts restored and published are `<network>-<kind>-<label>`."
}

variable "seed_kind" {
  type        = string
  default     = "rolling"
  description = "Kind of the artifact the nodes' claims are restored from (its latest pointer)."
}

variable "snapshot_kind" {
  type        = string
  default     = "runtime"
  description = "Kind of the artifacts the Job publishes from the first node's claim."
}

variable "nodes" {
  type        = number
  default     = 2
  description = "Number of nodes, each with a claim restored from the latest artifact."
}

variable "storage" {
  type        = string
  default     = "10Gi"
  description = "Size of each node's claim: at least the artifact's uncompressed size."
}

variable "storage_class" {
  type        = string
  default     = null
  description = "StorageClass of the claims; null for the cluster's default. WaitForFirstConsumer classes work: the restore Job's pod binds the claim."
}

variable "snapshot_label" {
  type        = string
  default     = null
  description = "Label of the snapshot the Job publishes; a new label publishes a new artifact. Null: the UTC time of the apply that creates it."
}
