//! Steps 5-10, once preflight passed and the operator confirmed: lock, build and
//! push, SPAs, roll, verify, health. Each step fills the run's report as it goes, so
//! that the summary says what was done whatever stopped the run.

use anyhow::{bail, Context as _, Result};
use futures_util::StreamExt;

use super::messages::pushed_sentence;
use super::{Ready, Run};
use crate::aws::deploy_lock::{self, Lock, LockLocation};
use crate::aws::ecs::{Ecs, RolloutTarget, Settled};
use crate::docker::daemon_lock::DaemonLock;
use crate::docker::images::{self, ImageResult, ImageSettings, ImageStatus};
use crate::error::{Interrupted, UsageError};
use crate::model::config;
use crate::model::plan::Action;
use crate::model::report::{Invalidation, RunReport, SpaResult};
use crate::spa;
use crate::terraform;

impl Run<'_> {
    /// Step 5, lock: one run at a time per environment, held from here until the run
    /// ends. With `--lock-wait` it waits for another run's lock, showing the holder;
    /// the second value says whether it did (another run may have rolled meanwhile).
    pub(super) async fn lock(&self, ready: &Ready) -> Result<(Option<Lock>, bool)> {
        let Some(step) = &self.plan.terraform else {
            // No environment (--skip-tf): images and SPAs only.
            return Ok((None, false));
        };
        if !self.platform.config.lock.enabled {
            return Ok((None, false));
        }
        let Some(bucket) = &ready.environment.lock_bucket else {
            self.progress.warn(&format!(
                "running WITHOUT the deploy lock: no bucket for it (set lock.bucket in deploy.toml, add a terraform output {:?}, or use an S3 terraform backend; lock.enabled = false silences this)",
                self.platform.config.terraform.outputs.deploy_lock_bucket
            ));
            return Ok((None, false));
        };
        let location = LockLocation::new(bucket, &step.apply.workspace);
        let environment = &step.apply.workspace;
        let taken = deploy_lock::take(
            ready.aws.s3(),
            location,
            self.plan.commit(),
            self.request.lock_wait,
            |held, left| {
                let holder = match &held.holder {
                    Some(holder) => format!("held by {holder}"),
                    None => "held by another run".to_owned(),
                };
                self.progress.note(&format!(
                    "waiting for the deploy lock of {environment} (up to {} more, --lock-wait): {holder}",
                    crate::timestamp::age(left.as_secs().max(1))
                ));
            },
        )
        .await?;
        tracing::info!(environment = %environment, waited = taken.waited, "deploy lock taken");
        if taken.waited {
            self.progress
                .note(&format!("took the deploy lock of {environment}"));
        }
        Ok((Some(taken.lock), taken.waited))
    }

    /// Releases the lock whatever `outcome` was. The run's own failure stays the
    /// error; a lock that stays held is said too, never silenced: the next run
    /// depends on it.
    pub(super) async fn release(&self, lock: Option<Lock>, outcome: Result<()>) -> Result<()> {
        let Some(lock) = lock else {
            return outcome;
        };
        match (lock.release().await, outcome) {
            (Err(err), Ok(())) => Err(err),
            (Err(err), Err(failed)) => {
                self.progress.warn(&format!("{err:#}"));
                Err(failed)
            }
            (Ok(()), outcome) => outcome,
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

    /// Step 7, SPAs: build every one first (a failed build stops the run before any
    /// upload), then upload what changed and invalidate CloudFront.
    pub(super) async fn deploy_spas(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        if ready.spas.is_empty() {
            return Ok(());
        }
        if super::spa_restore::restores(self.plan.mode) {
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
            let invalidation = match &target.distribution_id {
                Some(distribution) if needed => {
                    let wait = (settings.invalidation_wait_secs > 0)
                        .then(|| std::time::Duration::from_secs(settings.invalidation_wait_secs));
                    Invalidation::Created {
                        id: spa::invalidate(
                            &cloudfront,
                            distribution,
                            &settings.invalidation_paths,
                            wait,
                        )
                        .await?,
                    }
                }
                Some(_) => Invalidation::NotNeeded,
                None => Invalidation::NoDistribution,
            };
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
                invalidation_id: match &invalidation {
                    Invalidation::Created { id } => Some(id.clone()),
                    _ => None,
                },
                invalidation,
            });
        }
        Ok(())
    }

    /// Step 8, roll: terraform apply. Whether there was a roll (none with `--skip-tf`).
    pub(super) async fn roll(&self, ready: &Ready, report: &mut RunReport) -> Result<bool> {
        let (Some(step), Some(terraform), Some(saved)) =
            (&self.plan.terraform, &ready.terraform, &ready.saved_plan)
        else {
            return Ok(false);
        };
        // Exactly the plan reviewed before the confirmation: no -var, no -target.
        let args = step.apply.apply_saved_args(&saved.file);
        self.progress.note(&format!(
            "running {} (the plan reviewed above)",
            crate::model::plan::shell_words(
                std::iter::once("terraform".to_owned()).chain(args.clone())
            )
        ));
        let targeted = match step.apply.roll.targeted() {
            Some(services) => {
                self.progress.note(&format!(
                    "the roll is targeted on purpose at {} (-target); terraform's warnings about targeting are expected and not shown",
                    services.join(", ")
                ));
                true
            }
            None => false,
        };
        let started = std::time::Instant::now();
        // ECS service deployments created from here on are this roll's.
        report.roll_started = Some(std::time::SystemTime::now());
        if let Err(err) = terraform.apply(&args, targeted).await {
            if err.is::<Interrupted>() {
                return Err(err);
            }
            let advice = match err.downcast_ref::<terraform::ApplyFailed>() {
                Some(failed) => failed.advice(&step.apply.var_file),
                None => "fix what the message says, then run the same command again".to_owned(),
            };
            return Err(err.context(format!(
                "the roll failed and nothing was rolled by this run's apply; {}. {advice}: images already in the registry are not rebuilt",
                pushed_sentence(&report.images)
            )));
        }
        report.apply_secs = Some(started.elapsed().as_secs_f64());
        report.applied = true;
        Ok(true)
    }

    /// Step 9, verify: wait for every rolled service to settle on the new tag.
    pub(super) async fn verify(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let targets: Vec<(String, String)> = self
            .plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
            .map(|s| (s.name.clone(), self.plan.tag_of(&s.name).to_owned()))
            .collect();
        let since = report
            .roll_started
            .unwrap_or_else(std::time::SystemTime::now);
        report.rollouts = self
            .settle(ready, targets, since, self.request.wait_until)
            .await?;
        let failed: Vec<String> = report
            .rollouts
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| format!("  {}: {e}", r.service)))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        bail!(
            "{} service(s) did not settle on {}:\n{}\nImages are pushed and terraform was applied; check the services in ECS (events, stopped tasks) before re-running",
            failed.len(),
            self.rolled_tags(),
            failed.join("\n")
        )
    }

    /// Waits for each (service, tag) to settle in ECS, sorted by service: each through
    /// the service deployment created since `since` (the roll's start), side by side.
    pub(super) async fn settle(
        &self,
        ready: &Ready,
        targets: Vec<(String, String)>,
        since: std::time::SystemTime,
        until: crate::aws::ecs::native::WaitUntil,
    ) -> Result<Vec<Settled>> {
        let ecs_config = &self.platform.config.ecs;
        let ecs = self.ecs(ready)?;
        let targets: Vec<RolloutTarget> = targets
            .into_iter()
            .map(|(service, tag)| RolloutTarget {
                ecs_service: config::expand(&ecs_config.service, &service),
                container: config::expand(&ecs_config.container, &service),
                service,
                expected_tag: tag,
            })
            .collect();
        // The margin on top of each deployment's own bakes and steps; the whole wait
        // where a service has no service deployments.
        let margin = std::time::Duration::from_secs(ecs_config.wait_timeout_secs);
        let poll = std::time::Duration::from_secs(ecs_config.poll_interval_secs);
        let ecs = &ecs;
        let mut settled: Vec<Settled> = futures_util::stream::iter(targets)
            .map(|target| async move {
                let item = self.progress.item(&target.service);
                item.state(&format!(
                    "waiting for ECS to settle on :{}",
                    target.expected_tag
                ));
                let settled = ecs.follow(&target, since, until, margin, poll, &item).await;
                let paused = settled
                    .deployment
                    .as_ref()
                    .filter(|d| d.status != "SUCCESSFUL" && settled.error.is_none());
                match (&settled.error, paused) {
                    (None, Some(deployment)) => item.finish(&format!(
                        "{} on :{} ({:.0}s, --wait-until {}): {}",
                        if deployment.pauses.is_empty() {
                            "traffic shifted"
                        } else {
                            "PAUSED"
                        },
                        target.expected_tag,
                        settled.waited_secs,
                        until.name(),
                        crate::aws::ecs::native::next_step(deployment)
                    )),
                    (None, None) => item.finish(&format!(
                        "steady on :{} ({:.0}s{})",
                        target.expected_tag,
                        settled.waited_secs,
                        settled
                            .deployment
                            .as_ref()
                            .map(|d| format!(", {} deployment SUCCESSFUL", d.strategy))
                            .unwrap_or_default()
                    )),
                    (Some(err), _) => item.finish(&format!("NOT steady: {err}")),
                }
                settled
            })
            .buffer_unordered(8)
            .collect()
            .await;
        settled.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(settled)
    }

    /// ECS, for the environment's cluster.
    pub(super) fn ecs(&self, ready: &Ready) -> Result<Ecs> {
        Ok(Ecs::new(
            aws_sdk_ecs::Client::new(&ready.aws.sdk),
            ready.environment.cluster()?.to_owned(),
            self.profile.clone(),
        ))
    }

    /// Step 10, health: the runbook's "GET https://<host>/<prefix>/health returns 200" (and `/docs`),
    /// for rolled services with a configured prefix.
    pub(super) async fn check_health(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let rolled: Vec<String> = self
            .plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
            .map(|s| s.name.clone())
            .collect();
        report.health = self.health_checks(ready, &rolled).await?;
        let failed: Vec<String> = report
            .health
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| format!("  {}: {e}", c.service)))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        bail!(
            "{} health check(s) failed after the roll:\n{}\nThe services run {} in ECS but do not answer as expected",
            failed.len(),
            failed.join("\n"),
            self.rolled_tags()
        )
    }

    /// What the roll put the services on, for messages: `:<tag>`, or in an undo
    /// "the tags undo restored".
    fn rolled_tags(&self) -> String {
        match &self.plan.undo {
            Some(_) => "the tags undo restored".to_owned(),
            None => format!(":{}", self.plan.image_tag),
        }
    }

    /// The health checks of `services` that have a prefix (none without a base URL).
    pub(super) async fn health_checks(
        &self,
        ready: &Ready,
        services: &[String],
    ) -> Result<Vec<crate::health::Check>> {
        let health = &self.platform.config.health;
        let Some(base) = &ready.environment.api_base_url else {
            if !health.prefixes.is_empty() {
                self.progress.note("health checks skipped: no base URL (set health.base_url or a terraform output api_base_url)");
            }
            return Ok(Vec::new());
        };
        let checker = crate::health::Checker::new()?;
        let patience = std::time::Duration::from_secs(health.timeout_secs);
        let mut urls = Vec::new();
        for service in services {
            if let Some(prefix) = health.prefixes.get(service) {
                urls.push((
                    service.clone(),
                    crate::health::join_url(base, prefix, &health.path),
                ));
                if health.docs {
                    urls.push((
                        service.clone(),
                        crate::health::join_url(base, prefix, "docs"),
                    ));
                }
            }
        }
        let checker = &checker;
        Ok(futures_util::stream::iter(urls)
            .map(|(service, url)| async move {
                let check = checker.check(&service, url, patience).await;
                let item = self.progress.item(&service);
                match &check.error {
                    None => item.finish(&format!("GET {} → 200", check.url)),
                    Some(err) => item.finish(&format!("UNHEALTHY: {err}")),
                }
                check
            })
            .buffer_unordered(8)
            .collect()
            .await)
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
