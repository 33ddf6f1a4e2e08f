//! Work that runs inside the cluster, next to the data, as a Kubernetes Job: one pod, never
//! retried (`backoffLimit: 0`), bounded by `activeDeadlineSeconds`, whose log is read through the
//! API server while it runs and whose outcome comes back as a typed [`JobError`] that says what
//! Kubernetes said (image missing, unschedulable, OOMKilled, deadline, exit code and the last
//! lines of the log).
//!
//! Why a Job and not a bare pod: the Job controller enforces the deadline even when the caller
//! (Terraform on a laptop) goes away, and deleting the Job removes its pod with it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::claim::{sleep_or_cancel, LABEL_MANAGED_BY, MANAGED_BY};
use crate::connect::Cluster;
use crate::error::{ClusterError, ObjectRef};
use crate::job_log::{read_log, LogCursor};

/// Label the Job controller of every supported Kubernetes version puts on a Job's pods.
const LABEL_JOB_NAME: &str = "job-name";
/// How many log lines a failure carries.
const LOG_TAIL_LINES: usize = 20;
/// Container name of every Job made here (the log and termination message are read from it).
const CONTAINER: &str = "main";
/// How long the pod may take to clean up after SIGTERM (abort an upload, delete what it wrote).
const GRACE_SECONDS: i64 = 60;
/// How long to wait beyond the Job's own deadline for the Job controller to act on it, in case it
/// does not run (then the Job is ours to stop).
const DEADLINE_SLACK: Duration = Duration::from_secs(60);
/// How long removing a Job and its pod may take (the pod's grace period, plus the kubelet).
const DELETE_WAIT: Duration = Duration::from_secs(GRACE_SECONDS as u64 + 60);

/// A claim mounted into the Job's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMount {
    /// Claim name (in the Job's namespace).
    pub claim: String,
    /// Where the container sees it.
    pub mount_path: String,
    /// Mounted read-only (a snapshot never writes to its source).
    pub read_only: bool,
}

/// What to run. Credentials reach the container only through `env_secret` (envFrom, so their
/// values never appear in the Job spec) or the service account's own identity (IRSA, Workload
/// Identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Namespace (the claim's).
    pub namespace: String,
    /// The Job is named `<name_prefix>-<5 random characters>`; at most 57 characters are kept.
    pub name_prefix: String,
    /// Container image.
    pub image: String,
    /// Arguments to the image's entrypoint.
    pub args: Vec<String>,
    /// Secret whose keys become environment variables (envFrom).
    pub env_secret: Option<String>,
    /// Service account the pod runs as; the namespace's `default` when `None`.
    pub service_account: Option<String>,
    /// Node labels the pod requires.
    pub node_selector: BTreeMap<String, String>,
    /// CPU request and limit, a Kubernetes quantity (`500m`, `2`).
    pub cpu: Option<String>,
    /// Memory request and limit (`512Mi`); the container is OOMKilled above it.
    pub memory: Option<String>,
    /// `activeDeadlineSeconds`: the Job controller stops the pod after this long.
    pub deadline: Duration,
    /// A claim to mount; a ReadWriteOnce claim that a running pod mounts pins the Job to that
    /// pod's node (the only node where the volume can be attached).
    pub claim: Option<ClaimMount>,
    /// Labels on the Job and its pod (ours are added).
    pub labels: BTreeMap<String, String>,
    /// Keep the Job and its pod when it fails, for `kubectl describe` / `logs`.
    pub keep_failed: bool,
}

/// A Job that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// The Job's name.
    pub name: String,
    /// The node it ran on.
    pub node: Option<String>,
    /// The node it was pinned to, and why (the pod already mounting its claim).
    pub pinned_by: Option<(String, String)>,
    /// The container's termination message (what it wrote to `/dev/termination-log`).
    pub termination_message: String,
    /// The last lines of its log.
    pub log_tail: Vec<String>,
    /// Time from creation until the pod's container started, and until it ended.
    pub started_after: Option<Duration>,
    pub took: Duration,
}

/// Why a Job did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Talking to the API server failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The server has no `batch/v1` Jobs (e.g. the local API server `testnet-kube-sandbox`,
    /// which stores objects but runs no pods).
    #[error("the Kubernetes API server at {url} does not serve batch/v1 Jobs ({version}), so nothing can run in the cluster. Use a cluster with nodes{}", if version.contains("sandbox") { "; the local API server (testnet-kube-sandbox) stores objects but runs no pods" } else { "" })]
    JobsUnsupported {
        /// The server URL.
        url: String,
        /// Its version string.
        version: String,
    },
    /// The node cannot get the image.
    #[error("{job}: image {image:?} cannot be used on the node: {reason}: {message}. Push the image where the node pulls from, or load it on the node, or set the image to one that exists")]
    ImageMissing {
        job: ObjectRef,
        image: String,
        /// `ErrImageNeverPull`, `ImagePullBackOff`, `ErrImagePull`, `InvalidImageName`.
        reason: String,
        message: String,
    },
    /// The container could not be configured (e.g. the Secret named for its environment is
    /// missing).
    #[error("{job}: the container cannot be created: {reason}: {message}")]
    ContainerConfig {
        job: ObjectRef,
        reason: String,
        message: String,
    },
    /// No node accepted the pod before the deadline.
    #[error("{job} could not be scheduled within {deadline:?}: {message}")]
    Unschedulable {
        job: ObjectRef,
        deadline: Duration,
        /// The scheduler's explanation (`0/1 nodes are available: ...`).
        message: String,
    },
    /// The container used more memory than its limit.
    #[error("{job}: the container was killed for using more memory than its limit ({}) (OOMKilled). Raise the memory limit. Last lines of its log:\n{}", limit.as_deref().unwrap_or("none set"), log_tail.join("\n"))]
    OutOfMemory {
        job: ObjectRef,
        limit: Option<String>,
        log_tail: Vec<String>,
    },
    /// The Job ran longer than its deadline.
    #[error("{job} exceeded its deadline of {deadline:?} and was stopped. Raise the timeout. Last lines of its log:\n{}", log_tail.join("\n"))]
    DeadlineExceeded {
        job: ObjectRef,
        deadline: Duration,
        log_tail: Vec<String>,
    },
    /// The container exited with a non-zero code.
    #[error("{job}: the container exited with code {code}: {}", if message.trim().is_empty() { log_tail.join("\n") } else { message.trim().to_string() })]
    Exited {
        job: ObjectRef,
        code: i32,
        /// The termination message: what the program wrote there, else the end of its log.
        message: String,
        log_tail: Vec<String>,
    },
    /// The Job failed for another reason Kubernetes gave.
    #[error("{job} failed: {reason}: {message}")]
    Failed {
        job: ObjectRef,
        reason: String,
        message: String,
    },
    /// Interrupted; the Job has been deleted (its pod got SIGTERM).
    #[error("{job} cancelled; the Job and its pod were deleted")]
    Cancelled { job: ObjectRef },
}

impl JobError {
    /// The Job the error is about, if one was created.
    pub fn job(&self) -> Option<&ObjectRef> {
        match self {
            JobError::Cluster(_) | JobError::JobsUnsupported { .. } => None,
            JobError::ImageMissing { job, .. }
            | JobError::ContainerConfig { job, .. }
            | JobError::Unschedulable { job, .. }
            | JobError::OutOfMemory { job, .. }
            | JobError::DeadlineExceeded { job, .. }
            | JobError::Exited { job, .. }
            | JobError::Failed { job, .. }
            | JobError::Cancelled { job } => Some(job),
        }
    }
}

/// What the pod of a Job shows at one moment, decided from the pod alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PodView {
    /// Not yet placed; the scheduler's message when it said why.
    Unscheduled(Option<String>),
    /// Placed, container not started (pulling, creating).
    Starting,
    /// Waiting on something that will not resolve by itself.
    Stuck {
        reason: String,
        message: String,
    },
    Running,
    /// Container ended.
    Terminated {
        code: i32,
        reason: String,
        message: String,
    },
}

const IMAGE_REASONS: [&str; 4] = [
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
];
const CONFIG_REASONS: [&str; 2] = ["CreateContainerConfigError", "CreateContainerError"];

/// Reads a pod's state: its `PodScheduled` condition and its container's state.
pub(crate) fn view_pod(pod: &Pod) -> PodView {
    let Some(status) = pod.status.as_ref() else {
        return PodView::Unscheduled(None);
    };
    let container = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == CONTAINER);
    if let Some(state) = container.and_then(|c| c.state.as_ref()) {
        if let Some(t) = &state.terminated {
            return PodView::Terminated {
                code: t.exit_code,
                reason: t.reason.clone().unwrap_or_default(),
                message: t.message.clone().unwrap_or_default(),
            };
        }
        if state.running.is_some() {
            return PodView::Running;
        }
        if let Some(w) = &state.waiting {
            let reason = w.reason.clone().unwrap_or_default();
            if IMAGE_REASONS.contains(&reason.as_str()) || CONFIG_REASONS.contains(&reason.as_str())
            {
                return PodView::Stuck {
                    reason,
                    message: w.message.clone().unwrap_or_default(),
                };
            }
        }
    }
    let scheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled");
    match scheduled {
        Some(c) if c.status == "True" => PodView::Starting,
        Some(c) => PodView::Unscheduled(c.message.clone().filter(|m| !m.is_empty())),
        None if pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some() =>
        {
            PodView::Starting
        }
        None => PodView::Unscheduled(None),
    }
}

/// The Job's `Failed` condition, if it has one: (reason, message).
fn job_failed(job: &Job) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

/// The Job object for `spec`, named `name`, pinned to `node` when given.
pub(crate) fn job_object(spec: &JobSpec, name: &str, node: Option<&str>) -> serde_json::Value {
    let mut labels = spec.labels.clone();
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    let mut resources = serde_json::Map::new();
    for (k, v) in [("cpu", &spec.cpu), ("memory", &spec.memory)] {
        if let Some(v) = v {
            resources.insert(k.into(), json!(v));
        }
    }
    let mut container = json!({
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "args": spec.args,
        // Success: what the program wrote there (its result); failure without one: the end of
        // its log, so the reason survives even when the log is gone.
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    if !resources.is_empty() {
        container["resources"] = json!({"requests": resources, "limits": resources});
    }
    if let Some(s) = &spec.env_secret {
        container["envFrom"] = json!([{"secretRef": {"name": s}}]);
    }
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "containers": [container],
    });
    if let Some(sa) = &spec.service_account {
        pod_spec["serviceAccountName"] = json!(sa);
    }
    if !spec.node_selector.is_empty() {
        pod_spec["nodeSelector"] = json!(spec.node_selector);
    }
    if let Some(m) = &spec.claim {
        pod_spec["volumes"] = json!([{
            "name": "data",
            "persistentVolumeClaim": {"claimName": m.claim, "readOnly": m.read_only},
        }]);
        pod_spec["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": m.mount_path, "readOnly": m.read_only}]);
    }
    if let Some(node) = node {
        // What DaemonSets use: the scheduler still places the pod (and says why it cannot).
        pod_spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}],
        }}});
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.deadline.as_secs().max(1),
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    })
}

/// `prefix-xxxxx`, a valid Job name whose pods' names (`<job>-xxxxx`) stay within 63 characters.
fn job_name(prefix: &str) -> String {
    use rand::Rng;
    let mut p: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(50)
        .collect();
    while p.ends_with('-') {
        p.pop();
    }
    if p.is_empty() {
        p = "job".into();
    }
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| {
            let n = rng.random_range(0..36u8);
            (if n < 10 { b'0' + n } else { b'a' + n - 10 }) as char
        })
        .collect();
    format!("{p}-{suffix}")
}

/// Keeps the last [`LOG_TAIL_LINES`] lines.
#[derive(Default)]
struct Tail(VecDeque<String>);

impl Tail {
    fn push(&mut self, line: String) {
        if self.0.len() == LOG_TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

/// Receives each line of the Job's log as it is written.
pub type LineSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

impl Cluster {
    fn jobs(&self, namespace: &str) -> Api<Job> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The node of a running pod that mounts `claim`, with that pod's name, when the claim is
    /// ReadWriteOnce (its volume attaches to one node at a time); `None` otherwise.
    pub async fn node_holding_claim(
        &self,
        namespace: &str,
        claim: &str,
    ) -> Result<Option<(String, String)>, ClusterError> {
        let Some(c) = self.get_claim(namespace, claim).await? else {
            return Err(ClusterError::NotFound {
                object: ObjectRef::namespaced("PersistentVolumeClaim", namespace, claim),
            });
        };
        let shared = c
            .access_modes
            .iter()
            .any(|m| m == "ReadWriteMany" || m == "ReadOnlyMany");
        if shared || !c.access_modes.iter().any(|m| m == "ReadWriteOnce") {
            return Ok(None);
        }
        let pods = self
            .pods(namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| self.err(e, "list", ObjectRef::namespaced("Pod", namespace, "")))?;
        Ok(pods.items.into_iter().find_map(|p| {
            let spec = p.spec.as_ref()?;
            let mounts = spec.volumes.iter().flatten().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == claim)
            });
            let running = p.status.as_ref()?.phase.as_deref() == Some("Running");
            if mounts && running && p.metadata.deletion_timestamp.is_none() {
                Some((spec.node_name.clone()?, p.metadata.name.clone()?))
            } else {
                None
            }
        }))
    }

    /// Runs `spec` to its end. Each log line goes to `on_line` as the pod writes it. On success
    /// the Job and its pod are removed; on failure too unless `spec.keep_failed`. On `cancel` the
    /// Job is deleted (its pod gets SIGTERM and its grace period) before this returns.
    pub async fn run_job(
        &self,
        spec: &JobSpec,
        on_line: LineSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<JobOutcome, JobError> {
        let pinned_by = match &spec.claim {
            Some(m) => self.node_holding_claim(&spec.namespace, &m.claim).await?,
            None => None,
        };
        let name = job_name(&spec.name_prefix);
        let object = job_object(spec, &name, pinned_by.as_ref().map(|(n, _)| n.as_str()));
        let job: Job = serde_json::from_value(object).map_err(|e| ClusterError::Transport {
            verb: "create",
            object: ObjectRef::namespaced("Job", &spec.namespace, &name),
            detail: format!("building the Job: {e}"),
        })?;
        let job_ref = ObjectRef::namespaced("Job", &spec.namespace, &name);
        match self
            .jobs(&spec.namespace)
            .create(&PostParams::default(), &job)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s))
                if s.code == 404 && s.details.as_ref().is_none_or(|d| d.kind != "namespaces") =>
            {
                let version = self
                    .check()
                    .await
                    .map(|v| v.git_version)
                    .unwrap_or_default();
                return Err(JobError::JobsUnsupported {
                    url: self.url.clone(),
                    version,
                });
            }
            Err(e) => return Err(self.err(e, "create", job_ref).into()),
        }
        tracing::info!(job = %job_ref, node = ?pinned_by, image = %spec.image, "job created");
        let result = self
            .follow_job(spec, &name, &job_ref, pinned_by, on_line, cancel)
            .await;
        let keep = matches!(&result, Err(e) if spec.keep_failed && !matches!(e, JobError::Cancelled { .. }));
        if !keep {
            if let Err(e) = self.delete_job(&spec.namespace, &name).await {
                tracing::warn!(job = %job_ref, error = %e, "could not remove the job");
                if matches!(result, Err(JobError::Cancelled { .. })) {
                    return Err(e.into());
                }
            }
        }
        result
    }

    async fn follow_job(
        &self,
        spec: &JobSpec,
        name: &str,
        job_ref: &ObjectRef,
        pinned_by: Option<(String, String)>,
        on_line: LineSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<JobOutcome, JobError> {
        let started = Instant::now();
        let limit = spec.deadline + DEADLINE_SLACK;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut follower: Option<tokio::task::JoinHandle<LogCursor>> = None;
        let mut cursor = Some(LogCursor::default());
        let mut reopened = false;
        let mut tail = Tail::default();
        let mut last_unschedulable: Option<String> = None;
        let mut started_after = None;
        let mut node = None;
        let selector = ListParams::default().labels(&format!("{LABEL_JOB_NAME}={name}"));
        let drain = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, tail: &mut Tail| {
            while let Ok(line) = rx.try_recv() {
                on_line(&line);
                tail.push(line);
            }
        };
        loop {
            drain(&mut rx, &mut tail);
            let pods = self
                .pods(&spec.namespace)
                .list(&selector)
                .await
                .map_err(|e| {
                    self.err(e, "list", ObjectRef::namespaced("Pod", &spec.namespace, ""))
                })?;
            let pod = pods.items.into_iter().next();
            let view = pod.as_ref().map(view_pod);
            if let Some(p) = &pod {
                node = p.spec.as_ref().and_then(|s| s.node_name.clone()).or(node);
            }
            match &view {
                Some(PodView::Unscheduled(Some(m))) => {
                    if last_unschedulable.as_deref() != Some(m) {
                        tracing::info!(job = %job_ref, reason = %m, "job's pod not scheduled yet");
                    }
                    last_unschedulable = Some(m.clone());
                }
                Some(PodView::Stuck { reason, message }) => {
                    let image = IMAGE_REASONS.contains(&reason.as_str());
                    return Err(if image {
                        JobError::ImageMissing {
                            job: job_ref.clone(),
                            image: spec.image.clone(),
                            reason: reason.clone(),
                            message: message.clone(),
                        }
                    } else {
                        JobError::ContainerConfig {
                            job: job_ref.clone(),
                            reason: reason.clone(),
                            message: message.clone(),
                        }
                    });
                }
                Some(PodView::Running | PodView::Terminated { .. }) => {
                    started_after.get_or_insert(started.elapsed());
                    if follower.as_ref().is_some_and(|f| f.is_finished())
                        && matches!(view, Some(PodView::Running))
                    {
                        // The server closed the stream while the container runs: reopen it.
                        if let Some(f) = follower.take() {
                            cursor = f.await.ok();
                        }
                        if !reopened {
                            tracing::info!(job = %job_ref, "log stream closed early; reopening it");
                            reopened = true;
                        }
                    }
                    if follower.is_none() {
                        if let (Some(pod_name), Some(c)) = (
                            pod.as_ref().and_then(|p| p.metadata.name.clone()),
                            cursor.take(),
                        ) {
                            follower = Some(tokio::spawn(read_log(
                                self.pods(&spec.namespace),
                                pod_name,
                                CONTAINER,
                                true,
                                c,
                                tx.clone(),
                            )));
                        }
                    }
                }
                _ => {}
            }
            if let Some(PodView::Terminated {
                code,
                reason,
                message,
            }) = view
            {
                // Every line the pod wrote, before deciding; and once more from where the
                // stream got to, in case the server closed it before the container's end.
                if let Some(f) = follower.take() {
                    if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(30), f).await {
                        if let Some(pod_name) = pod.as_ref().and_then(|p| p.metadata.name.clone()) {
                            let rest = read_log(
                                self.pods(&spec.namespace),
                                pod_name,
                                CONTAINER,
                                false,
                                c,
                                tx.clone(),
                            );
                            let _ = tokio::time::timeout(Duration::from_secs(30), rest).await;
                        }
                    }
                }
                drain(&mut rx, &mut tail);
                let log_tail = tail.lines();
                if code == 0 {
                    return Ok(JobOutcome {
                        name: name.to_string(),
                        node,
                        pinned_by,
                        termination_message: message,
                        log_tail,
                        started_after,
                        took: started.elapsed(),
                    });
                }
                return Err(match reason.as_str() {
                    "OOMKilled" => JobError::OutOfMemory {
                        job: job_ref.clone(),
                        limit: spec.memory.clone(),
                        log_tail,
                    },
                    "DeadlineExceeded" => JobError::DeadlineExceeded {
                        job: job_ref.clone(),
                        deadline: spec.deadline,
                        log_tail,
                    },
                    _ => JobError::Exited {
                        job: job_ref.clone(),
                        code,
                        message,
                        log_tail,
                    },
                });
            }
            let job = self
                .jobs(&spec.namespace)
                .get_opt(name)
                .await
                .map_err(|e| self.err(e, "get", job_ref.clone()))?;
            let Some(job) = job else {
                return Err(JobError::Failed {
                    job: job_ref.clone(),
                    reason: "Deleted".into(),
                    message: "the Job was deleted by someone else while it ran".into(),
                });
            };
            if let Some((reason, message)) = job_failed(&job) {
                drain(&mut rx, &mut tail);
                return Err(
                    match (reason.as_str(), &last_unschedulable, started_after) {
                        ("DeadlineExceeded", Some(m), None) => JobError::Unschedulable {
                            job: job_ref.clone(),
                            deadline: spec.deadline,
                            message: m.clone(),
                        },
                        ("DeadlineExceeded", _, _) => JobError::DeadlineExceeded {
                            job: job_ref.clone(),
                            deadline: spec.deadline,
                            log_tail: tail.lines(),
                        },
                        _ => JobError::Failed {
                            job: job_ref.clone(),
                            reason,
                            message,
                        },
                    },
                );
            }
            if started.elapsed() >= limit {
                // The Job controller did not stop it: we do (the caller deletes the Job).
                return Err(match (&last_unschedulable, started_after) {
                    (Some(m), None) => JobError::Unschedulable {
                        job: job_ref.clone(),
                        deadline: spec.deadline,
                        message: m.clone(),
                    },
                    _ => JobError::DeadlineExceeded {
                        job: job_ref.clone(),
                        deadline: spec.deadline,
                        log_tail: tail.lines(),
                    },
                });
            }
            let nap = if started_after.is_some() {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(300)
            };
            if !sleep_or_cancel(nap, cancel).await {
                if let Some(f) = follower.take() {
                    f.abort();
                }
                drain(&mut rx, &mut tail);
                tracing::info!(job = %job_ref, "interrupted: deleting the job");
                return Err(JobError::Cancelled {
                    job: job_ref.clone(),
                });
            }
        }
    }

    /// Deletes a Job with its pod (foreground: the pod is stopped first, with its grace period)
    /// and waits until both are gone. Absent is success.
    pub async fn delete_job(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let object = ObjectRef::namespaced("Job", namespace, name);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..Default::default()
        };
        match self.jobs(namespace).delete(name, &params).await {
            Ok(_) => {}
            Err(e) => match self.err(e, "delete", object.clone()) {
                ClusterError::NotFound { .. } => {}
                other => return Err(other),
            },
        }
        let start = Instant::now();
        let selector = ListParams::default().labels(&format!("{LABEL_JOB_NAME}={name}"));
        // A fresh token: this also runs after the caller's was cancelled.
        let never = CancellationToken::new();
        loop {
            let job = self
                .jobs(namespace)
                .get_opt(name)
                .await
                .map_err(|e| self.err(e, "get", object.clone()))?;
            let pods =
                self.pods(namespace).list(&selector).await.map_err(|e| {
                    self.err(e, "list", ObjectRef::namespaced("Pod", namespace, ""))
                })?;
            if job.is_none() && pods.items.is_empty() {
                return Ok(());
            }
            if start.elapsed() > DELETE_WAIT {
                return Err(ClusterError::Transport {
                    verb: "delete",
                    object,
                    detail: format!(
                        "still present after {} s (pods: {})",
                        DELETE_WAIT.as_secs(),
                        pods.items
                            .iter()
                            .filter_map(|p| p.metadata.name.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            sleep_or_cancel(Duration::from_millis(500), &never).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            namespace: "net".into(),
            name_prefix: "snapshot-ghostnet-rolling".into(),
            image: "ghcr.io/testnet-infra/testnet-archiver:1.0.0".into(),
            args: vec!["create".into(), "--source".into(), "/data".into()],
            env_secret: Some("store-creds".into()),
            service_account: Some("archiver".into()),
            node_selector: BTreeMap::from([("disk".into(), "ssd".into())]),
            cpu: Some("500m".into()),
            memory: Some("256Mi".into()),
            deadline: Duration::from_secs(600),
            claim: Some(ClaimMount {
                claim: "state".into(),
                mount_path: "/data".into(),
                read_only: true,
            }),
            labels: BTreeMap::new(),
            keep_failed: false,
        }
    }

    #[test]
    fn job_object_carries_every_setting_and_no_secret_values() {
        let o = job_object(&spec(), "snap-abcde", Some("node-1"));
        // It is a valid Job for the typed client.
        let _: Job = serde_json::from_value(o.clone()).expect("a Job");
        let s = &o["spec"];
        assert_eq!(s["backoffLimit"], 0);
        assert_eq!(s["activeDeadlineSeconds"], 600);
        let p = &s["template"]["spec"];
        assert_eq!(p["restartPolicy"], "Never");
        assert_eq!(p["serviceAccountName"], "archiver");
        assert_eq!(p["nodeSelector"]["disk"], "ssd");
        let c = &p["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "store-creds");
        assert!(c.get("env").is_none(), "no clear values: {c}");
        assert_eq!(c["resources"]["limits"]["memory"], "256Mi");
        assert_eq!(c["resources"]["requests"]["cpu"], "500m");
        assert_eq!(c["volumeMounts"][0]["readOnly"], true);
        assert_eq!(
            p["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "state"
        );
        assert_eq!(
            p["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0],
            "node-1"
        );
        assert_eq!(o["metadata"]["labels"][LABEL_MANAGED_BY], MANAGED_BY);
    }

    #[test]
    fn job_names_are_valid_and_leave_room_for_pod_names() {
        let n = job_name(&format!("Snapshot_{}", "x".repeat(80)));
        assert!(n.len() <= 56, "{n}");
        assert!(crate::validate::validate_dns1123_label(&n).is_ok(), "{n}");
        assert_ne!(job_name("a"), job_name("a"));
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main"}]}, "status": status}))
            .expect("pod")
    }

    #[test]
    fn pod_states_as_kubernetes_reports_them() {
        let unsched = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available: 1 node(s) didn't match node selector."}]}),
        );
        assert_eq!(
            view_pod(&unsched),
            PodView::Unscheduled(Some(
                "0/1 nodes are available: 1 node(s) didn't match node selector.".into()
            ))
        );
        let never = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "Container image \"x\" is not present with pull policy of Never"}}}]}),
        );
        assert!(
            matches!(view_pod(&never), PodView::Stuck { reason, .. } if reason == "ErrImageNeverPull")
        );
        let creating = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        assert_eq!(view_pod(&creating), PodView::Starting);
        let oom = pod(json!({"phase": "Failed",
            "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}));
        assert!(
            matches!(view_pod(&oom), PodView::Terminated { code: 137, reason, .. } if reason == "OOMKilled")
        );
    }
}
