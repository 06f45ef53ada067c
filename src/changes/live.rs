//! What runs now compared with HEAD: per service, the live image tag from ECS, whether
//! the code changed since, and why. `--changed` decides from it; `status` prints it.

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::{self, Ecs, LiveImage, Lookup};
use crate::changes::diff::{self, DiffCache, LiveBase};
use crate::git::Repo;
use crate::model::config;
use crate::model::plan::Action;
use crate::model::platform::Platform;
use crate::terraform::Terraform;

/// One service, live against HEAD.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub name: String,
    pub live: LiveImage,
    /// `DEPLOY` when HEAD differs from what runs (or what runs cannot be compared).
    pub action: Action,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Survey {
    pub cluster: String,
    pub head: String,
    pub services: Vec<ServiceState>,
}

/// The terraform CLI for the platform's terraform directory.
pub fn terraform(platform: &Platform, profile: Option<&str>) -> Terraform {
    Terraform {
        bin: "terraform".into(),
        repo_root: platform.root.clone(),
        dir: platform.terraform_dir().to_path_buf(),
        profile: profile.map(str::to_owned),
        workspace: None,
    }
}

/// Terraform reading the state of `workspace` when given, else the selected one.
pub fn terraform_of(
    platform: &Platform,
    profile: Option<&str>,
    workspace: Option<&str>,
) -> Terraform {
    Terraform {
        workspace: workspace.map(str::to_owned),
        ..terraform(platform, profile)
    }
}

/// The ECS cluster: `ecs.cluster`, or the terraform output that names it.
pub async fn resolve_cluster(platform: &Platform, terraform: &Terraform) -> Result<String> {
    if let Some(cluster) = &platform.config.ecs.cluster {
        return Ok(cluster.clone());
    }
    cluster_from(platform, &terraform.outputs().await?)
}

/// The cluster from `ecs.cluster` or the given terraform outputs.
pub fn cluster_from(
    platform: &Platform,
    outputs: &serde_json::Map<String, serde_json::Value>,
) -> Result<String> {
    if let Some(cluster) = &platform.config.ecs.cluster {
        return Ok(cluster.clone());
    }
    let name = &platform.config.terraform.outputs.ecs_cluster;
    outputs
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "cannot tell the ECS cluster: terraform has no output {name:?} (set ecs.cluster in deploy.toml, or terraform.outputs.ecs_cluster); nothing was touched"
            )
        })
}

/// Reads what ECS runs for every service and compares it with HEAD: the live tag,
/// resolved to a commit and diffed (git2, once per distinct base) over the service's
/// inputs (runbook: service dir, shared packages, build inputs). `cluster` comes from
/// [`resolve_cluster`] or [`cluster_from`], so that a caller that needs the terraform
/// outputs anyway reads them once.
pub async fn survey(
    platform: &Platform,
    repo: &Repo,
    head_sha: &str,
    profile: Option<&str>,
    cluster: String,
) -> Result<Survey> {
    let sdk = crate::aws::load(profile).await;
    let ecs = Ecs::new(
        aws_sdk_ecs::Client::new(&sdk),
        cluster.clone(),
        profile.map(str::to_owned),
    );
    let ecs_config = &platform.config.ecs;
    let lookups: Vec<Lookup> = platform
        .services
        .iter()
        .map(|s| Lookup {
            service: s.name.clone(),
            ecs_service: config::expand(&ecs_config.service, &s.name),
            container: config::expand(&ecs_config.container, &s.name),
        })
        .collect();
    let mut live = ecs.live_images(&lookups).await?;

    let head = git2::Oid::from_str(head_sha).context("HEAD is not a commit id")?;
    // Every path any service's image depends on: the diff needs to look at nothing else.
    let pathspecs: Vec<String> = platform
        .services
        .iter()
        .map(|s| &s.dir)
        .chain(&platform.config.shared.packages)
        .chain(&platform.config.shared.build_inputs)
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    let mut diffs = DiffCache::new(repo.git(), head, pathspecs);
    let mut services = Vec::new();
    for service in &platform.services {
        let inputs = diff::Inputs {
            service_dir: &service.dir,
            shared_packages: &platform.config.shared.packages,
            build_inputs: &platform.config.shared.build_inputs,
        };
        let state = live
            .remove(&service.name)
            .context("every service was looked up")?;
        let (action, reason) = match &state {
            LiveImage::Missing { reason } => (Action::Deploy, format!("{reason}: deploying")),
            LiveImage::NoContainer { task_definition } => (
                Action::Deploy,
                format!("live task definition {task_definition} has no container {}", config::expand(&ecs_config.container, &service.name)),
            ),
            LiveImage::Running { image, .. } => match ecs::image_tag_of(image) {
                None => (Action::Deploy, format!("live image {image} has no tag to diff against")),
                Some(tag) => match diff::resolve_tag(repo.git(), tag) {
                    LiveBase::NotASha(tag) => (Action::Deploy, format!("live tag {tag:?} is not a git SHA")),
                    LiveBase::Dirty(tag) => (
                        Action::Deploy,
                        format!("live tag {tag} is a build of uncommitted code: never a diff base"),
                    ),
                    LiveBase::UnknownCommit(tag) => (
                        Action::Deploy,
                        format!("live commit {tag} is not in local history (shallow clone?): `git fetch --unshallow origin` or `git fetch origin` would fix it"),
                    ),
                    LiveBase::Commit(base) if base == head => (Action::Skip, format!("live tag {tag} is HEAD")),
                    LiveBase::Commit(base) => {
                        let changed = diffs.changed_paths_since(base)?;
                        match diff::reason_for(changed, &inputs) {
                            Some(reason) => (Action::Deploy, reason),
                            None => (Action::Skip, format!("unchanged since live {tag}")),
                        }
                    }
                },
            },
        };
        services.push(ServiceState {
            name: service.name.clone(),
            live: state,
            action,
            reason,
        });
    }
    Ok(Survey {
        cluster,
        head: head_sha.to_owned(),
        services,
    })
}
