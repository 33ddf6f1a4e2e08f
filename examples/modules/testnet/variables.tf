variable "network" {
  type        = string
  description = "The testnet's name: the `testnet.io/network` label of its claims, its namespace unless `namespace` is set, and the name of its lock (`<network>-state`) and snapshots."
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.network))
    error_message = "network must be a DNS label of at most 40 characters: lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. \"devnet\")."
  }
}

variable "namespace" {
  type        = string
  default     = null
  description = "Namespace of the claims (created if missing, never deleted). Defaults to `network`."
  validation {
    condition     = var.namespace == null || can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit."
  }
}

variable "storage_classes" {
  type = object({
    ssd      = string
    standard = string
  })
  description = "Storage class names by tier, e.g. a region module's `storage_classes` output."
}

variable "roles" {
  type        = list(string)
  default     = ["archive-node", "block-producer", "seed-node", "snark-coordinator", "snark-worker", "user-agent", "faucet", "echo-service"]
  description = "Roles this cluster runs; claims are made only for the state these roles need. A testnet spread over regions runs a subset in each."
  validation {
    condition     = length(var.roles) > 0 && length(distinct(var.roles)) == length(var.roles) && alltrue([for r in var.roles : contains(["archive-node", "block-producer", "seed-node", "snark-coordinator", "snark-worker", "user-agent", "faucet", "echo-service"], r)])
    error_message = "roles must be a non-empty list, without repeats, of: archive-node, block-producer, seed-node, snark-coordinator, snark-worker, user-agent, faucet, echo-service."
  }
}

variable "claims" {
  type = map(object({
    size         = optional(string)
    access_modes = optional(list(string))
    tier         = optional(string)
  }))
  default     = {}
  description = <<-EOT
    Overrides of size, access modes and tier per kind of state. Kinds and defaults:
    `genesis-ledger` (2Gi, ReadOnlyMany, standard), `genesis-proof` (1Gi, ReadOnlyMany, standard),
    `epoch-ledger` (2Gi, ReadOnlyMany, ssd), `daemon-config` (1Gi, ReadOnlyMany, standard),
    `wallet-keys` (1Gi, ReadWriteOnce, standard), `runtime-state` (20Gi, ReadWriteOnce, ssd),
    `postgres-state` (50Gi, ReadWriteOnce, ssd). Example: `{ runtime-state = { size = "100Gi" } }`.
  EOT
  validation {
    condition     = alltrue([for k in keys(var.claims) : contains(["genesis-ledger", "genesis-proof", "epoch-ledger", "daemon-config", "wallet-keys", "runtime-state", "postgres-state"], k)])
    error_message = "claims keys must be kinds of state: genesis-ledger, genesis-proof, epoch-ledger, daemon-config, wallet-keys, runtime-state, postgres-state."
  }
  validation {
    condition     = alltrue([for c in values(var.claims) : c.size == null || can(regex("^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$", c.size))])
    error_message = "claims sizes must be Kubernetes quantities: a number with an optional suffix Ki, Mi, Gi, Ti, Pi, k, M, G, T or P (e.g. \"10Gi\", \"500Mi\")."
  }
  validation {
    condition     = alltrue([for c in values(var.claims) : c.access_modes == null || (length(coalesce(c.access_modes, [])) > 0 && alltrue([for m in coalesce(c.access_modes, []) : contains(["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"], m)]))])
    error_message = "claims access_modes must be a non-empty list of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod."
  }
  validation {
    condition     = alltrue([for c in values(var.claims) : c.tier == null || contains(["ssd", "standard"], coalesce(c.tier, "x"))])
    error_message = "claims tier must be \"ssd\" or \"standard\"."
  }
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Extra labels on every claim."
}

variable "claim_create_timeout" {
  type        = string
  default     = "5m"
  description = "How long creating a claim waits for it to be usable, e.g. `90s`, `5m`."
  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.claim_create_timeout)) && var.claim_create_timeout != ""
    error_message = "claim_create_timeout must be a duration like \"90s\", \"5m\" or \"1h30m\"."
  }
}

variable "lock" {
  type = object({
    namespace              = optional(string, "default")
    wait_timeout           = optional(string, "2m")
    lease_duration_seconds = optional(number, 120)
  })
  default     = {}
  description = "The network lock (a Lease `<network>-state` in `namespace`, which must exist) held during every plan and apply; `null` for none. `wait_timeout` is how long a run waits for another holder."
  validation {
    condition     = var.lock == null || can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.lock.namespace))
    error_message = "lock.namespace must be an existing namespace's name: a DNS label of lowercase letters, digits and '-'."
  }
  validation {
    condition     = var.lock == null || can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.lock.wait_timeout))
    error_message = "lock.wait_timeout must be a duration like \"30s\", \"2m\" or \"1h30m\" (\"0s\" fails at once when the lock is held)."
  }
  validation {
    condition     = var.lock == null || try(var.lock.lease_duration_seconds >= 15 && var.lock.lease_duration_seconds <= 3600, false)
    error_message = "lock.lease_duration_seconds must be between 15 and 3600."
  }
}

variable "snapshot" {
  type = object({
    source_dir   = string
    store_url    = optional(string)
    kind         = optional(string, "rolling")
    label        = optional(string)
    block_height = optional(number)
    retain       = optional(number)
    # For stores that ignore conditional writes (see testnet_snapshot_artifact).
    index_lock       = optional(string)
    single_publisher = optional(bool, false)
  })
  default     = null
  description = "Publish a snapshot of a node's state directory (`source_dir`) to `store_url` (default: the provider's `default_store_url`); `null` for none. `index_lock` (`namespace/name` of a Lease of its own) or `single_publisher` are needed for stores that ignore conditional writes."
  validation {
    condition     = var.snapshot == null || can(regex("^[a-z0-9]+$", var.snapshot.kind))
    error_message = "snapshot.kind must be lowercase letters and digits without '-', e.g. \"rolling\" or \"archive\"."
  }
  validation {
    condition     = var.snapshot == null || try(var.snapshot.store_url == null || can(regex("^(file|s3|gs)://", var.snapshot.store_url)), false)
    error_message = "snapshot.store_url must start with file://, s3:// or gs://."
  }
}
