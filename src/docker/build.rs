//! Building one image: the context streamed to the daemon, BuildKit's or the classic
//! builder's progress read into the service's log, and a failure that shows the log's
//! last lines.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use super::engine::{daemon_messages, is_from_the_daemon, BuilderKind, Engine};
use crate::build_output::{self, is_out_of_disk};
use crate::docker::build_context::{self, ContextSpec, ContextStats};
use crate::docker::build_steps::{BuildSteps, StepTally};
use crate::docker::dockerignore::DockerIgnore;
use crate::docker::file_sync::SyncedDir;
use crate::docker::registry_auth::{self, Asked, RegistryLogins};
use crate::docker::session::{self, Session, SessionSpec};

/// Lines of a failed build's log shown in the error.
const LOG_TAIL_LINES: usize = 25;

impl Engine {
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

        let build_args: HashMap<&str, &str> = request
            .build_args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let buildkit_client = self.client.clone().with_request_modifier(as_buildkit_build);
        let (feed, mut stream) = match self.builder {
            BuilderKind::BuildKit => {
                // The context is served over our session, as the docker CLI does
                // (`remote=client-session`): the daemon pulls what the Dockerfile reads.
                let session = self.open_context_session(request).await?;
                let dockerfile_name = request
                    .context
                    .dockerfile
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // bollard's BuildKit builds start bollard's own session, which cannot
                // serve files: ask for builder version 1 and turn the request into a
                // BuildKit one on its way out.
                let options = BuildImageOptionsBuilder::default()
                    .dockerfile(&dockerfile_name)
                    .t(&request.image)
                    .buildargs(&build_args)
                    .remote(CLIENT_SESSION)
                    .session(&session.id)
                    .target(request.target.as_deref().unwrap_or_default())
                    .cachefrom(&request.cache_from)
                    .rm(true)
                    .forcerm(true)
                    .build();
                let stream = daemon_messages(buildkit_client.build_image(
                    options,
                    None,
                    Some(bollard::body_full(bytes::Bytes::new())),
                ))
                .boxed();
                (ContextFeed::Served(session), stream)
            }
            BuilderKind::Classic => {
                let dockerfile = request.context.dockerfile.to_string_lossy().into_owned();
                let options = BuildImageOptionsBuilder::default()
                    .dockerfile(&dockerfile)
                    .t(&request.image)
                    .buildargs(&build_args)
                    .rm(true)
                    .forcerm(true)
                    .build();
                let (body, writer) = build_context::stream(request.context.clone());
                // The logins for the images the build pulls, as the docker CLI sends them
                // (`X-Registry-Config`).
                let logins = request.logins.all().await;
                let stream = daemon_messages(self.client.build_image(
                    options,
                    Some(logins),
                    Some(bollard::body_try_stream(body)),
                ))
                .boxed();
                (ContextFeed::Tar(writer), stream)
            }
        };

        let mut failure: Option<String> = None;
        let mut vertex_names: HashMap<String, String> = HashMap::new();
        let mut tally = StepTally::default();
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
                    let completed = vertex.completed.is_some();
                    tally.vertex(&vertex.digest, &vertex.name, vertex.cached, completed);
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
                        // A cache that cannot be imported costs time, never the build.
                        let name = vertex_names.get(&vertex.digest).map_or("", String::as_str);
                        if !name.starts_with(CACHE_IMPORT) {
                            failure.get_or_insert_with(|| vertex.error.clone());
                        }
                    }
                }
                for download in &status.statuses {
                    tally.status(&download.id);
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
        let mut context_size = None;
        let mut asked: Vec<Asked> = Vec::new();
        let context = match feed {
            ContextFeed::Served(session) => {
                if let Ok(hosts) = session.asked.lock() {
                    asked = hosts.clone();
                }
                let stats = ContextStats {
                    files: session.transferred.files.load(Ordering::Relaxed),
                    bytes: session.transferred.bytes.load(Ordering::Relaxed),
                    ignored: 0,
                };
                context_size = Some(session.transferred.listed.load(Ordering::Relaxed));
                drop(session);
                Ok(stats)
            }
            ContextFeed::Tar(writer) => {
                writer.await.context("the build context writer panicked")?
            }
        };
        // A build the daemon failed also stops it reading the context: report the build.
        if let Some(message) = failure {
            let _ = log.flush();
            let login = self.login_advice(request, &message, &asked).await;
            return Err(BuildFailed {
                service: request.service.clone(),
                login,
                message,
                tail: tail.lines.into_iter().collect(),
                log_path: request.log_path.clone(),
            }
            .into());
        }
        let stats = context
            .with_context(|| format!("cannot send the build context of {}", request.service))?;
        tail.push(
            &mut log,
            &format!(
                "build context: {} file(s), {} byte(s) transferred",
                stats.files, stats.bytes
            ),
        );
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
            context_size: context_size.unwrap_or(stats.bytes),
            steps: tally.summary(),
            stage_steps: tally.by_stage(),
        })
    }
}

impl Engine {
    /// When a registry refused to let the build pull an image: which one, and how to
    /// log in to it. BuildKit asked the session for the registry's login (the last host
    /// deploy had none for, else the last asked); the classic builder names it in a URL.
    async fn login_advice(
        &self,
        request: &BuildRequest,
        message: &str,
        asked: &[Asked],
    ) -> Option<String> {
        if !registry_auth::is_login_failure(message) {
            return None;
        }
        let config = request.logins.config_path();
        let refused = asked
            .iter()
            .rev()
            .find(|asked| asked.found.is_none())
            .or_else(|| asked.last());
        if let Some(asked) = refused {
            return Some(registry_auth::login_advice(
                &asked.host,
                asked.found.as_ref(),
                &config,
            ));
        }
        let host = registry_auth::registry_in(message)?;
        let found = match request.logins.login_for(&host).await {
            Ok(found) => found.map(|(_, found)| found),
            Err(_) => None,
        };
        Some(registry_auth::login_advice(&host, found.as_ref(), &config))
    }
}

/// How BuildKit names the step that reads a `cachefrom` image.
const CACHE_IMPORT: &str = "importing cache manifest from ";

/// The `remote` of a build whose context the client serves over its session.
const CLIENT_SESSION: &str = "client-session";

/// How the daemon gets the context: served over our session, or a tar in the request.
enum ContextFeed {
    Served(Session),
    Tar(tokio::task::JoinHandle<Result<ContextStats>>),
}

impl Engine {
    /// Opens the session that serves `request`'s context (`context`) and Dockerfile
    /// (`dockerfile`, its directory) from the commit's tree.
    async fn open_context_session(&self, request: &BuildRequest) -> Result<Session> {
        let spec = &request.context;
        let excludes = build_context::check(spec)?;
        let dockerfile_dir = spec
            .dir
            .join(spec.dockerfile.parent().unwrap_or(Path::new("")));
        let synced = |dir: PathBuf, excludes: Option<DockerIgnore>| SyncedDir {
            repo_root: spec.repo_root.clone(),
            commit: spec.commit.clone(),
            dir,
            excludes,
        };
        let dirs = HashMap::from([
            (
                "context".to_owned(),
                synced(spec.dir.clone(), Some(excludes)),
            ),
            ("dockerfile".to_owned(), synced(dockerfile_dir, None)),
        ]);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = spec
            .repo_root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "context".to_owned());
        session::start(
            &self.session_route,
            SessionSpec {
                id: format!("deploy-{}-{}-{nanos}", std::process::id(), request.service),
                name,
                shared_key: session::shared_key(
                    &spec.repo_root,
                    &spec.dir,
                    request.target.as_deref(),
                ),
                dirs,
                logins: request.logins.clone(),
            },
        )
        .await
        .map_err(|err| {
            anyhow!(
                "cannot serve the build context of {} to the Docker daemon at {}: {err:#}. Check that Docker is running (`docker info`)",
                request.service,
                self.host
            )
        })
    }
}

/// Turns bollard's classic-builder `/build` request into a BuildKit one (`version=2`).
fn as_buildkit_build(mut request: bollard::BollardRequest) -> bollard::BollardRequest {
    let uri = request.uri();
    if !uri.path().ends_with("/build") {
        return request;
    }
    let query: Vec<String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|param| !param.is_empty() && !param.starts_with("version="))
        .map(str::to_owned)
        .chain(["version=2".to_owned()])
        .collect();
    let rewritten = format!("{}?{}", uri.path(), query.join("&"));
    let mut parts = uri.clone().into_parts();
    if let Ok(path_and_query) = rewritten.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = hyper::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// One image to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub service: String,
    /// Full reference: `<registry>/<repository>:<tag>`.
    pub image: String,
    pub context: ContextSpec,
    pub build_args: Vec<(String, String)>,
    /// The stage to build (`--target`), else the last.
    pub target: Option<String>,
    /// Images whose inline cache BuildKit imports (`--cache-from`).
    pub cache_from: Vec<String>,
    pub log_path: PathBuf,
    /// The logins for the images the build pulls (`FROM` a private registry).
    pub logins: Arc<RegistryLogins>,
}

#[derive(Debug, Clone)]
pub struct Built {
    pub image_id: String,
    /// What crossed the wire.
    pub context: ContextStats,
    /// Bytes of the context the build saw (served: every file the daemon listed, sent or
    /// already held; a tar: what it held).
    pub context_size: u64,
    /// The steps BuildKit ran and took from a cache (BuildKit only), and per stage.
    pub steps: BuildSteps,
    pub stage_steps: HashMap<String, BuildSteps>,
}

/// A build that the Dockerfile (not deploy) failed: the message, the log's last lines
/// and where the whole log is.
#[derive(Debug)]
pub struct BuildFailed {
    pub service: String,
    /// A registry refused the pull of an image: which, and how to log in.
    pub login: Option<String>,
    pub message: String,
    pub tail: Vec<String>,
    pub log_path: PathBuf,
}

impl std::fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.login {
            Some(advice) => {
                writeln!(f, "the image build of {} failed: {advice}", self.service)?;
                writeln!(f, "the Docker daemon said: {}", self.message.trim())?;
            }
            None => writeln!(
                f,
                "the image build of {} failed: {}",
                self.service,
                self.message.trim()
            )?,
        }
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

/// A transient network error inside a build step (npm, corepack), worth one retry.
pub fn is_transient_build_failure(failure: &BuildFailed) -> bool {
    build_output::is_transient(&failure.message, &failure.tail)
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_disk_is_recognised_and_answered_with_the_safe_remedy() {
        let failure = BuildFailed {
            service: "api".into(),
            login: None,
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
            login: None,
            message: "exit code: 1".into(),
            tail: vec!["npm ERR! code ETIMEDOUT".into()],
            log_path: "/tmp/api.log".into(),
        };
        assert!(is_transient_build_failure(&failure));
    }
}
