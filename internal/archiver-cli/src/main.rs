//! `testnet-archiver`: publish a node's state directory as a verified snapshot artifact, and
//! verify, restore or list artifacts, from the command line. A thin shell over the `catalog`
//! crate: the same code the Terraform provider runs.

mod progress;
mod rusage;
mod sums;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use objstore::{ObjectStore, StoreConfig};
use tokio_util::sync::CancellationToken;

const TOOL_VERSION: &str = concat!("testnet-archiver/", env!("CARGO_PKG_VERSION"));

#[derive(Parser)]
#[command(
    name = "testnet-archiver",
    version,
    about = "Create, verify, restore and list testnet snapshot artifacts"
)]
struct Cli {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: Command,
}

/// How to reach S3-compatible servers and GCS emulators; URLs say which store.
#[derive(Args)]
struct Connection {
    /// Custom endpoint of the store. Defaults: for s3:// TESTNET_S3_ENDPOINT, then
    /// AWS_ENDPOINT_URL; for gs:// TESTNET_GCS_ENDPOINT, then STORAGE_EMULATOR_HOST.
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// S3 path-style addressing (most S3-compatible servers need it).
    #[arg(long, global = true, env = "TESTNET_S3_PATH_STYLE")]
    path_style: bool,
    /// S3 region.
    #[arg(long, global = true, env = "AWS_REGION")]
    region: Option<String>,
    /// S3 server-side encryption: AES256 or aws:kms.
    #[arg(long, global = true)]
    sse: Option<String>,
    /// Connections reading one S3 or GCS object at once, each fetching its own byte range (a
    /// failed range is retried alone). The ranges share 32 MiB: 4 MiB each for 8 connections.
    #[arg(long, global = true, default_value_t = objstore::DEFAULT_CONNECTIONS as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
    connections: u16,
}

#[derive(Subcommand)]
enum Command {
    /// Archive a directory, upload it, verify it and publish it (metadata JSON on stdout).
    Create(Box<CreateArgs>),
    /// Read an artifact back and check it against its metadata.
    Verify {
        /// URL of the artifact, e.g. s3://bucket/prefix/ghostnet-rolling-42.tar.lz4
        url: String,
        #[arg(long, value_enum, default_value_t = Mode::Full)]
        mode: Mode,
    },
    /// Unpack an artifact as a directory, all or nothing: it is read into a staging directory
    /// beside the target, checked against its metadata, and only then moved into place.
    ///
    /// The restored tree carries a marker, .testnet-restored.json at its root (artifact name,
    /// URL, SHA-256, size, time, tool version), moved into place with the data. A restore into a
    /// directory whose marker names the same artifact (same SHA-256) does nothing and exits 0
    /// without reading the object: an init container that runs again does not download again.
    /// To restore again anyway, remove the marker and use --replace. `create` leaves the marker
    /// out by default.
    ///
    /// When the directory is a mount point (a volume), an empty lost+found at its root does not
    /// count as content, and it stays in place.
    #[command(
        after_help = "Examples:\n  testnet-archiver restore s3://snaps/ghostnet/ghostnet-rolling-42.tar.lz4 --into /data\n  testnet-archiver restore --latest --store s3://snaps/ghostnet --network ghostnet --kind rolling --into /data"
    )]
    Restore(RestoreArgs),
    /// Print the index (base.json) of a store prefix.
    List {
        #[arg(long)]
        store: String,
    },
    /// Print the SHA-256 and size of every regular file under a directory (and the target of
    /// every symlink), as JSON keyed by relative path: to compare a restored volume with its
    /// source from this image, which has no shell.
    Sums { dir: PathBuf },
}

#[derive(Args)]
struct RestoreArgs {
    /// URL of the artifact, e.g. s3://bucket/prefix/ghostnet-rolling-42.tar.lz4 (or --latest).
    #[arg(required_unless_present = "latest")]
    url: Option<String>,
    /// Restore the artifact the latest pointer of --network and --kind in --store names (the
    /// newest index entry when there is no pointer), instead of a URL.
    #[arg(long, conflicts_with = "url", requires_all = ["store", "network", "kind"])]
    latest: bool,
    /// With --latest: the store prefix URL, e.g. s3://bucket/prefix.
    #[arg(long, requires = "latest")]
    store: Option<String>,
    /// With --latest: the network, e.g. ghostnet.
    #[arg(long, requires = "latest")]
    network: Option<String>,
    /// With --latest: the kind, e.g. rolling or archive.
    #[arg(long, requires = "latest")]
    kind: Option<String>,
    /// The directory to restore as: missing or empty, or already holding this artifact's
    /// marker, unless --replace.
    #[arg(long)]
    into: PathBuf,
    /// Replace what the directory holds (another artifact, or files with no marker): the
    /// verified tree is swapped in, and the old one removed only after the swap.
    #[arg(long)]
    replace: bool,
    /// Keep another artifact the directory already holds (any restore marker) and exit 0:
    /// restore only into a directory that holds none, e.g. for a node that catches up from its
    /// own state after the first restore. Without it such a directory is refused.
    #[arg(long, conflicts_with = "replace")]
    keep_restored: bool,
    /// Also write the report (the JSON printed on stdout) as one line to this file (in a
    /// Kubernetes Job: /dev/termination-log, which the API server returns whole, apart from the
    /// log where stdout and stderr lines may interleave).
    #[arg(long, value_name = "FILE")]
    result_file: Option<PathBuf>,
}

#[derive(Args)]
struct CreateArgs {
    /// Directory to archive.
    #[arg(long)]
    source: PathBuf,
    /// Store prefix URL: file:///dir, s3://bucket/prefix or gs://bucket/prefix.
    #[arg(long)]
    store: String,
    #[arg(long)]
    network: String,
    /// e.g. rolling or archive.
    #[arg(long)]
    kind: String,
    /// Defaults to the block height, else the UTC time YYYYMMDD-HHMMSS.
    #[arg(long)]
    label: Option<String>,
    /// Glob of paths to leave out (repeatable).
    #[arg(long = "exclude")]
    excludes: Vec<String>,
    /// Glob of paths to keep even if excluded (repeatable).
    #[arg(long = "include")]
    includes: Vec<String>,
    /// Do not exclude identity.json, peers.json and .testnet-restored.json (the marker a
    /// restore leaves; a snapshot of a restored node must not carry it).
    #[arg(long)]
    no_default_excludes: bool,
    #[arg(long, value_enum, default_value_t = Mode::Checksum)]
    verify: Mode,
    /// Keep only the newest N artifacts of this network and kind in the index.
    #[arg(long)]
    retain: Option<u32>,
    /// How long an artifact dropped by --retain stays readable before its objects are deleted
    /// (by a later publish with --retain): e.g. 1h, 30m, 90s, 0s.
    #[arg(long, default_value = "1h", value_parser = parse_grace)]
    retention_grace: std::time::Duration,
    #[arg(long)]
    block_height: Option<u64>,
    #[arg(long)]
    block_hash: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    block_time: Option<String>,
    /// Serialise index updates with other publishers on this Kubernetes Lease (NAMESPACE/NAME),
    /// for stores that do not enforce conditional writes. The cluster comes from --kubeconfig,
    /// else KUBECONFIG or ~/.kube/config, else the in-cluster service account.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    index_lock: Option<String>,
    /// Kubeconfig for --index-lock.
    #[arg(long, requires = "index_lock")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context for --index-lock.
    #[arg(long, requires = "index_lock")]
    kube_context: Option<String>,
    /// How long to wait for other publishers holding the index lock, in seconds.
    #[arg(long, default_value_t = 600, requires = "index_lock")]
    index_lock_wait: u64,
    /// Acknowledge that this is the only publisher into the store prefix, so a store that does
    /// not enforce conditional writes may be published to without an index lock.
    #[arg(long, conflicts_with = "index_lock")]
    single_publisher: bool,
    /// After publishing, also write {"name","url","sha256","size_bytes"} as one JSON line to
    /// this file (in a Kubernetes Job: /dev/termination-log).
    #[arg(long, value_name = "FILE")]
    result_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Checksum,
    Full,
}

impl From<Mode> for catalog::VerifyMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Checksum => catalog::VerifyMode::Checksum,
            Mode::Full => catalog::VerifyMode::Full,
        }
    }
}

/// A failure: message for stderr and exit code (1 runtime, 2 usage).
struct Failure(String, u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 1)
    }
}

fn main() -> ExitCode {
    rusage::start();
    // Parse errors print clap's usage text and exit with 2.
    let cli = Cli::parse();
    // Warnings by default (a lost index write being re-added, an archiver warning);
    // TESTNET_ARCHIVER_LOG=debug shows e.g. the conditional-write probe and its cost.
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESTNET_ARCHIVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(Failure(format!("cannot start the runtime: {e}"), 1)),
    };
    let result = runtime.block_on(run(cli));
    // Everything that must finish (uploads aborted, staging directories removed) finished inside
    // `run`; a reader thread still blocked on a stalled source must not hold the exit.
    runtime.shutdown_background();
    rusage::report_if_asked();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

fn fail(f: Failure) -> ExitCode {
    eprintln!("testnet-archiver: error: {}", f.0.replace('\n', " "));
    ExitCode::from(f.1)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Create(args) => create(&cli.conn, *args).await,
        Command::Verify { url, mode } => {
            let (store, key) = open_artifact(&cli.conn, &url).await?;
            let meter = Arc::new(progress::Meter::new("verify"));
            let opts = archiver::ReadOptions {
                cancel: Some(cancel_on_signals()),
                progress: Some(read_progress(meter.clone())),
                ..Default::default()
            };
            let r = catalog::verify_artifact_with(&*store, &key, mode.into(), opts).await;
            meter.finish();
            let r = r?;
            print_json(&serde_json::json!({
                "name": r.name,
                "url": r.url,
                "mode": match mode { Mode::Checksum => "checksum", Mode::Full => "full" },
                "sha256": r.sha256,
                "size_bytes": r.compressed_bytes,
                "uncompressed_bytes": r.uncompressed_bytes,
                "file_count": r.file_count,
                "ok": true,
            }))
        }
        Command::Restore(args) => restore(&cli.conn, args).await,
        Command::Sums { dir } => {
            let sums =
                sums::of_tree(&dir).map_err(|e| Failure(format!("{}: {e}", dir.display()), 1))?;
            print_json(&sums)
        }
        Command::List { store } => {
            let store = open_store(&cli.conn, &store).await?;
            print_json(&catalog::list(&*store).await?)
        }
    }
}

/// `restore URL` or `restore --latest`, both through the marker: the object is read only when
/// the target does not already hold this artifact.
async fn restore(conn: &Connection, a: RestoreArgs) -> Result<(), Failure> {
    let cancel = cancel_on_signals();
    let meter = Arc::new(progress::Meter::new("restore"));
    let opts = archiver::RestoreOptions {
        replace: a.replace,
        read: archiver::ReadOptions {
            cancel: Some(cancel),
            progress: Some(read_progress(meter.clone())),
            ..Default::default()
        },
    };
    let how = catalog::MarkerOptions {
        tool_version: TOOL_VERSION.to_string(),
        keep_restored: a.keep_restored,
    };
    let outcome = match (&a.url, &a.store, &a.network, &a.kind) {
        (Some(url), _, _, _) => {
            let (store, key) = open_artifact(conn, url).await?;
            catalog::restore_marked(&*store, &key, &a.into, opts, &how).await
        }
        (None, Some(store), Some(network), Some(kind)) => {
            let store = open_store(conn, store).await?;
            catalog::restore_latest(&*store, network, kind, &a.into, opts, &how).await
        }
        // clap requires a URL or --latest with all three.
        _ => {
            return Err(Failure(
                "give an artifact URL, or --latest with --store, --network and --kind".into(),
                2,
            ))
        }
    };
    meter.finish();
    let outcome = outcome?;
    let m = outcome.marker();
    let mut out = serde_json::json!({
        "name": m.name,
        "url": m.url,
        "into": a.into.display().to_string(),
        "sha256": m.sha256,
        "size_bytes": m.size_bytes,
        "restored_at": m.restored_at,
    });
    match &outcome {
        catalog::RestoreOutcome::AlreadyRestored(m) => {
            eprintln!(
                "testnet-archiver: {} already restored {} (sha256 {}) at {}, nothing to do",
                a.into.display(),
                m.name,
                m.sha256,
                m.restored_at
            );
            out["already_restored"] = true.into();
        }
        catalog::RestoreOutcome::KeptOther { held, wanted } => {
            eprintln!(
                "testnet-archiver: {} holds {} (sha256 {}, restored {}), kept (--keep-restored) \
                 instead of {wanted}, nothing to do",
                a.into.display(),
                held.name,
                held.sha256,
                held.restored_at
            );
            out["already_restored"] = true.into();
            out["kept_instead_of"] = wanted.clone().into();
        }
        catalog::RestoreOutcome::Restored { summary, .. } => {
            eprintln!(
                "testnet-archiver: restored {} into {} ({} files)",
                m.name,
                a.into.display(),
                summary.file_count
            );
            out["already_restored"] = false.into();
            out["uncompressed_bytes"] = summary.uncompressed_bytes.into();
            out["file_count"] = summary.file_count.into();
        }
    }
    if let Some(path) = &a.result_file {
        std::fs::write(path, format!("{out}\n")).map_err(|e| {
            Failure(
                format!(
                    "restored, but cannot write --result-file {}: {e}",
                    path.display()
                ),
                1,
            )
        })?;
    }
    print_json(&out)
}

async fn create(conn: &Connection, a: CreateArgs) -> Result<(), Failure> {
    // First: a SIGTERM that arrives while the store is being opened must still cancel (as PID 1
    // in a container, a signal without a handler is ignored and the publish would go on).
    let cancel = cancel_on_signals();
    if !a.source.is_dir() {
        return Err(Failure(
            format!(
                "source directory {} does not exist or is not a directory",
                a.source.display()
            ),
            1,
        ));
    }
    let store = open_store(conn, &a.store).await?;

    let writes = index_writes(&a, cancel.clone()).await?;
    let mut req = catalog::PublishRequest::new(a.network, a.kind, a.source);
    req.label = a.label;
    req.block_height = a.block_height;
    req.block_hash = a.block_hash;
    req.block_time = a.block_time;
    req.verify = a.verify.into();
    req.retain = a.retain;
    req.retention_grace = a.retention_grace;
    req.tool_version = TOOL_VERSION.to_string();
    req.archive.excludes = a.excludes;
    req.archive.includes = a.includes;
    req.archive.use_default_excludes = !a.no_default_excludes;
    req.archive.cancel = Some(cancel.clone());
    let meter = Arc::new(progress::Meter::new("create"));
    req.archive.progress = Some(create_progress(meter.clone()));
    req.index_writes = writes;

    let meta = catalog::publish(&*store, req).await;
    meter.finish();
    let meta = meta.map_err(|e| match e {
        catalog::CatalogError::UnsafeStore { .. } => Failure(
            format!(
                "{e}. Here: --index-lock NAMESPACE/NAME, a Kubernetes Lease every publisher \
                 into this prefix uses (cluster from --kubeconfig, KUBECONFIG or the in-cluster \
                 service account), or --single-publisher"
            ),
            1,
        ),
        e => e.into(),
    })?;
    eprintln!(
        "testnet-archiver: published {} ({} bytes, {} files)",
        meta.url, meta.size_bytes, meta.file_count
    );
    if let Some(path) = &a.result_file {
        write_result(path, &meta)?;
    }
    print_json(&meta)
}

/// Writes what was published as one line of JSON to `path`: in a Kubernetes Job this is the
/// container's termination message, which the provider reads back through the API server and
/// checks against the store before it records the artifact.
fn write_result(path: &std::path::Path, meta: &catalog::ArtifactMeta) -> Result<(), Failure> {
    let line = serde_json::json!({
        "name": meta.name,
        "url": meta.url,
        "sha256": meta.sha256,
        "size_bytes": meta.size_bytes,
    });
    std::fs::write(path, format!("{line}\n")).map_err(|e| {
        Failure(
            format!(
                "published, but cannot write --result-file {}: {e}",
                path.display()
            ),
            1,
        )
    })
}

/// SIGINT (Ctrl-C) or SIGTERM (what Kubernetes sends a pod's container when its Job is
/// deleted; as PID 1 in a container the archiver would otherwise ignore it).
async fn interrupted(term: Option<tokio::signal::unix::Signal>) -> bool {
    let Some(mut term) = term else {
        return tokio::signal::ctrl_c().await.is_ok();
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.is_ok(),
        r = term.recv() => r.is_some(),
    }
}

/// What keeps this publisher's index updates safe from others: `--index-lock`,
/// `--single-publisher`, or (neither) the store's own conditional writes.
async fn index_writes(
    a: &CreateArgs,
    cancel: CancellationToken,
) -> Result<catalog::IndexWrites, Failure> {
    if a.single_publisher {
        return Ok(catalog::IndexWrites::SinglePublisher);
    }
    let Some(lock) = &a.index_lock else {
        return Ok(catalog::IndexWrites::Conditional);
    };
    let (namespace, name) =
        cluster::parse_lease_ref(lock).map_err(|e| Failure(format!("--index-lock {e}"), 2))?;
    let config = cluster::ConnectionConfig {
        kubeconfig_paths: a.kubeconfig.iter().cloned().collect(),
        context: a.kube_context.clone(),
        ..Default::default()
    };
    let cluster = cluster::connect(&config)
        .await
        .map_err(|e| Failure(format!("--index-lock {lock}: {e}"), 1))?;
    Ok(catalog::IndexWrites::Locked(Arc::new(
        cluster::LeaseIndexLock {
            cluster,
            namespace,
            name,
            wait: std::time::Duration::from_secs(a.index_lock_wait),
            cancel,
        },
    )))
}

/// A duration as a number and a unit: `90s`, `30m`, `1h`, `2d`.
fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 90s, 30m, 1h or 2d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?} has no unit; use s, m, h or d (e.g. 1h)")),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(secs)))
}

/// A token cancelled by the first SIGINT or SIGTERM, so the command stops and cleans up. The
/// SIGTERM handler is registered here, before anything else runs, not when the task is polled.
fn cancel_on_signals() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::spawn(async move {
        if interrupted(term).await {
            eprintln!("testnet-archiver: interrupted, cleaning up");
            on_signal.cancel();
        }
    });
    cancel
}

/// Create's progress: tar bytes read of the walk's total, files, compressed bytes written.
fn create_progress(meter: Arc<progress::Meter>) -> Arc<dyn Fn(&archiver::Progress) + Send + Sync> {
    Arc::new(move |p: &archiver::Progress| {
        let detail = format!(
            "{} files, {:.1} MiB compressed",
            p.files,
            p.compressed_bytes as f64 / (1024.0 * 1024.0)
        );
        meter.update(
            p.uncompressed_bytes,
            Some(p.total_bytes_estimate),
            p.elapsed,
            &detail,
        );
    })
}

/// Verify's and restore's progress: bytes of the object read, of its published size.
fn read_progress(
    meter: Arc<progress::Meter>,
) -> Arc<dyn Fn(&archiver::ReadProgress) + Send + Sync> {
    Arc::new(move |p: &archiver::ReadProgress| {
        meter.update(p.compressed_bytes, p.total_bytes, p.elapsed, "")
    })
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let s = serde_json::to_string_pretty(v)?;
    println!("{s}");
    Ok(())
}

/// Endpoint for a store URL: the flag, else the scheme's environment variables.
fn endpoint_for(conn: &Connection, url: &str) -> Option<String> {
    if conn.endpoint.is_some() {
        return conn.endpoint.clone();
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if url.starts_with("s3://") {
        env("TESTNET_S3_ENDPOINT").or_else(|| env("AWS_ENDPOINT_URL"))
    } else if url.starts_with("gs://") {
        env("TESTNET_GCS_ENDPOINT").or_else(|| {
            // STORAGE_EMULATOR_HOST is conventionally host:port without a scheme.
            env("STORAGE_EMULATOR_HOST").map(|h| {
                if h.contains("://") {
                    h
                } else {
                    format!("http://{h}")
                }
            })
        })
    } else {
        None
    }
}

async fn open_store(conn: &Connection, url: &str) -> Result<Arc<dyn ObjectStore>, Failure> {
    let config = StoreConfig {
        endpoint: endpoint_for(conn, url),
        force_path_style: conn.path_style,
        region: conn.region.clone(),
        sse: conn.sse.clone(),
    };
    let reads = objstore::RangedReads::with_connections(conn.connections.into());
    Ok(objstore::open_with_reads(url, &config, reads).await?)
}

/// Splits an artifact URL into its store prefix and key at the last `/`.
fn split_artifact_url(url: &str) -> Result<(&str, &str), Failure> {
    let usage = || {
        Failure(
            format!(
                "{url:?} is not an artifact URL; expected e.g. s3://bucket/prefix/NAME.tar.lz4"
            ),
            2,
        )
    };
    let (prefix, key) = url.rsplit_once('/').ok_or_else(usage)?;
    if key.is_empty() || prefix.ends_with(':') || prefix.ends_with(":/") {
        return Err(usage());
    }
    Ok((prefix, key))
}

async fn open_artifact(
    conn: &Connection,
    url: &str,
) -> Result<(Arc<dyn ObjectStore>, String), Failure> {
    let (prefix, key) = split_artifact_url(url)?;
    Ok((open_store(conn, prefix).await?, key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_durations() {
        assert_eq!(parse_grace("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_grace("1h"), Ok(std::time::Duration::from_secs(3600)));
        assert_eq!(parse_grace("0s"), Ok(std::time::Duration::ZERO));
        for bad in ["", "1", "h", "1x", "-1h"] {
            assert!(parse_grace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn artifact_urls_split_at_last_slash() {
        let ok = |u| split_artifact_url(u).ok();
        assert_eq!(
            ok("file:///tmp/s/a.tar.lz4"),
            Some(("file:///tmp/s", "a.tar.lz4"))
        );
        assert_eq!(
            ok("s3://bucket/p/q/a.tar.lz4"),
            Some(("s3://bucket/p/q", "a.tar.lz4"))
        );
        assert_eq!(
            ok("s3://bucket/a.tar.lz4"),
            Some(("s3://bucket", "a.tar.lz4"))
        );
        for bad in ["s3://bucket/", "a.tar.lz4", "s3://bucket"] {
            assert!(ok(bad).is_none(), "{bad}");
        }
    }
}
