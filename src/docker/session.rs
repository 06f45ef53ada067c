//! A BuildKit session of our own: the `/session` endpoint upgraded to h2c, on which the
//! daemon calls the gRPC services we expose (the build context's file sync, registry
//! logins for the images the build pulls, health).
//!
//! bollard's own session serves only registry auth and exports (its `GrpcServer` is
//! closed), so this follows its approach (and the docker CLI's `client/session`): one
//! HTTP/1.1 request with `Upgrade: h2c` and the `X-Docker-Expose-Session-*` headers, then
//! tonic serving HTTP/2 on the upgraded connection.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::{anyhow, Context as _, Result};
use bollard::health::health_check_response::ServingStatus;
use bollard::health::health_server::{Health, HealthServer};
use bollard::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard::moby::filesync::v1::auth_server::AuthServer;
use bollard::moby::filesync::v1::file_sync_server::FileSyncServer;
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::docker::file_sync::{FileSyncService, SyncedDir, Transferred};
use crate::docker::registry_auth::{Asked, AuthService, RegistryLogins};
use crate::docker::tls::TlsDialer;

/// The gRPC methods the daemon may call on our side.
const EXPOSED_METHODS: [&str; 6] = [
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/grpc.health.v1.Health/Check",
];

/// How a session reaches the daemon: the engine's own route (see `Engine::connect`); an
/// `ssh://` daemon is reached through the engine's ssh bridge, a Unix socket.
#[derive(Clone)]
pub enum SessionRoute {
    Unix(PathBuf),
    Tcp(String),
    Tls(TlsDialer),
}

/// The session's shared key: one per repository and context directory, stable across
/// builds and runs, so the daemon's file-sync cache (keyed by it) is reused and only
/// files whose stat changed are transferred again. The daemon cuts its copy down, at each
/// sync, to what that build asks for: a stage built on its own (`target`: the build
/// cache's dependency stage asks for a few files) keeps a copy of its own, or the images'
/// builds after it would send all they copy again.
pub fn shared_key(
    repo_root: &std::path::Path,
    context_dir: &std::path::Path,
    target: Option<&str>,
) -> String {
    let root = repo_root
        .canonicalize()
        .unwrap_or_else(|_| repo_root.to_path_buf());
    let stage = target
        .map(|target| format!(":{target}"))
        .unwrap_or_default();
    let digest = Sha256::digest(format!(
        "deploy:{}:{}{stage}",
        root.display(),
        context_dir.display()
    ));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running session; dropping it shuts the connection down (gracefully: a transfer in
/// flight finishes first), which ends the session on the daemon.
pub struct Session {
    pub id: String,
    pub transferred: Arc<Transferred>,
    /// The registries the daemon asked a login for, and whether deploy had one.
    pub asked: Arc<Mutex<Vec<Asked>>>,
    /// Dropped with the session: tells the server to close the connection.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// What a session serves and how the daemon knows it.
pub struct SessionSpec {
    pub id: String,
    /// Shown by the daemon (the docker CLI uses the context directory's name).
    pub name: String,
    pub shared_key: String,
    pub dirs: HashMap<String, SyncedDir>,
    pub logins: Arc<RegistryLogins>,
}

/// Opens the session on the daemon; returns once the daemon has accepted it.
pub async fn start(route: &SessionRoute, spec: SessionSpec) -> Result<Session> {
    let upgraded = match route {
        SessionRoute::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .with_context(|| format!("cannot connect to {}", path.display()))?;
            upgrade(stream, &spec).await?
        }
        SessionRoute::Tcp(address) => {
            let stream = tokio::net::TcpStream::connect(address)
                .await
                .with_context(|| format!("cannot connect to {address}"))?;
            upgrade(stream, &spec).await?
        }
        SessionRoute::Tls(dialer) => upgrade(dialer.connect().await?, &spec).await?,
    };
    let transferred = Arc::new(Transferred::default());
    let file_sync = FileSyncService::new(spec.dirs, transferred.clone());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let auth = AuthService {
        logins: spec.logins,
        asked: asked.clone(),
    };
    // One connection, then none: the server keeps it until told to stop (tonic serves
    // each connection on a task of its own, which outlives an aborted server).
    let incoming = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, std::io::Error>(SessionIo(upgraded))]),
        futures_util::stream::pending(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(FileSyncServer::new(file_sync))
            .add_service(AuthServer::new(auth))
            .add_service(HealthServer::new(Healthy))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(err) = served {
            tracing::debug!("the BuildKit session ended: {err}");
        }
    });
    Ok(Session {
        id: spec.id,
        transferred,
        asked,
        _stop: stop,
    })
}

async fn upgrade<S>(stream: S, spec: &SessionSpec) -> Result<TokioIo<hyper::upgrade::Upgraded>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("cannot open a BuildKit session on the Docker daemon")?;
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            tracing::debug!("the session's HTTP connection ended: {err}");
        }
    });
    let mut request = hyper::Request::builder()
        .method("POST")
        .uri("/session")
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c")
        .header("X-Docker-Expose-Session-Uuid", &spec.id)
        .header("X-Docker-Expose-Session-Name", &spec.name)
        .header("X-Docker-Expose-Session-Sharedkey", &spec.shared_key);
    for method in EXPOSED_METHODS {
        request = request.header("X-Docker-Expose-Session-Grpc-Method", method);
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .context("cannot make the session request")?;
    let response = sender
        .send_request(request)
        .await
        .context("cannot open a BuildKit session on the Docker daemon")?;
    if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map(|body| String::from_utf8_lossy(&body.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        return Err(anyhow!(
            "the Docker daemon refused a BuildKit session ({status}): {body}"
        ));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .context("cannot open a BuildKit session on the Docker daemon")?;
    Ok(TokioIo::new(upgraded))
}

/// The upgraded connection, as tonic's server takes it.
struct SessionIo(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for SessionIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SessionIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SessionIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The daemon checks the session's health while it lasts.
struct Healthy;

type HealthStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Health for Healthy {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _request: tonic::Request<HealthListRequest>,
    ) -> Result<tonic::Response<HealthListResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("list"))
    }

    type WatchStream = HealthStream;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("watch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_key_is_stable_per_repository_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let a = shared_key(dir.path(), std::path::Path::new("."), None);
        assert_eq!(a, shared_key(dir.path(), std::path::Path::new("."), None));
        assert_ne!(
            a,
            shared_key(dir.path(), std::path::Path::new("services"), None)
        );
        assert_ne!(
            a,
            shared_key(dir.path(), std::path::Path::new("."), Some("deps"))
        );
        assert_eq!(a.len(), 64);
    }
}
