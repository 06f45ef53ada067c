//! Which Docker daemon, when `DOCKER_HOST` is not set: the Docker context, chosen and read
//! as the docker CLI does (Docker Desktop, Colima, OrbStack, Rancher Desktop and rootless
//! Docker all select theirs this way).
//!
//! The CLI's precedence (`cli/command/cli.go`, `resolveContextName`): `DOCKER_HOST` (the
//! default context on that host), else `DOCKER_CONTEXT`, else `currentContext` in
//! `config.json`, else the default context; `default` names the default context. A named
//! context's endpoint is in its store (`cli/context/store`): `contexts/meta/<sha256 of the
//! name>/meta.json` (`Endpoints.docker.Host`, `SkipTLSVerify`) and its TLS material in
//! `contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::address::DaemonAddress;
use super::docker_config::{self, DockerConfig};

/// The daemon when nothing names one.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the daemon's address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`).
    DockerHost(String),
    /// A named context, and what named it (`DOCKER_CONTEXT`, or `currentContext in <file>`).
    Context { name: String, named_by: String },
    /// The default socket.
    Default,
}

/// The docker CLI's precedence, from the values of `DOCKER_HOST`, `DOCKER_CONTEXT` and
/// `currentContext` (empty values count as unset, as for the CLI).
pub fn choose(
    docker_host: Option<&str>,
    docker_context: Option<&str>,
    current_context: Option<&str>,
    config_path: &Path,
) -> Choice {
    let set = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
    if let Some(host) = set(docker_host) {
        return Choice::DockerHost(host);
    }
    let named = set(docker_context)
        .map(|name| (name, "DOCKER_CONTEXT".to_owned()))
        .or_else(|| {
            set(current_context)
                .map(|name| (name, format!("currentContext in {}", config_path.display())))
        });
    match named {
        Some((name, _)) if name == "default" => Choice::Default,
        Some((name, named_by)) => Choice::Context { name, named_by },
        None => Choice::Default,
    }
}

/// The daemon deploy talks to, and how it was chosen (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// The endpoint's URL (`unix://…`, `tcp://…`, `ssh://…`).
    pub host: String,
    pub address: DaemonAddress,
    /// `Docker context `colima` (DOCKER_CONTEXT)`; none for DOCKER_HOST and the default.
    pub context: Option<String>,
}

impl Daemon {
    /// The daemon chosen as the docker CLI chooses it, from the environment and the
    /// docker CLI's configuration directory.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        let dir = docker_config::config_dir();
        let docker_host = var("DOCKER_HOST");
        let docker_context = var("DOCKER_CONTEXT");
        // config.json is read only when no variable decides: a broken file is the
        // registry logins' business (and the CLI's), not a reason to refuse DOCKER_HOST.
        let needs_file = [&docker_host, &docker_context]
            .iter()
            .all(|v| v.as_deref().is_none_or(str::is_empty));
        let config = if needs_file {
            DockerConfig::load(&dir)?
        } else {
            DockerConfig::default()
        };
        let choice = choose(
            docker_host.as_deref(),
            docker_context.as_deref(),
            config.current_context.as_deref(),
            &dir.join("config.json"),
        );
        Self::resolve(choice, &dir)
    }

    /// The daemon of `choice`; a named context is read from the store under `dir`.
    pub fn resolve(choice: Choice, dir: &Path) -> Result<Self> {
        match choice {
            Choice::DockerHost(host) => Ok(Self {
                address: DaemonAddress::from_env(&host)?,
                host,
                context: None,
            }),
            Choice::Default => Ok(Self {
                host: DEFAULT_HOST.to_owned(),
                address: DaemonAddress::parse(DEFAULT_HOST, None)?,
                context: None,
            }),
            Choice::Context { name, named_by } => {
                let described = format!("Docker context `{name}` ({named_by})");
                let endpoint =
                    read_endpoint(dir, &name).map_err(|err| anyhow!("{described}: {err:#}"))?;
                let address = endpoint
                    .address()
                    .map_err(|err| anyhow!("{described}: {err:#}"))?;
                Ok(Self {
                    host: endpoint.host,
                    address,
                    context: Some(described),
                })
            }
        }
    }

    /// `at <host>`, with the context when one chose it.
    pub fn describe(&self) -> String {
        match &self.context {
            Some(context) => format!("{} (from {context})", self.host),
            None => self.host.clone(),
        }
    }
}

/// A context's store entries: `meta/<id>` and `tls/<id>`, the id the SHA-256 of its name.
fn store_id(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `meta.json` as deploy reads it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    #[serde(default)]
    endpoints: std::collections::BTreeMap<String, MetaEndpoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetaEndpoint {
    #[serde(default)]
    host: String,
    #[serde(default, rename = "SkipTLSVerify")]
    skip_tls_verify: bool,
}

/// A context's Docker endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub skip_tls_verify: bool,
    /// `contexts/tls/<id>/docker`, when the context has TLS material.
    pub tls_dir: Option<PathBuf>,
}

/// Reads a context's Docker endpoint from the store under `dir` (the docker CLI's
/// configuration directory).
pub fn read_endpoint(dir: &Path, name: &str) -> Result<Endpoint> {
    let id = store_id(name);
    let meta_path = dir.join("contexts/meta").join(&id).join("meta.json");
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "no such context in the docker CLI's context store ({} is missing): list the contexts with `docker context ls`, then `docker context use <name>` or set DOCKER_CONTEXT to one of them (or DOCKER_HOST to a daemon)",
            meta_path.display()
        ),
        Err(err) => bail!("cannot read {}: {err}", meta_path.display()),
    };
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    parse_endpoint(&text, &meta_path, tls_dir.is_dir().then_some(tls_dir))
}

/// The Docker endpoint in a context's `meta.json` text.
pub fn parse_endpoint(text: &str, meta_path: &Path, tls_dir: Option<PathBuf>) -> Result<Endpoint> {
    let meta: Meta = serde_json::from_str(text).map_err(|err| {
        anyhow!(
            "{} is not a context's metadata ({err})",
            meta_path.display()
        )
    })?;
    let endpoint = meta.endpoints.get("docker").ok_or_else(|| {
        anyhow!(
            "{} has no Docker endpoint (Endpoints.docker)",
            meta_path.display()
        )
    })?;
    if endpoint.host.is_empty() {
        bail!(
            "{} names no host for the Docker endpoint (Endpoints.docker.Host)",
            meta_path.display()
        );
    }
    Ok(Endpoint {
        host: endpoint.host.clone(),
        skip_tls_verify: endpoint.skip_tls_verify,
        tls_dir,
    })
}

impl Endpoint {
    /// The endpoint's address: a TCP host with TLS material in the store is reached over
    /// TLS with it, as the CLI does; sockets and ssh take none.
    pub fn address(&self) -> Result<DaemonAddress> {
        let tcp = self.host.starts_with("tcp://") || self.host.starts_with("http://");
        if tcp && self.skip_tls_verify {
            bail!(
                "its endpoint {} skips TLS verification (SkipTLSVerify), which deploy does not do: give the context the daemon's CA (`docker context update <name> --docker \"host={},ca=…,cert=…,key=…\"`)",
                self.host,
                self.host
            );
        }
        let tls = if tcp { self.tls_dir.as_deref() } else { None };
        DaemonAddress::parse(&self.host, tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PathBuf {
        PathBuf::from("/home/me/.docker/config.json")
    }

    #[test]
    fn docker_host_beats_docker_context_beats_current_context() {
        let context = |name: &str, by: &str| Choice::Context {
            name: name.into(),
            named_by: by.into(),
        };
        let cases = [
            (
                Some("tcp://b:2375"),
                Some("ctx"),
                Some("cur"),
                Choice::DockerHost("tcp://b:2375".into()),
            ),
            (
                None,
                Some("ctx"),
                Some("cur"),
                context("ctx", "DOCKER_CONTEXT"),
            ),
            (
                Some(""),
                Some("ctx"),
                None,
                context("ctx", "DOCKER_CONTEXT"),
            ),
            (
                None,
                None,
                Some("cur"),
                context("cur", "currentContext in /home/me/.docker/config.json"),
            ),
            (
                None,
                Some(""),
                Some("cur"),
                context("cur", "currentContext in /home/me/.docker/config.json"),
            ),
            (None, Some("default"), Some("cur"), Choice::Default),
            (None, None, Some("default"), Choice::Default),
            (None, None, None, Choice::Default),
            (None, None, Some(""), Choice::Default),
        ];
        for (host, ctx, current, expected) in cases {
            assert_eq!(
                choose(host, ctx, current, &config()),
                expected,
                "{host:?} {ctx:?} {current:?}"
            );
        }
    }

    #[test]
    fn the_store_id_is_the_sha256_of_the_name() {
        // `docker context create colima` stores it under this directory.
        assert_eq!(
            store_id("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }

    #[test]
    fn meta_json_as_docker_context_create_writes_it() {
        let meta = r#"{"Name":"colima","Metadata":{"Description":"colima"},"Endpoints":{"docker":{"Host":"unix:///Users/me/.colima/default/docker.sock","SkipTLSVerify":false}}}"#;
        let endpoint = parse_endpoint(meta, Path::new("meta.json"), None).unwrap();
        assert_eq!(
            endpoint.host,
            "unix:///Users/me/.colima/default/docker.sock"
        );
        assert_eq!(
            endpoint.address().unwrap(),
            DaemonAddress::Unix("/Users/me/.colima/default/docker.sock".into())
        );
    }

    #[test]
    fn a_tcp_endpoint_with_tls_material_is_reached_over_tls_with_it() {
        let meta = r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://builder:2376"}}}"#;
        let tls = PathBuf::from("/home/me/.docker/contexts/tls/x/docker");
        let endpoint = parse_endpoint(meta, Path::new("meta.json"), Some(tls.clone())).unwrap();
        assert_eq!(
            endpoint.address().unwrap(),
            DaemonAddress::Tls {
                address: "builder:2376".into(),
                server_name: "builder".into(),
                cert_dir: tls.clone(),
            }
        );
        let plain = parse_endpoint(meta, Path::new("meta.json"), None).unwrap();
        assert_eq!(
            plain.address().unwrap(),
            DaemonAddress::Tcp("builder:2376".into())
        );
        // ssh takes no TLS material.
        let ssh = r#"{"Endpoints":{"docker":{"Host":"ssh://me@builder"}}}"#;
        let endpoint = parse_endpoint(ssh, Path::new("meta.json"), Some(tls)).unwrap();
        assert!(matches!(endpoint.address().unwrap(), DaemonAddress::Ssh(_)));
    }

    #[test]
    fn what_deploy_cannot_use_is_said() {
        let skip = r#"{"Endpoints":{"docker":{"Host":"tcp://builder:2376","SkipTLSVerify":true}}}"#;
        let err = parse_endpoint(skip, Path::new("m.json"), None)
            .unwrap()
            .address()
            .unwrap_err()
            .to_string();
        assert!(err.contains("SkipTLSVerify"), "{err}");
        for (meta, said) in [
            (r#"{"Endpoints":{}}"#, "no Docker endpoint"),
            (r#"{"Endpoints":{"docker":{"Host":""}}}"#, "names no host"),
            ("{", "is not a context's metadata"),
        ] {
            let err = parse_endpoint(meta, Path::new("m.json"), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(said), "{meta}: {err}");
        }
    }

    #[test]
    fn a_context_missing_from_the_store_is_one_error_naming_it_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = Daemon::resolve(
            Choice::Context {
                name: "colima".into(),
                named_by: "DOCKER_CONTEXT".into(),
            },
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("Docker context `colima` (DOCKER_CONTEXT): no such context"),
            "{err}"
        );
        assert!(err.contains("docker context ls"), "{err}");
        assert!(err.contains(&store_id("colima")), "{err}");
    }

    #[test]
    fn a_context_in_the_store_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let id = store_id("remote");
        let meta = dir.path().join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://127.0.0.1:2376"}}}"#,
        )
        .unwrap();
        let tls = dir.path().join("contexts/tls").join(&id).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        let daemon = Daemon::resolve(
            Choice::Context {
                name: "remote".into(),
                named_by: "DOCKER_CONTEXT".into(),
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(daemon.host, "tcp://127.0.0.1:2376");
        assert!(
            matches!(daemon.address, DaemonAddress::Tls { ref cert_dir, .. } if *cert_dir == tls)
        );
        assert_eq!(
            daemon.describe(),
            "tcp://127.0.0.1:2376 (from Docker context `remote` (DOCKER_CONTEXT))"
        );
    }
}
