//! The Job engine against a real node (kube-apiserver, controllers, scheduler, kubelet,
//! containerd; `scripts/kube-real start --with-node`) running the `testnet-archiver` image: log
//! lines arrive as written, a failure keeps its Job only when asked, a Job stuck on a store that
//! does not answer is stopped at its deadline, and a container over its memory limit is reported
//! as OOMKilled. Gated like `acceptance-tests/tests/real_node.rs`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use acceptance_tests::node::{node, Node};
use acceptance_tests::servers::TestServer;
use cluster::{connect, CancellationToken, Cluster, ConnectionConfig, JobError, JobSpec};

fn node_or_skip() -> Option<&'static Node> {
    let n = node();
    if n.is_none() {
        eprintln!("skipped: no real node (scripts/kube-real build, root; TESTNET_KUBE_REAL=1 makes this a failure)");
    }
    n
}

async fn cluster(node: &Node) -> Cluster {
    connect(&ConnectionConfig {
        kubeconfig_paths: vec![node.kubeconfig.clone()],
        ..Default::default()
    })
    .await
    .expect("connect to the node cluster")
}

fn spec(node: &Node, ns: &str, args: &[&str]) -> JobSpec {
    JobSpec {
        namespace: ns.into(),
        name_prefix: "engine".into(),
        image: node.image.clone(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env_secret: None,
        service_account: None,
        node_selector: BTreeMap::new(),
        cpu: None,
        memory: None,
        deadline: Duration::from_secs(120),
        claim: None,
        labels: BTreeMap::new(),
        keep_failed: false,
    }
}

/// Jobs left in `ns`.
fn jobs_in(node: &Node, ns: &str) -> usize {
    node.api()
        .get(&format!("/apis/batch/v1/namespaces/{ns}/jobs"))
        .expect("jobs")["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_reach_the_caller_and_a_success_leaves_nothing() {
    let Some(node) = node_or_skip() else { return };
    let ns = "engine-ok";
    node.namespace(ns);
    let c = cluster(node).await;
    let lines = Mutex::new(Vec::new());
    let sink = |l: &str| lines.lock().unwrap().push(l.to_string());
    let out = c
        .run_job(
            &spec(node, ns, &["--version"]),
            &sink,
            &CancellationToken::new(),
        )
        .await
        .expect("the Job succeeds");
    let version = format!("testnet-archiver {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(*lines.lock().unwrap(), vec![version.clone()]);
    assert_eq!(out.log_tail, vec![version]);
    assert_eq!(out.node.as_deref(), Some("localhost"));
    assert!(out.started_after.is_some());
    assert_eq!(jobs_in(node, ns), 0, "removed after success");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_carries_the_exit_code_and_the_programs_words_and_is_kept_when_asked() {
    let Some(node) = node_or_skip() else { return };
    let ns = "engine-fail";
    node.namespace(ns);
    let c = cluster(node).await;
    let mut s = spec(node, ns, &["no-such-command"]);
    s.keep_failed = true;
    let e = c
        .run_job(&s, &|_: &str| {}, &CancellationToken::new())
        .await
        .expect_err("the Job fails");
    match &e {
        JobError::Exited { code, message, .. } => {
            assert_eq!(*code, 2, "clap's usage error: {e}");
            // FallbackToLogsOnError: the end of the log is the termination message.
            assert!(message.contains("no-such-command"), "{e}");
        }
        other => panic!("expected Exited, got {other}"),
    }
    assert_eq!(jobs_in(node, ns), 1, "kept for inspection");
    let job = e.job().expect("names its Job");
    c.delete_job(ns, &job.name).await.expect("delete");
    assert_eq!(jobs_in(node, ns), 0);

    s.keep_failed = false;
    c.run_job(&s, &|_: &str| {}, &CancellationToken::new())
        .await
        .expect_err("fails again");
    assert_eq!(jobs_in(node, ns), 0, "not kept unless asked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_waiting_on_a_store_that_does_not_answer_is_stopped_at_its_deadline() {
    let Some(node) = node_or_skip() else { return };
    let Some(s3) = TestServer::s3s_fs_on(&node.pod_gateway, "k", "s") else {
        return;
    };
    let ns = "engine-deadline";
    node.namespace(ns);
    // Stopped: connections are accepted by the kernel, never answered.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &s3.pid().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let c = cluster(node).await;
    let endpoint = s3.endpoint();
    let mut s = spec(
        node,
        ns,
        &[
            "create",
            "--source",
            "/etc",
            "--store",
            "s3://b/p",
            "--network",
            "ghostnet",
            "--kind",
            "rolling",
            "--endpoint",
            &endpoint,
            "--path-style",
            "--region",
            "us-east-1",
        ],
    );
    let (code, body) = node.api().post(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "stringData": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}}),
    );
    assert_eq!(code, 201, "{body}");
    s.env_secret = Some("creds".into());
    s.deadline = Duration::from_secs(10);
    let e = c
        .run_job(&s, &|_: &str| {}, &CancellationToken::new())
        .await
        .expect_err("stopped at the deadline");
    assert!(
        matches!(e, JobError::DeadlineExceeded { deadline, .. } if deadline == Duration::from_secs(10)),
        "{e}"
    );
    assert_eq!(jobs_in(node, ns), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_over_its_memory_limit_is_reported_as_oom_killed() {
    let Some(node) = node_or_skip() else { return };
    let ns = "engine-oom";
    node.namespace(ns);
    let c = cluster(node).await;
    // Archiving /usr with a limit far below the archiver's buffers (several MiB of LZ4 blocks).
    let mut s = spec(
        node,
        ns,
        &[
            "create",
            "--source",
            "/usr",
            "--store",
            "file:///tmp/store",
            "--network",
            "ghostnet",
            "--kind",
            "rolling",
            "--single-publisher",
        ],
    );
    s.memory = Some("8Mi".into());
    let e = c
        .run_job(&s, &|_: &str| {}, &CancellationToken::new())
        .await
        .expect_err("killed");
    assert!(
        matches!(&e, JobError::OutOfMemory { limit: Some(l), .. } if l == "8Mi"),
        "{e}"
    );
}
