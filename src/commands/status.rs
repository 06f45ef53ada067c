//! `deploy status`: what runs now against HEAD, and whether it drifted from what deploy
//! and terraform recorded; read-only. `--check` makes drift the exit code (4).

use anyhow::Result;
use serde::Serialize;

use crate::aws::ecs::LiveImage;
use crate::changes::live::{self, Survey};
use crate::checkout::{runtime, Checkout};
use crate::model::plan::services::validate_service_names;
use crate::request::{Globals, StatusRequest};
use crate::ui::output::emit_stdout;

mod digests;
mod drift;
mod spas;
mod table;

use digests::{digests_of, OtherImage, ServiceDigest};
use spas::{abbreviate, spa_change, SpaStatus};

#[derive(Serialize)]
struct Status {
    #[serde(flatten)]
    survey: Survey,
    head_short: String,
    spas: Vec<SpaStatus>,
    /// Per service: the digest of what runs, in the registry its image names.
    digests: Vec<ServiceDigest>,
    /// `--compare`: the other environment's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    compared_with: Option<String>,
    /// Per running service: what runs against deploy's last roll and terraform's tags.
    drift: Vec<crate::model::drift::ServiceDrift>,
    /// What the drift was compared with.
    drift_sources: crate::changes::drift::Sources,
}

pub fn run(globals: &Globals, request: &StatusRequest) -> Result<()> {
    let profile = globals.profile.as_deref();
    let contexts = crate::aws::Contexts::for_profiles([
        ("--profile", profile),
        ("--compare-profile", request.compare_profile.as_deref()),
    ])?;
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(globals.repo.as_deref())?;
    let workspace = crate::planning::workspace_named(&platform, &cwd, request.var_file.as_deref())?;
    let compared = compared_workspace(&platform, &cwd, request, workspace.as_deref())?;
    let platform = crate::planning::platform_in(&platform, workspace.as_deref())?;
    // `--services`: these services only, and no SPAs (as `rollback --services`).
    let named = request
        .services
        .as_deref()
        .map(|names| validate_service_names(&platform, names))
        .transpose()?;
    let runtime = runtime()?;
    let (survey, spas, digests, compared_with, (drift, drift_sources)) =
        runtime.block_on(async {
            // Read once: they name the cluster and the SPA buckets.
            let outputs = match live::terraform_of(&platform, profile, workspace.as_deref())
                .outputs()
                .await
            {
                Ok(outputs) => outputs,
                // With ecs.cluster set, status works without terraform (no SPA buckets).
                Err(_) if platform.config.ecs.cluster.is_some() => Default::default(),
                Err(err) => return Err(err),
            };
            let environment =
                crate::checkout::read_environment(&platform, workspace.as_deref(), &outputs)?;
            let cluster = environment.cluster()?.to_owned();
            let aws = contexts.get(profile).await;
            let mut survey = live::survey(
                &platform,
                &repo,
                &head.sha,
                &aws,
                cluster,
                platform.config.changes.mode,
            )
            .await?;
            if let Some(named) = &named {
                survey.services.retain(|s| named.contains(&s.name));
            }
            let s3 = aws.s3();
            let mut spas = Vec::new();
            for spa in platform.spas.iter().filter(|_| named.is_none()) {
                let bucket = environment.spa(&spa.name).bucket;
                let mut live = None;
                let deployed_sha = match &bucket {
                    Some(bucket) => {
                        let manifest = environment.lock_bucket.as_deref().map(|private| {
                            crate::spa::ManifestLocation::new(private, &spa.name, bucket)
                        });
                        if let Some(manifest) = &manifest {
                            live = crate::spa::restore::live_release(&s3, manifest)
                                .await?
                                .filter(|d| d.release);
                        }
                        crate::spa::deployed_sha(&s3, manifest.as_ref(), bucket).await?
                    }
                    None => None,
                };
                let inputs = crate::spa::inputs::spa_inputs(&platform.root, &spa.dir)?;
                let (changed, reason) =
                    spa_change(&repo, &head.sha, deployed_sha.as_deref(), inputs)?;
                spas.push(SpaStatus {
                    name: spa.name.clone(),
                    bucket,
                    deployed_short: deployed_sha.as_deref().map(|sha| abbreviate(&repo, sha)),
                    deployed_sha,
                    release: live.as_ref().map(|d| d.number),
                    restored_from: live.as_ref().and_then(|d| d.restored_from),
                    live_since: live.map(|d| d.time),
                    changed,
                    reason,
                });
            }
            let mut digests: Vec<ServiceDigest> = digests_of(
                survey.services.iter().map(|s| (s.name.as_str(), &s.live)),
                &aws,
            )
            .await
            .into_iter()
            .map(|(service, digest, error)| ServiceDigest {
                service,
                digest,
                error,
                other: None,
            })
            .collect();
            let mut compared_with = None;
            if let Some(other_workspace) = compared {
                let other = crate::planning::platform_in(&platform, Some(&other_workspace))?;
                let other_workspace = Some(other_workspace);
                let other_profile = request.compare_profile.as_deref().or(profile);
                let (other_env, _) = crate::changes::environment::read_environment(
                    &other,
                    other_profile,
                    other_workspace.as_deref(),
                    other.config.ecs.cluster.is_some(),
                )
                .await?;
                let other_aws = contexts.get(other_profile).await;
                let other_live = live::fetch(&other, &other_aws, other_env.cluster()?).await?;
                let other_digests = digests_of(
                    other_live.iter().map(|(name, live)| (name.as_str(), live)),
                    &other_aws,
                )
                .await;
                for entry in &mut digests {
                    let tag = match other_live.get(&entry.service) {
                        Some(LiveImage::Running { image, .. }) => {
                            crate::aws::ecs::image_tag_of(image).map(str::to_owned)
                        }
                        _ => None,
                    };
                    let digest = other_digests
                        .iter()
                        .find(|(name, _, _)| name == &entry.service)
                        .and_then(|(_, digest, _)| digest.clone());
                    let same = match (&entry.digest, &digest) {
                        (Some(here), Some(there)) => Some(here == there),
                        _ => None,
                    };
                    entry.other = Some(OtherImage { tag, digest, same });
                }
                compared_with = other_workspace;
            }
            let drift =
                drift::read(&platform, &aws, &environment, &outputs, &survey, &digests).await;
            anyhow::Ok((survey, spas, digests, compared_with, drift))
        })?;
    let status = Status {
        survey,
        head_short: head.short_sha,
        spas,
        digests,
        compared_with,
        drift,
        drift_sources,
    };
    emit_stdout(&status, globals.output)?;
    if request.check {
        drift::check(&status.drift)?;
    }
    Ok(())
}

/// The environment `--compare` names, checked before anything is read: its tfvars file
/// exists, and it is not the environment `--var-file` names.
fn compared_workspace(
    platform: &crate::model::platform::Platform,
    cwd: &std::path::Path,
    request: &StatusRequest,
    workspace: Option<&str>,
) -> Result<Option<String>> {
    let Some(file) = &request.compare else {
        return Ok(None);
    };
    let (_, other) = crate::planning::environment_named_by(platform, cwd, file, "--compare")?;
    if workspace == Some(other.as_str()) {
        return Err(crate::error::UsageError::new(format!(
            "--compare {} names the environment --var-file names ({other}): compare with another environment's tfvars file",
            file.display()
        ))
        .into());
    }
    Ok(Some(other))
}
