//! The Job that fills a new claim from a snapshot artifact: `testnet-archiver restore URL --into
//! MOUNT` with the claim mounted read-write. Its pod is the claim's first consumer, so a claim
//! whose class binds on first use (WaitForFirstConsumer) binds when the Job is scheduled.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::claim::LABEL_NETWORK;
use crate::job::{ClaimMount, JobSpec};

/// Where the claim is mounted in the restore Job's container.
pub const RESTORE_MOUNT: &str = "/data";

/// How the archiver in the pod reaches the store (never credentials: those come from the
/// Secret or the service account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreAccess {
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub region: Option<String>,
    /// Ranged reads per object (`--connections`); the archiver's default when `None`.
    pub connections: Option<u16>,
}

/// How a Job runs, as a user sets it (the `job` block).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSettings {
    pub image: String,
    pub env_secret: Option<String>,
    pub service_account: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub deadline: Duration,
    pub keep_failed: bool,
}

/// A restore of the artifact at `url` into claim `namespace/claim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    pub namespace: String,
    pub claim: String,
    pub url: String,
    pub store: StoreAccess,
    /// The claim's network label, carried to the Job for `kubectl get jobs -l`.
    pub network: Option<String>,
}

/// The Job spec for `req`. No `--replace`: the claim is new, and a restore that finds data in it
/// fails rather than overwrite it.
pub fn restore_job(req: &RestoreRequest, run: &JobSettings) -> JobSpec {
    let mut args = vec![
        "restore".to_string(),
        req.url.clone(),
        "--into".to_string(),
        RESTORE_MOUNT.to_string(),
    ];
    if let Some(e) = &req.store.endpoint {
        args.extend(["--endpoint".to_string(), e.clone()]);
    }
    if req.store.path_style {
        args.push("--path-style".into());
    }
    if let Some(r) = &req.store.region {
        args.extend(["--region".to_string(), r.clone()]);
    }
    if let Some(n) = req.store.connections {
        args.extend(["--connections".to_string(), n.to_string()]);
    }
    // The report comes back whole as the termination message.
    args.extend([
        "--result-file".to_string(),
        "/dev/termination-log".to_string(),
    ]);
    let mut labels = BTreeMap::new();
    if let Some(n) = &req.network {
        labels.insert(LABEL_NETWORK.to_string(), n.clone());
    }
    JobSpec {
        namespace: req.namespace.clone(),
        name_prefix: format!("restore-{}", req.claim),
        image: run.image.clone(),
        args,
        env_secret: run.env_secret.clone(),
        service_account: run.service_account.clone(),
        node_selector: run.node_selector.clone(),
        cpu: run.cpu.clone(),
        memory: run.memory.clone(),
        deadline: run.deadline,
        claim: Some(ClaimMount {
            claim: req.claim.clone(),
            mount_path: RESTORE_MOUNT.into(),
            read_only: false,
        }),
        labels,
        keep_failed: run.keep_failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_restores_into_the_mounted_claim_read_write_without_credentials() {
        let req = RestoreRequest {
            namespace: "net".into(),
            claim: "state".into(),
            url: "s3://snap/p/ghostnet-rolling-1.tar.lz4".into(),
            store: StoreAccess {
                endpoint: Some("http://10.0.0.1:9000".into()),
                path_style: true,
                region: Some("us-east-1".into()),
                connections: Some(8),
            },
            network: Some("ghostnet".into()),
        };
        let run = JobSettings {
            image: "archiver:v1".into(),
            env_secret: Some("creds".into()),
            deadline: Duration::from_secs(60),
            ..Default::default()
        };
        let spec = restore_job(&req, &run);
        assert_eq!(
            spec.args.join(" "),
            "restore s3://snap/p/ghostnet-rolling-1.tar.lz4 --into /data --endpoint http://10.0.0.1:9000 --path-style --region us-east-1 --connections 8 --result-file /dev/termination-log"
        );
        let m = spec.claim.as_ref().expect("claim mounted");
        assert_eq!((m.claim.as_str(), m.read_only), ("state", false));
        assert_eq!(spec.env_secret.as_deref(), Some("creds"));
        assert_eq!(spec.labels[LABEL_NETWORK], "ghostnet");
        assert_eq!(spec.namespace, "net");
    }
}
