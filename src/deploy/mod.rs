//! The run, step by step (SPEC §3): discover, plan, preflight, who am I, build and
//! push. Each step lives in the module of the system it talks to; this file only
//! composes them, so the whole pipeline reads on one screen.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Serialize;

use futures_util::StreamExt;

use crate::aws::deploy_lock::{self, Lock, LockLocation};
use crate::aws::ecs::{Ecs, RolloutTarget, Settled};
use crate::aws::{self, ecr, profiles};
use crate::changes::live;
use crate::cli::{Cli, OutputFormat};
use crate::docker::daemon_lock::DaemonLock;
use crate::docker::engine::Engine;
use crate::docker::images::{self, ImageJob, ImageResult, ImageSettings, ImageStatus};
use crate::error::{Interrupted, UsageError};
use crate::git::Repo;
use crate::model::config;
use crate::model::plan::{self, Action, Decision, Mode, Plan};
use crate::model::platform::{Checkout, Platform};
use crate::model::report::{Invalidation, RunReport, SpaResult};
use crate::request::Request;
use crate::spa::{self, SpaTarget};
use crate::terraform::{self, Terraform};
use crate::ui::progress::Progress;

mod review;

pub use review::ALLOW_FLAG;

pub fn run(cli: &Cli) -> Result<()> {
    run_request(cli, Request::from_cli(cli))
}

/// A deploy, or a rollback (`deploy rollback`): the same pipeline, minus the builds.
pub fn run_request(cli: &Cli, request: Request) -> Result<()> {
    // 1. Discover.
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(request.start_dir.as_deref())?;
    let rollback_to = request
        .rollback
        .as_deref()
        .map(|revision| repo.commit(revision))
        .transpose()?;
    // A rollback builds nothing, so the working tree does not matter.
    let uncommitted = if rollback_to.is_some() {
        Vec::new()
    } else {
        repo.uncommitted_paths()?
    };
    tracing::info!(root = %repo.root().display(), tag = %head.short_sha, "repository found");

    // 2. Plan.
    let mut plan = Plan::new(
        &platform,
        &request,
        plan::Context {
            head,
            uncommitted,
            cwd: &cwd,
            registry_env: registry_override_env(),
            rollback_to,
        },
    )?;
    let profile = if request.dry_run {
        request.profile.clone()
    } else {
        profiles::choose(request.profile.as_deref(), request.assume_yes)?
    };
    let runtime = crate::model::platform::runtime()?;
    let outputs = if plan.mode == Mode::Changed {
        // --changed needs what ECS runs (read-only, also in a dry run).
        runtime.block_on(decide_changed(
            &mut plan,
            &platform,
            &repo,
            profile.as_deref(),
        ))?
    } else {
        None
    };
    if request.dry_run {
        return print_json_or_text(&plan, request.output);
    }
    if request.output == OutputFormat::Text {
        print!("{plan}");
    }
    if !plan.has_work() {
        // Runbook: "exits early if nothing changed".
        if request.output == OutputFormat::Json {
            print_json_or_text(&RunReport::new(&plan), request.output)?;
        } else {
            println!("\nNothing changed since the live images: nothing to build, push or roll.");
        }
        return Ok(());
    }

    if !request.assume_yes && !std::io::stdin().is_terminal() {
        // Never wait for input that cannot come (SPEC §3): fail before touching anything.
        // Checked once the plan is known: nothing to do needs no confirmation.
        return Err(UsageError::new(
            "no terminal to confirm on and -y not given; pass -y (with --profile) to deploy without the prompt. Nothing was touched",
        )
        .into());
    }

    // 3-9. Execute, then always report what was done.
    let progress = Progress::new(cli.quiet);
    let run = Run {
        platform: &platform,
        request: &request,
        plan: &plan,
        profile,
        outputs,
        progress: &progress,
        log_dir: repo
            .git_dir()
            .join("deploy")
            .join("logs")
            .join(&plan.image_tag),
    };
    if request.diff_only {
        let outcome = runtime.block_on(run.diff());
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        return outcome;
    }
    let mut report = RunReport::new(&plan);
    let mut held = None;
    let mut outcome = runtime.block_on(run.execute(&mut report, &mut held));
    if let Some(lock) = held {
        // Released whatever happened, interruption included.
        if let Err(err) = runtime.block_on(lock.release()) {
            match outcome {
                Ok(()) => outcome = Err(err),
                // The run's own failure stays the error; the stuck lock is said too,
                // even with --quiet: the next run depends on it.
                Err(_) => eprintln!("warning: {err:#}"),
            }
        }
    }
    // Stop build/push streams now: the daemon cancels work whose connection closed.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    // The summary says what was done; when preflight stopped the run, nothing was.
    if report.began || request.output == OutputFormat::Json {
        print_json_or_text(&report, request.output)?;
    }
    outcome
}

/// The full path of `program` if it is on PATH.
fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Cancels `step` on Ctrl-C (dropping it stops builds, pushes and polls).
async fn interruptible<T>(
    stage: Interrupted,
    step: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        outcome = step => outcome,
        _ = tokio::signal::ctrl_c() => Err(stage.into()),
    }
}

/// One run's inputs, resolved.
struct Run<'a> {
    platform: &'a Platform,
    request: &'a Request,
    plan: &'a Plan,
    profile: Option<String>,
    /// The environment's terraform outputs, when `--changed` has read them already.
    outputs: Option<serde_json::Map<String, serde_json::Value>>,
    progress: &'a Progress,
    log_dir: std::path::PathBuf,
}

/// What preflight found out.
struct Ready {
    sdk: aws_config::SdkConfig,
    engine: Engine,
    terraform: Option<Terraform>,
    /// The ECS cluster, when services are rolled.
    cluster: Option<String>,
    /// Where health checks go, when known.
    api_base_url: Option<String>,
    /// Where the deploy lock lives, when known.
    lock_bucket: Option<String>,
    /// The SPAs to build and upload, with their buckets and distributions.
    spas: Vec<SpaTarget>,
    /// `deploy rollback`: the images rolled, found in the registry by preflight.
    rollback_images: Vec<ImageResult>,
    /// The roll's saved terraform plan, reviewed: what the apply applies.
    saved_plan: Option<review::SavedPlan>,
}

impl Run<'_> {
    async fn execute(&self, report: &mut RunReport, held: &mut Option<Lock>) -> Result<()> {
        let ready = interruptible(Interrupted::BeforeRoll, self.preflight(report)).await?;
        *held = interruptible(Interrupted::BeforeRoll, self.lock(&ready)).await?;
        report.began = true;
        if self.plan.mode == Mode::Rollback {
            report.images = ready.rollback_images.clone();
        } else {
            interruptible(Interrupted::BeforeRoll, self.build_and_push(&ready, report)).await?;
        }
        interruptible(Interrupted::BeforeRoll, self.deploy_spas(&ready, report)).await?;

        // 8. Roll. Not interruptible by dropping: terraform stops itself on Ctrl-C and
        // we wait for it, so that its state is never left half-written.
        let (Some(step), Some(terraform), Some(saved)) =
            (&self.plan.terraform, &ready.terraform, &ready.saved_plan)
        else {
            return Ok(());
        };
        // Exactly the plan reviewed before the confirmation: no -var, no -target.
        let args = step.apply.apply_saved_args(&saved.file);
        self.progress.note(&format!(
            "running {} (the plan reviewed above)",
            plan::shell_words(std::iter::once("terraform".to_owned()).chain(args.clone()))
        ));
        let targeted = match &step.apply.roll {
            terraform::Roll::Only { services, .. } => {
                self.progress.note(&format!(
                    "the roll is targeted on purpose at {} (-target); terraform's warnings about targeting are expected and not shown",
                    services.join(", ")
                ));
                true
            }
            terraform::Roll::All { .. } => false,
        };
        let started = std::time::Instant::now();
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

        // 9. Verify.
        interruptible(Interrupted::AfterApply, self.verify(&ready, report)).await
    }

    /// 2-3. Preflight and who-am-I, before anything is built; the roll planned and
    /// reviewed (`report.review`) before the confirmation.
    async fn preflight(&self, report: &mut RunReport) -> Result<Ready> {
        let engine = Engine::connect().await?;
        tracing::info!(host = %engine.host, builder = ?engine.builder, "docker daemon reachable");
        // Runbook: "A full deploy uses roughly 6-8GB" (a rollback builds nothing).
        let wanted = self.platform.config.docker.min_free_gb;
        let builds = self.plan.mode != Mode::Rollback;
        if let Some(free) = engine.free_disk().await.filter(|_| builds) {
            let free = free as f64 / 1e9;
            if free < wanted {
                self.progress.note(&format!(
                    "warning: the Docker host has {free:.1} GB free, less than the {wanted} GB a full deploy needs (docker.min_free_gb). `deploy prune` reclaims build cache and old images safely (never volumes)"
                ));
            }
        }

        let mut terraform = None;
        let mut cluster = None;
        let mut api_base_url = self.platform.config.health.base_url.clone();
        let mut lock_bucket = self.platform.config.lock.bucket.clone();
        let mut outputs = serde_json::Map::new();
        let mut saved_plan = None;
        if let Some(step) = &self.plan.terraform {
            let tf = self.terraform_checked(step).await?;
            // --changed read this workspace's outputs already (it is the selected one).
            outputs = match &self.outputs {
                Some(known) => known.clone(),
                None => tf.outputs().await?,
            };
            cluster = Some(live::cluster_from(self.platform, &outputs)?);
            let output = |name: &str| {
                outputs
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let names = &self.platform.config.terraform.outputs;
            api_base_url = api_base_url.or_else(|| output(&names.api_base_url));
            lock_bucket = lock_bucket.or_else(|| output(&names.deploy_lock_bucket));
            // The plan needs the new tag only, not the images: planned here, a refused
            // roll costs seconds, not a build.
            saved_plan = Some(
                review::plan_the_roll(
                    &tf,
                    step,
                    self.plan,
                    &self.platform.config.terraform,
                    self.progress,
                )
                .await?,
            );
            terraform = Some(tf);
        }
        let spas = self.spa_targets(&mut outputs).await?;

        let profile = self.profile.as_deref();
        let sdk = aws::load(profile).await;
        let identity = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|err| anyhow!(aws::explain(&err, profile)))
            .context("cannot tell which AWS account this is (STS GetCallerIdentity); nothing was touched")?;
        let deploying = self
            .plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>();
        let mut summary = format!(
            "AWS account {} as {}\n  region     {}\n  profile    {}\n  workspace  {}\n  git        {} ({})\n  services   {}",
            identity.account().unwrap_or("?"),
            identity.arn().unwrap_or("?"),
            sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
            profile.unwrap_or("(default credential chain)"),
            self.plan
                .terraform
                .as_ref()
                .map(|t| t.apply.workspace.as_str())
                .unwrap_or("- (--skip-tf)"),
            self.plan.image_tag,
            self.plan.commit(),
            deploying.join(", "),
        );
        if self.plan.mode == Mode::Rollback {
            summary.push_str(&format!(
                "\n  rollback   to {}; HEAD is {}; SPAs are left as they are",
                self.plan.image_tag, self.plan.head.short_sha
            ));
        }
        if !self.plan.uncommitted.is_empty() {
            summary.push_str(&format!(
                "\n  note       images are built from commit {}: {} uncommitted path(s) are NOT included",
                self.plan.image_tag,
                self.plan.uncommitted.len()
            ));
        }
        self.progress.note(&summary);
        if let Some(saved) = &saved_plan {
            self.progress
                .note(&saved.review.render(crate::ui::style::stderr()));
            report.review = Some(saved.review.clone());
            review::guard(&saved.review, self.request.allow_infra_changes)?;
        }
        // Before anything is touched, the rollback's images must all be there.
        let rollback_images = if self.plan.mode == Mode::Rollback {
            self.rollback_images(&sdk, &engine).await?
        } else {
            Vec::new()
        };
        if !self.request.assume_yes {
            confirm(self.plan.mode)?;
        }
        Ok(Ready {
            sdk,
            engine,
            rollback_images,
            terraform,
            cluster,
            api_base_url,
            lock_bucket,
            spas,
            saved_plan,
        })
    }

    /// terraform's version, the workspace the tfvars names, and (for a targeted roll)
    /// targets that match the state: the terraform half of preflight.
    async fn terraform_checked(&self, step: &plan::TerraformStep) -> Result<Terraform> {
        let tf = live::terraform(self.platform, self.profile.as_deref());
        let bin = tf.bin.clone();
        let version = tokio::task::spawn_blocking(move || terraform::installed_version(&bin))
            .await
            .context("terraform version check panicked")??;
        if version < terraform::MINIMUM_VERSION {
            bail!(
                "terraform {version} is too old: install terraform >= {}",
                terraform::MINIMUM_VERSION
            );
        }
        tf.check_workspace(&step.apply.workspace).await?;
        if let terraform::Roll::Only { services, .. } = &step.apply.roll {
            self.check_targets(&tf, services).await?;
        }
        Ok(tf)
    }

    /// A targeted roll applies only what `-target` names: an address that matches
    /// nothing would apply nothing, and the run would only find out when ECS still runs
    /// the old tag. So every planned service's targets must be in the state (or be new
    /// instances of resources it has) before anything is built.
    async fn check_targets(&self, tf: &Terraform, services: &[String]) -> Result<()> {
        let state = tf.state_addresses().await?;
        let config = &self.platform.config.terraform;
        let mut problems = Vec::new();
        for service in services {
            let targets: Vec<String> = config
                .targets
                .iter()
                .map(|target| config::expand(target, service))
                .collect();
            let unmatched = terraform::unmatched_targets(&targets, &state);
            if unmatched.is_empty() {
                continue;
            }
            let known = terraform::addresses_of(service, &state);
            problems.push(format!(
                "  {service}: {} match nothing in the state; terraform has {}",
                unmatched.join(", "),
                if known.is_empty() {
                    "no address naming it".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(UsageError::new(format!(
            "the roll's -target addresses match nothing terraform knows, so its apply would change nothing:\n{}\nSet terraform.targets in deploy.toml to this root's task definition and service addresses, with {{service}} for the service's name (now {:?}: {}). Nothing was built or pushed",
            problems.join("\n"),
            config.targets,
            self.platform.origin("terraform.targets"),
        ))
        .into())
    }

    /// The SPAs this run deploys: their build tool must be installed, and each needs a
    /// bucket (config, else the terraform output map), all checked before anything runs.
    async fn spa_targets(
        &self,
        outputs: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<SpaTarget>> {
        let deploying: Vec<&crate::model::platform::Spa> = self
            .platform
            .spas
            .iter()
            .filter(|spa| {
                self.plan
                    .spas
                    .iter()
                    .any(|step| step.name == spa.name && step.action == Action::Deploy)
            })
            .collect();
        if deploying.is_empty() {
            return Ok(Vec::new());
        }
        let names = &self.platform.config.terraform.outputs;
        let needs_outputs = deploying
            .iter()
            .any(|spa| spa.bucket.is_none() || spa.distribution_id.is_none())
            || deploy_lock::private_bucket(self.platform, outputs).is_none();
        if needs_outputs && outputs.is_empty() {
            // --skip-tf: terraform is still where the names live (read-only).
            *outputs = live::terraform(self.platform, self.profile.as_deref())
                .outputs()
                .await
                .context("cannot read the SPA buckets and the environment's private bucket from terraform outputs (or set spas.<name>.bucket and lock.bucket in deploy.toml)")?;
        }
        // The upload manifests (every deployed SHA and file hash) are deploy's own
        // bookkeeping: never in a bucket CloudFront serves, so no private bucket, no
        // upload.
        let private_bucket = deploy_lock::private_bucket(self.platform, outputs).with_context(|| {
            format!(
                "no private bucket to keep the SPA upload manifests in (they stay out of the buckets CloudFront serves): set lock.bucket in deploy.toml, add a terraform output {:?}, or use an S3 terraform backend; or pass --skip-spas. Nothing was touched",
                names.deploy_lock_bucket
            )
        })?;
        let from_map = |map: &str, spa: &str| {
            outputs
                .get(map)
                .and_then(|m| m.get(spa))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let mut targets = Vec::new();
        for spa in deploying {
            let program = spa.build.split_whitespace().next().unwrap_or_default();
            if !program.contains('/') && find_on_path(program).is_none() {
                bail!(
                    "{program} (the build command of SPA {}: `{}`) is not installed: install it (for pnpm: `corepack enable pnpm`) or pass --skip-spas; nothing was touched",
                    spa.name,
                    spa.build
                );
            }
            let bucket = spa
                .bucket
                .clone()
                .or_else(|| from_map(&names.spa_buckets, &spa.name))
                .with_context(|| {
                    format!(
                        "no bucket for SPA {}: set spas.{}.bucket in deploy.toml or add it to the terraform output {:?}; nothing was touched",
                        spa.name, spa.name, names.spa_buckets
                    )
                })?;
            let distribution = spa
                .distribution_id
                .clone()
                .or_else(|| from_map(&names.spa_distribution_ids, &spa.name));
            targets.push(SpaTarget::new(
                &self.platform.root,
                spa,
                bucket,
                distribution,
                &private_bucket,
            ));
        }
        Ok(targets)
    }

    /// Step 7, SPAs: build every one first (a failed build stops the run before any
    /// upload), then upload what changed and invalidate CloudFront.
    async fn deploy_spas(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        if ready.spas.is_empty() {
            return Ok(());
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
        let s3 = aws::s3(&ready.sdk);
        let cloudfront = aws_sdk_cloudfront::Client::new(&ready.sdk);
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
                invalidation_id: match &invalidation {
                    Invalidation::Created { id } => Some(id.clone()),
                    _ => None,
                },
                invalidation,
            });
        }
        Ok(())
    }

    /// One run at a time per environment, held from here until the run ends.
    async fn lock(&self, ready: &Ready) -> Result<Option<Lock>> {
        let Some(step) = &self.plan.terraform else {
            // No environment (--skip-tf): images and SPAs only.
            return Ok(None);
        };
        if !self.platform.config.lock.enabled {
            return Ok(None);
        }
        let tf_dir = self.platform.root.join(&step.apply.dir);
        let Some(bucket) = ready
            .lock_bucket
            .clone()
            .or_else(|| deploy_lock::state_bucket(&tf_dir))
        else {
            self.progress.note(&format!(
                "warning: running WITHOUT the deploy lock: no bucket for it (set lock.bucket in deploy.toml, add a terraform output {:?}, or use an S3 terraform backend; lock.enabled = false silences this)",
                self.platform.config.terraform.outputs.deploy_lock_bucket
            ));
            return Ok(None);
        };
        let location = LockLocation::new(&bucket, &step.apply.workspace);
        let lock = Lock::acquire(
            aws::s3(&ready.sdk),
            location,
            self.plan.commit(),
            self.profile.as_deref(),
        )
        .await?;
        tracing::info!(environment = %step.apply.workspace, "deploy lock taken");
        Ok(Some(lock))
    }

    /// `deploy rollback`: every image it rolls must already be in the registry; one
    /// that is not stops the run before anything is touched, naming it.
    async fn rollback_images(
        &self,
        sdk: &aws_config::SdkConfig,
        engine: &Engine,
    ) -> Result<Vec<ImageResult>> {
        let (access, jobs) = self.image_jobs(sdk).await?;
        let credentials = access.docker_credentials();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for ImageJob { service, image } in jobs {
            if engine.exists_in_registry(&image, &credentials).await? {
                found.push(ImageResult {
                    service,
                    image,
                    status: ImageStatus::AlreadyInRegistry,
                    build_secs: None,
                    push_secs: None,
                    error: None,
                });
            } else {
                missing.push(format!("  {service}: no {image}"));
            }
        }
        if !missing.is_empty() {
            let others = if found.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = found.iter().map(|r| r.service.as_str()).collect();
                format!(
                    "roll back only the services that have one (--services {}), or ",
                    names.join(",")
                )
            };
            bail!(
                "cannot roll back to {tag}: {} not in the registry:\n{}\nOnly a commit whose images were pushed (and not deleted since) can be rolled back to: {others}check out {tag} and deploy it (a build). Nothing was touched",
                match missing.len() {
                    1 => "1 of its images is".to_owned(),
                    n => format!("{n} of its images are"),
                },
                missing.join("\n"),
                tag = self.plan.image_tag,
            );
        }
        Ok(found)
    }

    /// The images of the services this run deploys, named in their registry, after
    /// checking that their ECR repositories exist; and how to reach that registry.
    async fn image_jobs(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<(ecr::RegistryAccess, Vec<ImageJob>)> {
        let profile = self.profile.as_deref();
        let deploying: Vec<_> = self
            .plan
            .services
            .iter()
            .filter(|step| step.action == Action::Deploy)
            .collect();
        let ecr_client = aws_sdk_ecr::Client::new(sdk);
        let repositories: Vec<String> = deploying
            .iter()
            .map(|step| step.repository.clone())
            .collect();
        ecr::repository_uris(&ecr_client, &repositories, profile).await?;
        let access =
            ecr::registry_access(&ecr_client, self.plan.registry.host.as_deref(), profile).await?;
        let jobs = deploying
            .iter()
            .map(|step| ImageJob {
                service: step.name.clone(),
                image: format!("{}/{}", access.host, step.image),
            })
            .collect();
        Ok((access, jobs))
    }

    /// 5-6. Build and push every planned image.
    async fn build_and_push(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let (access, jobs) = self.image_jobs(&ready.sdk).await?;
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
            log_dir: self.log_dir.clone(),
        };
        // Held until every image is built and pushed: `deploy prune` waits for it.
        let _builds = DaemonLock::for_builds(&ready.engine, self.progress).await;
        images::build_and_push(
            &ready.engine,
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

    /// 9. Wait for every rolled service to settle on the new tag.
    async fn verify(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let Some(cluster) = &ready.cluster else {
            return Ok(());
        };
        let ecs_config = &self.platform.config.ecs;
        let ecs = Ecs::new(
            aws_sdk_ecs::Client::new(&ready.sdk),
            cluster.clone(),
            self.profile.clone(),
        );
        let targets: Vec<RolloutTarget> = self
            .plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
            .map(|s| RolloutTarget {
                service: s.name.clone(),
                ecs_service: config::expand(&ecs_config.service, &s.name),
                container: config::expand(&ecs_config.container, &s.name),
                expected_tag: self.plan.image_tag.clone(),
            })
            .collect();
        let timeout = std::time::Duration::from_secs(ecs_config.wait_timeout_secs);
        let poll = std::time::Duration::from_secs(ecs_config.poll_interval_secs);
        let ecs = &ecs;
        let mut settled: Vec<Settled> = futures_util::stream::iter(targets)
            .map(|target| async move {
                let item = self.progress.item(&target.service);
                item.state(&format!(
                    "waiting for ECS to settle on :{}",
                    target.expected_tag
                ));
                let settled = ecs.wait_until_settled(&target, timeout, poll, &item).await;
                match &settled.error {
                    None => item.finish(&format!(
                        "steady on :{} ({:.0}s)",
                        target.expected_tag, settled.waited_secs
                    )),
                    Some(err) => item.finish(&format!("NOT steady: {err}")),
                }
                settled
            })
            .buffer_unordered(8)
            .collect()
            .await;
        settled.sort_by(|a, b| a.service.cmp(&b.service));
        report.rollouts = settled;
        let failed: Vec<String> = report
            .rollouts
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| format!("  {}: {e}", r.service)))
            .collect();
        if failed.is_empty() {
            return self.check_health(ready, report).await;
        }
        bail!(
            "{} service(s) did not settle on :{}:\n{}\nImages are pushed and terraform was applied; check the services in ECS (events, stopped tasks) before re-running",
            failed.len(),
            self.plan.image_tag,
            failed.join("\n")
        )
    }
}

impl Run<'_> {
    /// The runbook's "GET https://<host>/<prefix>/health returns 200" (and `/docs`),
    /// for rolled services with a configured prefix.
    async fn check_health(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let health = &self.platform.config.health;
        let Some(base) = &ready.api_base_url else {
            if !health.prefixes.is_empty() {
                self.progress.note("health checks skipped: no base URL (set health.base_url or a terraform output api_base_url)");
            }
            return Ok(());
        };
        let checker = crate::health::Checker::new()?;
        let patience = std::time::Duration::from_secs(health.timeout_secs);
        let mut urls = Vec::new();
        for step in self
            .plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
        {
            if let Some(prefix) = health.prefixes.get(&step.name) {
                urls.push((
                    step.name.clone(),
                    crate::health::join_url(base, prefix, &health.path),
                ));
                if health.docs {
                    urls.push((
                        step.name.clone(),
                        crate::health::join_url(base, prefix, "docs"),
                    ));
                }
            }
        }
        let checker = &checker;
        let checks: Vec<crate::health::Check> = futures_util::stream::iter(urls)
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
            .await;
        report.health = checks;
        let failed: Vec<String> = report
            .health
            .iter()
            .filter_map(|c| c.error.as_ref().map(|e| format!("  {}: {e}", c.service)))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        bail!(
            "{} health check(s) failed after the roll:\n{}\nThe services run :{} in ECS but do not answer as expected",
            failed.len(),
            failed.join("\n"),
            self.plan.image_tag
        )
    }
}

/// Step 4, `--changed`: the survey of live tags vs HEAD decides each service. Returns
/// the terraform outputs when it read them, so that preflight does not read them again.
async fn decide_changed(
    plan: &mut Plan,
    platform: &Platform,
    repo: &Repo,
    profile: Option<&str>,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    // The live tags of the environment the tfvars name (preflight still requires that
    // workspace to be the selected one before anything is rolled).
    let workspace = plan.terraform.as_ref().map(|t| t.apply.workspace.as_str());
    let terraform = live::terraform_of(platform, profile, workspace);
    let outputs = match platform.config.ecs.cluster {
        Some(_) => None,
        None => Some(terraform.outputs().await?),
    };
    let cluster = match &outputs {
        Some(outputs) => live::cluster_from(platform, outputs)?,
        None => live::resolve_cluster(platform, &terraform).await?,
    };
    let survey = live::survey(platform, repo, &plan.head.sha, profile, cluster).await?;
    let decisions = survey
        .services
        .into_iter()
        .map(|s| {
            let decision = Decision {
                action: s.action,
                reason: s.reason,
            };
            (s.name, decision)
        })
        .collect();
    plan.decide(decisions, &platform.config.terraform);
    Ok(outputs)
}

/// "Pushed: a, b. Already in the registry: c. Not pushed: d" for failure messages.
fn pushed_sentence(images: &[ImageResult]) -> String {
    let names = |wanted: &[ImageStatus]| -> String {
        let list: Vec<&str> = images
            .iter()
            .filter(|r| wanted.contains(&r.status))
            .map(|r| r.service.as_str())
            .collect();
        if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
        }
    };
    format!(
        "Pushed: {}. Already in the registry: {}. Not pushed: {}",
        names(&[ImageStatus::Pushed]),
        names(&[ImageStatus::AlreadyInRegistry]),
        names(&[ImageStatus::Failed, ImageStatus::NotStarted]),
    )
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

fn confirm(mode: Mode) -> Result<()> {
    eprint!(
        "{}",
        if mode == Mode::Rollback {
            "Type y to roll back: "
        } else {
            "Type y to build and push: "
        }
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the confirmation")?;
    if answer.trim() == "y" {
        Ok(())
    } else {
        Err(UsageError::new(if mode == Mode::Rollback {
            "not confirmed: nothing was rolled back"
        } else {
            "not confirmed: nothing was built or pushed"
        })
        .into())
    }
}

fn print_json_or_text<T: Serialize + std::fmt::Display>(
    value: &T,
    output: OutputFormat,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match output {
        OutputFormat::Text => write!(stdout, "{value}"),
        OutputFormat::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(value)?),
    }
    .context(crate::error::WritingStdout)
}

/// `DEPLOY_REGISTRY`: push to this host instead of ECR's (a local registry).
fn registry_override_env() -> Option<String> {
    std::env::var("DEPLOY_REGISTRY")
        .ok()
        .filter(|v| !v.is_empty())
}
