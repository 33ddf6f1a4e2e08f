//! The transport under the real `terraform` CLI (on PATH): `terraform plan` of a configuration
//! that uses the demo plugin through `dev_overrides`, with Terraform's default AutoMTLS.
//! dev_overrides needs no `terraform init` (Terraform warns that overrides are in effect).

use std::process::Command;

#[test]
fn terraform_plan_through_auto_mtls() {
    let bin = acceptance_tests::cargo_build("tfplug", "example", "transport-demo");
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("bin");
    let wd = dir.path().join("wd");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::copy(&bin, plugins.join("terraform-provider-testnet")).unwrap();
    let cli = dir.path().join("cli.tfrc");
    std::fs::write(
        &cli,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/testnet-infra/testnet\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            plugins.display()
        ),
    )
    .unwrap();
    std::fs::write(
        wd.join("main.tf"),
        "terraform {\n  required_providers {\n    testnet = { source = \"testnet-infra/testnet\" }\n  }\n}\n\nprovider \"testnet\" {}\n",
    )
    .unwrap();
    let out = Command::new("terraform")
        .args(["plan", "-no-color", "-input=false"])
        .current_dir(&wd)
        .env("TF_CLI_CONFIG_FILE", &cli)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_LOG", "DEBUG")
        .env_remove("TF_LOG_PROVIDER")
        .env_remove("TF_LOG_PATH")
        .output()
        .expect("run terraform");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "terraform plan failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("No changes."), "{stdout}");
    // Terraform negotiated protocol 6 over mutual TLS and parsed our hclog lines at their level.
    assert!(
        stderr.contains("configuring client automatic mTLS"),
        "{stderr}"
    );
    assert!(stderr.contains("using plugin: version=6"), "{stderr}");
    assert!(
        stderr.lines().any(|l| l
            .contains("[DEBUG] provider.terraform-provider-testnet: plugin serving:")
            && l.contains("@module=provider")),
        "{stderr}"
    );
    assert!(
        stderr.contains("[INFO]  provider.terraform-provider-testnet: schema requested"),
        "{stderr}"
    );
    // It asked the plugin to shut down and the plugin exited by itself.
    assert!(
        stderr.contains("Shutdown requested by Terraform"),
        "{stderr}"
    );
    assert!(stderr.contains("plugin process exited"), "{stderr}");
    assert!(
        !stderr.contains("plugin process exited: plugin=")
            || !stderr.contains("error=\"signal: killed\""),
        "{stderr}"
    );
}
