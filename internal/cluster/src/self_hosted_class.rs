//! StorageClass presets for clusters without a cloud disk service: Ceph through Rook's CSI drivers
//! (block images or a shared filesystem) and rancher's local-path provisioner (kind, k3s,
//! single-node clusters). The cloud presets pick a disk type; these need to know where the data
//! goes (Ceph cluster, pool, filesystem), so they take a [`CephTarget`].

use std::collections::BTreeMap;

/// The namespace Rook's operator runs in by default; it prefixes the CSI driver names.
pub const ROOK_OPERATOR_NAMESPACE: &str = "rook-ceph";
/// Rook's RBD (block image) CSI driver with the default operator namespace.
pub const ROOK_RBD_PROVISIONER: &str = "rook-ceph.rbd.csi.ceph.com";
/// Rook's CephFS CSI driver with the default operator namespace.
pub const ROOK_CEPHFS_PROVISIONER: &str = "rook-ceph.cephfs.csi.ceph.com";
/// rancher's local-path provisioner (also k3s's built-in `local-path` class).
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";

/// A self-hosted storage backend with a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfHosted {
    /// Ceph RBD block images (ReadWriteOnce): node databases.
    CephRbd,
    /// A CephFS filesystem (ReadWriteMany): state shared between pods.
    Cephfs,
    /// Directories on the node that runs the pod; `WaitForFirstConsumer` only.
    LocalPath,
}

impl SelfHosted {
    /// Every backend, in the order documentation lists them.
    pub const ALL: [SelfHosted; 3] = [
        SelfHosted::CephRbd,
        SelfHosted::Cephfs,
        SelfHosted::LocalPath,
    ];

    /// The name used in configuration: `ceph-rbd`, `cephfs`, `local-path`.
    pub fn as_str(self) -> &'static str {
        match self {
            SelfHosted::CephRbd => "ceph-rbd",
            SelfHosted::Cephfs => "cephfs",
            SelfHosted::LocalPath => "local-path",
        }
    }

    /// The backend named `s` in configuration.
    pub fn parse(s: &str) -> Option<SelfHosted> {
        SelfHosted::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// Whether the backend needs a Ceph cluster ID and pool or filesystem.
    pub fn is_ceph(self) -> bool {
        matches!(self, SelfHosted::CephRbd | SelfHosted::Cephfs)
    }

    /// The provisioner the preset writes.
    pub fn provisioner(self) -> &'static str {
        match self {
            SelfHosted::CephRbd => ROOK_RBD_PROVISIONER,
            SelfHosted::Cephfs => ROOK_CEPHFS_PROVISIONER,
            SelfHosted::LocalPath => LOCAL_PATH_PROVISIONER,
        }
    }

    /// Whether `provisioner` is this backend's driver. Rook prefixes its drivers with the
    /// operator's namespace, so `<ns>.rbd.csi.ceph.com` is the RBD driver of an operator in `<ns>`.
    pub fn is_provisioner(self, provisioner: &str) -> bool {
        match self {
            SelfHosted::CephRbd => provisioner.ends_with(".rbd.csi.ceph.com"),
            SelfHosted::Cephfs => provisioner.ends_with(".cephfs.csi.ceph.com"),
            SelfHosted::LocalPath => provisioner == LOCAL_PATH_PROVISIONER,
        }
    }
}

/// Where a Ceph class puts its volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CephTarget {
    /// Rook: the namespace of the CephCluster (also where Rook keeps the CSI secrets).
    pub cluster_id: String,
    /// RBD: the CephBlockPool (required). CephFS: the data pool (optional; the filesystem's
    /// default data pool otherwise).
    pub pool: Option<String>,
    /// CephFS: the CephFilesystem (required).
    pub fs_name: Option<String>,
}

/// What a preset lacks, named by the [`CephTarget`] field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    /// A field the backend needs is empty.
    #[error("{backend} needs {field}")]
    Missing {
        backend: &'static str,
        field: &'static str,
    },
    /// A field the backend does not use is set.
    #[error("{backend} does not use {field}")]
    Unused {
        backend: &'static str,
        field: &'static str,
    },
}

/// Every problem of `target` for `backend` (empty when the preset can be built).
pub fn check_target(backend: SelfHosted, target: &CephTarget) -> Vec<PresetError> {
    let b = backend.as_str();
    let mut out = Vec::new();
    let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
    match backend {
        SelfHosted::CephRbd | SelfHosted::Cephfs => {
            if target.cluster_id.is_empty() {
                out.push(PresetError::Missing {
                    backend: b,
                    field: "cluster_id",
                });
            }
            if backend == SelfHosted::CephRbd && !set(&target.pool) {
                out.push(PresetError::Missing {
                    backend: b,
                    field: "pool",
                });
            }
            if backend == SelfHosted::CephRbd && target.fs_name.is_some() {
                out.push(PresetError::Unused {
                    backend: b,
                    field: "fs_name",
                });
            }
            if backend == SelfHosted::Cephfs && !set(&target.fs_name) {
                out.push(PresetError::Missing {
                    backend: b,
                    field: "fs_name",
                });
            }
        }
        SelfHosted::LocalPath => {
            if !target.cluster_id.is_empty() {
                out.push(PresetError::Unused {
                    backend: b,
                    field: "cluster_id",
                });
            }
            if target.pool.is_some() {
                out.push(PresetError::Unused {
                    backend: b,
                    field: "pool",
                });
            }
            if target.fs_name.is_some() {
                out.push(PresetError::Unused {
                    backend: b,
                    field: "fs_name",
                });
            }
        }
    }
    out
}

/// Provisioner and parameters of the preset, as Rook's example classes write them: the cluster
/// ID, pool / filesystem, and the CSI secrets Rook's operator creates in the cluster's namespace
/// (`rook-csi-rbd-provisioner` / `rook-csi-rbd-node`, `rook-csi-cephfs-provisioner` /
/// `rook-csi-cephfs-node`) for provisioning, expansion and mounting. RBD images are format 2 with
/// only `layering` (what the kernel RBD client maps everywhere) and ext4.
pub fn self_hosted_preset(
    backend: SelfHosted,
    target: &CephTarget,
) -> Result<(&'static str, BTreeMap<String, String>), Vec<PresetError>> {
    let problems = check_target(backend, target);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut p = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        p.insert(k.to_string(), v.to_string());
    };
    let secrets = |put: &mut dyn FnMut(&str, &str), kind: &str, ns: &str| {
        let provisioner = format!("rook-csi-{kind}-provisioner");
        let node = format!("rook-csi-{kind}-node");
        for (what, name) in [
            ("provisioner", &provisioner),
            ("controller-expand", &provisioner),
            ("node-stage", &node),
        ] {
            put(&format!("csi.storage.k8s.io/{what}-secret-name"), name);
            put(&format!("csi.storage.k8s.io/{what}-secret-namespace"), ns);
        }
    };
    match backend {
        SelfHosted::CephRbd => {
            put("clusterID", &target.cluster_id);
            put("pool", target.pool.as_deref().unwrap_or_default());
            put("imageFormat", "2");
            put("imageFeatures", "layering");
            put("csi.storage.k8s.io/fstype", "ext4");
            secrets(&mut put, "rbd", &target.cluster_id);
        }
        SelfHosted::Cephfs => {
            put("clusterID", &target.cluster_id);
            put("fsName", target.fs_name.as_deref().unwrap_or_default());
            if let Some(pool) = target.pool.as_deref() {
                put("pool", pool);
            }
            secrets(&mut put, "cephfs", &target.cluster_id);
        }
        SelfHosted::LocalPath => {}
    }
    Ok((backend.provisioner(), p))
}

/// The backend and target a class's provisioner and parameters correspond to, so imported classes
/// show them.
pub fn infer_self_hosted(
    provisioner: &str,
    parameters: &BTreeMap<String, String>,
) -> Option<(SelfHosted, CephTarget)> {
    let backend = SelfHosted::ALL
        .into_iter()
        .find(|b| b.is_provisioner(provisioner))?;
    let target = if backend.is_ceph() {
        CephTarget {
            cluster_id: parameters.get("clusterID").cloned().unwrap_or_default(),
            pool: parameters.get("pool").cloned(),
            fs_name: parameters.get("fsName").cloned(),
        }
    } else {
        CephTarget::default()
    };
    Some((backend, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ceph(cluster: &str, pool: Option<&str>, fs: Option<&str>) -> CephTarget {
        CephTarget {
            cluster_id: cluster.into(),
            pool: pool.map(Into::into),
            fs_name: fs.map(Into::into),
        }
    }

    #[test]
    fn rbd_preset_is_rooks_example_class() {
        let (p, params) = self_hosted_preset(
            SelfHosted::CephRbd,
            &ceph("rook-ceph", Some("replicapool"), None),
        )
        .unwrap();
        assert_eq!(p, "rook-ceph.rbd.csi.ceph.com");
        assert_eq!(params["clusterID"], "rook-ceph");
        assert_eq!(params["pool"], "replicapool");
        assert_eq!(params["imageFeatures"], "layering");
        assert_eq!(
            params["csi.storage.k8s.io/provisioner-secret-name"],
            "rook-csi-rbd-provisioner"
        );
        assert_eq!(
            params["csi.storage.k8s.io/controller-expand-secret-name"],
            "rook-csi-rbd-provisioner"
        );
        assert_eq!(
            params["csi.storage.k8s.io/node-stage-secret-name"],
            "rook-csi-rbd-node"
        );
        assert_eq!(
            params["csi.storage.k8s.io/node-stage-secret-namespace"],
            "rook-ceph"
        );
        assert!(!params.contains_key("fsName"));
    }

    #[test]
    fn cephfs_preset_pool_is_optional() {
        let (p, params) =
            self_hosted_preset(SelfHosted::Cephfs, &ceph("storage", None, Some("myfs"))).unwrap();
        assert_eq!(p, "rook-ceph.cephfs.csi.ceph.com");
        assert_eq!(params["fsName"], "myfs");
        assert_eq!(params["clusterID"], "storage");
        assert_eq!(
            params["csi.storage.k8s.io/provisioner-secret-namespace"],
            "storage"
        );
        assert_eq!(
            params["csi.storage.k8s.io/node-stage-secret-name"],
            "rook-csi-cephfs-node"
        );
        assert!(!params.contains_key("pool"));
        let (_, params) = self_hosted_preset(
            SelfHosted::Cephfs,
            &ceph("storage", Some("myfs-replicated"), Some("myfs")),
        )
        .unwrap();
        assert_eq!(params["pool"], "myfs-replicated");
    }

    #[test]
    fn local_path_has_no_parameters() {
        let (p, params) =
            self_hosted_preset(SelfHosted::LocalPath, &CephTarget::default()).unwrap();
        assert_eq!((p, params.len()), ("rancher.io/local-path", 0));
    }

    #[test]
    fn missing_and_unused_fields_are_all_named() {
        let e = self_hosted_preset(SelfHosted::CephRbd, &ceph("", None, Some("fs"))).unwrap_err();
        assert_eq!(
            e,
            vec![
                PresetError::Missing {
                    backend: "ceph-rbd",
                    field: "cluster_id"
                },
                PresetError::Missing {
                    backend: "ceph-rbd",
                    field: "pool"
                },
                PresetError::Unused {
                    backend: "ceph-rbd",
                    field: "fs_name"
                },
            ]
        );
        let e = self_hosted_preset(SelfHosted::Cephfs, &ceph("c", Some(""), None)).unwrap_err();
        assert_eq!(
            e,
            vec![PresetError::Missing {
                backend: "cephfs",
                field: "fs_name"
            }]
        );
        let e = self_hosted_preset(SelfHosted::LocalPath, &ceph("c", None, None)).unwrap_err();
        assert_eq!(e[0].to_string(), "local-path does not use cluster_id");
    }

    #[test]
    fn inference_round_trips_and_accepts_other_operator_namespaces() {
        for (b, t) in [
            (
                SelfHosted::CephRbd,
                ceph("rook-ceph", Some("replicapool"), None),
            ),
            (SelfHosted::Cephfs, ceph("rook-ceph", None, Some("myfs"))),
            (SelfHosted::LocalPath, CephTarget::default()),
        ] {
            let (p, params) = self_hosted_preset(b, &t).unwrap();
            assert_eq!(infer_self_hosted(p, &params), Some((b, t)));
            assert_eq!(SelfHosted::parse(b.as_str()), Some(b));
        }
        let (b, _) = infer_self_hosted("storage.rbd.csi.ceph.com", &BTreeMap::new()).unwrap();
        assert_eq!(b, SelfHosted::CephRbd);
        assert_eq!(infer_self_hosted("ebs.csi.aws.com", &BTreeMap::new()), None);
    }
}
