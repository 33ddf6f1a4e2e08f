//! `scripts/release` as a maintainer runs it, and its zip as Terraform installs it: checksums,
//! manifest, a binary needing nothing beyond glibc, then `terraform init` from a packed-layout
//! filesystem mirror (the zip as released, untouched), `terraform providers` and a plan served by
//! the released binary.
//!
//! The release build takes minutes of both cores the first time (it shares `target/release`
//! with other release builds), so everything is checked from one build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use acceptance_tests::workspace_root;

const SOURCE: &str = "registry.terraform.io/testnet-infra/testnet";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const GLIBC_LIBS: [&str; 7] = [
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
];

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `terraform` in `dir` with only our CLI configuration, offline.
fn terraform(dir: &Path, cli_config: &Path, args: &[&str]) -> Output {
    run(Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env_remove("TF_LOG")
        .env_remove("TF_PLUGIN_CACHE_DIR"))
}

/// The cargo profile packaged: `dev` unless `TESTNET_RELEASE_PROFILE` says otherwise. The
/// packaging steps are the same; an optimised build of every dependency would add many minutes of
/// both cores to the suite for no packaging fact (`scripts/release` without `--profile` builds
/// `release`, and `--check-binary` checks that binary's libraries the same way).
fn profile() -> String {
    std::env::var("TESTNET_RELEASE_PROFILE").unwrap_or_else(|_| "dev".into())
}

/// The image archive is an OCI layout naming `ghcr.io/testnet-infra/testnet-archiver:<version>`,
/// and the digest file lists that reference with the sha256 of the manifest blob it holds.
fn image_is_listed_with_its_digest(archive: &Path, digest_file: &Path) {
    let listed = std::fs::read_to_string(digest_file).expect("digest file");
    let (reference, digest) = listed.trim().split_once(' ').expect("`REF DIGEST`");
    assert_eq!(
        reference,
        format!("ghcr.io/testnet-infra/testnet-archiver:{VERSION}")
    );
    let check = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import hashlib, json, sys, tarfile\n\
         t = tarfile.open(sys.argv[1])\n\
         assert json.load(t.extractfile('oci-layout'))['imageLayoutVersion'] == '1.0.0'\n\
         m = json.load(t.extractfile('index.json'))['manifests'][0]\n\
         blob = t.extractfile('blobs/sha256/' + m['digest'].split(':')[1]).read()\n\
         assert 'sha256:' + hashlib.sha256(blob).hexdigest() == m['digest']\n\
         print(m['annotations']['io.containerd.image.name'], m['digest'])",
        )
        .arg(archive));
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        format!("{reference} {digest}")
    );
}

#[test]
fn release_zip_installs_from_a_packed_mirror_and_serves_plans() {
    let out = tempfile::tempdir().expect("tempdir");
    let name = format!("terraform-provider-testnet_{VERSION}");
    let zip_name = format!("{name}_linux_amd64.zip");
    let manifest_name = format!("{name}_manifest.json");
    let sums_name = format!("{name}_SHA256SUMS");

    let released = run(Command::new(workspace_root().join("scripts/release"))
        .arg("--out")
        .arg(out.path())
        .args(["--profile", &profile()])
        .env_remove("GPG_FINGERPRINT")
        .current_dir(workspace_root()));
    let printed = String::from_utf8_lossy(&released.stdout);
    assert_eq!(
        PathBuf::from(printed.trim()),
        out.path().join(&zip_name),
        "scripts/release prints the zip's path"
    );

    // Exactly the registry's files, no signature without GPG_FINGERPRINT.
    let mut files: Vec<String> = std::fs::read_dir(out.path())
        .expect("read out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f != "mirror")
        .collect();
    files.sort();
    let image_name = format!("testnet-archiver_{VERSION}.oci.tar");
    let digest_name = format!("testnet-archiver_{VERSION}.digest");
    let mut expected = vec![
        sums_name.clone(),
        zip_name.clone(),
        manifest_name.clone(),
        image_name.clone(),
        digest_name.clone(),
    ];
    expected.sort();
    assert_eq!(files, expected);
    image_is_listed_with_its_digest(
        &out.path().join(&image_name),
        &out.path().join(&digest_name),
    );

    // The manifest declares protocol 6.0.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join(&manifest_name)).expect("manifest"),
    )
    .expect("manifest is JSON");
    assert_eq!(
        manifest,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );

    // SHA256SUMS covers the zip and the manifest, in sha256sum's format, and they match.
    let sums = std::fs::read_to_string(out.path().join(&sums_name)).expect("SHA256SUMS");
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| {
            let (hash, file) = l.split_once("  ").expect("`HASH  FILE` lines");
            assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
            file
        })
        .collect();
    listed.sort();
    assert_eq!(listed, [zip_name.as_str(), manifest_name.as_str()]);
    run(Command::new("sha256sum")
        .args(["--check", "--strict", &sums_name])
        .current_dir(out.path()));
    let zip_sha = sums
        .lines()
        .find(|l| l.ends_with(&zip_name))
        .and_then(|l| l.split_whitespace().next())
        .expect("zip line")
        .to_string();

    // The zip holds one executable, terraform-provider-testnet_v<version> (read with python3's
    // zipfile, which scripts/test installs; unzip may be absent on a fresh machine).
    let unpacked = tempfile::tempdir().expect("tempdir");
    let listing = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             for i in z.infolist(): print('%o %s' % (i.external_attr >> 16, i.filename))\n\
             z.extractall(sys.argv[2])",
        )
        .arg(out.path().join(&zip_name))
        .arg(unpacked.path()));
    let entries: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        entries,
        [format!("100755 terraform-provider-testnet_v{VERSION}")]
    );

    // Nothing beyond glibc is linked dynamically (no OpenSSL).
    let bin = unpacked
        .path()
        .join(format!("terraform-provider-testnet_v{VERSION}"));
    let dynamic = String::from_utf8_lossy(&run(Command::new("readelf").arg("-d").arg(&bin)).stdout)
        .into_owned();
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(needed.contains(&"libc.so.6"), "{dynamic}");
    for lib in &needed {
        assert!(
            GLIBC_LIBS.contains(lib),
            "{lib} is not a glibc library:\n{dynamic}"
        );
    }

    // A packed-layout filesystem mirror: HOST/NAMESPACE/TYPE/<the released zip>.
    let mirror = tempfile::tempdir().expect("tempdir");
    let pkg_dir = mirror.path().join(SOURCE);
    std::fs::create_dir_all(&pkg_dir).expect("mirror dir");
    std::fs::copy(out.path().join(&zip_name), pkg_dir.join(&zip_name)).expect("copy zip");
    let cli_config = mirror.path().join("terraformrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{SOURCE}\"]\n  }}\n  direct {{\n    exclude = [\"{SOURCE}\"]\n  }}\n}}\n",
            mirror.path().display()
        ),
    )
    .expect("cli config");

    let wd = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        wd.path().join("main.tf"),
        format!(
            r#"terraform {{
  required_providers {{
    testnet = {{
      source  = "testnet-infra/testnet"
      version = "= {VERSION}"
    }}
  }}
}}

provider "testnet" {{}}

resource "testnet_storage_class" "fast" {{
  name  = "release-check"
  tier  = "ssd"
  cloud = "gcp"
}}
"#
        ),
    )
    .expect("main.tf");

    let init = terraform(
        wd.path(),
        &cli_config,
        &["init", "-input=false", "-no-color"],
    );
    assert!(
        text(&init).contains(&format!("Installed testnet-infra/testnet v{VERSION}")),
        "{}",
        text(&init)
    );
    let lock = std::fs::read_to_string(wd.path().join(".terraform.lock.hcl")).expect("lock file");
    assert!(lock.contains(&format!("provider \"{SOURCE}\"")), "{lock}");
    assert!(
        lock.contains(&format!("version     = \"{VERSION}\"")),
        "{lock}"
    );
    assert!(lock.contains("\"h1:"), "{lock}");
    // Where Terraform records the archive's own hash, it is the one in SHA256SUMS.
    if lock.contains("\"zh:") {
        assert!(lock.contains(&format!("\"zh:{zip_sha}\"")), "{lock}");
    }

    let providers = terraform(wd.path(), &cli_config, &["providers", "-no-color"]);
    assert!(
        text(&providers).contains(&format!("provider[{SOURCE}] {VERSION}")),
        "{}",
        text(&providers)
    );

    // The released binary serves schema, configure and plan: the preset is resolved in the plan.
    terraform(
        wd.path(),
        &cli_config,
        &["plan", "-input=false", "-no-color", "-out=tf.plan"],
    );
    let shown = terraform(wd.path(), &cli_config, &["show", "-json", "tf.plan"]);
    let plan: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("plan JSON");
    let planned = plan["planned_values"]["root_module"]["resources"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["address"] == "testnet_storage_class.fast")
        })
        .unwrap_or_else(|| panic!("storage class not planned: {plan}"));
    assert_eq!(
        planned["values"]["provisioner"], "kubernetes.io/gce-pd",
        "{planned}"
    );
    assert_eq!(
        planned["values"]["parameters"]["type"], "pd-ssd",
        "{planned}"
    );
    assert_eq!(
        plan["resource_changes"][0]["change"]["actions"],
        serde_json::json!(["create"])
    );

    // The mirror directory the script lays out: the same zip, and network-mirror JSON whose
    // hashes are the ones Terraform itself computed for the lock file.
    let script_mirror = out.path().join("mirror").join(SOURCE);
    let mirrored = std::fs::read(script_mirror.join(&zip_name)).expect("mirrored zip");
    let original = std::fs::read(out.path().join(&zip_name)).expect("zip");
    assert!(
        mirrored == original,
        "the mirror's zip is not the released one"
    );
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(script_mirror.join("index.json")).expect("index.json"),
    )
    .expect("index JSON");
    assert_eq!(index, serde_json::json!({"versions": {VERSION: {}}}));
    let version_doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(script_mirror.join(format!("{VERSION}.json")))
            .expect("version JSON"),
    )
    .expect("version JSON");
    let archive = &version_doc["archives"]["linux_amd64"];
    assert_eq!(archive["url"], zip_name.as_str());
    let hashes: Vec<&str> = archive["hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert_eq!(hashes.len(), 2, "{version_doc}");
    assert_eq!(hashes[1], format!("zh:{zip_sha}"));
    assert!(
        lock.contains(&format!("\"{}\"", hashes[0])),
        "h1 hash {} is not the one terraform recorded:\n{lock}",
        hashes[0]
    );

    // Vendored with the configuration (the Terraform Cloud guide's second way): the mirror
    // directory copied to terraform.d/plugins is found with no CLI configuration at all.
    let vendored = tempfile::tempdir().expect("tempdir");
    let plugins = vendored
        .path()
        .join("terraform.d/plugins/registry.terraform.io/testnet-infra/testnet");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    for f in [
        zip_name.clone(),
        "index.json".into(),
        format!("{VERSION}.json"),
    ] {
        std::fs::copy(script_mirror.join(&f), plugins.join(&f)).expect("copy mirror file");
    }
    std::fs::copy(wd.path().join("main.tf"), vendored.path().join("main.tf")).expect("main.tf");
    let empty_config = vendored.path().join("empty.tfrc");
    std::fs::write(&empty_config, "").expect("empty CLI config");
    let init = terraform(
        vendored.path(),
        &empty_config,
        &["init", "-input=false", "-no-color"],
    );
    assert!(
        text(&init).contains(&format!("Installed testnet-infra/testnet v{VERSION}")),
        "{}",
        text(&init)
    );
    terraform(vendored.path(), &empty_config, &["validate", "-no-color"]);
}

/// The library check refuses binaries that would need more than glibc on the runner, naming the
/// library, and files that are not executables at all.
#[test]
fn release_check_refuses_binaries_needing_more_than_glibc() {
    let script = workspace_root().join("scripts/release");
    // git is on every machine that has this repository, and links more than glibc (zlib, pcre).
    let git =
        String::from_utf8_lossy(&run(Command::new("sh").args(["-c", "command -v git"])).stdout)
            .trim()
            .to_string();
    let dynamic = String::from_utf8_lossy(&run(Command::new("readelf").arg("-d").arg(&git)).stdout)
        .into_owned();
    let extra: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .filter(|l| !GLIBC_LIBS.contains(l))
        .collect();
    assert!(!extra.is_empty(), "{git} links only glibc:\n{dynamic}");
    let cases = [
        (
            git.as_str(),
            format!("needs libraries beyond glibc: {}", extra.join(" ")),
        ),
        ("README.md", "is not an ELF executable".to_string()),
    ];
    for (file, expected) in cases {
        let out = Command::new(&script)
            .args(["--check-binary", file])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/release");
        assert!(!out.status.success(), "{file} passed the check");
        assert!(text(&out).contains(&expected), "{file}: {}", text(&out));
    }
}

/// With `GPG_FINGERPRINT` (what a private registry requires), the SHA256SUMS file gets a detached
/// signature that gpg verifies. Uses a throwaway key in a temporary keyring.
#[test]
fn release_signs_sha256sums_when_given_a_key() {
    if Command::new("gpg").arg("--version").output().is_err() {
        eprintln!("gpg not installed: signing not checked");
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let gpg = |args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args))
    };
    gpg(&[
        "--quick-gen-key",
        "Release Test <release-test@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let listed = gpg(&["--with-colons", "--list-secret-keys"]);
    let fingerprint = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .expect("fingerprint")
        .to_string();

    let out = tempfile::tempdir().expect("tempdir");
    run(Command::new(workspace_root().join("scripts/release"))
        .arg("--out")
        .arg(out.path())
        .args(["--profile", &profile()])
        .env("GNUPGHOME", home.path())
        .env("GPG_FINGERPRINT", &fingerprint)
        .current_dir(workspace_root()));
    let sums = out
        .path()
        .join(format!("terraform-provider-testnet_{VERSION}_SHA256SUMS"));
    let sig = out.path().join(format!(
        "terraform-provider-testnet_{VERSION}_SHA256SUMS.sig"
    ));
    let verified = gpg(&[
        "--verify",
        &sig.display().to_string(),
        &sums.display().to_string(),
    ]);
    assert!(
        text(&verified).contains("Good signature"),
        "{}",
        text(&verified)
    );
    // A changed SHA256SUMS no longer verifies.
    std::fs::write(&sums, "0000  tampered\n").expect("tamper");
    let bad = Command::new("gpg")
        .env("GNUPGHOME", home.path())
        .args(["--batch", "--verify"])
        .arg(&sig)
        .arg(&sums)
        .output()
        .expect("run gpg");
    assert!(!bad.status.success(), "{}", text(&bad));
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "gpg-agent"])
        .status();
}
