//! The Docker engine (bollard): connect (a local socket, plain TCP, TLS, or ssh through
//! a local bridge) with API version negotiation, find the builder
//! it runs, and the housekeeping `prune` needs (local tags, build cache, free disk).
//! Building is in `build`, pushing in `push`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};

use super::address::DaemonAddress;
use super::context::Daemon;
use super::session::SessionRoute;
use super::ssh::SshBridge;
use super::tls::{self, TlsDialer};

/// How long one request may take, context upload and build included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// How long a call outside builds and pushes may take (version, info, list, remove):
/// a daemon that accepts the connection and never answers ends the call, not the run.
const API_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The daemon's URL: `DOCKER_HOST` as given, the Docker context's endpoint, or the
    /// default socket's.
    pub host: String,
    /// How a BuildKit session reaches the same daemon.
    pub(super) session_route: SessionRoute,
    /// An `ssh://` daemon's bridge: lives as long as any clone of the engine.
    _ssh: Option<Arc<SshBridge>>,
}

impl Engine {
    /// Connects to the daemon the docker CLI would use (`DOCKER_HOST`, else the Docker
    /// context, else the default socket) and negotiates the API version, since the daemon
    /// may be older than bollard's default.
    pub async fn connect() -> Result<Self> {
        let daemon = Daemon::from_env()?;
        let host = daemon.host.clone();
        let at = daemon.describe();
        let remedy = match &daemon.context {
            Some(_) => "start that context's Docker (or choose another: `docker context use <name>`, DOCKER_CONTEXT or DOCKER_HOST)",
            None => "start Docker (or point DOCKER_HOST at a running daemon)",
        };
        let unreachable = |err: &dyn std::fmt::Display| {
            anyhow!("cannot reach the Docker daemon at {at}: {err}; {remedy}")
        };
        let timeout = REQUEST_TIMEOUT.as_secs();
        let (client, session_route, ssh) = match daemon.address {
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
                let dialer =
                    TlsDialer::new(&address, &server_name, &cert_dir, daemon.context.as_deref())?;
                // The handshake first, for one clear message per way it fails (bollard
                // would say only "client error (Connect)").
                dialer.check().await.map_err(|err| {
                    anyhow!("cannot reach the Docker daemon at {at} over TLS: {err:#}")
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
        };
        let answered = tokio::time::timeout(API_TIMEOUT, answered)
            .await
            .map_err(|_| {
                anyhow!(
                    "the Docker daemon at {host} did not answer GET /version within {}s: is it stuck? (`docker -H {host} version`)",
                    API_TIMEOUT.as_secs()
                )
            })?;
        let (client, version) = match (answered, &ssh) {
            (Ok(answered), _) => answered,
            // What ssh said is the news ("Permission denied (publickey)", "docker: command
            // not found"), not the connection bollard saw closed.
            (Err(err), Some(bridge)) => {
                return Err(match bridge.failure(Duration::from_secs(5)).await {
                    Some(failure) => anyhow!(
                        "cannot reach the Docker daemon at {at}: {failure}. deploy runs `ssh … docker system dial-stdio` as the docker CLI does: check that `docker -H {host} info` works (keys, known hosts and users in ~/.ssh/config; docker installed on that host)"
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
    /// The client for calls outside builds and pushes, limited to [`API_TIMEOUT`].
    pub(super) fn api(&self) -> bollard::Docker {
        self.client.clone().with_timeout(API_TIMEOUT)
    }

    /// Every tag of every local image.
    pub async fn local_tags(&self) -> Result<Vec<LocalTag>> {
        let images = self
            .api()
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
        self.api()
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
        match self.api().info().await.ok().and_then(|info| info.id) {
            Some(id) if !id.is_empty() => id,
            _ => self.host.clone(),
        }
    }

    /// Free bytes where the daemon keeps its data, when the daemon is on this machine.
    pub async fn free_disk(&self) -> Option<u64> {
        if !self.host.starts_with("unix://") {
            return None;
        }
        let root = self.api().info().await.ok()?.docker_root_dir?;
        free_bytes_at(std::path::Path::new(&root))
    }
}

/// Free bytes for an unprivileged writer on the file system holding `path` (what `df`
/// shows as available), from statvfs(2).
pub(crate) fn free_bytes_at(path: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    stat.f_bavail.checked_mul(stat.f_frsize)
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

/// The daemon's progress messages (a build's, a push's), ending where the daemon ended them.
///
/// bollard's JSON-lines decoder can end a stream the daemon completed cleanly with
/// "bytes remaining on stream": when a message and its `\r\n` reach it in separate chunks it
/// decodes the message, keeps the lone `\r`, and reports that `\r` when the body ends. Every
/// whole message was decoded by then, and the HTTP response was complete (a daemon that goes
/// away mid-stream fails the body with a different error), so that error is the stream's end,
/// not a lost daemon. Before this, one build in a few hundred failed as "lost the Docker daemon".
pub(super) fn daemon_messages<T>(
    stream: impl futures_util::Stream<Item = Result<T, bollard::errors::Error>>,
) -> impl futures_util::Stream<Item = Result<T, bollard::errors::Error>> {
    use futures_util::StreamExt as _;
    stream.take_while(|item| {
        std::future::ready(!matches!(item, Err(err) if is_trailing_bytes_at_end(err)))
    })
}

/// The decoder's end-of-body complaint about bytes that were not a message (see
/// `daemon_messages`).
fn is_trailing_bytes_at_end(err: &bollard::errors::Error) -> bool {
    matches!(err, bollard::errors::Error::IOError { err }
        if err.kind() == std::io::ErrorKind::Other && err.to_string() == "bytes remaining on stream")
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn free_bytes_are_what_df_calls_available() {
        let dir = tempfile::tempdir().unwrap();
        let df = std::process::Command::new("df")
            .arg("-Pk")
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8(df.stdout).unwrap();
        let available_kib: u64 = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(3)
            .unwrap()
            .parse()
            .unwrap();
        let free = super::free_bytes_at(dir.path()).expect("statvfs of a temp dir");
        // Other writers share the disk: equal within 64 MiB.
        assert!(
            free.abs_diff(available_kib * 1024) < 64 << 20,
            "statvfs {free}, df {available_kib} KiB"
        );
        assert_eq!(super::free_bytes_at(&dir.path().join("missing")), None);
    }

    /// A one-request daemon on a Unix socket that answers with `chunks`, each its own HTTP
    /// chunk, written apart so the client reads them apart; `complete` ends the body, else the
    /// connection is dropped mid-body, as by a daemon that went away.
    async fn daemon_answering(
        chunks: &'static [&'static str],
        complete: bool,
    ) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await
            .unwrap();
            for chunk in chunks {
                conn.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                    .await
                    .unwrap();
                conn.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if complete {
                conn.write_all(b"0\r\n\r\n").await.unwrap();
                conn.flush().await.unwrap();
            }
        });
        let host = format!("unix://{}", socket.display());
        (dir, host)
    }

    async fn push_messages(
        chunks: &'static [&'static str],
        complete: bool,
    ) -> Vec<Result<String, String>> {
        let (_dir, host) = daemon_answering(chunks, complete).await;
        let client =
            bollard::Docker::connect_with_unix(&host, 10, bollard::API_DEFAULT_VERSION).unwrap();
        let stream = client.push_image(
            "registry.test/api",
            None::<bollard::query_parameters::PushImageOptions>,
            None,
        );
        super::daemon_messages(stream)
            .map(|item| {
                item.map(|info| info.status.unwrap_or_default())
                    .map_err(|err| err.to_string())
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_message_whose_line_end_comes_apart_ends_the_stream_cleanly() {
        let messages = push_messages(
            &[
                "{\"status\":\"Preparing\"}\r\n",
                "{\"status\":\"abc123: digest: sha256:00 size: 1\"}",
                "\r\n",
            ],
            true,
        )
        .await;
        assert_eq!(
            messages,
            vec![
                Ok("Preparing".to_owned()),
                Ok("abc123: digest: sha256:00 size: 1".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn a_daemon_gone_mid_message_is_still_an_error() {
        let messages = push_messages(
            &["{\"status\":\"Preparing\"}\r\n", "{\"status\":\"Pus"],
            false,
        )
        .await;
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0], Ok("Preparing".to_owned()));
        assert!(messages[1].is_err(), "{messages:?}");
    }
}
