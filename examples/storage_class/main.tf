terraform {
  required_providers {
    testnet = {
      source = "testnet-infra/testnet"
    }
  }
}

provider "testnet" {
  kubeconfig_path = "~/.kube/config"
}

# SSD class for node databases on GKE: provisioner and disk type come from the preset.
resource "testnet_storage_class" "node_db" {
  name                   = "testnet-ssd"
  tier                   = "ssd"
  cloud                  = "gcp"
  allow_volume_expansion = true
  labels = {
    "app.kubernetes.io/part-of" = "testnet"
  }
}

# Cheap throughput disks for archives and snapshots, kept when claims go away.
resource "testnet_storage_class" "archive" {
  name           = "testnet-archive"
  tier           = "standard"
  cloud          = "gcp"
  reclaim_policy = "Retain"
}

# Explicit provisioner and parameters, pinned to two zones.
resource "testnet_storage_class" "regional" {
  name        = "testnet-regional"
  provisioner = "ebs.csi.aws.com"
  parameters = {
    type      = "io2"
    iopsPerGB = "50"
    encrypted = "true"
  }
  mount_options = ["noatime"]
  allowed_topologies = [{
    key    = "topology.kubernetes.io/zone"
    values = ["eu-west-1a", "eu-west-1b"]
  }]
}

# Self-hosted: Ceph block images through Rook's RBD CSI driver, in the pool `replicapool` of the
# CephCluster in namespace `rook-ceph` (Rook's CSI secrets are found there).
resource "testnet_storage_class" "ceph_node_db" {
  name                   = "testnet-ceph-rbd"
  cloud                  = "ceph-rbd"
  ceph_cluster_id        = "rook-ceph"
  ceph_pool              = "replicapool"
  allow_volume_expansion = true
}

# A shared CephFS filesystem for state several pods read.
resource "testnet_storage_class" "ceph_shared" {
  name            = "testnet-cephfs"
  cloud           = "cephfs"
  ceph_cluster_id = "rook-ceph"
  ceph_fs_name    = "myfs"
}

# kind / k3s / single-node clusters: a directory on the node of the first pod using the claim.
resource "testnet_storage_class" "local" {
  name  = "testnet-local"
  cloud = "local-path"
}
