//! Turning the provider's connection settings (or the environment) into a client for one cluster.
//!
//! Precedence, most specific first:
//! 1. explicit `host` (with `token` / client certificate / `exec` / CA from the same config);
//! 2. a kubeconfig: `kubeconfig_paths`, else `KUBECONFIG` (colon-separated), else `~/.kube/config`,
//!    using `context`, else `TESTNET_KUBE_CONTEXT`, else its current-context. Explicit `token`,
//!    certificates, `insecure` and `exec` still override the kubeconfig's user and cluster;
//! 3. `TESTNET_KUBE_HOST` / `TESTNET_KUBE_TOKEN`;
//! 4. the in-cluster service account (`KUBERNETES_SERVICE_HOST`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use kube::config::{
    AuthInfo, Cluster as KcCluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use kube::config::{ExecConfig as KubeExecConfig, KubeConfigOptions};

use crate::error::ClusterError;

/// Env var naming the kubeconfig context when the configuration names none.
pub const ENV_CONTEXT: &str = "TESTNET_KUBE_CONTEXT";
/// Env var giving the API server URL when neither config nor kubeconfig does.
pub const ENV_HOST: &str = "TESTNET_KUBE_HOST";
/// Env var giving the bearer token that goes with [`ENV_HOST`].
pub const ENV_TOKEN: &str = "TESTNET_KUBE_TOKEN";

/// An exec credential plugin (`gke-gcloud-auth-plugin`, `aws eks get-token`), run by kube's exec
/// support whenever a token is needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecConfig {
    /// `client.authentication.k8s.io/v1` or `v1beta1`.
    pub api_version: String,
    /// The program to run (looked up on PATH).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables for it.
    pub env: Vec<(String, String)>,
}

/// Everything the provider block can say about how to reach the cluster. All fields optional;
/// see the module doc for precedence.
#[derive(Debug, Clone, Default)]
pub struct ConnectionConfig {
    /// Kubeconfig files, merged in order (first one to set a value wins, like kubectl).
    pub kubeconfig_paths: Vec<PathBuf>,
    /// Kubeconfig context.
    pub context: Option<String>,
    /// API server URL, e.g. `https://10.0.0.1:6443`.
    pub host: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// PEM CA bundle that signed the server's certificate.
    pub cluster_ca_certificate: Option<String>,
    /// PEM client certificate.
    pub client_certificate: Option<String>,
    /// PEM client key.
    pub client_key: Option<String>,
    /// Skip verification of the server certificate (test clusters only).
    pub insecure: bool,
    /// Exec credential plugin.
    pub exec: Option<ExecConfig>,
}

/// Where the connection settings came from; reported for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `host` in the configuration.
    Explicit,
    /// A kubeconfig (files, context).
    Kubeconfig {
        /// Files merged.
        paths: Vec<PathBuf>,
        /// Context used, `None` for current-context.
        context: Option<String>,
    },
    /// `TESTNET_KUBE_HOST` / `TESTNET_KUBE_TOKEN`.
    Environment,
    /// The pod's service account.
    InCluster,
}

/// `~/x` means `x` in the home directory, as in kubectl; Terraform passes the text unexpanded.
fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// Which source applies, decided from the config and a view of the environment. Pure so that the
/// precedence rules are unit-tested without touching the process environment.
pub fn resolve_source(
    cfg: &ConnectionConfig,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    home: Option<&Path>,
) -> Result<Source, ClusterError> {
    if cfg.host.as_deref().is_some_and(|h| !h.is_empty()) {
        return Ok(Source::Explicit);
    }
    let context = cfg
        .context
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| env(ENV_CONTEXT).filter(|c| !c.is_empty()));
    if !cfg.kubeconfig_paths.is_empty() {
        // Named explicitly: a missing file is an error, not a reason to fall through.
        return Ok(Source::Kubeconfig {
            paths: cfg
                .kubeconfig_paths
                .iter()
                .map(|p| expand_home(p, home))
                .collect(),
            context,
        });
    }
    let mut tried = Vec::new();
    if let Some(list) = env("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&list)
            .map(|p| expand_home(&p, home))
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        if !paths.is_empty() {
            return Ok(Source::Kubeconfig { paths, context });
        }
        tried.push(format!("KUBECONFIG={list} (no such files)"));
    } else if let Some(home) = home {
        let p = home.join(".kube").join("config");
        if p.exists() {
            return Ok(Source::Kubeconfig {
                paths: vec![p],
                context,
            });
        }
        tried.push(format!("{} (absent)", p.display()));
    }
    if env(ENV_HOST).is_some_and(|h| !h.is_empty()) {
        return Ok(Source::Environment);
    }
    tried.push(format!("{ENV_HOST} (unset)"));
    if env("KUBERNETES_SERVICE_HOST").is_some_and(|h| !h.is_empty()) {
        return Ok(Source::InCluster);
    }
    tried.push("in-cluster service account (KUBERNETES_SERVICE_HOST unset)".into());
    Err(ClusterError::NoConfiguration {
        tried: tried.join(", "),
    })
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn check_pem(field: &'static str, pem: &str) -> Result<(), ClusterError> {
    if pem.contains("-----BEGIN ") {
        Ok(())
    } else {
        Err(ClusterError::InvalidConfig {
            field,
            reason: "expected PEM text starting with -----BEGIN".into(),
        })
    }
}

fn to_kube_exec(e: &ExecConfig) -> KubeExecConfig {
    KubeExecConfig {
        api_version: Some(if e.api_version.is_empty() {
            "client.authentication.k8s.io/v1beta1".to_string()
        } else {
            e.api_version.clone()
        }),
        command: Some(e.command.clone()),
        args: Some(e.args.clone()),
        env: Some(
            e.env
                .iter()
                .map(|(k, v)| {
                    HashMap::from([
                        ("name".to_string(), k.clone()),
                        ("value".to_string(), v.clone()),
                    ])
                })
                .collect(),
        ),
        // A provider runs under Terraform with no terminal: a plugin must never wait for input.
        interactive_mode: Some(kube::config::ExecInteractiveMode::Never),
        ..Default::default()
    }
}

/// Apply the explicit server settings of `cfg` (CA, insecure) over a kubeconfig cluster.
fn overlay_cluster(cfg: &ConnectionConfig, cluster: &mut KcCluster) -> Result<(), ClusterError> {
    if let Some(ca) = cfg
        .cluster_ca_certificate
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        check_pem("cluster_ca_certificate", ca)?;
        cluster.certificate_authority_data = Some(b64(ca));
        cluster.certificate_authority = None;
    }
    if cfg.insecure {
        cluster.insecure_skip_tls_verify = Some(true);
    }
    Ok(())
}

/// Apply the explicit credential settings of `cfg` (token, client certificate, exec) over a
/// kubeconfig user.
fn overlay_user(cfg: &ConnectionConfig, user: &mut AuthInfo) -> Result<(), ClusterError> {
    let cert = cfg.client_certificate.as_deref().filter(|s| !s.is_empty());
    let key = cfg.client_key.as_deref().filter(|s| !s.is_empty());
    match (cert, key) {
        (Some(c), Some(k)) => {
            check_pem("client_certificate", c)?;
            check_pem("client_key", k)?;
            user.client_certificate_data = Some(b64(c));
            user.client_key_data = Some(b64(k).into());
            user.client_certificate = None;
            user.client_key = None;
        }
        (Some(_), None) => {
            return Err(ClusterError::InvalidConfig {
                field: "client_key",
                reason: "client_certificate is set but client_key is not; set both".into(),
            })
        }
        (None, Some(_)) => {
            return Err(ClusterError::InvalidConfig {
                field: "client_certificate",
                reason: "client_key is set but client_certificate is not; set both".into(),
            })
        }
        (None, None) => {}
    }
    if let Some(t) = cfg.token.as_deref().filter(|s| !s.is_empty()) {
        user.token = Some(t.to_string().into());
        user.token_file = None;
        user.exec = None;
    }
    if let Some(e) = &cfg.exec {
        if e.command.is_empty() {
            return Err(ClusterError::InvalidConfig {
                field: "exec",
                reason: "exec.command is empty".into(),
            });
        }
        user.exec = Some(to_kube_exec(e));
        user.token = None;
    }
    Ok(())
}

/// A one-context kubeconfig for an explicit host, so that explicit settings go through the same
/// loader (CA, certificates, exec plugin) as files do.
fn single_kubeconfig(host: &str, cfg: &ConnectionConfig) -> Result<Kubeconfig, ClusterError> {
    host.parse::<http::Uri>()
        .ok()
        .filter(|u| u.scheme().is_some() && u.host().is_some())
        .ok_or_else(|| ClusterError::InvalidConfig {
            field: "host",
            reason: format!("{host:?} is not a URL like https://10.0.0.1:6443"),
        })?;
    let mut cluster = KcCluster {
        server: Some(host.to_string()),
        ..Default::default()
    };
    let mut user = AuthInfo::default();
    overlay_cluster(cfg, &mut cluster)?;
    overlay_user(cfg, &mut user)?;
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: "explicit".into(),
            cluster: Some(cluster),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "explicit".into(),
            auth_info: Some(user),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: "explicit".into(),
            context: Some(Context {
                cluster: "explicit".into(),
                user: Some("explicit".into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some("explicit".into()),
        ..Default::default()
    })
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Read and merge kubeconfig files, then pick the context and apply explicit overrides.
fn load_kubeconfig(
    paths: &[PathBuf],
    context: Option<&str>,
    cfg: &ConnectionConfig,
) -> Result<(Kubeconfig, String), ClusterError> {
    let shown = join_paths(paths);
    let mut merged: Option<Kubeconfig> = None;
    for p in paths {
        let kc = Kubeconfig::read_from(p).map_err(|e| ClusterError::BadKubeconfig {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m.merge(kc).map_err(|e| ClusterError::BadKubeconfig {
                path: shown.clone(),
                reason: e.to_string(),
            })?,
        });
    }
    let mut kc = merged.unwrap_or_default();
    let available: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
    let ctx_name = match context {
        Some(c) => c.to_string(),
        None => kc
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ClusterError::BadKubeconfig {
                path: shown.clone(),
                reason: format!(
                    "it has no current-context; set `context` to one of: {}",
                    available.join(", ")
                ),
            })?,
    };
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| ClusterError::UnknownContext {
            context: ctx_name.clone(),
            path: shown.clone(),
            available: available.clone(),
        })?;
    let cluster = kc
        .clusters
        .iter_mut()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_mut())
        .ok_or_else(|| ClusterError::BadKubeconfig {
            path: shown.clone(),
            reason: format!(
                "context {ctx_name:?} names cluster {:?}, which is not defined",
                ctx.cluster
            ),
        })?;
    overlay_cluster(cfg, cluster)?;
    let user_name = ctx.user.clone().unwrap_or_default();
    match kc.auth_infos.iter_mut().find(|u| u.name == user_name) {
        Some(u) => {
            let mut user = u.auth_info.take().unwrap_or_default();
            overlay_user(cfg, &mut user)?;
            u.auth_info = Some(user);
        }
        // The context's user may be missing when the credentials come only from the config.
        None if !user_name.is_empty() => {
            let mut user = AuthInfo::default();
            overlay_user(cfg, &mut user)?;
            kc.auth_infos.push(NamedAuthInfo {
                name: user_name,
                auth_info: Some(user),
                ..Default::default()
            });
        }
        None => {}
    }
    Ok((kc, ctx_name))
}

/// A connected cluster: a kube client plus where it came from. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) client: kube::Client,
    pub(crate) url: String,
    source: Source,
    /// The exec credential plugin, for naming it when it fails on a token refresh.
    exec_command: Option<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("url", &self.url)
            .field("source", &self.source)
            .finish()
    }
}

/// What `GET /version` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// e.g. `v1.20.2`.
    pub git_version: String,
    /// Major version.
    pub major: String,
    /// Minor version.
    pub minor: String,
}

fn install_crypto_provider() {
    // Other crates may compile rustls with ring too; then rustls cannot choose and panics unless a
    // process default is installed. "Already installed" is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Build a client from the configuration, following the precedence in the module doc. Does not
/// contact the server: call [`Cluster::check`] for early connection and credential errors.
pub async fn connect(cfg: &ConnectionConfig) -> Result<Cluster, ClusterError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env = |k: &str| std::env::var(k).ok();
    let source = resolve_source(cfg, &env, home.as_deref())?;
    connect_from(cfg, source, &env).await
}

async fn connect_from(
    cfg: &ConnectionConfig,
    source: Source,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Cluster, ClusterError> {
    install_crypto_provider();
    let config = match &source {
        Source::Explicit => {
            let host = cfg.host.clone().unwrap_or_default();
            let kc = single_kubeconfig(&host, cfg)?;
            kube_config(kc, "explicit", "host").await?
        }
        Source::Environment => {
            let host = env(ENV_HOST).unwrap_or_default();
            let mut with_token = cfg.clone();
            if with_token.token.is_none() {
                with_token.token = env(ENV_TOKEN);
            }
            let kc = single_kubeconfig(&host, &with_token).map_err(|e| match e {
                ClusterError::InvalidConfig { reason, .. } => ClusterError::InvalidConfig {
                    field: "TESTNET_KUBE_HOST",
                    reason,
                },
                other => other,
            })?;
            kube_config(kc, "explicit", ENV_HOST).await?
        }
        Source::Kubeconfig { paths, context } => {
            let (kc, ctx) = load_kubeconfig(paths, context.as_deref(), cfg)?;
            let shown = join_paths(paths);
            kube_config(kc, &ctx, &shown).await?
        }
        Source::InCluster => {
            kube::Config::incluster().map_err(|e| ClusterError::InvalidConfig {
                field: "in-cluster",
                reason: format!(
                    "{e}; run inside a pod with a service account, or configure host/kubeconfig"
                ),
            })?
        }
    };
    let url = config.cluster_url.to_string();
    let exec_command = config
        .auth_info
        .exec
        .as_ref()
        .and_then(|e| e.command.clone());
    // kube runs the exec plugin while building the client, so its failures surface here.
    let client = kube::Client::try_from(config).map_err(|e| match e {
        kube::Error::Auth(a) => plugin_error(exec_command.as_deref(), a),
        e => ClusterError::InvalidConfig {
            field: "tls",
            reason: e.to_string(),
        },
    })?;
    tracing::debug!(url = %url, source = ?source, "kubernetes client configured");
    Ok(Cluster {
        client,
        url: url.trim_end_matches('/').to_string(),
        source,
        exec_command,
    })
}

/// An auth failure as a credential-plugin error when a plugin is configured. kube's own message
/// for a failed run prints the command's environment, so it is rebuilt from the exit status and
/// stderr alone.
fn plugin_error(command: Option<&str>, e: kube::client::AuthError) -> ClusterError {
    use kube::client::AuthError as A;
    let detail = match &e {
        A::AuthExecRun { out, .. } => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            format!("{}: {}", out.status, stderr.trim())
        }
        A::AuthExecStart(io) => format!("it could not be started: {io}"),
        A::AuthExecParse(p) => format!("its output is not an ExecCredential: {p}"),
        other => other.to_string(),
    };
    match command {
        Some(c) => ClusterError::CredentialPlugin {
            command: c.to_string(),
            detail,
        },
        None => ClusterError::InvalidConfig {
            field: "credentials",
            reason: detail,
        },
    }
}

async fn kube_config(
    kc: Kubeconfig,
    context: &str,
    shown: &str,
) -> Result<kube::Config, ClusterError> {
    let opts = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| ClusterError::BadKubeconfig {
            path: shown.to_string(),
            reason: e.to_string(),
        })
}

impl Cluster {
    /// The API server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the settings came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The underlying kube client, for callers that need a kind this crate does not wrap.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// `GET /version`: proves the server is reachable and the credentials are accepted, cheaply,
    /// before any plan or apply work.
    pub async fn check(&self) -> Result<ServerVersion, ClusterError> {
        match self.client.apiserver_version().await {
            Ok(info) => Ok(ServerVersion {
                git_version: info.git_version,
                major: info.major,
                minor: info.minor,
            }),
            Err(kube::Error::Api(s)) if s.code == 401 => Err(ClusterError::Unauthorized {
                url: self.url.clone(),
                message: s.message,
            }),
            Err(kube::Error::Api(s)) => Err(ClusterError::Api {
                verb: "get",
                object: crate::error::ObjectRef::cluster("Version", "/version"),
                code: s.code,
                reason: s.reason,
                message: s.message,
            }),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    fn unreachable(&self, e: kube::Error) -> ClusterError {
        let mut detail = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            let t = s.to_string();
            if !detail.contains(&t) {
                detail.push_str(": ");
                detail.push_str(&t);
            }
            src = s.source();
        }
        let lower = detail.to_lowercase();
        let hint = if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            "TLS verification failed: set cluster_ca_certificate to the CA that signed the server certificate (or insecure = true for a throwaway test cluster)"
        } else if lower.contains("exec") || lower.contains("auth") {
            "The credential plugin failed: run it by hand to see why (is it installed and logged in?)"
        } else {
            "Check the host and port, that the cluster is running, and any VPN or firewall in between"
        };
        ClusterError::Unreachable {
            url: self.url.clone(),
            detail,
            hint,
        }
    }

    /// Map a kube error, filling in the server URL for credential errors.
    pub(crate) fn err(
        &self,
        e: kube::Error,
        verb: &'static str,
        object: crate::error::ObjectRef,
    ) -> ClusterError {
        match e {
            kube::Error::Api(_) => match ClusterError::from_kube(e, verb, object) {
                ClusterError::Unauthorized { message, .. } => ClusterError::Unauthorized {
                    url: self.url.clone(),
                    message,
                },
                other => other,
            },
            kube::Error::Auth(a) if self.exec_command.is_some() => {
                plugin_error(self.exec_command.as_deref(), a)
            }
            kube::Error::Auth(_) => self.unreachable(e),
            other => ClusterError::from_kube(other, verb, object),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as Map;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: Map<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn explicit_host_wins_over_everything() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kc");
        std::fs::write(&kc, "apiVersion: v1\nkind: Config\n").unwrap();
        let cfg = ConnectionConfig {
            host: Some("https://1.2.3.4".into()),
            kubeconfig_paths: vec![kc.clone()],
            ..Default::default()
        };
        let env = env_of(&[
            ("TESTNET_KUBE_HOST", "https://x"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ]);
        assert_eq!(resolve_source(&cfg, &env, None).unwrap(), Source::Explicit);
    }

    #[test]
    fn tilde_in_a_kubeconfig_path_is_the_home_directory() {
        let home = Path::new("/home/op");
        let cfg = ConnectionConfig {
            kubeconfig_paths: vec![PathBuf::from("~/.kube/config"), PathBuf::from("/x/~y")],
            ..Default::default()
        };
        let env = env_of(&[]);
        assert_eq!(
            resolve_source(&cfg, &env, Some(home)).unwrap(),
            Source::Kubeconfig {
                paths: vec![
                    PathBuf::from("/home/op/.kube/config"),
                    PathBuf::from("/x/~y")
                ],
                context: None,
            }
        );
    }

    #[test]
    fn kubeconfig_precedence_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".kube")).unwrap();
        std::fs::write(home.join(".kube/config"), "").unwrap();

        // Paths in the config beat KUBECONFIG; the context falls back to TESTNET_KUBE_CONTEXT.
        let cfg = ConnectionConfig {
            kubeconfig_paths: vec![a.clone()],
            ..Default::default()
        };
        let kubeconfig_env = format!("{}:{}", b.display(), dir.path().join("missing").display());
        let env = env_of(&[
            ("KUBECONFIG", &kubeconfig_env),
            ("TESTNET_KUBE_CONTEXT", "ctx-env"),
        ]);
        assert_eq!(
            resolve_source(&cfg, &env, Some(&home)).unwrap(),
            Source::Kubeconfig {
                paths: vec![a.clone()],
                context: Some("ctx-env".into())
            }
        );
        // The explicit context beats the env var.
        let cfg2 = ConnectionConfig {
            context: Some("ctx-cfg".into()),
            ..cfg.clone()
        };
        assert_eq!(
            resolve_source(&cfg2, &env, Some(&home)).unwrap(),
            Source::Kubeconfig {
                paths: vec![a.clone()],
                context: Some("ctx-cfg".into())
            }
        );
        // KUBECONFIG (existing files only) beats ~/.kube/config.
        let none = ConnectionConfig::default();
        assert_eq!(
            resolve_source(&none, &env, Some(&home)).unwrap(),
            Source::Kubeconfig {
                paths: vec![b.clone()],
                context: Some("ctx-env".into())
            }
        );
        // Then ~/.kube/config.
        assert_eq!(
            resolve_source(&none, &env_of(&[]), Some(&home)).unwrap(),
            Source::Kubeconfig {
                paths: vec![home.join(".kube/config")],
                context: None
            }
        );
    }

    #[test]
    fn env_then_in_cluster_then_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let none = ConnectionConfig::default();
        let env = env_of(&[
            ("TESTNET_KUBE_HOST", "https://h"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ]);
        assert_eq!(
            resolve_source(&none, &env, Some(dir.path())).unwrap(),
            Source::Environment
        );
        let env = env_of(&[("KUBERNETES_SERVICE_HOST", "10.0.0.1")]);
        assert_eq!(
            resolve_source(&none, &env, Some(dir.path())).unwrap(),
            Source::InCluster
        );
        let e = resolve_source(&none, &env_of(&[]), Some(dir.path())).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(".kube/config (absent)") && msg.contains("TESTNET_KUBE_HOST"),
            "{msg}"
        );
    }

    const KC: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: u1
  user:
    token: from-file
contexts:
- name: one
  context: {cluster: c1, user: u1}
- name: two
  context: {cluster: c1, user: u1, namespace: ns2}
current-context: one
"#;

    #[test]
    fn unknown_context_lists_available() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(&p, KC).unwrap();
        let e =
            load_kubeconfig(&[p.clone()], Some("three"), &ConnectionConfig::default()).unwrap_err();
        match e {
            ClusterError::UnknownContext {
                context, available, ..
            } => {
                assert_eq!(context, "three");
                assert_eq!(available, vec!["one", "two"]);
            }
            other => panic!("unexpected {other}"),
        }
        let (_, ctx) = load_kubeconfig(&[p.clone()], None, &ConnectionConfig::default()).unwrap();
        assert_eq!(ctx, "one");
    }

    #[test]
    fn explicit_token_overrides_kubeconfig_user() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(&p, KC).unwrap();
        let cfg = ConnectionConfig {
            token: Some("explicit".into()),
            ..Default::default()
        };
        let (kc, _) = load_kubeconfig(&[p], Some("two"), &cfg).unwrap();
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(
            user.token.as_ref().map(|t| t.expose_secret().to_string()),
            Some("explicit".into())
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(&p, "clusters: [ this is not yaml").unwrap();
        assert!(matches!(
            load_kubeconfig(&[p.clone()], None, &ConnectionConfig::default()),
            Err(ClusterError::BadKubeconfig { path, .. }) if path == p.display().to_string()
        ));
        let missing = dir.path().join("nope");
        assert!(matches!(
            load_kubeconfig(&[missing], None, &ConnectionConfig::default()),
            Err(ClusterError::BadKubeconfig { .. })
        ));
        let cfg = ConnectionConfig {
            host: Some("not a url".into()),
            ..Default::default()
        };
        assert!(matches!(
            single_kubeconfig("not a url", &cfg),
            Err(ClusterError::InvalidConfig { field: "host", .. })
        ));
        let cfg = ConnectionConfig {
            cluster_ca_certificate: Some("garbage".into()),
            ..Default::default()
        };
        assert!(matches!(
            single_kubeconfig("https://h", &cfg),
            Err(ClusterError::InvalidConfig {
                field: "cluster_ca_certificate",
                ..
            })
        ));
        let cfg = ConnectionConfig {
            client_certificate: Some("-----BEGIN CERTIFICATE-----".into()),
            ..Default::default()
        };
        assert!(matches!(
            single_kubeconfig("https://h", &cfg),
            Err(ClusterError::InvalidConfig {
                field: "client_key",
                ..
            })
        ));
    }
}
