//! `deploy promote`: the images one environment runs, copied by digest into the next
//! environment's registry and rolled there. Step 2 reads both environments (what each
//! runs, by digest), and the pure verdict (`verdict`) sets the plan from what was read;
//! step 3 shows the source's account beside the
//! target's; step 6 copies registry to registry instead of building, and proves the
//! digests before anything is rolled.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use futures_util::StreamExt as _;

use super::run::{Ready, Run};
use crate::aws::ecs::{image_tag_of, LiveImage};
use crate::aws::{ecr, Aws, Contexts};
use crate::changes::live;
use crate::checkout::Checkout;
use crate::docker::images::{ImageResult, ImageStatus};
use crate::model::environment::Outputs;
use crate::model::plan::{Action, Plan};
use crate::registry::{self, Place, RegistryClient};
use crate::report::{CopiedImage, RunReport};

mod verdict;

use verdict::{short_digest, Read};

/// Images copied at once.
const COPY_CONCURRENCY: usize = 4;

/// A registry client for an environment: `host` (an override), else its ECR host, with
/// the GetAuthorizationToken credentials of the account of `aws`.
/// The repository of `service` in the source environment (`registry.repository` as
/// deploy.toml gives it there).
fn source_repository(source: &crate::model::platform::Platform, service: &str) -> String {
    crate::model::config::expand(&source.config.registry.repository, service)
}

async fn open_registry(aws: &Aws, host: Option<&str>) -> Result<RegistryClient> {
    let ecr = aws_sdk_ecr::Client::new(&aws.sdk);
    let access = ecr::registry_access(&ecr, host, aws.profile.as_deref()).await?;
    access.registry_client()
}

/// Step 2: reads what the source runs (ECS, then its registry for the digest) and what
/// the target runs, and decides each chosen service ([`verdict`]): promote, skip (the
/// target runs that digest), or refuse (the source runs no commit's image). Any
/// refusal stops the run, naming each. Returns the target's terraform outputs for
/// preflight.
pub(super) async fn decide(
    plan: &mut Plan,
    checkout: &Checkout,
    contexts: &Contexts,
    profile: Option<&str>,
) -> Result<Option<Outputs>> {
    let platform = &checkout.platform;
    let mut promotion = plan
        .promotion
        .clone()
        .context("deploy promote without a source")?;
    let from = promotion.from_workspace.clone();
    let profile_from = promotion.profile_from.as_deref().or(profile);
    let to = plan
        .terraform
        .as_ref()
        .map(|t| t.apply.workspace.clone())
        .context("deploy promote needs the target's tfvars (--to)")?;
    // Each environment's names (deploy.toml's, expanded for it).
    let source_platform = &crate::planning::platform_in(platform, Some(&from))?;
    // The two environments are read at once: each is a terraform output, then ECS, then
    // its registry's credentials, and neither depends on the other.
    let source = async {
        let (source_env, _) = crate::changes::environment::read_environment(
            source_platform,
            profile_from,
            Some(&from),
            source_platform.config.ecs.cluster.is_some(),
        )
        .await
        .with_context(|| format!("cannot read the source environment {from}"))?;
        let source_aws = contexts.get(profile_from).await;
        let source_live = live::fetch(source_platform, &source_aws, source_env.cluster()?)
            .await
            .with_context(|| format!("cannot read what {from} runs"))?;
        let source_registry = open_registry(&source_aws, promotion.from_registry.host.as_deref())
            .await
            .with_context(|| format!("cannot reach the registry of {from}"))?;
        anyhow::Ok((source_live, source_registry))
    };
    let target = async {
        let (target_env, outputs) = crate::changes::environment::read_environment(
            platform,
            profile,
            Some(&to),
            platform.config.ecs.cluster.is_some(),
        )
        .await
        .with_context(|| format!("cannot read the target environment {to}"))?;
        let target_aws = contexts.get(profile).await;
        let target_live = live::fetch(platform, &target_aws, target_env.cluster()?)
            .await
            .with_context(|| format!("cannot read what {to} runs"))?;
        let target_registry = open_registry(&target_aws, plan.registry.host.as_deref())
            .await
            .with_context(|| format!("cannot reach the registry of {to}"))?;
        anyhow::Ok((outputs, target_live, target_registry))
    };
    let (source, target) = tokio::join!(source, target);
    let (source_live, source_registry) = source?;
    let (outputs, target_live, target_registry) = target?;

    let mut verdicts = BTreeMap::new();
    for step in plan.services_to(Action::Check) {
        let source_repository = source_repository(source_platform, &step.name);
        let source = Place {
            registry: &source_registry,
            repository: &source_repository,
        };
        let target = Place {
            registry: &target_registry,
            repository: &step.repository,
        };
        let read = read_digests(
            &from,
            source_live.get(&step.name),
            target_live.get(&step.name),
            source,
            target,
        )
        .await?;
        verdicts.insert(step.name.clone(), verdict::verdict(&from, &read));
    }
    promotion.images = verdict::apply(
        &mut plan.services,
        &verdicts,
        (&from, &to),
        &promotion.from_var_file,
    )?;
    let roll = verdict::roll(&plan.services, &plan.image_tag);
    if let Some(step) = &mut plan.terraform {
        step.set_roll(roll, &platform.config.terraform);
    }
    plan.promotion = Some(promotion);
    Ok(outputs)
}

/// One service's registry digests: the source's of the commit's tag it runs (asked
/// only for such a tag), and, when the source has it, the target's of the tag the
/// target runs.
async fn read_digests<'a>(
    from: &str,
    source_live: Option<&'a LiveImage>,
    target_live: Option<&LiveImage>,
    source: Place<'_>,
    target: Place<'_>,
) -> Result<Read<'a>> {
    let mut read = Read {
        source: source_live,
        source_place: source.to_string(),
        ..Read::default()
    };
    let Ok((_, tag)) = verdict::source_tag(from, source_live) else {
        return Ok(read);
    };
    read.source_digest = registry::digest_of(source, tag).await?;
    if read.source_digest.is_none() {
        return Ok(read);
    }
    if let Some(LiveImage::Running { image, .. }) = target_live {
        if let Some(live_tag) = image_tag_of(image) {
            read.target_digest = registry::digest_of(target, live_tag).await?;
        }
    }
    Ok(read)
}

impl Run<'_> {
    /// Step 3, for a promotion: the source's account beside the target's (the operator
    /// confirms both), and the target's ECR repositories exist.
    pub(super) async fn promotion_preflight(&self, aws: &Aws) -> Result<()> {
        let Some(promotion) = &self.plan.promotion else {
            return Ok(());
        };
        let profile_from = promotion
            .profile_from
            .as_deref()
            .or(self.profile.as_deref());
        let sdk = self.contexts.get(profile_from).await.sdk;
        let identity = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|err| anyhow!(crate::aws::explain("sts:GetCallerIdentity", &err, profile_from)))
            .context("cannot tell which AWS account the source is (STS GetCallerIdentity); nothing was touched")?;
        self.progress.note(&format!(
            "copying FROM AWS account {} as {}\n  region     {}\n  profile    {}\n  workspace  {} (read only: nothing there changes)",
            identity.account().unwrap_or("?"),
            identity.arn().unwrap_or("?"),
            sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
            profile_from.unwrap_or("(default credential chain)"),
            promotion.from_workspace,
        ));
        let repositories: Vec<String> = self
            .plan
            .deploying_services()
            .map(|s| s.repository.clone())
            .collect();
        ecr::repository_uris(
            &aws_sdk_ecr::Client::new(&aws.sdk),
            &repositories,
            self.profile.as_deref(),
        )
        .await?;
        Ok(())
    }

    /// Step 6, for a promotion: each image copied registry to registry and its digest
    /// proved; any failure stops the run before the roll.
    pub(super) async fn copy_images(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let promotion = self
            .plan
            .promotion
            .as_ref()
            .context("a promotion without its source")?;
        let profile_from = promotion
            .profile_from
            .as_deref()
            .or(self.profile.as_deref());
        let source_aws = self.contexts.get(profile_from).await;
        let source_registry =
            open_registry(&source_aws, promotion.from_registry.host.as_deref()).await?;
        let access = ecr::registry_access(
            &aws_sdk_ecr::Client::new(&ready.aws.sdk),
            self.plan.registry.host.as_deref(),
            self.profile.as_deref(),
        )
        .await?;
        let target_registry = access.registry_client()?;
        let source_platform =
            &crate::planning::platform_in(self.platform, Some(&promotion.from_workspace))?;
        let steps: Vec<_> = self.plan.deploying_services().collect();
        let (source_registry, target_registry) = (&source_registry, &target_registry);
        let results: Vec<(ImageResult, Option<CopiedImage>)> = futures_util::stream::iter(steps)
            .map(|step| async move {
                let item = self.progress.item(&step.name);
                let tag = step.tag();
                item.state(&format!("copying {}:{tag}", step.repository));
                let started = Instant::now();
                let source_repository = source_repository(source_platform, &step.name);
                let copied = registry::copy_image(
                    Place {
                        registry: source_registry,
                        repository: &source_repository,
                    },
                    Place {
                        registry: target_registry,
                        repository: &step.repository,
                    },
                    tag,
                    &|message| item.state(message),
                )
                .await;
                let image = format!("{}/{}", target_registry.host, step.image);
                match copied {
                    Ok(copy) => {
                        item.finish(&format!(
                            "copied {} ({} blob(s), {} bytes sent; {} already there, {} mounted)",
                            short_digest(&copy.digest),
                            copy.blobs_sent,
                            copy.bytes_sent,
                            copy.blobs_present,
                            copy.blobs_mounted
                        ));
                        (
                            ImageResult {
                                service: step.name.clone(),
                                image,
                                status: ImageStatus::Copied,
                                build_secs: None,
                                push_secs: Some(started.elapsed().as_secs_f64()),
                                error: None,
                                dependency_stage: None,
                            },
                            Some(CopiedImage {
                                service: step.name.clone(),
                                tag: tag.to_owned(),
                                copy,
                            }),
                        )
                    }
                    Err(err) => {
                        let message = format!("{}: {err:#}", step.name);
                        item.finish(&format!("copy FAILED: {err:#}"));
                        (
                            ImageResult {
                                service: step.name.clone(),
                                image,
                                status: ImageStatus::Failed,
                                build_secs: None,
                                push_secs: None,
                                error: Some(message),
                                dependency_stage: None,
                            },
                            None,
                        )
                    }
                }
            })
            .buffer_unordered(COPY_CONCURRENCY)
            .collect()
            .await;
        for (image, copied) in results {
            report.images.push(image);
            report.copies.extend(copied);
        }
        report.images.sort_by(|a, b| a.service.cmp(&b.service));
        report.copies.sort_by(|a, b| a.service.cmp(&b.service));
        let failed: Vec<String> = report
            .images
            .iter()
            .filter_map(|r| r.error.clone())
            .map(|e| format!("  {e}"))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        bail!(
            "{} image(s) could not be copied to {}:\n{}\nNothing was rolled. Re-run the same command to resume: blobs already in the target registry are not sent again",
            failed.len(),
            target_registry.host,
            failed.join("\n")
        )
    }
}
