//! Behaviour that needs pods to run, on a real node (`scripts/kube-real start --with-node`:
//! kube-apiserver, every controller with the host-path provisioner, kube-scheduler, containerd and
//! a kubelet, v1.20.2): the `testnet-archiver` image runs, resolves names and validates TLS from a
//! pod, claims bind to real volumes that hold data, logs are read through the API server, and the
//! provider's claim lifecycle (binding on first consumer, delete while mounted, expansion) meets a
//! real scheduler and kubelet. Where the local API server emulates the same thing, the same
//! scenario runs there too and must agree.
//!
//! Gated like the other real-server tests: skipped unless the kube build exists (and root);
//! `TESTNET_KUBE_REAL=1` (set by `scripts/test`) turns a skip into a failure. All tests share one
//! node cluster per test process (see `acceptance_tests::node`), each in its own namespace.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acceptance_tests::node::{exit_code, node, pod, pod_with_claim, wait_for, Node, PAUSE_IMAGE};
use acceptance_tests::servers::{KubeApi, KubeServer, TestServer};
use acceptance_tests::{workspace_root, Mirror, Workdir};
use serde_json::{json, Value};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn node_or_skip() -> Option<&'static Node> {
    let n = node();
    if n.is_none() {
        eprintln!("skipped: no real node (scripts/kube-real build, root; TESTNET_KUBE_REAL=1 makes this a failure)");
    }
    n
}

#[test]
fn archiver_image_runs_on_the_node_and_its_log_is_read_through_the_api_server() {
    let Some(node) = node_or_skip() else { return };
    assert_eq!(
        node.image,
        format!("ghcr.io/testnet-infra/testnet-archiver:{VERSION}")
    );
    let ns = "node-version";
    node.namespace(ns);
    let (p, log) = node.run_to_end(ns, &pod("version", &node.image, &["--version"]));
    assert_eq!(p["status"]["phase"], "Succeeded", "{}", p["status"]);
    assert_eq!(exit_code(&p), Some(0));
    assert_eq!(log.trim(), format!("testnet-archiver {VERSION}"));
    // It ran on the node, in the pod network.
    assert_eq!(p["spec"]["nodeName"], "localhost");
    let ip = p["status"]["podIP"].as_str().unwrap_or_default();
    let prefix = node
        .pod_gateway
        .rsplit_once('.')
        .map(|(a, _)| a)
        .unwrap_or("");
    assert!(
        ip.starts_with(&format!("{prefix}.")),
        "pod IP {ip} outside the pod network of {}",
        node.pod_gateway
    );
}

#[test]
fn a_job_of_the_archiver_image_runs_to_completion() {
    let Some(node) = node_or_skip() else { return };
    let ns = "node-job";
    node.namespace(ns);
    let mut template = pod("unused", &node.image, &["--version"]);
    let spec = template["spec"].take();
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "version"},
        "spec": {"backoffLimit": 0, "template": {"spec": spec}},
    });
    let api = node.api();
    let (code, body) = api.post(&format!("/apis/batch/v1/namespaces/{ns}/jobs"), &job);
    assert_eq!(code, 201, "{body}");
    // The Job controller makes the pod, the scheduler places it, the kubelet runs it.
    let done = wait_for("job complete", Duration::from_secs(180), || {
        let j = api
            .get(&format!("/apis/batch/v1/namespaces/{ns}/jobs/version"))
            .ok_or("absent")?;
        if j["status"]["succeeded"] == 1 {
            Ok(j)
        } else {
            Err(j["status"].to_string())
        }
    });
    assert!(
        done["status"]["conditions"]
            .to_string()
            .contains("Complete"),
        "{}",
        done["status"]
    );
    let pods = api
        .get(&format!(
            "/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3Dversion"
        ))
        .expect("pods");
    let name = pods["items"][0]["metadata"]["name"]
        .as_str()
        .expect("the job's pod")
        .to_string();
    assert_eq!(
        node.log(ns, &name).trim(),
        format!("testnet-archiver {VERSION}")
    );
}

/// Terraform configuration: a host-path class and one claim on it.
fn claim_config(
    kubeconfig: &Path,
    sfx: &str,
    mode: &str,
    storage: &str,
    delete_timeout: &str,
) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    testnet = {{ source = "testnet-infra/testnet" }}
  }}
}}
provider "testnet" {{
  kubeconfig_path = "{kc}"
}}
resource "testnet_storage_class" "hostpath" {{
  name                   = "hostpath-{sfx}"
  provisioner            = "kubernetes.io/host-path"
  volume_binding_mode    = "{mode}"
  allow_volume_expansion = true
}}
resource "testnet_shared_state_pvc" "state" {{
  namespace          = "claims-{sfx}"
  create_namespace   = true
  name               = "state"
  testnet            = "ghostnet"
  storage            = "{storage}"
  storage_class_name = testnet_storage_class.hostpath.name
  timeouts = {{
    create = "2m"
    delete = "{delete_timeout}"
  }}
}}
"#,
        kc = kubeconfig.display()
    )
}

#[test]
fn host_path_claim_binds_to_a_real_volume_that_holds_what_a_pod_wrote() {
    let Some(node) = node_or_skip() else { return };
    let mirror = Mirror::testnet();
    let wd = mirror.workdir();
    let sfx = "hold";
    let ns = format!("claims-{sfx}");
    wd.write(
        "main.tf",
        &claim_config(&node.kubeconfig, sfx, "Immediate", "1Gi", "2m"),
    );
    wd.init();
    wd.apply().ok();
    let st = wd
        .resource("testnet_shared_state_pvc.state")
        .expect("claim in state");
    assert_eq!(st["phase"], "Bound", "{st}");
    let volume = st["bound_volume"]
        .as_str()
        .expect("bound volume")
        .to_string();
    assert_eq!(st["capacity"], "1Gi", "{st}");
    let api = node.api();
    let pv = api
        .get(&format!("/api/v1/persistentvolumes/{volume}"))
        .expect("the PV");
    let host_dir = pv["spec"]["hostPath"]["path"]
        .as_str()
        .expect("a host-path volume")
        .to_string();
    node.namespace(&ns);

    // One pod publishes an artifact into the volume, a second one lists it.
    let store = "file:///data/store";
    let (p, log) = node.run_to_end(
        &ns,
        &pod_with_claim(
            "writer",
            &node.image,
            &[
                "create",
                "--source",
                "/etc",
                "--store",
                store,
                "--network",
                "ghostnet",
                "--kind",
                "archive",
            ],
            "state",
            "/data",
        ),
    );
    assert_eq!(exit_code(&p), Some(0), "writer failed:\n{log}");
    let (p, listed) = node.run_to_end(
        &ns,
        &pod_with_claim(
            "reader",
            &node.image,
            &["list", "--store", store],
            "state",
            "/data",
        ),
    );
    assert_eq!(exit_code(&p), Some(0), "reader failed:\n{listed}");
    let index: Value = serde_json::from_str(listed.trim())
        .unwrap_or_else(|e| panic!("list prints base.json ({e}):\n{listed}"));
    assert!(index.to_string().contains("ghostnet"), "{index}");
    // The data is on this machine, in the volume's directory.
    assert!(
        Path::new(&host_dir).join("store").exists(),
        "{host_dir}/store missing; volume holds: {:?}",
        std::fs::read_dir(&host_dir).map(|d| d
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect::<Vec<_>>())
    );

    for name in ["writer", "reader"] {
        node.delete_pod(&ns, name);
    }
    wd.destroy().ok();
    // Reclaim policy Delete: the volume and its directory go with the claim.
    wait_for(
        "host-path volume deleted",
        Duration::from_secs(180),
        || match api.get(&format!("/api/v1/persistentvolumes/{volume}")) {
            None => Ok(()),
            Some(pv) => Err(pv["status"].to_string()),
        },
    );
    wait_for("volume directory removed", Duration::from_secs(120), || {
        if Path::new(&host_dir).exists() {
            Err(host_dir.clone())
        } else {
            Ok(())
        }
    });
}

/// A CA and a server certificate for `host`, made with the openssl CLI in `dir`.
fn make_tls(dir: &Path, host: &str) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=testnet test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &format!("/CN={host}"),
    ]);
    std::fs::write(dir.join("ext"), format!("subjectAltName=DNS:{host}\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n")).expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "server.crt",
    ]);
}

struct Proxy(Child);
impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tls_proxy.py` on `host:port` relaying to `target_port` on loopback; returns once it listens.
fn tls_proxy(dir: &Path, host: &str, port: u16, target_port: u16) -> Proxy {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("python3")
        .arg(workspace_root().join("acceptance-tests/src/tls_proxy.py"))
        .args([host, &port.to_string()])
        .arg(dir.join("server.crt"))
        .arg(dir.join("server.key"))
        .args(["127.0.0.1", &target_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tls_proxy.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read proxy");
    assert_eq!(line.trim(), "listening", "tls_proxy.py did not start");
    Proxy(child)
}

#[test]
fn archiver_in_a_pod_resolves_the_endpoint_name_and_validates_its_certificate() {
    let Some(node) = node_or_skip() else { return };
    // s3s-fs: path-style, SigV4 checked (the proxy relays the signed bytes unchanged).
    let Some(s3) = TestServer::s3s_fs("tlskey", "tlssecret") else {
        return;
    };
    let ns = "node-tls";
    node.namespace(ns);
    let host = "s3.testnet.test";
    let tls = tempfile::tempdir().expect("tempdir");
    make_tls(tls.path(), host);
    std::fs::copy(tls.path().join("ca.crt"), tls.path().join("ca.pem")).expect("ca copy");
    let port = acceptance_tests::servers::free_port();
    // The proxy listens on the pod gateway: the one address of this machine pods reach.
    let _proxy = tls_proxy(tls.path(), &node.pod_gateway, port, s3.port);
    let bucket = s3.dir().join("data/snapshots");
    std::fs::create_dir_all(&bucket).expect("bucket directory");

    let endpoint = format!("https://{host}:{port}");
    let archiver = |name: &str, ca: bool| {
        let mut p = pod(
            name,
            &node.image,
            &[
                "create",
                "--source",
                "/etc",
                "--store",
                "s3://snapshots/tls",
                "--network",
                "ghostnet",
                "--kind",
                "archive",
                "--endpoint",
                &endpoint,
                "--path-style",
            ],
        );
        // The name resolves from the pod's /etc/hosts (kubelet writes hostAliases there).
        p["spec"]["hostAliases"] = json!([{"ip": node.pod_gateway, "hostnames": [host]}]);
        let mut env = vec![
            json!({"name": "AWS_ACCESS_KEY_ID", "value": "tlskey"}),
            json!({"name": "AWS_SECRET_ACCESS_KEY", "value": "tlssecret"}),
            json!({"name": "AWS_REGION", "value": "us-east-1"}),
        ];
        if ca {
            env.push(json!({"name": "SSL_CERT_FILE", "value": "/ca/ca.pem"}));
            p["spec"]["volumes"] =
                json!([{"name": "ca", "hostPath": {"path": tls.path(), "type": "Directory"}}]);
            p["spec"]["containers"][0]["volumeMounts"] =
                json!([{"name": "ca", "mountPath": "/ca", "readOnly": true}]);
        }
        p["spec"]["containers"][0]["env"] = json!(env);
        node.run_to_end(ns, &p)
    };

    // Trusting the test CA: the upload goes through and is published.
    let (p, log) = archiver("trusting", true);
    assert_eq!(exit_code(&p), Some(0), "create through TLS failed:\n{log}");
    let published = walk(&bucket.join("tls"));
    assert!(
        published.iter().any(|f| f.ends_with("base.json")),
        "{published:?}"
    );

    // The image's own CA bundle does not know the test CA: refused, and the error says why.
    let (p, log) = archiver("untrusting", false);
    assert_eq!(
        exit_code(&p),
        Some(1),
        "create must fail without the CA:\n{log}"
    );
    let lower = log.to_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("unknownissuer"),
        "{log}"
    );
    for name in ["trusting", "untrusting"] {
        node.delete_pod(ns, name);
    }
}

/// Every file below `dir`, as paths.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// Where a claim scenario runs: the real node, or the sandbox emulating the same thing.
struct Target<'a> {
    label: &'static str,
    kubeconfig: &'a Path,
    node: Option<&'a Node>,
}

/// The claim lifecycle whose outcome depends on pods, through terraform: a WaitForFirstConsumer
/// claim binds once a pod using it is scheduled; it grows in place when bound; and deleting it
/// while a running pod mounts it names that pod and waits, then succeeds once the pod is gone.
fn claims_follow_their_pods(t: &Target) {
    eprintln!("--- claims_follow_their_pods on {}", t.label);
    let mirror = Mirror::testnet();
    let wd: Workdir = mirror.workdir();
    let sfx = if t.node.is_some() {
        "wffc-node"
    } else {
        "wffc-sandbox"
    };
    let ns = format!("claims-{sfx}");
    wd.write(
        "main.tf",
        &claim_config(t.kubeconfig, sfx, "WaitForFirstConsumer", "1Gi", "5s"),
    );
    wd.init();
    wd.apply().ok();
    let st = wd
        .resource("testnet_shared_state_pvc.state")
        .expect("claim in state");
    assert_eq!(
        st["phase"], "Pending",
        "WaitForFirstConsumer: ready while Pending: {st}"
    );
    assert!(st["bound_volume"].is_null(), "{st}");
    let uid = st["uid"].clone();
    let api = KubeApi::new(t.kubeconfig);
    let claim_path = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/state");

    // A pod that uses the claim: the scheduler picks the node, the volume is provisioned there.
    let holder = pod_with_claim("holder", PAUSE_IMAGE, &[], "state", "/data");
    let (code, body) = api.post(&format!("/api/v1/namespaces/{ns}/pods"), &holder);
    assert_eq!(code, 201, "{body}");
    let bound = wait_for(
        "claim bound after a pod used it",
        Duration::from_secs(120),
        || {
            let c = api.get(&claim_path).ok_or("absent")?;
            if c["status"]["phase"] == "Bound" {
                Ok(c)
            } else {
                Err(c["status"].to_string())
            }
        },
    );
    if let Some(node) = t.node {
        // The real scheduler chose the node for the volume, and the pod runs with it mounted.
        assert_eq!(
            bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"], "localhost",
            "{}",
            bound["metadata"]
        );
        node.wait_pod(&ns, "holder", "running", |p| {
            p["status"]["phase"] == "Running"
        });
    }
    wd.tf(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-input=false",
        "-no-color",
    ])
    .ok();
    let st = wd
        .resource("testnet_shared_state_pvc.state")
        .expect("claim in state");
    assert_eq!(st["phase"], "Bound", "{st}");
    assert_eq!(st["bound_volume"], bound["spec"]["volumeName"], "{st}");
    wd.assert_no_changes();

    // Growing the bound claim: in place (same claim, same data), the server holds the new request.
    wd.write(
        "main.tf",
        &claim_config(t.kubeconfig, sfx, "WaitForFirstConsumer", "2Gi", "5s"),
    );
    assert_eq!(
        Workdir::planned_actions(&wd.plan_json(), "testnet_shared_state_pvc.state"),
        ["update"]
    );
    let grown = wd.apply().ok();
    // Right after the update the volume has its old size on both servers: the user is told.
    assert!(
        acceptance_tests::flatten(&grown.output()).contains("Volume not grown yet"),
        "{}",
        grown.output()
    );
    let st = wd
        .resource("testnet_shared_state_pvc.state")
        .expect("claim in state");
    assert_eq!(st["uid"], uid, "grown in place, not replaced");
    assert_eq!(st["storage"], "2Gi");
    let c = api.get(&claim_path).expect("claim");
    assert_eq!(c["spec"]["resources"]["requests"]["storage"], "2Gi");
    // `capacity` reports what the volume has, as the server says: it never claims a growth the
    // storage has not made (the in-tree host-path plugin cannot expand; the sandbox emulates a
    // resizer, see its README).
    wd.tf(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-input=false",
        "-no-color",
    ])
    .ok();
    let st = wd
        .resource("testnet_shared_state_pvc.state")
        .expect("claim in state");
    let c = api.get(&claim_path).expect("claim");
    assert_eq!(st["capacity"], c["status"]["capacity"]["storage"], "{st}");
    wd.assert_no_changes();

    // Delete while the running pod mounts it: pvc-protection holds it; the error names the pod.
    wd.destroy()
        .fails_with("Claim still in use")
        .fails_with("mounted by pods holder");
    assert!(
        api.get(&claim_path).is_some(),
        "the claim waits for its pod"
    );
    match t.node {
        Some(node) => node.delete_pod(&ns, "holder"),
        None => {
            let (code, body) = api.send(
                "DELETE",
                &format!("/api/v1/namespaces/{ns}/pods/holder"),
                "application/json",
                None,
            );
            assert_eq!(code, 200, "{body}");
        }
    }
    wd.destroy().ok();
    assert!(api.get(&claim_path).is_none(), "claim gone after destroy");
}

#[test]
fn claims_follow_their_pods_on_the_real_node() {
    let Some(node) = node_or_skip() else { return };
    claims_follow_their_pods(&Target {
        label: "real node (kube-apiserver, scheduler, kubelet v1.20.2)",
        kubeconfig: &node.kubeconfig,
        node: Some(node),
    });
}

#[test]
fn claims_follow_their_pods_on_the_sandbox() {
    let server = KubeServer::sandbox_with(&["--bind-delay-ms", "200"]);
    claims_follow_their_pods(&Target {
        label: "sandbox",
        kubeconfig: &server.kubeconfig,
        node: None,
    });
}
