//! What runs now compared with HEAD: per service, the live image tag from ECS, whether
//! the code changed since, and why. `--changed` decides from it; `status` prints it.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::{Ecs, LiveImage, Lookup};
use crate::changes::decide::decide;
use crate::changes::diff::{self, DiffCache};
use crate::git::Repo;
use crate::model::config;
use crate::model::plan::{Action, Decision};
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

/// Reads what ECS runs for every service and compares it with HEAD: [`fetch`], then
/// [`compare`]. `cluster` comes from [`resolve_cluster`] or [`cluster_from`], so that a
/// caller that needs the terraform outputs anyway reads them once.
pub async fn survey(
    platform: &Platform,
    repo: &Repo,
    head_sha: &str,
    profile: Option<&str>,
    cluster: String,
) -> Result<Survey> {
    let live = fetch(platform, profile, &cluster).await?;
    let services = compare(platform, repo, head_sha, live)?;
    Ok(Survey {
        cluster,
        head: head_sha.to_owned(),
        services,
    })
}

/// What ECS runs for every service of the platform, by the platform's service name.
pub async fn fetch(
    platform: &Platform,
    profile: Option<&str>,
    cluster: &str,
) -> Result<HashMap<String, LiveImage>> {
    let sdk = crate::aws::load(profile).await;
    let ecs = Ecs::new(
        aws_sdk_ecs::Client::new(&sdk),
        cluster.to_owned(),
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
    ecs.live_images(&lookups).await
}

/// Decides every service from what runs (`live`, from [`fetch`]): the live tag,
/// resolved to a commit and diffed (git2, once per distinct base) over the service's
/// inputs (runbook: service dir, shared packages, build inputs).
pub fn compare(
    platform: &Platform,
    repo: &Repo,
    head_sha: &str,
    mut live: HashMap<String, LiveImage>,
) -> Result<Vec<ServiceState>> {
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
        let container = config::expand(&platform.config.ecs.container, &service.name);
        let Decision { action, reason } = decide(&state, &container, &inputs, &mut diffs)?;
        services.push(ServiceState {
            name: service.name.clone(),
            live: state,
            action,
            reason,
        });
    }
    Ok(services)
}
