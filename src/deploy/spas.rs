//! Step 7, SPAs: each one built, beside step 6's images (they share nothing but the
//! CPU), then, once every image is in the registry, uploaded (what changed) and
//! CloudFront invalidated; in a rollback or an undo, kept releases restored instead
//! (`spa_restore`).

use std::time::Instant;

use anyhow::{Context as _, Result};

use super::ledger::Before;
use super::messages::pushed_sentence;
use super::run::{interruptible, Ready, Run};
use crate::docker::images::ImageResult;
use crate::error::{Interrupted, Stage};
use crate::report::{Invalidation, RunReport, SpaResult};
use crate::spa;
use crate::ui::progress::ItemProgress;

/// The SPAs built beside the images: each one's line of progress, which its upload
/// goes on, and when the first build began (the `spas` stage's start).
pub(super) struct BuiltSpas {
    items: Vec<ItemProgress>,
    started: Instant,
}

impl Run<'_> {
    /// Step 6 and step 7's builds side by side on the run's runtime: the images built
    /// and pushed (or found, or copied) while every SPA builds. Both run after the review
    /// and the confirmation, and upload nothing: the uploads wait for every image. Both
    /// run to their end, so that when both fail both are named; a signal stops both
    /// (dropping a build kills its process group).
    pub(super) async fn images_beside_spa_builds(
        &self,
        ready: &Ready,
        before: &Before,
        report: &mut RunReport,
    ) -> Result<BuiltSpas> {
        let started = Instant::now();
        let builds = interruptible(Stage::BeforeRoll, self.build_spas(ready));
        let (images, builds) = tokio::join!(self.obtain_images(ready, before, report), builds);
        let items = joined(images, builds, &report.images)?;
        Ok(BuiltSpas { items, started })
    }

    /// Every SPA built, one after another (none in a rollback or an undo, which restore
    /// kept releases).
    async fn build_spas(&self, ready: &Ready) -> Result<Vec<ItemProgress>> {
        let mut items = Vec::new();
        if self.source.restores_spas() {
            return Ok(items);
        }
        for target in &ready.spas {
            let item = self.progress.item(&target.name);
            spa::build(target, &item).await?;
            items.push(item);
        }
        Ok(items)
    }

    /// Step 7, SPAs, once every image is in the registry: upload what changed and
    /// invalidate CloudFront (the builds ran beside the images).
    pub(super) async fn deploy_spas(
        &self,
        ready: &Ready,
        built: BuiltSpas,
        report: &mut RunReport,
    ) -> Result<()> {
        let deployed = interruptible(
            Stage::BeforeRoll,
            self.upload_spas(ready, built.items, report),
        )
        .await;
        if !ready.spas.is_empty() {
            // From the first SPA build: this stage overlaps "build and push".
            report.stage("spas", built.started);
        }
        deployed
    }

    async fn upload_spas(
        &self,
        ready: &Ready,
        items: Vec<ItemProgress>,
        report: &mut RunReport,
    ) -> Result<()> {
        if ready.spas.is_empty() {
            return Ok(());
        }
        if self.source.restores_spas() {
            return self.restore_spas(ready, report).await;
        }
        let s3 = ready.aws.s3();
        let cloudfront = ready.aws.cloudfront();
        let settings = &self.platform.config.spa_upload;
        for (target, item) in ready.spas.iter().zip(items) {
            item.state(&format!("uploading to s3://{}", target.bucket));
            // HEAD's SHA, or `<sha>-dirty` for a build of uncommitted files (SPEC §4).
            let git_sha = self
                .plan
                .spas
                .iter()
                .find(|step| step.name == target.name)
                .map_or(self.plan.head.sha.as_str(), |step| &step.recorded_sha);
            let uploaded = spa::upload(&s3, target, git_sha, settings, &item)
                .await
                .with_context(|| {
                    format!(
                        "the upload of SPA {} failed part-way (entry points go up last, so the site still serves the previous release) and nothing was applied. {}. Re-run the same command to resume",
                        target.name,
                        pushed_sentence(&report.images)
                    )
                })?;
            // Hashed assets are new names, never cached: only a new entry point, or a
            // removed file, can leave CloudFront serving something stale.
            let needed = !uploaded.entry_points.is_empty() || !uploaded.deleted.is_empty();
            let invalidation = invalidate(&cloudfront, target, settings, needed).await?;
            item.finish(&format!("{uploaded}; invalidation {invalidation}"));
            report.spas.push(SpaResult {
                name: target.name.clone(),
                bucket: target.bucket.clone(),
                git_sha: git_sha.to_owned(),
                uploaded: uploaded.uploaded.len(),
                unchanged: uploaded.unchanged,
                release: Some(uploaded.deploy),
                restored_from: None,
                live_since: Some(uploaded.time.clone()),
                invalidation_id: invalidation.id(),
                invalidation,
            });
        }
        Ok(())
    }
}

/// CloudFront after SPA `target`'s files changed: one invalidation of the configured paths
/// on its distribution where `needed` (waited for when `invalidation_wait_secs` says so),
/// or why there was none. The upload and the restore of a release both end here.
pub(super) async fn invalidate(
    cloudfront: &crate::aws::CloudFront,
    target: &spa::SpaTarget,
    settings: &crate::model::config::SpaUploadConfig,
    needed: bool,
) -> Result<Invalidation> {
    Ok(match &target.distribution_id {
        Some(distribution) if needed => {
            let wait = (settings.invalidation_wait_secs > 0)
                .then(|| std::time::Duration::from_secs(settings.invalidation_wait_secs));
            let paths = &settings.invalidation_paths;
            Invalidation::Created {
                id: spa::invalidate(cloudfront, distribution, paths, wait).await?,
            }
        }
        Some(_) => Invalidation::NotNeeded,
        None => Invalidation::NoDistribution,
    })
}

/// The outcome of the images and of the SPA builds beside them, as one: a signal first
/// (its exit code), then whatever failed, naming both when both did. A failed SPA build
/// is told with what the images left in the registry.
fn joined(
    images: Result<()>,
    builds: Result<Vec<ItemProgress>>,
    pushed: &[ImageResult],
) -> Result<Vec<ItemProgress>> {
    let interrupted = |err: &anyhow::Error| err.chain().any(|c| c.is::<Interrupted>());
    let uploaded_none = || format!("no SPA was uploaded. {}", pushed_sentence(pushed));
    match (images, builds) {
        (Err(err), _) | (_, Err(err)) if interrupted(&err) => Err(err),
        (Ok(()), builds) => builds.map_err(|err| err.context(uploaded_none())),
        (Err(images), Ok(_)) => Err(images),
        (Err(images), Err(build)) => Err(images.context(format!(
            "{build:#}\n\nimages failed too, and no SPA was uploaded"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code_for, ExitCode, Signal};

    fn failed_build() -> anyhow::Error {
        anyhow::anyhow!(
            "the build of SPA admin-ui failed: `exit 3` (in apps/admin-ui) exit status: 3"
        )
    }

    #[test]
    fn a_failed_spa_build_says_no_spa_was_uploaded_and_what_was_pushed() {
        let err = joined(Ok(()), Err(failed_build()), &[]).err().unwrap();
        let text = crate::error::render(&err, 0);
        assert!(
            text.starts_with("no SPA was uploaded. Pushed: none."),
            "{text}"
        );
        assert!(text.contains("SPA admin-ui failed"), "{text}");
        assert_eq!(exit_code_for(&err), ExitCode::Failure);
    }

    #[test]
    fn when_images_and_an_spa_build_fail_both_are_named() {
        let images = anyhow::anyhow!("1 image(s) failed. Nothing was applied.");
        let err = joined(Err(images), Err(failed_build()), &[]).err().unwrap();
        let text = crate::error::render(&err, 0);
        assert!(text.contains("SPA admin-ui failed"), "{text}");
        assert!(
            text.contains("images failed too, and no SPA was uploaded"),
            "{text}"
        );
        assert!(text.contains("1 image(s) failed"), "{text}");
        assert_eq!(exit_code_for(&err), ExitCode::Failure);
    }

    #[test]
    fn a_signal_wins_over_a_failure_beside_it() {
        for (images, builds) in [
            (true, false), // the images interrupted, the SPA build failed
            (false, true), // the SPA build interrupted, the images failed
        ] {
            let interrupted =
                || anyhow::Error::new(Interrupted::new(Stage::BeforeRoll, Signal::Terminate));
            let images = Err(if images {
                interrupted()
            } else {
                anyhow::anyhow!("push failed")
            });
            let builds = Err(if builds {
                interrupted()
            } else {
                failed_build()
            });
            let err = joined(images, builds, &[]).err().unwrap();
            assert_eq!(exit_code_for(&err), ExitCode::Terminated);
        }
        let items = joined(Ok(()), Ok(Vec::new()), &[]).unwrap();
        assert!(items.is_empty());
    }
}
