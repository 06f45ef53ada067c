//! Step 6, the images: one step, [`Run::obtain_images`], whatever their source
//! ([`ImageSource`]); the build and push of a deploy.

mod build_cache;

use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use super::ledger::Before;
use super::messages::pushed_sentence;
use super::run::{interruptible, Ready, Run};
use super::source::ImageSource;
use crate::docker::daemon_lock::DaemonLock;
use crate::docker::images::{self, ImageResult, ImageSettings, ImageStatus};
use crate::error::{Stage, UsageError};
use crate::report::RunReport;

impl Run<'_> {
    /// Step 6: the images of the services this run deploys, in this environment's
    /// registry, recorded in the report.
    pub(super) async fn obtain_images(
        &self,
        ready: &Ready,
        before: &Before,
        report: &mut RunReport,
    ) -> Result<()> {
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
                // `--restore-drift`'s recorded images: found by preflight, not built.
                report.images = ready.rollback_images.clone();
                let started = Instant::now();
                let built = interruptible(
                    Stage::BeforeRoll,
                    self.build_and_push(ready, before, report),
                )
                .await;
                report.stage("build and push", started);
                built
            }
        }
    }

    /// Step 6: build and push every planned image (with the registry build cache: its
    /// cache images too, in the same step, so after the review like every push).
    pub(super) async fn build_and_push(
        &self,
        ready: &Ready,
        before: &Before,
        report: &mut RunReport,
    ) -> Result<()> {
        let (access, mut jobs) = self.image_jobs(&ready.aws.sdk).await?;
        jobs.retain(|job| !self.plan.is_restored(&job.service));
        if jobs.is_empty() {
            return Ok(());
        }
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
        self.plan_build_cache(engine, &access, &settings, before, &mut jobs)
            .await?;
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
pub(super) fn dockerfile_in_context(
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
