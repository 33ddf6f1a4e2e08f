variable "region" {
  type        = string
  description = "Region name, used in class names and the `testnet.io/region` label, e.g. `us-east1` or `eu-west-1`."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.region))
    error_message = "region must be 2 to 32 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (e.g. \"us-east1\")."
  }
}

variable "cloud" {
  type        = string
  description = "Cloud of the region's cluster: `gcp` (kubernetes.io/gce-pd, pd-ssd / pd-standard) or `aws` (ebs.csi.aws.com, gp3 / st1)."
  validation {
    condition     = contains(["gcp", "aws"], var.cloud)
    error_message = "cloud must be \"gcp\" or \"aws\"."
  }
}

variable "name_prefix" {
  type        = string
  default     = "testnet"
  description = "Prefix of the class names: `<prefix>-<region>-ssd` and `<prefix>-<region>-standard`. Empty for `<region>-ssd`."
  validation {
    condition     = var.name_prefix == "" || can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.name_prefix))
    error_message = "name_prefix must be empty or up to 40 lowercase letters, digits and '-', starting and ending with a letter or digit."
  }
}

variable "volume_binding_mode" {
  type        = string
  default     = "WaitForFirstConsumer"
  description = "`WaitForFirstConsumer` (volumes follow the first pod's zone) or `Immediate`."
  validation {
    condition     = contains(["WaitForFirstConsumer", "Immediate"], var.volume_binding_mode)
    error_message = "volume_binding_mode must be \"WaitForFirstConsumer\" or \"Immediate\"."
  }
}

variable "reclaim_policy" {
  type        = string
  default     = "Delete"
  description = "`Delete` or `Retain`: what happens to a volume when its claim is deleted."
  validation {
    condition     = contains(["Delete", "Retain"], var.reclaim_policy)
    error_message = "reclaim_policy must be \"Delete\" or \"Retain\"."
  }
}

variable "zones" {
  type        = list(string)
  default     = []
  description = "Zones volumes may be provisioned in (`topology.kubernetes.io/zone`). Empty: any zone of the region."
  validation {
    condition     = alltrue([for z in var.zones : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", z))])
    error_message = "zones must be zone names of lowercase letters, digits and '-', e.g. [\"us-east1-b\", \"us-east1-c\"]."
  }
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Extra labels on both classes."
}
