//! Service images: skip what the registry already has, build the rest (the first alone,
//! so the shared dependency layer is built once and reused), push each as soon as it is
//! built, bounded concurrency throughout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use bollard::auth::DockerCredentials;
use futures_util::{stream, StreamExt};
use serde::Serialize;

use crate::docker::build::{self, BuildFailed, BuildRequest, Built};
use crate::docker::build_cache::{self, CacheUse, DependencyStage, StageSource};
use crate::docker::build_context::{self, ContextSpec};
use crate::docker::dockerfile_sources::{copy_sources, Sources};
use crate::docker::engine::{BuilderKind, Engine};
use crate::docker::registry_auth::RegistryLogins;
use crate::ui::progress::{ItemProgress, Progress};

/// One image to produce.
#[derive(Debug, Clone)]
pub struct ImageJob {
    pub service: String,
    /// `<registry>/<repository>:<tag>`.
    pub image: String,
    /// The registry build cache; `None` with `docker.cache = "off"`.
    pub cache: Option<CacheUse>,
}

/// What is common to every image of a run.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    pub repo_root: PathBuf,
    pub commit: String,
    pub context_dir: PathBuf,
    /// Relative to the context directory.
    pub dockerfile: PathBuf,
    pub service_arg: String,
    pub build_args: Vec<(String, String)>,
    /// Images in flight (built or pushing).
    pub concurrency: usize,
    /// When the first image's build used a context of at least this many bytes, the
    /// others build one at a time (see `docker.shared_context_mib`).
    pub shared_context_bytes: u64,
    pub log_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// The tag was already in the registry: not built, not pushed.
    AlreadyInRegistry,
    Pushed,
    Failed,
    /// Not attempted because another image failed first.
    NotStarted,
    /// Copied by digest from another environment's registry (`deploy promote`).
    Copied,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    pub service: String,
    pub image: String,
    pub status: ImageStatus,
    pub build_secs: Option<f64>,
    pub push_secs: Option<f64>,
    pub error: Option<String>,
    /// Where the dependency stage came from, with the registry build cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency_stage: Option<DependencyStage>,
}

impl ImageResult {
    /// The summary's words for a pushed image: `built, pushed`, then where its
    /// dependency stage came from when the registry build cache was used.
    pub fn pushed_words(&self) -> String {
        match &self.dependency_stage {
            Some(stage) => format!("built, pushed ({}: {})", stage.stage, stage.source.words()),
            None => "built, pushed".to_owned(),
        }
    }
}

/// Builds and pushes every job, adding each result to `results` as soon as it is known,
/// so that a run cancelled half-way (Ctrl-C drops this future) still has them. Registry
/// questions that cannot be answered fail the whole step before anything is built; a
/// failed build stops new builds from starting while running ones finish.
pub async fn build_and_push(
    engine: &Engine,
    jobs: &[ImageJob],
    settings: &ImageSettings,
    credentials: &DockerCredentials,
    progress: &Progress,
    results: &mut Vec<ImageResult>,
) -> Result<()> {
    // Read once per run: the docker CLI's logins for the images the builds pull, and the
    // run's own registry, so a base image there needs no `docker login`.
    let logins = std::sync::Arc::new(RegistryLogins::load(&[credentials])?);
    // Resume: ask the registry first, so a re-run after a failure rebuilds nothing.
    let checks: Vec<(ImageJob, Result<bool>)> = stream::iter(jobs.iter().cloned())
        .map(|job| async move {
            let exists = engine.exists_in_registry(&job.image, credentials).await;
            (job, exists)
        })
        .buffered(settings.concurrency.max(4))
        .collect()
        .await;

    let mut to_build = Vec::new();
    for (job, exists) in checks {
        if exists? {
            progress.item(&job.service).finish(&format!(
                "{} already in the registry: not rebuilt, not pushed",
                job.image
            ));
            results.push(ImageResult {
                service: job.service,
                image: job.image,
                status: ImageStatus::AlreadyInRegistry,
                build_secs: None,
                push_secs: None,
                error: None,
                dependency_stage: None,
            });
        } else {
            to_build.push(job);
        }
    }

    let failed = AtomicBool::new(false);
    let shared_stage = std::sync::Mutex::new(None);
    // Until the first image is built, it is the only one.
    let build_slots = tokio::sync::Semaphore::new(1);
    let widened = AtomicBool::new(false);
    let run = |job: ImageJob| {
        let failed = &failed;
        let build_slots = &build_slots;
        let shared_stage = &shared_stage;
        let widened = &widened;
        let logins = logins.clone();
        async move {
            let slots = BuildSlots {
                slots: build_slots,
                failed,
                shared_stage,
                widened,
                concurrency: settings.concurrency,
                shared_context_bytes: settings.shared_context_bytes,
            };
            let result =
                build_then_push(engine, &job, settings, credentials, logins, progress, slots).await;
            if result.status == ImageStatus::Failed {
                failed.store(true, Ordering::SeqCst);
            }
            result
        }
    };

    // The first image builds alone: its dependency stage fills the cache every later
    // image reuses (runbook: "installs the shared dependency layer once"). The others
    // wait for its build only, not its push (`BuildSlots::first_built`).
    let mut all = stream::iter(to_build)
        .map(run)
        .buffer_unordered(settings.concurrency);
    while let Some(result) = all.next().await {
        results.push(result);
    }
    results.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;

/// Who may build now (one until the first image is built, then one or `concurrency`),
/// and whether an image failed, after which none starts.
#[derive(Clone, Copy)]
struct BuildSlots<'a> {
    slots: &'a tokio::sync::Semaphore,
    failed: &'a AtomicBool,
    /// The image id of the dependency stage, once built, when it is the same for all.
    shared_stage: &'a std::sync::Mutex<Option<String>>,
    /// Whether the first image built has set how many build from then on.
    widened: &'a AtomicBool,
    concurrency: usize,
    shared_context_bytes: u64,
}

impl BuildSlots<'_> {
    /// The first image built (while it still holds the only slot) sets how many build
    /// side by side from now on, from its context's size. Called when its build is done,
    /// before its push: the others need its dependency stage in the cache, not its push.
    fn first_built(&self, engine: &Engine, context: u64, progress: &Progress) {
        if self.widened.swap(true, Ordering::SeqCst) {
            return;
        }
        // Docker 20.10 lends the daemon's copy of the context only to a build that
        // overlaps no other, so builds side by side each pull what they copy again and
        // keep a copy each. Worth it for a small context (the per-build latency runs in
        // parallel), not for a large one: with 100 MiB that every image copies, one build
        // at a time sent it once instead of four times and kept one copy instead of four,
        // in about the same time (bench/README.md). The size is what the first build's
        // context holds, sent or already in the daemon's copy (a later deploy sends next
        // to nothing). The classic builder reads a tar per build whatever runs beside it.
        if engine.builder == BuilderKind::BuildKit && context >= self.shared_context_bytes {
            progress.note(&format!(
                "the first image's build context holds {:.1} MiB: the others build one at a time, each reusing the daemon's copy, and push while the next builds (docker.shared_context_mib)",
                context as f64 / MIB
            ));
        } else {
            self.slots.add_permits(self.concurrency.saturating_sub(1));
        }
    }
}

/// Whether the run has said that the classic builder gets the whole context.
static WHOLE_CONTEXT_SAID: AtomicBool = AtomicBool::new(false);

/// For the classic builder, which reads a tar: the paths its Dockerfile's `COPY`/`ADD`
/// lines read, or `None` (the whole filtered context, said once per run) when they cannot
/// be told statically. BuildKit asks for its paths itself.
fn classic_context_paths(
    context: &ContextSpec,
    build_args: &[(String, String)],
    progress: &Progress,
) -> Option<Vec<String>> {
    let why = match build_context::dockerfile_text(context) {
        Ok(text) => match copy_sources(&text, build_args) {
            Sources::Paths(paths) => return Some(paths),
            Sources::Whole(why) => why,
        },
        Err(err) => format!("{err:#}"),
    };
    if !WHOLE_CONTEXT_SAID.swap(true, Ordering::SeqCst) {
        progress.note(&format!(
            "the classic builder gets the whole build context, since {} cannot be read for the paths it copies ({why})",
            context.dockerfile.display()
        ));
    }
    None
}

async fn build_then_push(
    engine: &Engine,
    job: &ImageJob,
    settings: &ImageSettings,
    credentials: &DockerCredentials,
    logins: std::sync::Arc<RegistryLogins>,
    progress: &Progress,
    slots: BuildSlots<'_>,
) -> ImageResult {
    let item = progress.item(&job.service);
    let mut build_args = settings.build_args.clone();
    build_args.push((settings.service_arg.clone(), job.service.clone()));
    let cache_from = job.cache.as_ref().map(|c| c.import.clone());
    if cache_from.is_some() {
        let (name, value) = build_cache::INLINE_CACHE_ARG;
        build_args.push((name.to_owned(), value.to_owned()));
    }
    let mut context = ContextSpec {
        repo_root: settings.repo_root.clone(),
        commit: settings.commit.clone(),
        dir: settings.context_dir.clone(),
        dockerfile: settings.dockerfile.clone(),
        include: None,
    };
    if engine.builder == BuilderKind::Classic {
        context.include = classic_context_paths(&context, &build_args, progress);
    }
    let request = BuildRequest {
        service: job.service.clone(),
        image: job.image.clone(),
        context,
        build_args,
        target: None,
        cache_from: cache_from.unwrap_or_default(),
        log_path: settings.log_dir.join(format!("{}.log", job.service)),
        logins,
    };
    let failed = |error: String, build_secs| ImageResult {
        service: job.service.clone(),
        image: job.image.clone(),
        status: ImageStatus::Failed,
        build_secs,
        push_secs: None,
        error: Some(error),
        dependency_stage: None,
    };

    item.state("waiting for a build slot");
    // Never closed, so never an error.
    let slot = slots.slots.acquire().await.ok();
    // Checked once the slot is ours: an image that waited does not start after a failure.
    if slots.failed.load(Ordering::SeqCst) {
        item.finish("not started (another image failed)");
        let result = ImageResult {
            service: job.service.clone(),
            image: job.image.clone(),
            status: ImageStatus::NotStarted,
            build_secs: None,
            push_secs: None,
            error: None,
            dependency_stage: None,
        };
        return result;
    }
    let started = Instant::now();
    // The dependency stage first, alone, into its cache image: the image's own build
    // then finds it in the daemon's cache.
    let stage = job.cache.as_ref().and_then(|c| c.stage.as_ref());
    let mut dependency_stage = None;
    // A stage that is the same for every service is built once (by the first image,
    // alone) and tagged for the others: builds side by side may not share the context's
    // copy, and would each run the stage again.
    let built_once = stage
        .filter(|stage| stage.shared)
        .and_then(|_| slots.shared_stage.lock().ok().and_then(|id| id.clone()));
    let mut judged_by_the_image = false;
    if let (Some(stage), Some(id)) = (stage, &built_once) {
        if let Err(err) = engine.tag(id, &stage.image).await {
            item.finish("build FAILED");
            return failed(format!("{err:#}"), None);
        }
        judged_by_the_image = true;
        dependency_stage = Some(DependencyStage {
            stage: stage.name.clone(),
            source: StageSource::LocalCache,
            cache_image: stage.image.clone(),
            cache_pushed: false,
            pulled_bytes: 0,
            imported: request.cache_from.clone(),
        });
    } else if let Some(stage) = stage {
        item.state(&format!("building the {} stage", stage.name));
        let stage_request = BuildRequest {
            image: stage.image.clone(),
            target: Some(stage.name.clone()),
            log_path: settings
                .log_dir
                .join(format!("{}.{}.log", job.service, stage.name)),
            ..request.clone()
        };
        match build_retrying(engine, &stage_request, &item).await {
            Ok(built) => {
                if stage.shared {
                    if let Ok(mut id) = slots.shared_stage.lock() {
                        *id = Some(built.image_id.clone());
                    }
                }
                dependency_stage = Some(DependencyStage {
                    stage: stage.name.clone(),
                    source: StageSource::of(&built.steps),
                    cache_image: stage.image.clone(),
                    cache_pushed: false,
                    pulled_bytes: job
                        .cache
                        .as_ref()
                        .map_or(0, |cache| cache.bytes_of(&built.steps.pulled)),
                    imported: request.cache_from.clone(),
                });
            }
            Err(err) => {
                item.finish("build FAILED");
                let secs = started.elapsed().as_secs_f64();
                return failed(format!("{err:#}"), Some(secs));
            }
        }
    }
    item.state("building");
    let built = build_retrying(engine, &request, &item).await;
    let build_secs = started.elapsed().as_secs_f64();
    match built {
        Ok(built) => {
            slots.first_built(engine, built.context_size, progress);
            // The stage's steps in the image's own build say where it came from.
            if let Some(stage) = dependency_stage.as_mut().filter(|_| judged_by_the_image) {
                if let Some(steps) = built.stage_steps.get(&stage.stage) {
                    stage.source = StageSource::of(steps);
                    stage.pulled_bytes = job
                        .cache
                        .as_ref()
                        .map_or(0, |cache| cache.bytes_of(&built.steps.pulled));
                }
            }
        }
        Err(err) => {
            item.finish("build FAILED");
            return failed(format!("{err:#}"), Some(build_secs));
        }
    }
    // Pushing needs no build slot: the next image builds meanwhile.
    drop(slot);

    item.state(&format!("built in {build_secs:.1}s; pushing"));
    let started = Instant::now();
    if let Err(err) = engine
        .push(&job.image, credentials, |status| item.detail(status))
        .await
    {
        item.finish("push FAILED");
        return failed(format!("{err:#}"), Some(build_secs));
    }
    // After the image: the cache image shares its layers, so little is left to send.
    if let Some(stage) = dependency_stage.as_mut() {
        item.state("pushing the cache image");
        match engine
            .push(&stage.cache_image, credentials, |status| item.detail(status))
            .await
        {
            Ok(()) => stage.cache_pushed = true,
            Err(err) => progress.note(&format!(
                "warning: {} was pushed, but not its cache image ({err:#}); the next build on an empty machine builds the {} stage again",
                job.image, stage.stage
            )),
        }
    }
    let push_secs = started.elapsed().as_secs_f64();
    let result = ImageResult {
        service: job.service.clone(),
        image: job.image.clone(),
        status: ImageStatus::Pushed,
        build_secs: Some(build_secs),
        push_secs: Some(push_secs),
        error: None,
        dependency_stage,
    };
    item.finish(&format!(
        "pushed {} (build {build_secs:.1}s, push {push_secs:.1}s){}",
        job.image,
        stage_note(&result.dependency_stage)
    ));
    result
}

/// `; deps: registry cache` for the progress line.
fn stage_note(stage: &Option<DependencyStage>) -> String {
    stage
        .as_ref()
        .map(|s| format!("; {}: {}", s.stage, s.source.words()))
        .unwrap_or_default()
}

/// One build, tried again once when a step hit a transient network error.
async fn build_retrying(
    engine: &Engine,
    request: &BuildRequest,
    item: &ItemProgress,
) -> Result<Built> {
    let built = engine.build(request, |step| item.detail(step)).await;
    if let Err(err) = &built {
        if let Some(failure) = err.downcast_ref::<BuildFailed>() {
            if build::is_transient_build_failure(failure) {
                item.state("build hit a transient network error; retrying once");
                return engine.build(request, |step| item.detail(step)).await;
            }
        }
    }
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_where_the_dependency_stage_came_from() {
        let mut result = ImageResult {
            service: "api".into(),
            image: "r/api:abc1234".into(),
            status: ImageStatus::Pushed,
            build_secs: Some(1.0),
            push_secs: Some(1.0),
            error: None,
            dependency_stage: None,
        };
        assert_eq!(result.pushed_words(), "built, pushed");
        result.dependency_stage = Some(DependencyStage {
            stage: "deps".into(),
            source: StageSource::RegistryCache,
            cache_image: "r/api:cache-deps".into(),
            cache_pushed: true,
            pulled_bytes: 7,
            imported: vec!["r/api:cache-deps".into()],
        });
        assert_eq!(
            result.pushed_words(),
            "built, pushed (deps: registry cache)"
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["dependency_stage"]["source"], "registry_cache");
        assert_eq!(json["dependency_stage"]["pulled_bytes"], 7);
    }
}
