//! The Docker engine (bollard): connect (a local socket, plain TCP, TLS, or ssh through
//! a local bridge) with API version negotiation, find the builder
//! it runs, and the housekeeping `prune` needs (local tags, build cache, free disk).
//! Building is in `build`, pushing in `push`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};

use super::address::DaemonAddress;
use super::session::SessionRoute;
use super::ssh::SshBridge;
use super::tls::{self, TlsDialer};

/// How long one request may take, context upload and build included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Which builder the daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderKind {
    /// BuildKit: what `docker build` has used by default since Docker 23; needed for
    /// `RUN --mount=type=cache`.
    BuildKit,
    /// The classic builder: a fallback for daemons without BuildKit.
    Classic,
}

/// A connected Docker engine.
#[derive(Clone)]
pub struct Engine {
    pub(super) client: bollard::Docker,
    pub builder: BuilderKind,
    /// `DOCKER_HOST` as given (the default socket's URL when unset).
    pub host: String,
    /// How a BuildKit session reaches the same daemon.
    pub(super) session_route: SessionRoute,
    /// An `ssh://` daemon's bridge: lives as long as any clone of the engine.
    _ssh: Option<Arc<SshBridge>>,
}

impl Engine {
    /// Connects to `DOCKER_HOST` (or the default socket) and negotiates the API version,
    /// since the daemon may be older than bollard's default.
    pub async fn connect() -> Result<Self> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        let unreachable = |err: &dyn std::fmt::Display| {
            anyhow!(
                "cannot reach the Docker daemon at {host}: {err}; start Docker (or point DOCKER_HOST at a running daemon)"
            )
        };
        let timeout = REQUEST_TIMEOUT.as_secs();
        let (client, session_route, ssh) = match DaemonAddress::from_env(&host)? {
            DaemonAddress::Unix(path) => (
                bollard::Docker::connect_with_unix(&host, timeout, bollard::API_DEFAULT_VERSION)
                    .map_err(|err| unreachable(&err))?,
                SessionRoute::Unix(path),
                None,
            ),
            DaemonAddress::Tcp(address) => (
                bollard::Docker::connect_with_http(&address, timeout, bollard::API_DEFAULT_VERSION)
                    .map_err(|err| unreachable(&err))?,
                SessionRoute::Tcp(address),
                None,
            ),
            DaemonAddress::Tls {
                address,
                server_name,
                cert_dir,
            } => {
                let dialer = TlsDialer::new(&address, &server_name, &cert_dir)?;
                // The handshake first, for one clear message per way it fails (bollard
                // would say only "client error (Connect)").
                dialer.check().await.map_err(|err| {
                    anyhow!("cannot reach the Docker daemon at {host} over TLS: {err:#}")
                })?;
                (
                    tls::bollard_client(&dialer, timeout)?,
                    SessionRoute::Tls(dialer),
                    None,
                )
            }
            DaemonAddress::Ssh(target) => {
                let bridge = SshBridge::start(&target)?;
                let socket = bridge.socket().to_path_buf();
                let client = bollard::Docker::connect_with_unix(
                    &socket.to_string_lossy(),
                    timeout,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|err| unreachable(&err))?;
                (client, SessionRoute::Unix(socket), Some(Arc::new(bridge)))
            }
        };
        let answered = async {
            let client = client.negotiate_version().await?;
            let version = client.version().await?;
            Ok::<_, bollard::errors::Error>((client, version))
        }
        .await;
        let (client, version) = match (answered, &ssh) {
            (Ok(answered), _) => answered,
            // What ssh said is the news ("Permission denied (publickey)", "docker: command
            // not found"), not the connection bollard saw closed.
            (Err(err), Some(bridge)) => {
                return Err(match bridge.failure(Duration::from_secs(5)).await {
                    Some(failure) => anyhow!(
                        "cannot reach the Docker daemon at {host}: {failure}. deploy runs `ssh … docker system dial-stdio` as the docker CLI does: check that `docker -H {host} info` works (keys, known hosts and users in ~/.ssh/config; docker installed on that host)"
                    ),
                    None => unreachable(&err),
                })
            }
            (Err(err), None) => return Err(unreachable(&err)),
        };
        tracing::debug!(?version.version, ?version.api_version, "docker daemon");
        // DOCKER_BUILDKIT=0 selects the classic builder, as it does for the docker CLI.
        let builder = match std::env::var("DOCKER_BUILDKIT").as_deref() {
            Ok("0") | Ok("false") => BuilderKind::Classic,
            _ if version.os.as_deref() == Some("windows") => BuilderKind::Classic,
            _ => BuilderKind::BuildKit,
        };
        Ok(Self {
            client,
            builder,
            host,
            session_route,
            _ssh: ssh,
        })
    }
}

/// A local image tag, for `prune`.
#[derive(Debug, Clone)]
pub struct LocalTag {
    /// `host/repo:tag` as tagged locally.
    pub reference: String,
    pub image_id: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
    pub size: i64,
}

impl Engine {
    /// Every tag of every local image.
    pub async fn local_tags(&self) -> Result<Vec<LocalTag>> {
        let images = self
            .client
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .context("cannot list the Docker images")?;
        Ok(images
            .into_iter()
            .flat_map(|image| {
                image
                    .repo_tags
                    .iter()
                    .filter(|tag| tag.as_str() != "<none>:<none>")
                    .map(|tag| LocalTag {
                        reference: tag.clone(),
                        image_id: image.id.clone(),
                        created: image.created,
                        size: image.size,
                    })
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// Untags (and removes, when it was the last tag) one image; never forced, so an
    /// image a container uses stays.
    pub async fn remove_tag(&self, reference: &str) -> Result<()> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(false)
            .build();
        self.client
            .remove_image(reference, Some(options), None)
            .await
            .with_context(|| format!("cannot remove {reference}"))?;
        Ok(())
    }

    /// `docker builder prune -af`: the whole build cache; returns the bytes reclaimed.
    pub async fn prune_build_cache(&self) -> Result<u64> {
        let options = bollard::query_parameters::PruneBuildOptionsBuilder::default()
            .all(true)
            .build();
        let response = self
            .client
            .prune_build(Some(options))
            .await
            .context("cannot prune the Docker build cache")?;
        Ok(response.space_reclaimed.unwrap_or(0).max(0) as u64)
    }

    /// What identifies the daemon, whichever socket or proxy reaches it: its ID, else
    /// the host it was reached at.
    pub async fn daemon_id(&self) -> String {
        match self.client.info().await.ok().and_then(|info| info.id) {
            Some(id) if !id.is_empty() => id,
            _ => self.host.clone(),
        }
    }

    /// Free bytes where the daemon keeps its data, when the daemon is on this machine.
    pub async fn free_disk(&self) -> Option<u64> {
        if !self.host.starts_with("unix://") {
            return None;
        }
        let root = self.client.info().await.ok()?.docker_root_dir?;
        let output = tokio::process::Command::new("df")
            .args(["-Pk", &root])
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let available_kib: u64 = text
            .lines()
            .nth(1)?
            .split_whitespace()
            .nth(3)?
            .parse()
            .ok()?;
        Some(available_kib * 1024)
    }
}

/// Whether a stream error is the daemon's answer (a build it failed), rather than the
/// connection to it failing.
pub(super) fn is_from_the_daemon(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error;
    matches!(
        err,
        Error::DockerResponseServerError { .. }
            | Error::DockerStreamError { .. }
            | Error::JsonDataError { .. }
            | Error::JsonSerdeError { .. }
    )
}
