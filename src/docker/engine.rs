//! The Docker engine (bollard): connect with API version negotiation, build an image
//! from a streamed context (BuildKit, or the classic builder), ask a registry whether a
//! tag exists, push with retries.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, PushImageOptionsBuilder,
};
use futures_util::StreamExt;

use crate::docker::build_context::{self, ContextSpec, ContextStats};

/// How long one request may take, context upload and build included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Lines of a failed build's log shown in the error.
const LOG_TAIL_LINES: usize = 25;

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
    client: bollard::Docker,
    pub builder: BuilderKind,
    pub host: String,
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
        let client = bollard::Docker::connect_with_defaults()
            .map_err(|err| unreachable(&err))?
            .with_timeout(REQUEST_TIMEOUT);
        let client = client
            .negotiate_version()
            .await
            .map_err(|err| unreachable(&err))?;
        let version = client.version().await.map_err(|err| unreachable(&err))?;
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
        })
    }

    /// Builds one image from a commit's tree; every log line goes to `log_path`.
    pub async fn build(
        &self,
        request: &BuildRequest,
        mut on_step: impl FnMut(&str),
    ) -> Result<Built> {
        if let Some(dir) = request.log_path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
        }
        let mut log = std::fs::File::create(&request.log_path).with_context(|| {
            format!("cannot create the build log {}", request.log_path.display())
        })?;
        let mut tail = LogTail::default();

        let dockerfile = request.context.dockerfile.to_string_lossy().into_owned();
        let build_args: HashMap<&str, &str> = request
            .build_args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&dockerfile)
            .t(&request.image)
            .buildargs(&build_args)
            .rm(true)
            .forcerm(true);
        if self.builder == BuilderKind::BuildKit {
            let session = format!("deploy-{}-{}", std::process::id(), request.service);
            options = options
                .version(BuilderVersion::BuilderBuildKit)
                .session(&session);
        }
        let (body, writer) = build_context::stream(request.context.clone());
        let mut stream =
            self.client
                .build_image(options.build(), None, Some(bollard::body_try_stream(body)));

        let mut failure: Option<String> = None;
        let mut vertex_names: HashMap<String, String> = HashMap::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(err) if is_from_the_daemon(&err) => {
                    failure = Some(err.to_string());
                    break;
                }
                Err(err) => {
                    let _ = log.flush();
                    return Err(anyhow!(
                        "lost the Docker daemon at {} while building {}: {err}. Check that Docker is running (`docker info`); the build log so far is in {}",
                        self.host,
                        request.service,
                        request.log_path.display()
                    ));
                }
            };
            if let Some(text) = &info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    tail.push(&mut log, line);
                    if line.starts_with("Step ") {
                        on_step(line);
                    }
                }
            }
            if let Some(detail) = &info.error_detail {
                failure = detail
                    .message
                    .clone()
                    .or(Some("unknown build error".into()));
            }
            if let Some(bollard::models::BuildInfoAux::BuildKit(status)) = &info.aux {
                for vertex in &status.vertexes {
                    if !vertex.name.is_empty() {
                        let known = vertex_names.insert(vertex.digest.clone(), vertex.name.clone());
                        if known.is_none() {
                            tail.push(
                                &mut log,
                                &format!("#{} {}", short(&vertex.digest), vertex.name),
                            );
                            on_step(&vertex.name);
                        }
                    }
                    if vertex.cached && vertex.completed.is_some() {
                        tail.push(&mut log, &format!("#{} CACHED", short(&vertex.digest)));
                    }
                    if !vertex.error.is_empty() {
                        tail.push(
                            &mut log,
                            &format!("#{} ERROR: {}", short(&vertex.digest), vertex.error),
                        );
                        failure.get_or_insert_with(|| vertex.error.clone());
                    }
                }
                for entry in &status.logs {
                    for line in String::from_utf8_lossy(&entry.msg).lines() {
                        if !line.trim().is_empty() {
                            tail.push(&mut log, &format!("#{} {line}", short(&entry.vertex)));
                        }
                    }
                }
            }
        }
        drop(stream);
        let context = writer.await.context("the build context writer panicked")?;
        // A build the daemon failed also stops it reading the context: report the build.
        if let Some(message) = failure {
            let _ = log.flush();
            return Err(BuildFailed {
                service: request.service.clone(),
                message,
                tail: tail.lines.into_iter().collect(),
                log_path: request.log_path.clone(),
            }
            .into());
        }
        let stats = context
            .with_context(|| format!("cannot send the build context of {}", request.service))?;
        let image = self
            .client
            .inspect_image(&request.image)
            .await
            .with_context(|| {
                format!(
                    "the build of {} reported success but {} is missing",
                    request.service, request.image
                )
            })?;
        Ok(Built {
            image_id: image.id.unwrap_or_default(),
            context: stats,
        })
    }

    /// Whether `image` (`host/repo:tag`) exists in its registry, asked through the
    /// daemon's distribution endpoint (the registry's own manifest API).
    pub async fn exists_in_registry(
        &self,
        image: &str,
        credentials: &DockerCredentials,
    ) -> Result<bool> {
        match self
            .client
            .inspect_registry_image(image, Some(credentials.clone()))
            .await
        {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) => {
                let lower = message.to_lowercase();
                if status_code == 404
                    || lower.contains("manifest unknown")
                    || lower.contains("not found")
                    || lower.contains("name unknown")
                {
                    Ok(false)
                } else {
                    bail!("cannot ask the registry about {image}: {message} (HTTP {status_code})")
                }
            }
            Err(err) => Err(anyhow!(err).context(format!("cannot ask the registry about {image}"))),
        }
    }

    /// Pushes `image` (`host/repo:tag`); transient registry failures are retried with
    /// backoff.
    pub async fn push(
        &self,
        image: &str,
        credentials: &DockerCredentials,
        mut on_progress: impl FnMut(&str),
    ) -> Result<()> {
        let (name, tag) = split_tag(image)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .push_once(name, tag, credentials, &mut on_progress)
                .await
            {
                Ok(()) => return Ok(()),
                Err(PushError::Connection(message)) if self.client.ping().await.is_err() => {
                    return Err(anyhow!(
                        "lost the Docker daemon at {} while pushing {image}: {message}. Check that Docker is running (`docker info`); re-run to resume",
                        self.host
                    ))
                }
                Err(PushError::Connection(message) | PushError::Registry(message))
                    if attempt < PUSH_ATTEMPTS && is_transient(&message) =>
                {
                    let wait = Duration::from_secs(1 << (attempt - 1));
                    tracing::warn!(%image, attempt, %message, "push failed; retrying");
                    on_progress(&format!(
                        "push failed ({message}); retry {attempt} in {}s",
                        wait.as_secs()
                    ));
                    tokio::time::sleep(wait).await;
                }
                Err(PushError::Connection(message) | PushError::Registry(message)) => {
                    return Err(anyhow!(
                        "cannot push {image} after {attempt} attempt(s): {message}"
                    ))
                }
            }
        }
    }

    async fn push_once(
        &self,
        name: &str,
        tag: &str,
        credentials: &DockerCredentials,
        on_progress: &mut impl FnMut(&str),
    ) -> std::result::Result<(), PushError> {
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self
            .client
            .push_image(name, Some(options), Some(credentials.clone()));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| {
                if is_from_the_daemon(&err) {
                    PushError::Registry(err.to_string())
                } else {
                    PushError::Connection(err.to_string())
                }
            })?;
            if let Some(detail) = info.error_detail {
                return Err(PushError::Registry(
                    detail
                        .message
                        .unwrap_or_else(|| "unknown push error".into()),
                ));
            }
            if let Some(status) = info.status.as_deref() {
                if status == "Pushed" || status.starts_with(tag) {
                    on_progress(status);
                }
            }
        }
        Ok(())
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

const PUSH_ATTEMPTS: u32 = 5;

/// Why one push attempt failed.
enum PushError {
    /// The daemon answered: the registry (through it) failed the push.
    Registry(String),
    /// The connection to the daemon failed.
    Connection(String),
}

/// Registry and network failures worth another try; anything else fails at once.
pub fn is_transient(message: &str) -> bool {
    let lower = message.to_lowercase();
    [
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "status: 500",
        "status: 502",
        "status: 503",
        "status: 504",
        "connection reset",
        "connection refused",
        "broken pipe",
        "unexpected eof",
        ": eof",
        "i/o timeout",
        "tls handshake timeout",
        "timeout exceeded",
        "too many requests",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// A transient network error inside a build step (npm, corepack), worth one retry.
pub fn is_transient_build_failure(failure: &BuildFailed) -> bool {
    let text = format!("{}\n{}", failure.message, failure.tail.join("\n"));
    [
        "ETIMEDOUT",
        "ECONNRESET",
        "EAI_AGAIN",
        "ENOTFOUND registry",
        "corepack",
        "socket hang up",
    ]
    .iter()
    .any(|needle| text.contains(needle))
        && !is_out_of_disk(&text)
}

/// `ERR_PNPM_ENOSPC` / "no space left on device" (the runbook's troubleshooting entry).
pub fn is_out_of_disk(text: &str) -> bool {
    text.contains("ENOSPC") || text.to_lowercase().contains("no space left on device")
}

fn split_tag(image: &str) -> Result<(&str, &str)> {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(colon) => Ok((&image[..slash + colon], &image[slash + colon + 1..])),
        None => bail!("image reference {image} has no tag"),
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// One image to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub service: String,
    /// Full reference: `<registry>/<repository>:<tag>`.
    pub image: String,
    pub context: ContextSpec,
    pub build_args: Vec<(String, String)>,
    pub log_path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Built {
    pub image_id: String,
    pub context: ContextStats,
}

/// Whether a stream error is the daemon's answer (a build it failed), rather than the
/// connection to it failing.
fn is_from_the_daemon(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error;
    matches!(
        err,
        Error::DockerResponseServerError { .. }
            | Error::DockerStreamError { .. }
            | Error::JsonDataError { .. }
            | Error::JsonSerdeError { .. }
    )
}

/// A build that the Dockerfile (not deploy) failed: the message, the log's last lines
/// and where the whole log is.
#[derive(Debug)]
pub struct BuildFailed {
    pub service: String,
    pub message: String,
    pub tail: Vec<String>,
    pub log_path: PathBuf,
}

impl std::fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "the image build of {} failed: {}",
            self.service,
            self.message.trim()
        )?;
        writeln!(f, "last lines of the build log:")?;
        for line in &self.tail {
            writeln!(f, "  | {line}")?;
        }
        write!(f, "full log: {}", self.log_path.display())?;
        if is_out_of_disk(&format!("{}\n{}", self.message, self.tail.join("\n"))) {
            write!(
                f,
                "\nthe Docker host is out of disk. Reclaim space safely (never touch volumes: they hold local dev DB/Minio/Redis data):\n  docker builder prune -af   # build cache\n  docker image prune -af     # unused images (old SHA-tagged builds)\nor `deploy prune`; a full deploy needs roughly 6-8 GB free."
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildFailed {}

#[derive(Default)]
struct LogTail {
    lines: VecDeque<String>,
}

impl LogTail {
    fn push(&mut self, log: &mut std::fs::File, line: &str) {
        let _ = writeln!(log, "{line}");
        if self.lines.len() == LOG_TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_tag_handles_registry_ports() {
        assert_eq!(
            split_tag("127.0.0.1:5000/api:abc1234").unwrap(),
            ("127.0.0.1:5000/api", "abc1234")
        );
        assert_eq!(
            split_tag("1234.dkr.ecr.us-east-1.amazonaws.com/team/api:abc")
                .unwrap()
                .1,
            "abc"
        );
        assert!(split_tag("127.0.0.1:5000/api").is_err());
    }

    #[test]
    fn transient_errors_are_recognised() {
        assert!(is_transient(
            "received unexpected HTTP status: 503 Service Unavailable"
        ));
        assert!(is_transient(
            "Put \"http://x/v2/\": read tcp: connection reset by peer"
        ));
        assert!(!is_transient(
            "denied: requested access to the resource is denied"
        ));
        assert!(!is_transient("name unknown: repository api not found"));
    }

    #[test]
    fn out_of_disk_is_recognised_and_answered_with_the_safe_remedy() {
        let failure = BuildFailed {
            service: "api".into(),
            message: "process \"/bin/sh -c pnpm install\" did not complete successfully".into(),
            tail: vec!["ERR_PNPM_ENOSPC  ENOSPC: no space left on device, write".into()],
            log_path: "/tmp/api.log".into(),
        };
        let text = failure.to_string();
        assert!(text.contains("docker builder prune -af"), "{text}");
        assert!(text.contains("never touch volumes"), "{text}");
        assert!(!text.contains("volume prune"), "{text}");
        assert!(!is_transient_build_failure(&failure));
    }

    #[test]
    fn npm_blips_are_transient_builds() {
        let failure = BuildFailed {
            service: "api".into(),
            message: "exit code: 1".into(),
            tail: vec!["npm ERR! code ETIMEDOUT".into()],
            log_path: "/tmp/api.log".into(),
        };
        assert!(is_transient_build_failure(&failure));
    }
}
