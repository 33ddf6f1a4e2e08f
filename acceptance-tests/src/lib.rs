//! The acceptance harness: builds a provider, lays it out in a filesystem mirror, and runs the
//! real `terraform` CLI in temporary directories with no network, so tests assert on exactly
//! what users see (`terraform show -json`, exit codes, diagnostics).

pub mod header_proxy;
pub mod job_interrupt;
pub mod node;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The workspace root (this crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Where cargo puts binaries of this workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds a binary (`bin`) or example (`example`) of a workspace package in the debug profile
/// and returns its path. Built once per test process.
pub fn cargo_build(package: &str, kind: &str, name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", package, &format!("--{kind}"), name])
        .current_dir(workspace_root())
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p {package} --{kind} {name} failed"
    );
    let dir = if kind == "example" {
        target_dir().join("debug/examples")
    } else {
        target_dir().join("debug")
    };
    dir.join(name)
}

/// The `terraform-provider-testnet` binary, built once per test process.
pub fn provider_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        cargo_build(
            "terraform-provider-testnet",
            "bin",
            "terraform-provider-testnet",
        )
    })
}

/// A filesystem mirror holding one provider, and the CLI configuration that uses it.
pub struct Mirror {
    dir: tempfile::TempDir,
    pub cli_config: PathBuf,
    /// e.g. `registry.terraform.io/testnet-infra/testnet`
    pub source: String,
}

impl Mirror {
    /// Lays out `binary` as provider `source` (`host/namespace/type`) version `version` in the
    /// unpacked mirror layout Terraform reads, and writes a CLI config installing only from it.
    pub fn new(binary: &Path, source: &str, version: &str) -> Mirror {
        let dir = tempfile::tempdir().expect("tempdir");
        let ty = source.rsplit('/').next().expect("source type");
        let pkg = dir
            .path()
            .join("mirror")
            .join(source)
            .join(version)
            .join("linux_amd64");
        std::fs::create_dir_all(&pkg).expect("mirror dir");
        let dest = pkg.join(format!("terraform-provider-{ty}_v{version}"));
        // A hard link or copy, so rebuilding the binary during a run cannot change it.
        if std::fs::hard_link(binary, &dest).is_err() {
            std::fs::copy(binary, &dest).expect("copy provider into mirror");
        }
        let ns = source.rsplitn(2, '/').nth(1).expect("source namespace");
        let cli_config = dir.path().join("terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{ns}/*\"]\n  }}\n  direct {{\n    exclude = [\"{ns}/*\"]\n  }}\n}}\n",
                dir.path().join("mirror").display()
            ),
        )
        .expect("write cli config");
        Mirror {
            dir,
            cli_config,
            source: source.to_string(),
        }
    }

    /// The mirror for `terraform-provider-testnet`.
    pub fn testnet() -> Mirror {
        Mirror::new(
            provider_binary(),
            "registry.terraform.io/testnet-infra/testnet",
            "0.1.0",
        )
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh working directory using this mirror.
    pub fn workdir(&self) -> Workdir {
        Workdir::new(self)
    }
}

/// What one terraform command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Both streams, for assertion messages and diagnostics (Terraform writes errors to stderr).
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "terraform failed:\n{}", self.output());
        self
    }
    #[track_caller]
    pub fn fails_with(self, needle: &str) -> Run {
        assert_ne!(
            self.code,
            0,
            "terraform unexpectedly succeeded:\n{}",
            self.output()
        );
        let flat = flatten(&self.output());
        assert!(
            flat.contains(&flatten(needle)),
            "expected {needle:?} in:\n{}",
            self.output()
        );
        self
    }
}

/// Terraform wraps diagnostics to the terminal width and frames them with `│`: compare text
/// with that framing and line breaks folded away.
pub fn flatten(s: &str) -> String {
    s.replace('│', " ")
        .replace('╷', " ")
        .replace('╵', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A temporary Terraform working directory.
pub struct Workdir {
    dir: tempfile::TempDir,
    cli_config: PathBuf,
    env: Vec<(String, String)>,
}

impl Workdir {
    pub fn new(mirror: &Mirror) -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
            cli_config: mirror.cli_config.clone(),
            env: Vec::new(),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// Sets an environment variable for every terraform command run here.
    pub fn env(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Writes `main.tf` (or any file) in the working directory.
    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.dir.path().join(name), content).expect("write config");
    }
    /// A `terraform` command with no network and our CLI config.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("terraform");
        c.args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("NO_COLOR", "1")
            .env_remove("TF_LOG")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }
    pub fn tf(&self, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .output()
                .expect("run terraform (is it on PATH?)"),
        )
    }
    pub fn init(&self) -> Run {
        self.tf(&["init", "-input=false", "-no-color"]).ok()
    }
    pub fn apply(&self) -> Run {
        self.tf(&["apply", "-auto-approve", "-input=false", "-no-color"])
    }
    pub fn destroy(&self) -> Run {
        self.tf(&["destroy", "-auto-approve", "-input=false", "-no-color"])
    }
    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error.
    pub fn plan(&self) -> Run {
        self.tf(&["plan", "-detailed-exitcode", "-input=false", "-no-color"])
    }
    /// Asserts the plan is empty.
    #[track_caller]
    pub fn assert_no_changes(&self) {
        let r = self.plan();
        assert_eq!(r.code, 0, "expected an empty plan:\n{}", r.output());
    }
    /// The state as `terraform show -json` gives it.
    pub fn show_json(&self) -> serde_json::Value {
        let r = self.tf(&["show", "-json", "-no-color"]).ok();
        serde_json::from_str(&r.stdout).expect("terraform show -json output")
    }
    /// The attribute values of the resource at `address` in the root module's state.
    pub fn resource(&self, address: &str) -> Option<serde_json::Value> {
        let state = self.show_json();
        state["values"]["root_module"]["resources"]
            .as_array()?
            .iter()
            .find(|r| r["address"] == address)
            .map(|r| r["values"].clone())
    }
    /// A JSON plan (`terraform plan -out` + `show -json`).
    pub fn plan_json(&self) -> serde_json::Value {
        self.tf(&["plan", "-out=tf.plan", "-input=false", "-no-color"])
            .ok();
        let r = self.tf(&["show", "-json", "tf.plan"]).ok();
        serde_json::from_str(&r.stdout).expect("plan json")
    }
    /// The actions planned for `address` (e.g. `["update"]`, `["delete","create"]`).
    pub fn planned_actions(plan: &serde_json::Value, address: &str) -> Vec<String> {
        plan["resource_changes"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["address"] == address))
            .and_then(|r| r["change"]["actions"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}
