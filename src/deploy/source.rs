//! Step 6, where the images rolled come from: built from HEAD and pushed (a deploy),
//! found in the registry by preflight (`deploy rollback`, `deploy undo`), or copied by
//! digest from another environment's registry (`deploy promote`). One value,
//! [`ImageSource`], carries the difference; [`Run::obtain_images`] is the one step.

use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use super::messages::pushed_sentence;
use super::run::{interruptible, Ready, Run};
use crate::docker::daemon_lock::DaemonLock;
use crate::docker::images::{self, ImageResult, ImageSettings, ImageStatus};
use crate::error::{Stage, UsageError};
use crate::model::plan::Mode;
use crate::model::report::RunReport;

/// Where a run's images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ImageSource {
    /// Built from HEAD and pushed: `deploy`, `--changed`, `--services`.
    Build,
    /// The images of an older commit, already in the registry: `deploy rollback`.
    Rollback,
    /// The tags the undone run replaced, already in the registry: `deploy undo`.
    Undo,
    /// Copied by digest from the source environment's registry: `deploy promote`.
    Promote,
}

impl ImageSource {
    pub fn of(mode: Mode) -> Self {
        match mode {
            Mode::Full | Mode::Changed | Mode::Services => ImageSource::Build,
            Mode::Rollback => ImageSource::Rollback,
            Mode::Undo => ImageSource::Undo,
            Mode::Promote => ImageSource::Promote,
        }
    }

    /// Whether preflight needs the Docker daemon: a promotion copies through the
    /// registries' HTTP API.
    pub fn needs_docker(self) -> bool {
        self != ImageSource::Promote
    }

    /// Whether the images are already in this environment's registry, for preflight to
    /// find before anything is touched.
    pub fn in_the_registry(self) -> bool {
        matches!(self, ImageSource::Rollback | ImageSource::Undo)
    }

    /// Whether SPAs are restored from kept releases instead of built and uploaded.
    pub fn restores_spas(self) -> bool {
        self.in_the_registry()
    }

    /// The prompt of the typed `y`, and what an answer other than `y` means.
    pub fn confirmation(self) -> (&'static str, &'static str) {
        match self {
            ImageSource::Build => (
                "Type y to build and push: ",
                "not confirmed: nothing was built or pushed",
            ),
            ImageSource::Rollback => (
                "Type y to roll back: ",
                "not confirmed: nothing was rolled back",
            ),
            ImageSource::Undo => ("Type y to undo: ", "not confirmed: nothing was undone"),
            ImageSource::Promote => (
                "Type y to copy and roll: ",
                "not confirmed: nothing was copied or rolled",
            ),
        }
    }
}

impl Run<'_> {
    /// Step 6: the images of the services this run deploys, in this environment's
    /// registry, recorded in the report.
    pub(super) async fn obtain_images(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        match self.source {
            // Found in the registry by preflight.
            ImageSource::Rollback | ImageSource::Undo => {
                report.images = ready.rollback_images.clone();
                Ok(())
            }
            ImageSource::Promote => {
                interruptible(Stage::BeforeRoll, self.copy_images(ready, report)).await
            }
            ImageSource::Build => {
                let started = Instant::now();
                let built =
                    interruptible(Stage::BeforeRoll, self.build_and_push(ready, report)).await;
                report.stage("build and push", started);
                built
            }
        }
    }

    /// Step 6: build and push every planned image.
    pub(super) async fn build_and_push(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let (access, jobs) = self.image_jobs(&ready.aws.sdk).await?;
        let docker_config = &self.platform.config.docker;
        let settings = ImageSettings {
            repo_root: self.platform.root.clone(),
            commit: self.plan.head.sha.clone(),
            context_dir: docker_config.context.clone(),
            dockerfile: dockerfile_in_context(&docker_config.dockerfile, &docker_config.context)?,
            service_arg: docker_config.service_arg.clone(),
            build_args: docker_config
                .build_args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            concurrency: docker_config.concurrency,
            shared_context_bytes: (docker_config.shared_context_mib * 1024.0 * 1024.0) as u64,
            log_dir: self.log_dir.clone(),
        };
        let engine = ready
            .engine
            .as_ref()
            .context("building images needs the Docker daemon")?;
        // Held until every image is built and pushed: `deploy prune` waits for it.
        let _builds = DaemonLock::for_builds(engine, self.progress).await;
        images::build_and_push(
            engine,
            &jobs,
            &settings,
            &access.docker_credentials(),
            self.progress,
            &mut report.images,
        )
        .await?;

        let failures: Vec<&ImageResult> = report
            .images
            .iter()
            .filter(|r| r.status == ImageStatus::Failed)
            .collect();
        if failures.is_empty() {
            return Ok(());
        }
        let details: Vec<String> = failures
            .iter()
            .map(|r| r.error.clone().unwrap_or_default())
            .collect();
        bail!(
            "{}\n\n{} image(s) failed. {}. Nothing was applied.\nRe-run the same command to resume: images already in the registry are not rebuilt.",
            details.join("\n\n"),
            failures.len(),
            pushed_sentence(&report.images),
        )
    }
}

/// The Dockerfile as the daemon names it: relative to the build context.
fn dockerfile_in_context(
    dockerfile: &std::path::Path,
    context: &std::path::Path,
) -> Result<std::path::PathBuf> {
    if context == std::path::Path::new(".") {
        return Ok(dockerfile.to_path_buf());
    }
    dockerfile
        .strip_prefix(context)
        .map(|p| p.to_path_buf())
        .map_err(|_| {
            UsageError::new(format!(
                "docker.dockerfile {} is outside docker.context {}",
                dockerfile.display(),
                context.display()
            ))
            .into()
        })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_takes_its_images_from_one_source() {
        // mode, source, Docker, in the registry, SPAs restored
        let table = [
            (Mode::Full, ImageSource::Build, true, false, false),
            (Mode::Changed, ImageSource::Build, true, false, false),
            (Mode::Services, ImageSource::Build, true, false, false),
            (Mode::Rollback, ImageSource::Rollback, true, true, true),
            (Mode::Undo, ImageSource::Undo, true, true, true),
            (Mode::Promote, ImageSource::Promote, false, false, false),
        ];
        for (mode, source, docker, found, spas) in table {
            assert_eq!(ImageSource::of(mode), source, "{mode:?}");
            assert_eq!(source.needs_docker(), docker, "{mode:?}");
            assert_eq!(source.in_the_registry(), found, "{mode:?}");
            assert_eq!(source.restores_spas(), spas, "{mode:?}");
        }
    }

    #[test]
    fn each_source_is_confirmed_in_its_own_words() {
        let table = [
            (
                ImageSource::Build,
                "Type y to build and push: ",
                "nothing was built or pushed",
            ),
            (
                ImageSource::Rollback,
                "Type y to roll back: ",
                "nothing was rolled back",
            ),
            (ImageSource::Undo, "Type y to undo: ", "nothing was undone"),
            (
                ImageSource::Promote,
                "Type y to copy and roll: ",
                "nothing was copied or rolled",
            ),
        ];
        for (source, prompt, refused) in table {
            let (asked, not_confirmed) = source.confirmation();
            assert_eq!(asked, prompt);
            assert_eq!(not_confirmed, format!("not confirmed: {refused}"));
        }
    }
}
