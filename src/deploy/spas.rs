//! Step 7, SPAs: each one built, then uploaded (what changed) and CloudFront
//! invalidated; in a rollback or an undo, kept releases restored instead
//! (`spa_restore`).

use std::time::Instant;

use anyhow::{Context as _, Result};

use super::messages::pushed_sentence;
use super::run::{interruptible, Ready, Run};
use crate::error::Stage;
use crate::report::{Invalidation, RunReport, SpaResult};
use crate::spa;

impl Run<'_> {
    /// Step 7, SPAs: build every one first (a failed build stops the run before any
    /// upload), then upload what changed and invalidate CloudFront.
    pub(super) async fn deploy_spas(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let started = Instant::now();
        let deployed = interruptible(Stage::BeforeRoll, self.upload_spas(ready, report)).await;
        if !ready.spas.is_empty() {
            report.stage("spas", started);
        }
        deployed
    }

    async fn upload_spas(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        if ready.spas.is_empty() {
            return Ok(());
        }
        if self.source.restores_spas() {
            return self.restore_spas(ready, report).await;
        }
        for target in &ready.spas {
            let item = self.progress.item(&target.name);
            spa::build(target, &item).await.map_err(|err| {
                err.context(format!(
                    "no SPA was uploaded. {}",
                    pushed_sentence(&report.images)
                ))
            })?;
        }
        let s3 = ready.aws.s3();
        let cloudfront = ready.aws.cloudfront();
        let settings = &self.platform.config.spa_upload;
        for target in &ready.spas {
            let item = self.progress.item(&target.name);
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
