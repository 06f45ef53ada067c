//! What runs now compared with HEAD: per service, the live image tag from ECS, whether
//! the code changed since, and why. `--changed` decides from it; `status` prints it.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::{Ecs, LiveImage, Lookup};
use crate::aws::Aws;
use crate::changes::decide::{decide, decide_with};
use crate::changes::diff::{self, DiffCache};
use crate::changes::graph::{GraphCache, Subject};
use crate::git::Repo;
use crate::model::config;
use crate::model::config::ChangesMode;
use crate::model::plan::{Action, Cause, Decision};
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
    /// Why, as data (graph mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
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
        .with_context(|| platform.config.missing_cluster())
}

/// Reads what ECS runs for every service and compares it with HEAD: [`fetch`], then
/// [`compare`]. `cluster` comes from [`resolve_cluster`] or [`cluster_from`], so that a
/// caller that needs the terraform outputs anyway reads them once.
pub async fn survey(
    platform: &Platform,
    repo: &Repo,
    head_sha: &str,
    aws: &Aws,
    cluster: String,
    mode: ChangesMode,
) -> Result<Survey> {
    let cache = repo.git_dir().join("deploy").join(TASK_DEFINITION_CACHE);
    let live = fetch_with(platform, aws, &cluster, Some(&cache)).await?;
    let services = compare(platform, repo, head_sha, live, mode)?;
    Ok(Survey {
        cluster,
        head: head_sha.to_owned(),
        services,
    })
}

/// The survey's cache of task definition ARN → containers (name, image), under the
/// repository's `.git/deploy/`. A task definition revision is immutable (a new image is a
/// new revision, with a new ARN), so an entry never goes stale; the cache spares one
/// DescribeTaskDefinition per service on every `--changed` and `status` after the first.
const TASK_DEFINITION_CACHE: &str = "task-definitions.json";

/// Entries kept at most; beyond, the cache starts again from what this survey read.
const TASK_DEFINITION_CACHE_MAX: usize = 5_000;

/// What ECS runs for every service of the platform, by the platform's service name.
pub async fn fetch(
    platform: &Platform,
    aws: &Aws,
    cluster: &str,
) -> Result<HashMap<String, LiveImage>> {
    fetch_with(platform, aws, cluster, None).await
}

/// [`fetch`], reading and updating the task definition cache at `cache` when given. A
/// cache that cannot be read or written only costs the requests it would have saved.
async fn fetch_with(
    platform: &Platform,
    aws: &Aws,
    cluster: &str,
    cache: Option<&std::path::Path>,
) -> Result<HashMap<String, LiveImage>> {
    let known = cache.map(read_task_definitions).unwrap_or_default();
    let seeded = known.len();
    let ecs = Ecs::new(
        aws_sdk_ecs::Client::new(&aws.sdk),
        cluster.to_owned(),
        aws.profile.clone(),
    )
    .with_known(known);
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
    let live = ecs.live_images(&lookups).await?;
    if let Some(cache) = cache {
        let mut known = ecs.known();
        if known.len() != seeded {
            if known.len() > TASK_DEFINITION_CACHE_MAX {
                let running: std::collections::HashSet<&str> = live
                    .values()
                    .filter_map(|l| match l {
                        LiveImage::Running {
                            task_definition, ..
                        } => Some(task_definition.as_str()),
                        _ => None,
                    })
                    .collect();
                known.retain(|arn, _| running.contains(arn.as_str()));
            }
            write_task_definitions(cache, &known);
        }
    }
    Ok(live)
}

type TaskDefinitions = HashMap<String, Vec<(String, String)>>;

fn read_task_definitions(path: &std::path::Path) -> TaskDefinitions {
    let Ok(text) = std::fs::read_to_string(path) else {
        return TaskDefinitions::new();
    };
    serde_json::from_str::<TaskDefinitions>(&text)
        .map(|known| {
            known
                .into_iter()
                // Only ARNs with a revision name one immutable definition.
                .filter(|(arn, _)| arn.starts_with("arn:") && arn.contains("task-definition/"))
                .collect()
        })
        .unwrap_or_else(|err| {
            tracing::debug!(path = %path.display(), error = %err, "task definition cache ignored");
            TaskDefinitions::new()
        })
}

fn write_task_definitions(path: &std::path::Path, known: &TaskDefinitions) {
    let write = || -> std::io::Result<()> {
        crate::changes::write_whole(path, &serde_json::to_vec(known)?)
    };
    if let Err(err) = write() {
        tracing::debug!(path = %path.display(), error = %err, "task definition cache not written");
    }
}

/// Decides every service from what runs (`live`, from [`fetch`]): the live tag,
/// resolved to a commit and compared with HEAD (git2, once per distinct base) by
/// `mode`: the runbook's inputs (service dir, shared packages, build inputs) or the
/// workspace graph.
pub fn compare(
    platform: &Platform,
    repo: &Repo,
    head_sha: &str,
    live: HashMap<String, LiveImage>,
    mode: ChangesMode,
) -> Result<Vec<ServiceState>> {
    let head = git2::Oid::from_str(head_sha).context("HEAD is not a commit id")?;
    match mode {
        ChangesMode::Runbook => compare_runbook(platform, repo, head, live),
        ChangesMode::Graph => compare_graph(platform, repo, head, live),
    }
}

fn compare_runbook(
    platform: &Platform,
    repo: &Repo,
    head: git2::Oid,
    mut live: HashMap<String, LiveImage>,
) -> Result<Vec<ServiceState>> {
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
        let decision = decide(&state, &container, &inputs, &mut diffs)?;
        services.push(service_state(&service.name, state, decision));
    }
    Ok(services)
}

fn service_state(name: &str, live: LiveImage, decision: Decision) -> ServiceState {
    let Decision {
        action,
        reason,
        cause,
    } = decision;
    ServiceState {
        name: name.to_owned(),
        live,
        action,
        reason,
        cause,
    }
}

/// Graph mode: every service against the workspace graph and the lockfile by importer.
fn compare_graph(
    platform: &Platform,
    repo: &Repo,
    head: git2::Oid,
    mut live: HashMap<String, LiveImage>,
) -> Result<Vec<ServiceState>> {
    let mut graph = graph_cache(platform, repo, head);
    let fan_out = service_fan_out(platform);
    let mut services = Vec::new();
    for service in &platform.services {
        let state = live
            .remove(&service.name)
            .context("every service was looked up")?;
        let container = config::expand(&platform.config.ecs.container, &service.name);
        let dir = crate::paths::git_path(&service.dir);
        let inputs = platform.config.changes.inputs_of(&service.name);
        let subject = Subject {
            name: &service.name,
            dir: &dir,
            fan_out: &fan_out,
            inputs: &inputs,
        };
        let decision = decide_with(&state, &container, repo.git(), head, |base| {
            Ok(graph.cause(base, &subject)?.map(Decision::because))
        })?;
        services.push(service_state(&service.name, state, decision));
    }
    Ok(services)
}

/// The graph comparison for the platform's services and SPAs.
pub fn graph_cache<'r>(platform: &Platform, repo: &'r Repo, head: git2::Oid) -> GraphCache<'r> {
    let dirs = platform
        .services
        .iter()
        .map(|s| crate::paths::git_path(&s.dir))
        .chain(platform.spas.iter().map(|s| crate::paths::git_path(&s.dir)))
        .collect();
    GraphCache::new(repo.git(), head, dirs, &platform.config.changes.ignore).with_lockfile_cache(
        crate::changes::lockfile::Cache::new(repo.git_dir().join("deploy").join("lockfiles")),
    )
}

/// The build inputs that still fan out to every service in graph mode: all but the
/// lockfile, which is compared by importer.
pub fn service_fan_out(platform: &Platform) -> Vec<String> {
    platform
        .config
        .shared
        .build_inputs
        .iter()
        .map(|p| crate::paths::git_path(p))
        .filter(|p| p != crate::changes::graph::LOCKFILE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_definition_cache_reads_back_what_it_wrote_and_ignores_junk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deploy").join(TASK_DEFINITION_CACHE);
        assert!(read_task_definitions(&path).is_empty(), "no file yet");
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7".to_owned();
        let known: TaskDefinitions = [
            (
                arn.clone(),
                vec![("api".to_owned(), "r.example/api:abc1234".to_owned())],
            ),
            // Not a revision's ARN: never trusted from the cache.
            ("api".to_owned(), vec![("api".to_owned(), "x".to_owned())]),
        ]
        .into_iter()
        .collect();
        write_task_definitions(&path, &known);
        let read = read_task_definitions(&path);
        assert_eq!(read.len(), 1, "{read:?}");
        assert_eq!(read[&arn], known[&arn]);
        std::fs::write(&path, "{not json").unwrap();
        assert!(read_task_definitions(&path).is_empty());
    }
}
