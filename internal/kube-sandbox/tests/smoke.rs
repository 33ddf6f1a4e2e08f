//! Starts the real binary on port 0 and drives it with kube-rs, as the provider will.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

struct Sandbox {
    child: Child,
    _dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Sandbox {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_testnet-kube-sandbox"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sandbox");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.starts_with("ready https://127.0.0.1:"), "{line}");
    Sandbox {
        child,
        _dir: dir,
        kubeconfig,
    }
}

async fn client(path: &std::path::Path) -> kube::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = Kubeconfig::read_from(path).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test]
async fn storage_class_parameters_are_immutable_and_wrong_token_is_rejected() {
    let sb = start();
    let c = client(&sb.kubeconfig).await;
    let api: Api<StorageClass> = Api::all(c);
    let sc: StorageClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "fast"}, "provisioner": "example.com/x", "parameters": {"a": "1"}
    }))
    .expect("sc");
    let created = api
        .create(&PostParams::default(), &sc)
        .await
        .expect("create");
    assert_eq!(created.reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(created.volume_binding_mode.as_deref(), Some("Immediate"));
    let mut changed = created.clone();
    changed.parameters = Some([("a".to_string(), "2".to_string())].into());
    match api.replace("fast", &PostParams::default(), &changed).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            let causes = s.details.map(|d| d.causes).unwrap_or_default();
            assert_eq!(causes[0].field, "parameters");
            assert_eq!(causes[0].reason, "FieldValueForbidden");
        }
        other => panic!("expected 422, got {other:?}"),
    }
    match api.create(&PostParams::default(), &sc).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("expected 409, got {other:?}"),
    }

    let text = std::fs::read_to_string(&sb.kubeconfig).expect("read kubeconfig");
    let bad = sb.kubeconfig.with_file_name("bad");
    let wrong: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("token:") {
                "    token: wrong".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&bad, wrong).expect("write");
    let bad_api: Api<StorageClass> = Api::all(client(&bad).await);
    match bad_api.get("fast").await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (401, "Unauthorized")),
        other => panic!("expected 401, got {other:?}"),
    }
}
