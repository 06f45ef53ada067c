//! Step 3, preflight and who am I: everything checked before anything is built or
//! touched (SPEC §3): Docker, terraform and its targets, the environment's outputs, the
//! SPA build tools and buckets, the AWS account, and a rollback's images.

use anyhow::{anyhow, bail, Context as _, Result};

use super::messages::AccountSummary;
use super::run::{interruptible, Ready, Run};
use super::source::ImageSource;
use super::stages::Step;
use crate::aws::deploy_lock::{self, LockLocation};
use crate::aws::{self, ecr, profiles};
use crate::changes::live;
use crate::docker::engine::Engine;
use crate::docker::images::{ImageJob, ImageResult, ImageStatus};
use crate::error::{Stage, UsageError};
use crate::model::config::set_in_config;
use crate::model::environment::{Environment, Outputs};
use crate::model::plan::Action;
use crate::request::{Globals, Request};
use crate::spa::SpaTarget;
use crate::terraform::{self, Terraform};

/// The run's AWS contexts, after checking the profiles its flags name (`--profile`,
/// `promote --profile-from`): [`aws::Contexts::for_profiles`].
pub(super) fn contexts(globals: &Globals, request: &Request) -> Result<aws::Contexts> {
    let profile_from = request
        .promote
        .as_ref()
        .and_then(|p| p.profile_from.as_deref());
    aws::Contexts::for_profiles([
        ("--profile", globals.profile.as_deref()),
        ("--profile-from", profile_from),
    ])
}

/// The AWS profile: `--profile` (checked with the run's contexts), else the menu (never
/// in a dry run, which touches nothing that needs it chosen).
pub(super) fn choose_profile(globals: &Globals, request: &Request) -> Result<Option<String>> {
    if request.dry_run || globals.profile.is_some() {
        return Ok(globals.profile.clone());
    }
    profiles::choose(request.assume_yes)
}

impl Run<'_> {
    /// Interruptible: a signal cancels what is in flight, nothing was touched yet.
    pub(super) async fn preflight(&self) -> Result<Ready> {
        self.stages.enter(Step::Preflight);
        interruptible(Stage::BeforeRoll, self.checks()).await
    }

    async fn checks(&self) -> Result<Ready> {
        // A promotion copies through the registries' HTTP API: no Docker at all.
        let engine = match self.source.needs_docker() {
            true => Some(self.check_docker().await?),
            false => None,
        };
        let terraform = self.check_terraform().await?;
        let environment = self.environment(terraform.as_ref()).await?;
        let spas = self.spa_targets(&environment)?;
        // The plan needs the new tag only, not the images: planned here, a refused roll
        // costs seconds, not a build.
        let saved_plan = match (&self.plan.terraform, &terraform) {
            // A targeted roll of no service (SPAs only: a graph-mode `--changed` run
            // where only an SPA changed, an undo of one) plans nothing: without a
            // `-target`, terraform would plan every service with the global tag.
            (Some(step), Some(_)) if step.apply.roll.targeted().is_some_and(|s| s.is_empty()) => {
                None
            }
            (Some(step), Some(tf)) => match self.plan_the_roll(tf, step).await {
                Ok(saved) => Some(saved),
                Err(err) => return Err(self.deploy_lock_explains(&environment, err).await),
            },
            _ => None,
        };
        let (aws, caller_arn) = self.who_am_i().await?;
        self.promotion_preflight(&aws).await?;
        // Before anything is touched, the rollback's images must all be there (and the
        // recorded ones `--restore-drift` puts back).
        let rollback_images = match &engine {
            Some(engine)
                if self.source.in_the_registry()
                    || self.plan.services.iter().any(|s| s.restore.is_some()) =>
            {
                self.rollback_images(&aws.sdk, engine).await?
            }
            _ => Vec::new(),
        };
        Ok(Ready {
            aws,
            engine,
            terraform,
            environment,
            spas,
            rollback_images,
            saved_plan,
            caller_arn,
        })
    }

    /// The roll's plan failed on terraform's state lock: when another deploy holds
    /// the deploy lock, that run is applying, and the run fails as the deploy lock
    /// would have it a step later, naming the holder (the plan comes before the
    /// lock). Otherwise `err` stands.
    async fn deploy_lock_explains(
        &self,
        environment: &Environment,
        err: anyhow::Error,
    ) -> anyhow::Error {
        let state_locked = err.chain().any(|cause| {
            cause
                .downcast_ref::<terraform::ApplyFailed>()
                .is_some_and(|failed| {
                    failed
                        .errors
                        .iter()
                        .any(|e| e.contains("Error acquiring the state lock"))
                })
        });
        let (Some(step), Some(bucket), true) = (
            &self.plan.terraform,
            &environment.lock_bucket,
            state_locked && self.platform.config.lock.enabled,
        ) else {
            return err;
        };
        let aws = self.contexts.get(self.profile.as_deref()).await;
        let location = LockLocation::new(bucket, &step.apply.workspace);
        match deploy_lock::held(&aws.s3(), location).await {
            Ok(Some(held)) => held.into(),
            _ => err,
        }
    }

    /// The daemon answers, and has the disk a build needs.
    async fn check_docker(&self) -> Result<Engine> {
        let engine = Engine::connect().await?;
        tracing::info!(host = %engine.host, builder = ?engine.builder, "docker daemon reachable");
        // Runbook: "A full deploy uses roughly 6-8GB" (a rollback builds nothing).
        let wanted = self.platform.config.docker.min_free_gb;
        let builds = !self.source.in_the_registry();
        if let Some(free) = engine.free_disk().await.filter(|_| builds) {
            let free = free as f64 / 1e9;
            if free < wanted {
                self.progress.warn(&format!(
                    "the Docker host has {free:.1} GB free, less than the {wanted} GB a full deploy needs (docker.min_free_gb). `deploy prune` reclaims build cache and old images safely (never volumes)"
                ));
            }
        }
        Ok(engine)
    }

    /// When this run rolls: terraform recent enough, the workspace the tfvars name, and
    /// a targeted roll's addresses in the state.
    pub(super) async fn check_terraform(&self) -> Result<Option<Terraform>> {
        let Some(step) = &self.plan.terraform else {
            return Ok(None);
        };
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
        if let Some(services) = step.apply.roll.targeted() {
            self.check_targets(&tf, &services).await?;
        }
        Ok(Some(tf))
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
            let targets = terraform::targets_of(config, service);
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

    /// The environment: `deploy.toml`, then the workspace's terraform outputs. A roll
    /// needs its cluster; with `--skip-tf` the outputs are read only when an SPA needs
    /// a name that `deploy.toml` does not give.
    async fn environment(&self, terraform: Option<&Terraform>) -> Result<Environment> {
        let workspace = self
            .plan
            .terraform
            .as_ref()
            .map(|step| step.apply.workspace.as_str());
        let outputs = match (terraform, &self.outputs) {
            // --changed read this workspace's outputs already (it is the selected one).
            (Some(_), Some(known)) => known.clone(),
            (Some(tf), None) => tf.outputs().await?,
            (None, _) => Outputs::new(),
        };
        let environment = crate::checkout::read_environment(self.platform, workspace, &outputs)?;
        if terraform.is_some() {
            environment.cluster()?;
            return Ok(environment);
        }
        if !self.spas_need_outputs(&environment) {
            return Ok(environment);
        }
        // --skip-tf: terraform is still where the names live (read-only).
        let outputs = live::terraform(self.platform, self.profile.as_deref())
            .outputs()
            .await
            .context("cannot read the SPA buckets and the environment's private bucket from terraform outputs (or set spas.<name>.bucket and lock.bucket in deploy.toml)")?;
        crate::checkout::read_environment(self.platform, workspace, &outputs)
    }

    /// The SPAs this run deploys.
    fn deploying_spas(&self) -> impl Iterator<Item = &crate::model::platform::Spa> {
        self.platform.spas.iter().filter(|spa| {
            self.plan
                .spas
                .iter()
                .any(|step| step.name == spa.name && step.action == Action::Deploy)
        })
    }

    fn spas_need_outputs(&self, environment: &Environment) -> bool {
        let mut deploying = self.deploying_spas().peekable();
        deploying.peek().is_some()
            && (environment.lock_bucket.is_none()
                || deploying.any(|spa| spa.bucket.is_none() || spa.distribution_id.is_none()))
    }

    /// The SPAs this run deploys: their build tool must be installed, and each needs a
    /// bucket (config, else the terraform output map), all checked before anything runs.
    fn spa_targets(&self, environment: &Environment) -> Result<Vec<SpaTarget>> {
        let deploying: Vec<_> = self.deploying_spas().collect();
        if deploying.is_empty() {
            return Ok(Vec::new());
        }
        let names = &self.platform.config.terraform.outputs;
        // The upload manifests (every deployed SHA and file hash) are deploy's own
        // bookkeeping: never in a bucket CloudFront serves, so no private bucket, no
        // upload.
        let private_bucket = environment.lock_bucket.as_deref().ok_or_else(|| {
            UsageError::new(format!(
                "no private bucket to keep the SPA upload manifests in (they stay out of the buckets CloudFront serves): {}, add a terraform output {:?}, or use an S3 terraform backend; or pass --skip-spas. Nothing was touched",
                set_in_config("lock.bucket"),
                names.deploy_lock_bucket
            ))
        })?;
        let mut targets = Vec::new();
        // A rollback or an undo restores kept releases: nothing is built.
        let builds = !self.source.restores_spas();
        for spa in deploying {
            let program = spa.build.split_whitespace().next().unwrap_or_default();
            if builds && !program.contains('/') && crate::process::find_on_path(program).is_none() {
                bail!(
                    "{program} (the build command of SPA {}: `{}`) is not installed: install it (for pnpm: `corepack enable pnpm`) or pass --skip-spas; nothing was touched",
                    spa.name,
                    spa.build
                );
            }
            let place = environment.spa(&spa.name);
            let bucket = place.bucket.ok_or_else(|| {
                UsageError::new(format!(
                    "no bucket for SPA {}: {} or add it to the terraform output {:?}; nothing was touched",
                    spa.name,
                    set_in_config(&format!("spas.{}.bucket", spa.name)),
                    names.spa_buckets
                ))
            })?;
            targets.push(SpaTarget::new(
                &self.platform.root,
                spa,
                bucket,
                place.distribution_id,
                private_bucket,
            ));
        }
        Ok(targets)
    }

    /// STS GetCallerIdentity, and the account summary the operator confirms.
    async fn who_am_i(&self) -> Result<(aws::Aws, Option<String>)> {
        let profile = self.profile.as_deref();
        let aws = self.contexts.get(profile).await;
        let identity = aws_sdk_sts::Client::new(&aws.sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|err| anyhow!(aws::explain("sts:GetCallerIdentity", &err, profile)))
            .context("cannot tell which AWS account this is (STS GetCallerIdentity); nothing was touched")?;
        let summary = AccountSummary {
            account: identity.account().unwrap_or("?"),
            arn: identity.arn().unwrap_or("?"),
            region: aws
                .sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "?".into()),
            profile,
            plan: self.plan,
        };
        self.progress.note(&summary.to_string());
        let arn = identity.arn().map(str::to_owned);
        Ok((aws, arn))
    }

    /// `deploy rollback`: every image it rolls must already be in the registry; one
    /// that is not stops the run before anything is touched, naming it. A build: the
    /// recorded images `--restore-drift` puts back, the same way.
    async fn rollback_images(
        &self,
        sdk: &aws_config::SdkConfig,
        engine: &Engine,
    ) -> Result<Vec<ImageResult>> {
        let (access, mut jobs) = self.image_jobs(sdk).await?;
        if self.source == ImageSource::Build {
            jobs.retain(|job| self.plan.is_restored(&job.service));
        }
        let credentials = access.docker_credentials();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for ImageJob { service, image, .. } in jobs {
            if engine.exists_in_registry(&image, &credentials).await? {
                found.push(ImageResult {
                    service,
                    image,
                    status: ImageStatus::AlreadyInRegistry,
                    build_secs: None,
                    push_secs: None,
                    error: None,
                    dependency_stage: None,
                });
            } else {
                missing.push(format!("  {service}: no {image}"));
            }
        }
        if !missing.is_empty() && self.source == ImageSource::Build {
            bail!(
                "cannot put back the image deploy recorded (--restore-drift): {} not in the registry:\n{}\nIt was deleted since deploy rolled it. Take what runs as the baseline with --adopt-drift, or build and roll the service from HEAD (--services …). Nothing was touched",
                match missing.len() {
                    1 => "1 recorded image is".to_owned(),
                    n => format!("{n} recorded images are"),
                },
                missing.join("\n"),
            );
        }
        if !missing.is_empty() && self.source == ImageSource::Undo {
            bail!(
                "cannot undo run {}: {} not in the registry:\n{}\nAn undo rolls images that were pushed before; these were never pushed here, or were deleted since. Roll those services with `deploy rollback <SHA> --services …` or deploy them (a build). Nothing was touched",
                self.plan.undo.as_ref().map_or("?", |u| u.run_id.as_str()),
                match missing.len() {
                    1 => "1 of the images it would restore is".to_owned(),
                    n => format!("{n} of the images it would restore are"),
                },
                missing.join("\n"),
            );
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
    pub(super) async fn image_jobs(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<(ecr::RegistryAccess, Vec<ImageJob>)> {
        let profile = self.profile.as_deref();
        let deploying: Vec<_> = self.plan.deploying_services().collect();
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
                cache: None,
            })
            .collect();
        Ok((access, jobs))
    }
}
